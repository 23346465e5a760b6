"""Render the dashboard's key panels to a PNG from a Prometheus server, for a look at a run without Grafana.

    python -m benchmarks.render_panels --prometheus http://127.0.0.1:9090 --minutes 15 --out panels.png

The queries are read from the committed dashboard JSON (deploy/grafana/dashboards/tandem.json), so
the picture shows exactly what Grafana would; Grafana's placeholders are filled in by `promql()`.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import time
import urllib.parse
import urllib.request
from pathlib import Path

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "dashboards" / "tandem.json"
KEY_PANELS = (
    "Transitions/s per actor (received by the learner)", "Updates/s", "Update seconds p50/p99", "Replay size",
    "Losses", "Q statistics", "Entropy and temperature", "Gate-open fraction (SigEnt-SAC) and OOD action ratio",
    "Control period p50/p99", "Episode success rate per robot (last 20 episodes)", "Policy-version staleness",
    "Send queue, unacked and spool depth",
)  # fmt: skip


def dashboard_panels(path: Path = DASHBOARD) -> list[dict]:
    """Every non-row panel of the dashboard (rows flattened), in order."""
    panels = []
    for panel in json.loads(path.read_text())["panels"]:
        panels += [p for p in [panel, *panel.get("panels", [])] if p["type"] != "row"]
    return panels


def promql(expr: str, rate_interval: str = "30s") -> str:
    """Grafana's placeholders replaced as Grafana would with every actor and robot selected."""
    return expr.replace("$__rate_interval", rate_interval).replace("$actor_id", ".*").replace("$robot", ".*")


def query(base_url: str, path: str, params: dict[str, object], timeout_s: float = 10.0) -> list[dict]:
    """GET a Prometheus HTTP API endpoint; returns `data.result` (or `data` for /series), raises on an error."""
    url = f"{base_url.rstrip('/')}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        body = json.loads(response.read())
    if body.get("status") != "success":
        raise RuntimeError(f"{url}: {body.get('error', body)}")
    data = body["data"]
    return data["result"] if isinstance(data, dict) else data


def legend(template: str, labels: dict[str, str]) -> str:
    """Grafana's `{{label}}` legend format (all labels when the template is empty)."""
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda match: labels.get(match.group(1), ""), template) or json.dumps(labels)


def render(base_url: str, out: Path, minutes: float, titles: tuple[str, ...] = KEY_PANELS, step_s: float = 0.0) -> Path:
    """Query each panel over the last `minutes` and draw them in a grid; returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_title = {panel["title"]: panel for panel in dashboard_panels()}
    chosen = [by_title[title] for title in titles if title in by_title]
    end = time.time()
    start = end - minutes * 60
    step = step_s or max(1.0, minutes * 60 / 300)
    columns = 3
    rows = math.ceil(len(chosen) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(6 * columns, 3.2 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, chosen):
        _draw(ax, base_url, panel, start, end, step)
    for ax in list(axes.flat)[len(chosen):]:
        ax.axis("off")
    fig.suptitle(f"Tandem, last {minutes:g} min, from {base_url}")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / fig.get_figheight()))  # leave room for the title
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def _draw(ax, base_url: str, panel: dict, start: float, end: float, step: float) -> None:
    for target in panel["targets"]:
        expr = promql(target["expr"], rate_interval=f"{max(4 * step, 20):.0f}s")
        for series in query(base_url, "/api/v1/query_range", {"query": expr, "start": start, "end": end, "step": step}):
            xs = [(float(t) - end) / 60 for t, _ in series["values"]]
            ys = [float(v) for _, v in series["values"]]
            ax.plot(xs, ys, label=legend(target.get("legendFormat", ""), series["metric"]), linewidth=1)
    ax.set_title(panel["title"], fontsize=10)
    ax.set_xlabel("minutes before now", fontsize=8)
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
    if unit not in ("", "none"):
        ax.set_ylabel(unit, fontsize=8)
    ax.grid(alpha=0.3)
    series = len(ax.get_legend_handles_labels()[0])
    if 0 < series <= 8:  # a longer legend would hide the plot (e.g. one line per rejection reason)
        ax.legend(fontsize=7, loc="best")
    elif not series:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="grey")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Render Tandem's key dashboard panels to a PNG.")
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090", help="Prometheus base URL")
    parser.add_argument("--minutes", type=float, default=15.0, help="time range ending now")
    parser.add_argument("--out", type=Path, default=Path("panels.png"), help="PNG to write")
    parser.add_argument("--all", action="store_true", help="every panel of the dashboard, not only the key ones")
    args = parser.parse_args(argv)
    titles = tuple(panel["title"] for panel in dashboard_panels()) if args.all else KEY_PANELS
    print(render(args.prometheus, args.out, args.minutes, titles))


if __name__ == "__main__":
    main()
