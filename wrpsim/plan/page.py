"""`report.html`: one self-contained, offline page for a plan (plotly.js inlined, no fetch).

Static parts (headline, fleet table, margins) are rendered here with `html.escape`; the plots are
drawn by the inline script from one JSON data block (`#plan-data`, embedded with the sweep
dashboard's `json_for_script`, so no config string can close the script). Plotly labels go
through `esc()`. Plots, each a `<div class="plot" id="plot-…">`: `PLOTS`. When every plot is
drawn, the script sets `document.body.dataset.plots` to their number (tests wait on it).
"""

from __future__ import annotations

import datetime as dt
import html

from wrpsim.report import plotstyle

PLOTS = ("pareto-ttft", "pareto-tpot", "sensitivity", "util", "cdf-ttft", "cdf-tpot", "cdf-e2e",
         "search")
TITLES = {
    "pareto-ttft": "Cost vs p99 TTFT: every candidate fleet (search trace)",
    "pareto-tpot": "Cost vs p99 TPOT: every candidate fleet (search trace)",
    "sensitivity": "Sensitivity to load: the recommended fleet at other loads",
    "util": "Per-pool utilisation of the recommended fleet (full trace)",
    "cdf-ttft": "TTFT distribution, recommended fleet",
    "cdf-tpot": "TPOT distribution, recommended fleet",
    "cdf-e2e": "End-to-end latency distribution, recommended fleet",
    "search": "Search: every simulated fleet, in order",
}
WHY = (("single", "Single-type alternatives",
        "The smallest fleet of each candidate GPU alone that meets the SLO on the search trace, "
        "and what it costs next to the recommendation."),
       ("fewer", "One instance fewer",
        "Each pool of the recommendation with one instance removed, judged on the full trace "
        "and the fresh-seed recheck: why the plan cannot be smaller."),
       ("load", "What other loads need",
        "The recommended fleet with the trace's arrival rate scaled (a closed loop: its "
        "clients), and what that load needs: the recommended fleet grown (instances added "
        "until it meets the SLO) or shrunk (removed while it still does) — an adjustment of "
        "this fleet, not a new search, so another mix of GPUs may be cheaper."),
       ("util", "Per-pool utilisation (full trace)", ""))

CSS = """
body{font-family:system-ui,sans-serif;margin:1.2em;color:#222;background:#fafafa;max-width:1400px}
h1{font-size:1.35em;margin:0 0 .3em} h2{font-size:1.05em;margin:1.2em 0 .3em}
h3{font-size:.95em;margin:.9em 0 .2em}
.verdict{padding:.6em;border:1px solid #ddd;background:#fff} .ok{border-left:6px solid #2a2}
.bad{border-left:6px solid #c22} .note{color:#666;font-size:.85em}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:.8em}
table{border-collapse:collapse;font-size:.85em;background:#fff;margin:.3em 0}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right} th{background:#eee}
td.txt{text-align:left} p.lead{margin:.2em 0;font-size:.88em;color:#444;max-width:70em}
"""

