"""Regenerate (or check) the PrometheusRule of daemonset/components/monitoring from its alerts.yaml.

    python scripts/gen_monitoring.py          # rewrite prometheusrule.yaml
    python scripts/gen_monitoring.py --check  # exit 1 if prometheusrule.yaml is stale

alerts.yaml is the one source of the rules: plain Prometheus rule groups that promtool
checks and tests, and that a Prometheus without the Operator loads as it is. The
PrometheusRule carries the same text under `spec:`, indented, so the two read alike.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPONENT = ROOT / "daemonset" / "components" / "monitoring"
SOURCE = COMPONENT / "alerts.yaml"
TARGET = COMPONENT / "prometheusrule.yaml"
HEADER = """\
# Generated from alerts.yaml by scripts/gen_monitoring.py: edit alerts.yaml, then run that script.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: vault-csi-provider
  labels:
    app.kubernetes.io/name: vault-csi-provider
    app.kubernetes.io/part-of: vault-csi-provider
spec:
"""


def rendered(source: str) -> str:
    """The PrometheusRule for the rule groups in `source` (its leading comments left out)."""
    lines = source.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("groups:")), None)
    if start is None:
        raise SystemExit(f"{SOURCE.relative_to(ROOT)} has no top-level `groups:`")
    body = "".join(f"  {line}\n" if line else "\n" for line in lines[start:])
    return HEADER + body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file is stale")
    args = parser.parse_args()
    wanted = rendered(SOURCE.read_text())
    if args.check:
        if not TARGET.exists() or TARGET.read_text() != wanted:
            print(
                f"{TARGET.relative_to(ROOT)} is stale: run python scripts/gen_monitoring.py", file=sys.stderr
            )
            return 1
        return 0
    TARGET.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
