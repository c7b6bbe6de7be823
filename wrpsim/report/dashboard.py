"""The what-if dashboard: one self-contained, offline HTML page for a whole sweep.

The page inlines plotly.js (no network fetch), a style sheet, a script (`_template.py`) and one
JSON data block: per run its swept values, status, the summary metrics and the reduced per-request
views of `views.py`; the winner (`wrpsim.report.choice`: the rule of the sweep's closing line) with
its overrides, and the runs on the cost-vs-p99 TTFT and TPOT Pareto fronts of the completed runs
(failed and incomplete runs are left out of both and listed; a completed run that dropped or left
unfinished requests, `unanswered`, is drawn as a cross off the fronts; one that completed no
request, named in a legend entry). At the top, a box names the
winner. Controls are one `<select>` per swept dimension that takes more than one value; the
cost-vs-p99 views show every completed run (unselected ones faded), the other views redraw for the
runs matching the selection: TTFT/TPOT/E2E CDFs with the runs' SLO thresholds, SLO attainment vs
load (the swept dimension named like `rate_scale`, else per run), cost and energy per configuration
(totals over the trace), requests in system over time, the router's decision mix, and a table of
every run with failed and incomplete ones flagged. Plot titles, legends and log axes follow
`plotstyle`. HTML files found under the sweep directory (e.g. a capacity-planning
`plan/report.html`) are linked relatively.

Safety: every string that comes from a config, an override, a trace or an error message reaches
the page either through `html.escape` (static parts) or inside the JSON data block with `<`, `>`,
`&` and the JS line separators escaped as `\\uXXXX`; the script inserts them with `textContent`.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from urllib.parse import quote

from wrpsim.report import _template, plotstyle
from wrpsim.report.choice import (
    RULE,
    is_number,
    load_dimension,
    pareto,
    trace_sizes,
    unanswered,
    winner,
)
from wrpsim.report.collect import (
    REQUESTS,
    Run,
    presentation,
    split_override,
    swept_keys,
    varying_keys,
)
from wrpsim.report.views import run_view
from wrpsim.runview import uncalibrated_pools

DASHBOARD = "dashboard.html"
METRICS = ("requests_total", "ttft_p99_s", "tpot_p99_s", "e2e_p99_s", "slo_attainment",
           "goodput_rps", "throughput_tokens_per_s", "gpu_count", "cost_usd", "energy_kwh",
           "tokens_per_joule", "mean_utilization", "mean_token_budget_use", "mean_kv_use")
# (id, title, note) of every plot, by section of the page; titles the script sets are
# placeholders until it runs
FIGURES = {
    "pareto": (
        ("pareto-ttft", "Cost vs p99 TTFT, every completed run",
         "Line: Pareto front (no run at most as costly is faster). Star: the winner. Dashed "
         "red: slo.ttft_s. Colour scale: from the lowest SLO attainment (rounded down to 5 %, "
         "at most 95 %) to 100 %. Faded: runs outside the selection. Cross: a run that dropped "
         "or left unfinished some requests; its p99 is of the completed ones only, so it is "
         "left off the front (hover: how many). Failed and incomplete runs are left out "
         "(listed in the winner box and the table)."),
        ("pareto-tpot", "Cost vs p99 TPOT, every completed run",
         "Line: Pareto front. Star: the winner. Cross: dropped requests, off the front. Dashed "
         "red: slo.tpot_s.")),
    "cdfs": (
        ("cdf-ttft", "TTFT distribution (CDF) of completed requests",
         "Of completed requests: dropped ones are not in it (a legend entry says how many a "
         "run dropped). Dashed red: slo.ttft_s of the runs shown."),
        ("cdf-tpot", "TPOT distribution (CDF) of completed requests",
         "Of completed requests: dropped ones are not in it. Dashed red: slo.tpot_s of the "
         "runs shown."),
        ("cdf-e2e", "End-to-end latency distribution (CDF) of completed requests",
         "Of completed requests.")),
    "totals": (
        ("slo", "SLO attainment", "Share of all requests that completed within slo.ttft_s "
         "and slo.tpot_s (dropped and unfinished ones count as misses)."),
        ("cost", "Cost per configuration: total over the trace (USD)",
         "Provisioned GPU-hours over the simulated duration × catalog price."),
        ("energy", "Energy per configuration: total over the trace (kWh, facility)",
         "Every GPU's energy, busy and idle, × PUE.")),
    "over_time": (
        ("insys", "Requests in the system over time",
         "Arrived and not yet finished (dropped requests never enter)."),
        ("mix", "Router decision mix (share of requests)",
         "Requests per pool/instance the router chose; 'dropped' ended without an answer, "
         "'semantic cache' was answered by the router's cache, 'in flight' was between "
         "instances when the run ended.")),
}


def json_for_script(obj) -> str:
    """JSON safe to embed in a `<script>` element (no `</script>`, `<!--` or U+2028/9)."""
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False, sort_keys=True)
    for ch, rep in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, rep)
    return text


def report_links(sweep_dir: Path, out_dir: Path) -> list[tuple[str, str]]:
    """(relative href, shown text) of every HTML file under the sweep dir but our own page and
    an earlier one of this sweep (`out_dir` elsewhere: its stale twin at the sweep's root)."""
    skip = {(out_dir / DASHBOARD).resolve(), (sweep_dir / DASHBOARD).resolve()}
    found = []
    for p in sorted(sweep_dir.rglob("*.html")):
        if p.resolve() in skip or any(part.startswith(".") for part in p.parts[-3:]):
            continue
        rel = os.path.relpath(p.resolve(), out_dir.resolve())
        found.append((quote(Path(rel).as_posix()), p.relative_to(sweep_dir).as_posix()))
    return found


def _clean(summary: dict | None) -> dict:
    """The summary restricted to JSON-able scalars (the dashboard's metric values)."""
    return {k: v for k, v in (summary or {}).items()
            if v is None or isinstance(v, (str, int, float, bool))}


def payload(runs: list[Run], sweep_dir: Path, points: int = 500, bins: int = 200) -> dict:
    """Everything the page's script needs, as one JSON-ready dict."""
    dims = varying_keys(runs)
    fixed = [(k, runs[0].params.get(k)) for k in swept_keys(runs) if k not in dims]
    if len(runs) > 50:
        points = min(points, 200)
    items = []
    for r in runs:
        view = None
        if r.status == "completed":
            view = run_view(r.path / REQUESTS, (r.summary or {}).get("duration_s"), points, bins)
        err = r.error or {}
        items.append({
            "run": r.name, "status": r.status, "params": r.params, "summary": _clean(r.summary),
            "error": f"{err.get('exception_type')}: {err.get('message')}" if r.error else None,
            "reason": r.reason, "view": view, "uncalibrated": uncalibrated_pools(r.summary),
        })
    done = [r for r in runs if r.status == "completed"]
    lossy = {r.name: n for r in done if (n := unanswered(r.summary))}
    fronts = {k: pareto([(r.summary["cost_usd"], r.summary[f"{k}_p99_s"], i)
                         for i, r in enumerate(done) if r.name not in lossy
                         and _num(r.summary.get("cost_usd")) and _num(r.summary.get(f"{k}_p99_s"))])
              for k in ("ttft", "tpot")}
    return {
        "winner": _winner(runs, dims),
        "pareto": {k: [done[i].name for i in front] for k, front in fronts.items()},
        "unanswered": lossy,
        "title": str(sweep_dir), "dims": [
            {"key": k, "values": sorted({r.params[k] for r in runs if k in r.params},
                                        key=lambda v: (not is_number(v), _num_or_text(v)))}
            for k in dims],
        "fixed": fixed, "load": load_dimension(runs, dims), "metrics": list(METRICS),
        "sizes": trace_sizes([r.summary for r in done]),
        "runs": items,
    }


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _winner(runs: list[Run], dims: list[str]) -> dict | None:
    """The winning completed run (`wrpsim.report.choice`), its overrides and key figures."""
    name = winner([(r.name, r.summary) for r in runs if r.status == "completed"])
    if name is None:
        return None
    best = next(r for r in runs if r.name == name)
    keys = ("slo_attainment", "cost_usd", "ttft_p99_s", "tpot_p99_s", "gpu_count", "energy_kwh")
    varying = [o for o in best.overrides if split_override(o)[0] in dims]
    return {"run": name, "rule": RULE,
            "overrides": varying or [o for o in best.overrides if not presentation(o)],
            "summary": {k: _clean(best.summary).get(k) for k in keys},
            "uncalibrated": uncalibrated_pools(best.summary),
            "among": sum(r.status == "completed" for r in runs),
            "excluded": [f"{r.name} ({r.status}: {r.reason})" if r.reason else
                         f"{r.name} ({r.status})" for r in runs if r.status != "completed"]}


def _num_or_text(v: str):
    return (float(v), "") if is_number(v) else (0.0, v)


def render(data: dict, links: list[tuple[str, str]], plotly_js: str | None = None) -> str:
    """The complete HTML page for a payload (plotly.js inlined)."""
    if plotly_js is None:
        from plotly.offline import get_plotlyjs

        plotly_js = get_plotlyjs()
    counts = {s: sum(r["status"] == s for r in data["runs"])
              for s in ("completed", "failed", "incomplete")}
    subtitle = (f"{len(data['runs'])} runs: {counts['completed']} completed, {counts['failed']} "
                f"failed, {counts['incomplete']} incomplete · made by wrpsim.report")
    if links:
        items = "".join(f'<li><a href="{html.escape(href, quote=True)}">{html.escape(text)}</a>'
                        "</li>" for href, text in links)
        links_html = f"<ul>{items}</ul>"
    else:
        links_html = '<div class="note">no report HTML found under the sweep directory</div>'
    figs = {k: "".join(plotstyle.figure(*f) for f in v) for k, v in FIGURES.items()}
    body = _template.BODY.format(title=html.escape(f"wrpsim sweep: {data['title']}"),
                                 subtitle=html.escape(subtitle), links=links_html, **figs)
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape('wrpsim · ' + data['title'])}</title>",
        f"<style>{_template.CSS}{plotstyle.CSS}</style>", f"<script>{plotly_js}</script>",
        "</head><body>", body,
        f'<script type="application/json" id="wrpsim-data">{json_for_script(data)}</script>',
        f"<script>{plotstyle.JS}{_template.JS}</script>", "</body></html>", ""])


def write_dashboard(runs: list[Run], sweep_dir: Path, out_dir: Path, points: int = 500,
                    bins: int = 200) -> Path:
    """Build the page for a sweep and write it atomically to `out_dir/dashboard.html`."""
    from wrpsim.io import write_text

    html_text = render(payload(runs, sweep_dir, points, bins), report_links(sweep_dir, out_dir))
    path = out_dir / DASHBOARD
    write_text(path, html_text)
    return path