JS = r"""
(function () {
'use strict';
const D = JSON.parse(document.getElementById('plan-data').textContent);
let drawn = 0;
function draw(id, traces, lay) {
  Plotly.newPlot('plot-' + id, traces, lay, CONFIG);
  drawn += 1;
}
const names = (traces) => traces.filter((t) => t.showlegend !== false).map((t) => t.name);
function pareto(id, key, target, label) {
  const pts = D.candidates.filter((c) => c[key] !== null);
  const byIdx = new Map(pts.map((c) => [c.index, c]));
  const front = (D.pareto[key] || []).map((i) => byIdx.get(i)).filter((c) => c);
  const group = (met) => pts.filter((c) => c.met === met);
  const scatter = (cs, name, color, symbol, size) => ({type: 'scatter', mode: 'markers',
    name: name, x: cs.map((c) => c.cost), y: cs.map((c) => c[key]),
    text: cs.map((c) => esc(c.fleet)), marker: {color: color, symbol: symbol, size: size},
    hovertemplate: '%{text}<br>$%{x:.2f}/h<br>%{y:.4g} s<extra></extra>'});
  const traces = [scatter(group(true), 'meets SLO', '#2a2', 'circle', 8),
    scatter(group(false), 'misses SLO', '#c22', 'x', 8),
    {type: 'scatter', mode: 'lines', name: 'Pareto front', x: front.map((c) => c.cost),
     y: front.map((c) => c[key]), line: {shape: 'hv', color: '#555'}},
    scatter(pts.filter((c) => c.chosen), 'recommended', '#f90', 'star', 16)];
  if (target) traces.push({type: 'scatter', mode: 'lines', name: 'target',
    x: [null], y: [null], line: {dash: 'dash', color: '#c22'}});
  draw(id, traces, layout('cost (USD per hour)', label + ' (log scale)',
    {yaxis: logAxisOf(pts.map((c) => c[key]), target ? [target] : [], 's'),
     shapes: target ? hline(target) : []}, names(traces)));
}
function sensitivity() {
  const s = D.sensitivity;
  const x = s.map((r) => r.load);
  const t = D.targets;
  const rel = (r, k) => (r[k] === null || !t[k + '_s']) ? null : r[k] / t[k + '_s'];
  const traces = [];
  if (t.ttft_p99_s) traces.push({type: 'scatter', mode: 'lines+markers', name: 'p99 TTFT ÷ target',
    x: x, y: s.map((r) => rel(r, 'ttft_p99'))});
  if (t.tpot_p99_s) traces.push({type: 'scatter', mode: 'lines+markers', name: 'p99 TPOT ÷ target',
    x: x, y: s.map((r) => rel(r, 'tpot_p99'))});
  traces.push({type: 'scatter', mode: 'lines+markers', name: 'SLO attainment', x: x,
    y: s.map((r) => r.attainment)});
  traces.push({type: 'bar', name: 'USD/h needed at this load (right axis)', x: x, yaxis: 'y2',
    opacity: 0.3, marker: {color: '#888'}, y: s.map((r) => r.needed_cost),
    text: s.map((r) => esc(r.needed || 'none found')), textposition: 'none',
    hovertemplate: '%{text}<br>$%{y:.2f}/h<extra></extra>'});
  draw('sensitivity', traces, layout('load factor (× the trace\'s arrival rate or clients)',
    'ratio to target; attainment', {shapes: hline(1),
      xaxis: {tickvals: x, ticktext: x.map((v) => v + '×')},
      yaxis2: {overlaying: 'y', side: 'right', title: {text: 'USD per hour'},
        rangemode: 'tozero', automargin: true, showgrid: false, tickmode: 'auto'}}, names(traces)));
}
function util() {
  const u = D.utilisation;
  const x = u.map((r) => esc(r.pool + ' (' + r.instances + ' × ' + r.gpu + ')'));
  const traces = [
    {type: 'bar', name: 'busy fraction', x: x, y: u.map((r) => r.busy), marker: {color: '#bbb'}},
    {type: 'bar', name: 'token-budget use', x: x, y: u.map((r) => r.budget),
     marker: {color: '#1f77b4'}},
    {type: 'bar', name: 'KV use', x: x, y: u.map((r) => r.kv), marker: {color: '#ff7f0e'}},
    {type: 'scatter', mode: 'markers', name: 'requests in system per instance (right axis)', x: x,
     yaxis: 'y2', y: u.map((r) => r.in_system), marker: {size: 12, symbol: 'diamond',
       color: '#2a2'}}];
  draw('util', traces, layout('pool (instances × GPU)', 'share (0–1), mean per instance',
    {barmode: 'group', yaxis: {range: [0, 1.05]},
     yaxis2: {overlaying: 'y', side: 'right',
       title: {text: 'mean requests in system, per instance'},
       rangemode: 'tozero', automargin: true, showgrid: false, tickmode: 'auto'}}, names(traces)));
}
function target(key) {  // the plan's percentile target on this latency: [label, seconds]
  for (const p of ['p99', 'p90', 'p50']) {
    const v = D.targets[key + '_' + p + '_s'];
    if (v) return [p + ' target', v];
  }
  return null;
}
function cdf(id, key, label, threshold) {
  const traces = Object.keys(D.cdf).filter((name) => D.cdf[name][key]).map((name) => ({
    type: 'scatter', mode: 'lines', name: esc(name), x: D.cdf[name][key][0],
    y: D.cdf[name][key][1]}));
  const tg = target(key);
  const marks = [];
  let shapes = [];
  if (threshold) {
    traces.push({type: 'scatter', mode: 'lines', name: 'attainment threshold',
      x: [null], y: [null], line: {dash: 'dash', color: '#c22'}});
    marks.push(threshold);
    shapes = shapes.concat(vline(threshold));
  }
  if (tg) {
    traces.push({type: 'scatter', mode: 'lines', name: tg[0], x: [null], y: [null],
      line: {dash: 'dot', color: '#f90'}});
    marks.push(tg[1]);
    shapes = shapes.concat([{type: 'line', yref: 'paper', y0: 0, y1: 1, x0: tg[1], x1: tg[1],
      line: {dash: 'dot', color: '#f90', width: 2}}]);
  }
  draw(id, traces, layout(label + ' (log scale)', 'fraction of requests',
    {xaxis: logAxisOf(traces.flatMap((t) => t.x), marks, 's'),
     yaxis: {range: [0, 1.02]}, shapes: shapes}, names(traces)));
}
function search() {
  const c = D.candidates;
  const col = (m) => m ? '#2a2' : '#c22';
  draw('search', [{type: 'scatter', mode: 'markers+lines', name: 'evaluations',
    x: c.map((r) => r.index), y: c.map((r) => r.cost), text: c.map((r) =>
      esc(r.fleet + ' · ' + r.phase + (r.met ? ' · meets SLO' : ' · misses SLO'))),
    line: {color: '#bbb'}, marker: {color: c.map((r) => col(r.met)), size: 8},
    hovertemplate: '%{text}<br>$%{y:.2f}/h<extra></extra>'}],
    layout('simulation number', 'cost (USD per hour)', {}, []));
}
pareto('pareto-ttft', 'ttft_p99', D.targets.ttft_p99_s, 'p99 TTFT');
pareto('pareto-tpot', 'tpot_p99', D.targets.tpot_p99_s, 'p99 TPOT');
sensitivity();
util();
cdf('cdf-ttft', 'ttft', 'TTFT', D.record.slo_thresholds.ttft_s);
cdf('cdf-tpot', 'tpot', 'TPOT', D.record.slo_thresholds.tpot_s);
cdf('cdf-e2e', 'e2e', 'end-to-end latency', null);
search();
document.body.dataset.plots = String(drawn);
})();
"""


