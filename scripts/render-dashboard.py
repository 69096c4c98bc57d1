#!/usr/bin/env python3
"""Render the fleet.bgp Grafana dashboard to a PNG without Grafana, from a real Prometheus.

Grafana is not in Debian's archive and not on PyPI, so it cannot run on the project's machines. This
script reads the SAME dashboard JSON the role provisions (roles/monitoring/files/grafana/
fleetbgp-dashboard.json), runs every panel's PromQL `expr` against Prometheus's HTTP API
(/api/v1/query_range, Grafana's variables replaced: $datacenter/$instance by `.*`,
$__rate_interval by --rate-interval), and draws each panel where its gridPos puts it (24 columns)
with matplotlib: `stat` panels as their last value, `timeseries` panels as lines with their
legendFormat. It is a faithful picture of the data the dashboard shows, not of Grafana's styling.

    .venv/bin/python scripts/render-dashboard.py --prometheus http://10.89.61.6:9090 \
        --minutes 15 --out docs/images/monitoring-dashboard.png

Exit 1 with the failing panel and query when Prometheus answers an error.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "roles" / "monitoring" / "files" / "grafana" / "fleetbgp-dashboard.json"
ROW_PX = 30  # Grafana: one grid row is 30 px high, 24 columns wide


def expand(expr: str, rate_interval: str) -> str:
    expr = expr.replace("$__rate_interval", rate_interval)
    return re.sub(r"\$\{?(datacenter|instance)\}?", ".*", expr)


def legend(fmt: str, labels: dict[str, str]) -> str:
    if not fmt:
        return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt)


def query_range(base: str, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
    params = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    try:
        with urllib.request.urlopen(f"{base}/api/v1/query_range?{params}", timeout=30) as response:
            body = json.loads(response.read().decode())
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read().decode() or "{}")
    if body.get("status") != "success":
        raise RuntimeError(body.get("error") or body)
    return body["data"]["result"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prometheus", required=True, help="base URL, e.g. http://10.89.61.6:9090")
    ap.add_argument("--dashboard", type=Path, default=DASHBOARD)
    ap.add_argument("--minutes", type=float, default=15, help="time range: the last N minutes")
    ap.add_argument("--rate-interval", default="1m", help="what $__rate_interval becomes (default 1m)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    dash = json.loads(args.dashboard.read_text())
    panels = dash["panels"]
    end = time.time()
    start = end - args.minutes * 60
    step = max(1.0, (end - start) / 300)
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    width_in, row_in = 20.0, 0.42
    fig = plt.figure(figsize=(width_in, rows * row_in + 0.8), dpi=90, facecolor="#111217")
    fig.suptitle(f"{dash['title']}  —  rendered from Prometheus {args.prometheus}, "
                 f"{datetime.fromtimestamp(start):%H:%M}–{datetime.fromtimestamp(end):%H:%M}",
                 color="#d8d9da", fontsize=12, x=0.01, ha="left")
    top = 1 - 0.6 / (rows * row_in + 0.8)
    for p in panels:
        g = p["gridPos"]
        pad_x, pad_y = 0.004, 0.02
        left = g["x"] / 24 + pad_x
        width = g["w"] / 24 - 2 * pad_x
        height = g["h"] / rows * top - 2 * pad_y
        bottom = top - (g["y"] + g["h"]) / rows * top + pad_y
        if p["type"] != "stat":  # room for the y tick labels inside the panel's cell
            left, width = left + 0.022, width - 0.022
        ax = fig.add_axes((left, bottom, width, height), facecolor="#181b1f")
        for side in ax.spines.values():
            side.set_color("#2c3235")
        ax.tick_params(colors="#9fa7b3", labelsize=7)
        ax.set_title(p["title"], color="#d8d9da", fontsize=9, loc="left")
        series = []
        for t in p["targets"]:
            expr = expand(t["expr"], args.rate_interval)
            try:
                result = query_range(args.prometheus, expr, start, end, step)
            except (RuntimeError, OSError) as exc:
                print(f"render-dashboard: panel {p['title']!r}: {expr}: {exc}", file=sys.stderr)
                return 1
            for r in result:
                xs = [datetime.fromtimestamp(float(v[0])) for v in r["values"]]
                ys = [float(v[1]) for v in r["values"]]
                series.append((legend(t.get("legendFormat", ""), r["metric"]), xs, ys))
        if p["type"] == "stat":
            ax.set_xticks([])
            ax.set_yticks([])
            text = "  ".join(f"{s[2][-1]:g}" + (f" {s[0]}" if len(series) > 1 else "") for s in series) \
                if series else "no data"
            ax.text(0.5, 0.42, text, color="#73bf69" if series else "#9fa7b3",
                    fontsize=15 if len(series) < 2 else 12, ha="center", va="center",
                    transform=ax.transAxes, weight="bold")
            continue
        if not series:
            ax.text(0.5, 0.5, "no data", color="#9fa7b3", ha="center", va="center", transform=ax.transAxes)
        for name, xs, ys in sorted(series, key=lambda s: s[0]):
            ax.plot(xs, ys, linewidth=1.3, label=name)
        ax.set_xlim(datetime.fromtimestamp(start), datetime.fromtimestamp(end))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
        ax.grid(color="#2c3235", linewidth=0.5)
        if series:
            ax.legend(fontsize=6, loc="upper left", ncol=2 if len(series) > 4 else 1, framealpha=0.5,
                      facecolor="#181b1f", labelcolor="#d8d9da", edgecolor="#2c3235")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, facecolor=fig.get_facecolor())
    print(f"render-dashboard: {len(panels)} panels -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
