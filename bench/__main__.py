"""`python -m bench`: the benchmark harness (see `bench/__init__.py` and the README)."""

import sys

from bench.cli import main

sys.exit(main())