def _notes(r: dict) -> dict[str, str]:
    """The line under each plot: what its marks mean, with the run's thresholds."""
    from wrpsim.plan.report import UTIL_NOTE, star_text

    th, tg = r["slo_thresholds"], r["slo_targets"]

    def sec(v) -> str:
        return "not set" if v is None else f"{v:g} s"

    return {
        "pareto-ttft": f"Dashed red: the p99 TTFT target ({sec(tg.get('ttft_p99_s'))}). Line: "
                       f"Pareto front (no cheaper fleet is faster). Star: the recommendation, "
                       f"{star_text(r)}.",
        "pareto-tpot": f"Dashed red: the p99 TPOT target ({sec(tg.get('tpot_p99_s'))}). Line: "
                       "Pareto front. Star: the recommendation.",
        "sensitivity": "Lines below the dashed 1.0 meet their target. Bars: what the "
                       "recommended fleet grown or shrunk for that load costs per hour (table "
                       "above).",
        "util": UTIL_NOTE,
        "cdf-ttft": f"Dashed red: slo.ttft_s = {sec(th.get('ttft_s'))}, the per-request "
                    f"threshold behind SLO attainment.{_target_note(tg, 'ttft')} Full trace "
                    "and fresh-seed recheck.",
        "cdf-tpot": f"Dashed red: slo.tpot_s = {sec(th.get('tpot_s'))}, the per-request "
                    f"threshold behind SLO attainment.{_target_note(tg, 'tpot')}",
        "cdf-e2e": "Completed requests; full trace and fresh-seed recheck.",
        "search": "Green: the fleet meets the SLO; red: it misses. Hover for the fleet and "
                  "the search phase.",
    }


def _target_note(targets: dict, kind: str) -> str:
    """' Dotted orange: the plan's p99 TTFT target (1 s).' for the CDF plot's note, or ''
    (the first of p99, p90, p50 set — what the script marks)."""
    for p in ("p99", "p90", "p50"):
        v = targets.get(f"{kind}_{p}_s")
        if v:
            return f" Dotted orange: the plan's {p} {kind.upper()} target ({v:g} s)."
    return ""


