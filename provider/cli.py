"""Command line: `vault-csi-provider [flags]` serves; `mount` and `lint` are tools.

Serving takes the upstream provider's Go-style flags so the official chart's
arguments work; the tools are ordinary argparse commands.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Sequence

from provider import PROVIDER_NAME, __version__
from provider.serve import logs
from provider.settings import FlagError, parse_settings, usage

__all__ = ["main"]

TOOLS = ("mount", "lint")
# The demo needs OpenBao and test backends that ship with the repository, not with the provider.
DEMO_MOVED = "the demo is not part of the installed provider: run `make demo` in a checkout of its repository"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in TOOLS:
        return _tool(args[0], args[1:])
    if args and args[0] == "demo":
        print(DEMO_MOVED, file=sys.stderr)
        return 2
    try:
        settings = parse_settings(args)
    except FlagError as exc:
        if str(exc) == "help requested":
            print(usage())
            return 0
        print(f"{exc}\n\n{usage()}", file=sys.stderr)
        return 2
    if settings.show_version:
        print(f"{PROVIDER_NAME} {__version__} (python {platform.python_version()})")
        return 0
    logs.configure(settings.log_level, settings.log_format)
    from provider.serve.process import run

    return run(settings)


def _tool(name: str, args: list[str]) -> int:
    if name == "mount":
        from provider.tools.driver.cli import main as mount_main

        return mount_main(args)
    from provider.tools.lint import main as lint_main

    return lint_main(args)
