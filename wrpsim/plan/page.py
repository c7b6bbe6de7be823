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

PLOTS = ("pareto-ttft", "pareto-tpot", "sensitivity", "util", "cdf-ttft", "cdf-tpot", "cdf-e2e",
         "search")

CSS = """
body{font-family:system-ui,sans-serif;margin:1.2em;color:#222;background:#fafafa;max-width:1400px}
h1{font-size:1.35em;margin:0 0 .3em} h2{font-size:1.05em;margin:1.2em 0 .3em}
.verdict{padding:.6em;border:1px solid #ddd;background:#fff} .ok{border-left:6px solid #2a2}
.bad{border-left:6px solid #c22} .note{color:#666;font-size:.85em}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:.8em}
.plot{background:#fff;border:1px solid #ddd;min-height:340px}
table{border-collapse:collapse;font-size:.85em;background:#fff;margin:.3em 0}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right} th{background:#eee}
td.txt{text-align:left}
"""

JS = r"""
(function () {
'use strict';
const D = JSON.parse(document.getElementById('plan-data').textContent);
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const CONFIG = {displaylogo: false, responsive: true};
let drawn = 0;
function layout(title, xt, yt, extra) {
  return Object.assign({title: {text: esc(title), x: 0.01, xanchor: 'left'},
    margin: {l: 60, r: 10, t: 40, b: 50}, legend: {font: {size: 10}},
    xaxis: {title: {text: esc(xt)}, automargin: true},
    yaxis: {title: {text: esc(yt)}, automargin: true}}, extra || {});
}
function draw(id, traces, lay) {
  Plotly.newPlot('plot-' + id, traces, lay, CONFIG);
  drawn += 1;
}
function hline(y, name) {
  return y === undefined || y === null ? [] : [{type: 'line', xref: 'paper', x0: 0, x1: 1,
    y0: y, y1: y, line: {dash: 'dash', color: '#c22', width: 1}, name: name}];
}
function pareto(id, key, target, label) {
  const pts = D.candidates.filter((c) => c[key] !== null);
  const byIdx = new Map(pts.map((c) => [c.index, c]));
  const front = (D.pareto[key] || []).map((i) => byIdx.get(i)).filter((c) => c);
  const group = (met) => pts.filter((c) => c.met === met);
  const scatter = (cs, name, color, symbol, size) => ({type: 'scatter', mode: 'markers',
    name: name, x: cs.map((c) => c.cost), y: cs.map((c) => c[key]),
    text: cs.map((c) => esc(c.fleet)), marker: {color: color, symbol: symbol, size: size},
    hovertemplate: '%{text}<br>$%{x:.2f}/h<br>%{y:.4g} s<extra></extra>'});
  draw(id, [scatter(group(true), 'meets SLO', '#2a2', 'circle', 8),
    scatter(group(false), 'misses SLO', '#c22', 'x', 8),
    {type: 'scatter', mode: 'lines', name: 'Pareto front', x: front.map((c) => c.cost),
     y: front.map((c) => c[key]), line: {shape: 'hv', color: '#555'}},
    scatter(pts.filter((c) => c.chosen), 'recommended', '#f90', 'star', 16)],
    layout('Cost vs ' + label + ' (every candidate, search trace)', 'USD per hour', label + ' (s)',
      {yaxis: {type: 'log', title: {text: esc(label + ' (s, log)')}},
       shapes: hline(target, 'target')}));
}
function sensitivity() {
  const s = D.sensitivity;
  const x = s.map((r) => r.load);
  const t = D.targets;
  const rel = (r, k) => (r[k] === null || !t[k + '_s']) ? null : r[k] / t[k + '_s'];
  const traces = [];
  if (t.ttft_p99_s) traces.push({type: 'scatter', mode: 'lines+markers', name: 'p99 TTFT / target',
    x: x, y: s.map((r) => rel(r, 'ttft_p99'))});
  if (t.tpot_p99_s) traces.push({type: 'scatter', mode: 'lines+markers', name: 'p99 TPOT / target',
    x: x, y: s.map((r) => rel(r, 'tpot_p99'))});
  traces.push({type: 'scatter', mode: 'lines+markers', name: 'SLO attainment', x: x,
    y: s.map((r) => r.attainment)});
  traces.push({type: 'bar', name: 'USD/h needed at this load', x: x, yaxis: 'y2', opacity: 0.35,
    y: s.map((r) => r.needed_cost), text: s.map((r) => esc(r.needed || '')), textposition: 'none',
    hovertemplate: '%{text}<br>$%{y:.2f}/h<extra></extra>'});
  draw('sensitivity', traces, layout('Sensitivity to load (recommended fleet)', 'load factor',
    'ratio to target / attainment', {shapes: hline(1, 'target'),
      yaxis2: {overlaying: 'y', side: 'right', title: {text: 'USD/h'}, rangemode: 'tozero'}}));
}
function util() {
  const u = D.utilisation;
  const x = u.map((r) => esc(r.pool + ' (' + r.instances + ' × ' + r.gpu + ')'));
  draw('util', [
    {type: 'bar', name: 'busy fraction', x: x, y: u.map((r) => r.busy)},
    {type: 'bar', name: 'mean KV use', x: x, y: u.map((r) => r.kv)},
    {type: 'scatter', mode: 'markers', name: 'mean requests in system (right axis)', x: x,
     yaxis: 'y2', y: u.map((r) => r.in_system), marker: {size: 12, symbol: 'diamond'}}],
    layout('Per-pool utilisation (full trace)', 'pool', 'fraction',
      {barmode: 'group', yaxis: {range: [0, 1.05], title: {text: 'fraction'}},
       yaxis2: {overlaying: 'y', side: 'right', title: {text: 'requests'}, rangemode: 'tozero'}}));
}
function cdf(id, key, label, target) {
  const traces = Object.keys(D.cdf).filter((name) => D.cdf[name][key]).map((name) => ({
    type: 'scatter', mode: 'lines', name: esc(name), x: D.cdf[name][key][0],
    y: D.cdf[name][key][1]}));
  const shapes = target ? [{type: 'line', yref: 'paper', y0: 0, y1: 1, x0: target, x1: target,
    line: {dash: 'dash', color: '#c22', width: 1}}] : [];
  draw(id, traces, layout(label + ' CDF (recommended fleet)', label + ' (s)',
    'fraction of requests', {xaxis: {type: 'log', title: {text: esc(label + ' (s, log)')}},
      yaxis: {range: [0, 1.02]}, shapes: shapes}));
}
function search() {
  const c = D.candidates;
  const col = (m) => m ? '#2a2' : '#c22';
  draw('search', [{type: 'scatter', mode: 'markers+lines', name: 'evaluations',
    x: c.map((r) => r.index), y: c.map((r) => r.cost), text: c.map((r) =>
      esc(r.fleet + ' · ' + r.phase + (r.met ? ' · meets SLO' : ' · misses SLO'))),
    line: {color: '#bbb'}, marker: {color: c.map((r) => col(r.met)), size: 8},
    hovertemplate: '%{text}<br>$%{y:.2f}/h<extra></extra>'}],
    layout('Search: every simulated fleet in order (green: meets SLO)', 'simulation #',
      'USD per hour', {showlegend: false}));
}
pareto('pareto-ttft', 'ttft_p99', D.targets.ttft_p99_s, 'p99 TTFT');
pareto('pareto-tpot', 'tpot_p99', D.targets.tpot_p99_s, 'p99 TPOT');
sensitivity();
util();
cdf('cdf-ttft', 'ttft', 'TTFT', D.record.slo_thresholds.ttft_s);
cdf('cdf-tpot', 'tpot', 'TPOT', D.record.slo_thresholds.tpot_s);
cdf('cdf-e2e', 'e2e', 'End-to-end latency', null);
search();
document.body.dataset.plots = String(drawn);
})();
"""