def _is_figure(c) -> bool:
    """A cell that reads as a number (right-aligned): '12', '0.5', '+3.1%', '$4', '–'."""
    t = str(c).strip().lstrip("+−-$").rstrip("%× ").replace(",", "").replace(".", "", 1)
    return not isinstance(c, str) or t.isdigit() or t in ("", "–")


def _rows(head: list[str], rows: list[list]) -> str:
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    body = "".join("<tr>" + "".join(
        f'<td class="{"" if _is_figure(c) else "txt"}">{html.escape(str(c))}</td>'
        for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def render(data: dict, plotly_js: str | None = None) -> str:
    """The complete page for `report_data(...)` (plotly.js inlined)."""
    from wrpsim.plan.report import EMPTY, fleet_table, fmt_margin, recheck_sentence, why_tables
    from wrpsim.report.dashboard import json_for_script

    if plotly_js is None:
        from plotly.offline import get_plotlyjs

        plotly_js = get_plotlyjs()
    r = data["record"]
    rc = r["recheck"]
    fleet = _rows(*fleet_table(r))
    fig = [["USD per hour (fleet, provisioned)", f"{r['cost_per_hour_usd']:.2f}"],
           ["USD per million output tokens", _num(r["cost_per_million_output_tokens_usd"])],
           ["USD per million tokens (prompt + output)", _num(r["cost_per_million_tokens_usd"])],
           ["USD per 1,000 requests (the fleet over the trace)",
            _num(r["provisioned_cost_per_1k_requests_usd"])],
           ["energy, total over the trace (kWh, facility)", _num(r["energy_kwh"])],
           ["energy per hour (kWh, facility)", _num(r["energy_kwh_per_hour"])],
           ["GPUs / instances", f"{r['gpu_count']} / {r['instance_count']}"]]
    margins = _rows(["target", "bound", "margin (full trace)", "margin (recheck)"],
                    [[k, _num(v), fmt_margin(k, r["slo_margins"].get(k)),
                      fmt_margin(k, rc["margins"].get(k))] for k, v in r["slo_targets"].items()])
    recheck = recheck_sentence(r)
    notes = _notes(r)
    plots = "".join(plotstyle.figure(p, TITLES[p], notes[p]) for p in PLOTS)
    tables = why_tables(data)
    why = "".join(
        f"<h3>{html.escape(title)}</h3>"
        + (f'<p class="lead">{html.escape(lead)}</p>' if lead else "")
        + f'<div id="why-{key}">'
        + (_rows(*tables[key]) if tables[key][1] else
           f'<p class="note">{html.escape(EMPTY.get(key, "none."))}</p>') + "</div>"
        for key, title, lead in WHY)
    stamp = dt.datetime.now().isoformat(timespec="seconds")
    title = f"Capacity plan: {r['workload'] or 'workload'} on {r['model']}"
    body = (
        f"<h1>{html.escape(title)}</h1><div class=\"verdict {'ok' if r['slo_met'] else 'bad'}\"><b>"
        f"{'SLO met' if r['slo_met'] else 'SLO NOT met'}</b> — {html.escape(r['message'])}</div>"
        f'<p>This page with its tables as Markdown, to paste into a ticket: '
        f'<a href="report.md">report.md</a> · the record: <a href="plan.json">plan.json</a>'
        f' · every simulated fleet: candidates.parquet</p>'
        f"<h2>{'Recommended fleet' if r['slo_met'] else 'Closest fleet found (misses the SLO)'}"
        f"</h2>{fleet}{_rows(['figure', 'value'], fig)}"
        f"<h2>SLO margins</h2>{margins}<p>{html.escape(recheck)}</p>"
        f"<h2>Why this fleet</h2>{why}"
        f"<h2>Plots</h2><div class=\"grid\">{plots}</div>"
        f"<p class=\"note\">{html.escape(r['search']['trace'])} · "
        f"{r['search']['evaluations'] + r['search'].get('reruns', 0)} simulations · generated "
        f"{stamp} by wrpsim.plan</p>")
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape('wrpsim plan · ' + r['fleet_label'])}</title>",
        f"<style>{CSS}{plotstyle.CSS}</style>", f"<script>{plotly_js}</script>",
        "</head><body>", body,
        f'<script type="application/json" id="plan-data">{json_for_script(data)}</script>',
        f"<script>{plotstyle.JS}{JS}</script>", "</body></html>", ""])


def _num(v) -> str:
    return "–" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)
