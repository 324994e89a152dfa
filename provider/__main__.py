"""`python -m provider` is the same as the `vault-csi-provider` command."""

import sys

from provider.cli import main

sys.exit(main())
