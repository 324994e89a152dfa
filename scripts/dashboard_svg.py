"""Draw the Grafana dashboard of daemonset/components/monitoring as an SVG, from Prometheus' answers.

No Grafana runs here: the e2e (tests/e2e/test_monitoring.py) asks a real Prometheus every
panel's query over the time its scenarios ran and saves the answers; this draws each panel as
a line chart on the dashboard's own grid, with the panel's title, unit and legend.

    python scripts/dashboard_svg.py ANSWERS.json OUT.svg

ANSWERS.json: {"start": t0, "end": t1, "panels": {"<panel id>": [{"legend": "...",
"points": [[t, value], ...]}, ...]}}, as `answers_for` in the e2e writes it.
"""

from __future__ import annotations

import json
import math
import sys
from html import escape
from pathlib import Path
from typing import Any

__all__ = ["render"]

DASHBOARD = (
    Path(__file__).resolve().parent.parent / "daemonset" / "components" / "monitoring" / "dashboard.json"
)
COLUMN, ROW = 40, 30  # pixels per Grafana grid column (24 across) and per grid row
COLORS = ("#7eb26d", "#eab839", "#6ed0e0", "#ef843c", "#e24d42", "#1f78c1", "#ba43a9", "#705da0")
UNITS = {"ops": "/s", "reqps": " req/s", "s": " s", "percentunit": "", "short": ""}


def _label(value: float, unit: str) -> str:
    if unit == "percentunit":
        return f"{value * 100:.0f}%"
    if unit == "s" and value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.3g}{UNITS.get(unit, '')}"


def _panel(panel: dict[str, Any], series: list[dict[str, Any]], start: float, end: float) -> str:
    grid = panel["gridPos"]
    x, y = grid["x"] * COLUMN + 4, grid["y"] * ROW
    width, height = grid["w"] * COLUMN - 8, grid["h"] * ROW - 8
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "short")
    longest = max((len(s["legend"]) for s in series), default=0)
    columns = 3 if longest <= 22 else 2 if longest <= 36 else 1
    legend_rows = max(1, math.ceil(len(series) / columns))
    plot_x, plot_y = 52, 26
    plot_w, plot_h = width - plot_x - 10, height - plot_y - 28 - 14 * legend_rows
    values = [v for s in series for _, v in s["points"] if math.isfinite(v)]
    top = max(values, default=1.0) or 1.0
    parts = [
        f'<g transform="translate({x},{y})">',
        f'<rect width="{width}" height="{height}" rx="3" fill="#181b1f" stroke="#2c3235"/>',
        f'<text x="8" y="17" class="title">{escape(panel["title"])}</text>',
        f'<line x1="{plot_x}" y1="{plot_y + plot_h}" x2="{plot_x + plot_w}" y2="{plot_y + plot_h}" '
        'class="axis"/>',
        f'<text x="{plot_x - 4}" y="{plot_y + 4}" class="tick" text-anchor="end">{_label(top, unit)}</text>',
        f'<text x="{plot_x - 4}" y="{plot_y + plot_h}" class="tick" text-anchor="end">0</text>',
        f'<text x="{plot_x}" y="{plot_y + plot_h + 10}" class="tick">0 s</text>',
        f'<text x="{plot_x + plot_w}" y="{plot_y + plot_h + 10}" class="tick" text-anchor="end">'
        f"{end - start:.0f} s</text>",
    ]
    span = max(end - start, 1.0)
    for index, one in enumerate(series):
        color = COLORS[index % len(COLORS)]
        points = " ".join(
            f"{plot_x + (t - start) / span * plot_w:.1f},{plot_y + plot_h - min(v / top, 1.0) * plot_h:.1f}"
            for t, v in one["points"]
            if math.isfinite(v)
        )
        if points:
            parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="1.5"/>')
        column, row = index % columns, index // columns
        lx, ly = 8 + column * (width - 16) // columns, plot_y + plot_h + 26 + row * 14
        parts.append(f'<rect x="{lx}" y="{ly - 8}" width="10" height="3" fill="{color}"/>')
        parts.append(f'<text x="{lx + 14}" y="{ly - 4}" class="legend">{escape(one["legend"][:60])}</text>')
    if not series:
        parts.append(
            f'<text x="{width / 2}" y="{height / 2}" class="tick" text-anchor="middle">No data</text>'
        )
    parts.append("</g>")
    return "\n".join(parts)


def render(dashboard: dict[str, Any], answers: dict[str, Any]) -> str:
    """The SVG text: every panel of `dashboard`, drawn from `answers` (see the module docstring)."""
    panels = dashboard["panels"]
    width = 24 * COLUMN
    height = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels) * ROW + 30
    minutes = (answers["end"] - answers["start"]) / 60
    body = [
        _panel(panel, answers["panels"].get(str(panel["id"]), []), answers["start"], answers["end"])
        for panel in panels
    ]
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="sans-serif">',
            "<style>.title{fill:#d8d9da;font-size:13px;font-weight:bold}.tick{fill:#9fa7b3;font-size:10px}"
            ".legend{fill:#ccccdc;font-size:10px}.axis{stroke:#464c54}</style>",
            f'<rect width="{width}" height="{height}" fill="#111217"/>',
            f'<g transform="translate(0,30)">{"".join(body)}</g>',
            f'<text x="8" y="20" class="title">{escape(dashboard["title"])}: {minutes:.1f} minutes of '
            "the e2e scenarios, from a real Prometheus</text>",
            "</svg>",
            "",
        ]
    )


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    answers_path, out_path = Path(sys.argv[1]), Path(sys.argv[2])
    out_path.write_text(render(json.loads(DASHBOARD.read_text()), json.loads(answers_path.read_text())))