def _rows(head: list[str], rows: list[list]) -> str:
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    body = "".join("<tr>" + "".join(
        f'<td class="{"txt" if isinstance(c, str) else ""}">{html.escape(str(c))}</td>'
        for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def render(data: dict, plotly_js: str | None = None) -> str:
    """The complete page for `report_data(...)` (plotly.js inlined)."""
    from wrpsim.plan.report import fmt_margin
    from wrpsim.report.dashboard import json_for_script

    if plotly_js is None:
        from plotly.offline import get_plotlyjs

        plotly_js = get_plotlyjs()
    r = data["record"]
    rc = r["recheck"]
    fleet = _rows(["pool", "GPU", "TP", "role", "instances", "GPUs", "USD/h"],
                  [[f["pool"], f["gpu"], f["tp"], f["role"], f["count"], f["gpus"],
                    f"{f['cost_per_hour_usd']:.2f}"] for f in r["fleet"]])
    fig = [["USD per hour", f"{r['cost_per_hour_usd']:.2f}"],
           ["USD per million output tokens", _num(r["cost_per_million_output_tokens_usd"])],
           ["USD per million tokens (prompt + output)", _num(r["cost_per_million_tokens_usd"])],
           ["energy over the trace (kWh)", _num(r["energy_kwh"])],
           ["energy per hour (kWh)", _num(r["energy_kwh_per_hour"])],
           ["GPUs / instances", f"{r['gpu_count']} / {r['instance_count']}"]]
    margins = _rows(["target", "bound", "margin (full trace)", "margin (recheck)"],
                    [[k, _num(v), fmt_margin(k, r["slo_margins"].get(k)),
                      fmt_margin(k, rc["margins"].get(k))] for k, v in r["slo_targets"].items()])
    recheck = (f"Re-checked with a fresh seed ({rc['seed']}: {rc['trace']}) before being "
               f"reported: {'met' if rc['slo_met'] else 'NOT met'}"
               + ("." if rc["first_met"] else f"; the searched fleet {rc['searched_fleet']} "
                  "failed it and instances were added."))
    plots = "".join(f'<div class="plot" id="plot-{p}"></div>' for p in PLOTS)
    stamp = dt.datetime.now().isoformat(timespec="seconds")
    title = f"Capacity plan: {r['workload'] or 'workload'} on {r['model']}"
    body = (
        f"<h1>{html.escape(title)}</h1><div class=\"verdict {'ok' if r['slo_met'] else 'bad'}\"><b>"
        f"{'SLO met' if r['slo_met'] else 'SLO NOT met'}</b> — {html.escape(r['message'])}</div>"
        f"<h2>Recommended fleet</h2>{fleet}{_rows(['figure', 'value'], fig)}"
        f"<h2>SLO margins</h2>{margins}<p>{html.escape(recheck)}</p>"
        f"<h2>Plots</h2><div class=\"grid\">{plots}</div>"
        f"<p class=\"note\">{html.escape(r['search']['trace'])} · "
        f"{r['search']['evaluations']} simulations · generated {stamp} by wrpsim.plan</p>")
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape('wrpsim plan · ' + r['fleet_label'])}</title>",
        f"<style>{CSS}</style>", f"<script>{plotly_js}</script>", "</head><body>", body,
        f'<script type="application/json" id="plan-data">{json_for_script(data)}</script>',
        f"<script>{JS}</script>", "</body></html>", ""])


def _num(v) -> str:
    return "–" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)
