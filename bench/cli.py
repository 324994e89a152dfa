"""`python -m bench`: parse the flags into `Options` and run; Ctrl-C and SIGTERM stop everything."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from bench.options import (
    DEFAULT_PROVIDER_CMD,
    OptionError,
    Options,
    parse_env,
    parse_scenarios,
    parse_spacings,
)
from bench.run import run

__all__ = ["main"]

_EPILOG = r"""
placeholders in --provider-cmd and --provider-env values:
  {python} this interpreter   {socket} the unix socket to serve   {vault_addr} Vault (the proxy)
  {key_file} a 32-byte HMAC key file
  with --kube-kit also {kube_host} {kube_port} {sa_dir} (a Kubernetes API for the provider itself)

HashiCorp's provider (needs --kube-kit: it reads its HMAC key Secret through in-cluster config
at the fixed path /var/run/secrets/kubernetes.io/serviceaccount, given here in a private mount namespace):
  python -m bench --kube-kit \
    --provider-cmd 'unshare -m sh -c "mount -t tmpfs bench /run &&
      mkdir -p /run/secrets/kubernetes.io/serviceaccount &&
      mount --bind {sa_dir} /run/secrets/kubernetes.io/serviceaccount &&
      exec /usr/local/bin/vault-csi-provider -endpoint={socket} -vault-addr={vault_addr} \
         -health-addr=127.0.0.1:0 -log-level=info"' \
    --provider-env KUBERNETES_SERVICE_HOST={kube_host} --provider-env KUBERNETES_SERVICE_PORT={kube_port}

side by side with it (--compare-cmd takes the same placeholders and gets its own socket and proxy;
warm polls go to both interleaved, one pass per --compare-spacings-ms value, and the table prints
ours/theirs; the same scenarios then run against it, e excepted):
  python -m bench --kube-kit --compare-cmd 'unshare -m sh -c "..." (as above)' \
    --compare-env KUBERNETES_SERVICE_HOST={kube_host} --compare-env KUBERNETES_SERVICE_PORT={kube_port}
"""


def _parser() -> argparse.ArgumentParser:
    defaults = Options()
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark a Secrets Store CSI provider against a real OpenBao (see README, Benchmarks).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scenarios", default=",".join(defaults.scenarios), help="subset of a,b,c,d,e")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--warmup", type=int, default=defaults.warmup, help="warm-up Mounts in a and b")
    parser.add_argument("--polls", type=int, default=defaults.polls, help="scenario a: sequential polls")
    parser.add_argument(
        "--polls-dynamic", type=int, default=defaults.polls_dynamic, help="scenario b: sequential polls"
    )
    parser.add_argument("--storm-pods", type=int, default=defaults.storm_pods, help="scenario c: pods")
    parser.add_argument(
        "--storm-objects", type=int, default=defaults.storm_objects, help="scenario c: objects per pod"
    )
    parser.add_argument("--pods", type=int, default=defaults.pods, help="scenario d: distinct pods")
    parser.add_argument(
        "--pods-concurrency", type=int, default=defaults.pods_concurrency, help="scenario d: Mounts at once"
    )
    parser.add_argument(
        "--provider-cmd", default=DEFAULT_PROVIDER_CMD, help="command line of the provider under test"
    )
    parser.add_argument(
        "--provider-env", action="append", default=[], metavar="K=V", help="extra environment (repeatable)"
    )
    parser.add_argument(
        "--no-proxy", action="store_true", help="point the provider at OpenBao directly (no overhead figure)"
    )
    parser.add_argument(
        "--kube-kit", action="store_true", help="serve a Kubernetes API for the provider's own calls"
    )
    parser.add_argument(
        "--network-rtt-ms",
        type=float,
        default=defaults.network_rtt_ms,
        metavar="MS",
        help="serve each Vault request and kube-kit call this much later, as across a network",
    )
    parser.add_argument("--json", default=defaults.json_path, metavar="PATH", help="where to write the JSON")
    parser.add_argument("--provider-log", metavar="PATH", help="keep the provider's log here")
    parser.add_argument(
        "--compare-cmd",
        metavar="CMD",
        help="a second provider (same placeholders) polled interleaved with the first; prints ratios",
    )
    parser.add_argument(
        "--compare-env", action="append", default=[], metavar="K=V", help="its extra environment (repeatable)"
    )
    parser.add_argument(
        "--compare-spacings-ms",
        default="0,250",
        metavar="MS,...",
        help="one interleaved warm-poll pass per value: milliseconds between consecutive polls",
    )
    parser.add_argument(
        "--compare-go-spacings-ms",
        metavar="MS,...",
        help="more passes, one per value, their polls sent by the driver's own Go client (needs go)",
    )
    parser.add_argument("--compare-log", metavar="PATH", help="keep the second provider's log here")
    return parser


def _options(argv: Sequence[str] | None) -> Options:
    args = _parser().parse_args(argv)
    options = Options(
        scenarios=parse_scenarios(args.scenarios),
        warmup=args.warmup,
        polls=args.polls,
        polls_dynamic=args.polls_dynamic,
        storm_pods=args.storm_pods,
        storm_objects=args.storm_objects,
        pods=args.pods,
        pods_concurrency=args.pods_concurrency,
        provider_cmd=args.provider_cmd,
        provider_env=parse_env(args.provider_env),
        proxy=not args.no_proxy,
        kube_kit=args.kube_kit,
        network_rtt_ms=args.network_rtt_ms,
        json_path=args.json,
        provider_log=args.provider_log,
        compare_cmd=args.compare_cmd,
        compare_env=parse_env(args.compare_env),
        compare_spacings_ms=parse_spacings(args.compare_spacings_ms),
        compare_go_spacings_ms=(
            parse_spacings(args.compare_go_spacings_ms, "--compare-go-spacings-ms")
            if args.compare_go_spacings_ms
            else ()
        ),
        compare_log=args.compare_log,
    )
    if args.quick:
        options = options.quickened()
    options.validate()
    return options


def _terminate(signum: int, frame: FrameType | None) -> None:
    # Unwinds the run's ExitStack like Ctrl-C does, so every process is stopped.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    try:
        options = _options(argv)
    except OptionError as exc:
        print(f"python -m bench: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return run(options)
    except KeyboardInterrupt:
        print("\ninterrupted: everything the benchmark started has been stopped", file=sys.stderr)
        return 130
