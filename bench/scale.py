"""`python -m bench.scale`: Vault load of N nodes x M pods polling one OpenBao (not part of the tests).

N provider processes ("nodes", each on its own socket, all with one HMAC key file) serve
M pods each. Every pod's SecretProviderClass reads five KV objects over three paths and
one database credential (a lease); pods belong to `--workloads` service accounts with
replicas on every node. Each volume is Mounted once, then re-Mounted every
`--poll-interval` seconds, as the driver's rotation does. For every mode and pod count the
nodes are started afresh; after one poll interval of warm-up, a `--duration` window is
measured: Vault requests per minute by kind counted from OpenBao's audit log, logins,
database leases OpenBao holds at the end, Mount latency and failures, RSS and CPU.

Modes add SecretProviderClass parameters and nothing else: `shared` is
`credentialScope: serviceAccount`, `refresh` is `refreshInterval: 5m`, and
`shared+refresh` both. A provider that ignores them measures like `plain`.

Modules, each importing only those before it (besides `bench`'s own):

    scale_options   pure: settings, modes and their parameters
    scale_report    pure: a step's figures, the table and the JSON
    scale_fleet     I/O: the nodes' provider processes, pods and the poller
    scale_run       composition: backends once, then every step
    scale           flags
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from bench.options import DEFAULT_PROVIDER_CMD, parse_env
from bench.scale_options import ALL_MODES, OptionError, ScaleOptions, parse_modes, parse_pods
from bench.scale_run import run

__all__ = ["main"]

_EPILOG = """
placeholders in --provider-cmd and --provider-env values:
  {python} this interpreter   {socket} the node's unix socket   {vault_addr} OpenBao
  {key_file} the 32-byte HMAC key file every node shares   {node} the node's number (0, 1, ...)

examples:
  python -m bench.scale --quick
  python -m bench.scale --nodes 3 --pods 10,50,100 --poll-interval 30 --duration 120
  python -m bench.scale --modes plain,shared --json scale.json
"""


def _parser() -> argparse.ArgumentParser:
    defaults = ScaleOptions()
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale",
        description="Vault requests, logins and leases of N nodes x M pods against one OpenBao.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--nodes", type=int, default=defaults.nodes, help="provider processes")
    parser.add_argument(
        "--pods", default=",".join(map(str, defaults.pods)), help="pods per node, one step each (10,50,100)"
    )
    parser.add_argument(
        "--workloads", type=int, default=defaults.workloads, help="service accounts, replicas on every node"
    )
    parser.add_argument(
        "--poll-interval", type=float, default=defaults.poll_interval, help="seconds between a pod's Mounts"
    )
    parser.add_argument(
        "--duration", type=float, default=defaults.duration, help="measured seconds per step, after warm-up"
    )
    parser.add_argument("--modes", default=",".join(ALL_MODES), help=f"subset of {','.join(ALL_MODES)}")
    parser.add_argument(
        "--refresh-interval", default=defaults.refresh_interval, help="refreshInterval of the refresh modes"
    )
    parser.add_argument(
        "--concurrency", type=int, default=defaults.concurrency, help="Mounts at once per node"
    )
    parser.add_argument("--provider-cmd", default=DEFAULT_PROVIDER_CMD, help="command line of one node")
    parser.add_argument(
        "--provider-env", action="append", default=[], metavar="K=V", help="extra environment (repeatable)"
    )
    parser.add_argument("--provider-logs", metavar="DIR", help="keep every node's log under DIR")
    parser.add_argument("--json", metavar="PATH", help="also write every figure as JSON")
    parser.add_argument("--quick", action="store_true", help="one small step per mode, about a minute")
    return parser


def _options(argv: Sequence[str] | None) -> tuple[ScaleOptions, dict[str, str]]:
    args = _parser().parse_args(argv)
    options = ScaleOptions(
        nodes=args.nodes,
        pods=parse_pods(args.pods),
        workloads=args.workloads,
        poll_interval=args.poll_interval,
        duration=args.duration,
        modes=parse_modes(args.modes),
        refresh_interval=args.refresh_interval,
        concurrency=args.concurrency,
        provider_cmd=args.provider_cmd,
        provider_log_dir=args.provider_logs,
        json_path=args.json,
    )
    if args.quick:
        options = options.quickened()
    options.validate()
    return options, dict(parse_env(args.provider_env))


def _terminate(signum: int, frame: FrameType | None) -> None:
    # Unwinds the run's ExitStacks like Ctrl-C does, so every process is stopped.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    try:
        options, provider_env = _options(argv)
    except OptionError as exc:
        print(f"python -m bench.scale: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return run(options, provider_env)
    except KeyboardInterrupt:
        print("\ninterrupted: everything the benchmark started has been stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
