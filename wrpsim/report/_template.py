"""The dashboard's page skeleton, style sheet and script (kept as Python strings so they ship
inside the package). The script reads the data block `#wrpsim-data` (JSON), builds one `<select>`
per swept dimension and redraws every view with `Plotly.react` when a control changes. Strings
from configs and traces reach the page only through `textContent` (DOM) or `esc()` (Plotly's
pseudo-HTML labels), never through `innerHTML`. `document.body.dataset.renders` counts redraws.
"""

CSS = """
body{font-family:system-ui,sans-serif;margin:1.2em;color:#222;background:#fafafa}
h1{font-size:1.35em;margin:0 0 .2em} h2{font-size:1.05em;margin:1.2em 0 .3em}
#controls{display:flex;flex-wrap:wrap;gap:.8em;padding:.6em;background:#fff;border:1px solid #ddd}
#controls label{font-size:.9em} .fixed,.note{color:#666;font-size:.85em}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:.8em}
.plot{background:#fff;border:1px solid #ddd;min-height:340px}
#tablebox{overflow-x:auto} table{border-collapse:collapse;font-size:.82em;background:#fff}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right} th{background:#eee}
td.txt{text-align:left;white-space:nowrap} td.err{text-align:left;min-width:30em}
tr.failed{background:#fde2e2} tr.incomplete{background:#fff4cc}
"""

BODY = """
<h1>{title}</h1>
<div class="note">{subtitle}</div>
<h2>Controls</h2>
<div id="controls"></div>
<div class="fixed" id="fixed"></div>
<div class="note" id="selection"></div>
<h2>Latency CDFs</h2>
<div class="grid">
<div class="plot" id="plot-cdf-ttft"></div><div class="plot" id="plot-cdf-tpot"></div>
<div class="plot" id="plot-cdf-e2e"></div></div>
<h2>SLO attainment, cost and energy</h2>
<div class="grid">
<div class="plot" id="plot-slo"></div><div class="plot" id="plot-cost"></div>
<div class="plot" id="plot-energy"></div></div>
<h2>Utilisation over time and router decisions</h2>
<div class="grid"><div class="plot" id="plot-insys"></div><div class="plot" id="plot-mix"></div>
</div>
<h2>Runs</h2>
<div id="tablebox"><table id="runs"><thead></thead><tbody></tbody></table></div>
<h2>Reports</h2>
{links}
"""

JS = r"""
(function () {
'use strict';
const DATA = JSON.parse(document.getElementById('wrpsim-data').textContent);
const MAXLINES = 30;
const sel = {};
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const el = (tag, text, cls) => {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
};
const fmt = (v) => (v === null || v === undefined) ? '' :
  (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : String(v));
const CONFIG = {displaylogo: false, responsive: true};

function label(r) {
  const parts = DATA.dims.map((d) => r.params[d.key] === undefined ? '-' : r.params[d.key]);
  return '#' + r.run + (parts.length ? ' ' + parts.join(' | ') : '');
}
function selected() {
  const match = (r, d) => !sel[d.key] || r.params[d.key] === sel[d.key];
  return DATA.runs.filter((r) => DATA.dims.every((d) => match(r, d)));
}
function layout(title, xt, yt, extra) {
  return Object.assign({title: {text: esc(title), x: 0.01, xanchor: 'left'},
    margin: {l: 60, r: 10, t: 40, b: 60},
    xaxis: {title: {text: esc(xt)}, automargin: true}, yaxis: {title: {text: esc(yt)}},
    legend: {font: {size: 10}}, showlegend: true}, extra || {});
}
function empty(id, title) {
  Plotly.react(id, [], layout(title, '', '', {annotations: [{text: 'no completed run selected',
    showarrow: false, xref: 'paper', yref: 'paper', x: 0.5, y: 0.5}]}), CONFIG);
}
function lines(id, title, xt, yt, runs, pick) {
  if (!runs.length) { empty(id, title); return; }
  const traces = runs.slice(0, MAXLINES).map((r) => {
    const xy = pick(r);
    return {x: xy[0], y: xy[1], mode: 'lines', type: 'scatter', name: esc(label(r))};
  });
  Plotly.react(id, traces, layout(title, xt, yt), CONFIG);
}
function bars(id, title, yt, runs, key) {
  if (!runs.length) { empty(id, title); return; }
  Plotly.react(id, [{type: 'bar', x: runs.map((r) => esc(label(r))),
    y: runs.map((r) => r.summary[key]), name: esc(key)}],
    layout(title, 'configuration', yt, {showlegend: false}), CONFIG);
}
function slo(runs) {
  const title = 'SLO attainment vs ' + (DATA.load || 'run');
  if (!runs.length) { empty('plot-slo', title); return; }
  if (!DATA.load) { bars('plot-slo', title, 'SLO attainment', runs, 'slo_attainment'); return; }
  const others = DATA.dims.filter((d) => d.key !== DATA.load);
  const series = new Map();
  runs.forEach((r) => {
    const name = others.map((d) => r.params[d.key]).join(' | ') || 'all';
    if (!series.has(name)) series.set(name, []);
    series.get(name).push(r);
  });
  const traces = [];
  series.forEach((rs, name) => {
    rs.sort((a, b) => parseFloat(a.params[DATA.load]) - parseFloat(b.params[DATA.load]));
    traces.push({x: rs.map((r) => parseFloat(r.params[DATA.load])), type: 'scatter',
      y: rs.map((r) => r.summary.slo_attainment), mode: 'lines+markers', name: esc(name)});
  });
  Plotly.react('plot-slo', traces, layout(title, DATA.load, '', {
    yaxis: {title: {text: 'SLO attainment'}, range: [0, 1.05]}}), CONFIG);
}
function mix(runs) {
  const title = 'Router decision mix (share of requests)';
  if (!runs.length) { empty('plot-mix', title); return; }
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r.view.mix)))].sort();
  const total = (r) => Object.values(r.view.mix).reduce((a, b) => a + b, 0) || 1;
  const traces = keys.map((k) => ({type: 'bar', name: esc(k), x: runs.map((r) => esc(label(r))),
    y: runs.map((r) => (r.view.mix[k] || 0) / total(r))}));
  Plotly.react('plot-mix', traces, layout(title, 'configuration', 'share', {barmode: 'stack'}),
    CONFIG);
}
function table(runs) {
  const t = document.getElementById('runs');
  const head = el('tr');
  ['run', 'status', ...DATA.dims.map((d) => d.key), ...DATA.metrics, 'error / reason']
    .forEach((h) => head.appendChild(el('th', h)));
  t.tHead.replaceChildren(head);
  const rows = runs.map((r) => {
    const tr = el('tr', null, r.status === 'completed' ? '' : r.status);
    tr.appendChild(el('td', r.run, 'txt'));
    tr.appendChild(el('td', r.status, 'txt'));
    DATA.dims.forEach((d) => tr.appendChild(el('td', r.params[d.key], 'txt')));
    DATA.metrics.forEach((m) => tr.appendChild(el('td', fmt((r.summary || {})[m]))));
    tr.appendChild(el('td', r.error || r.reason || '', 'err'));
    return tr;
  });
  t.tBodies[0].replaceChildren(...rows);
}
function render() {
  const runs = selected();
  const done = runs.filter((r) => r.status === 'completed' && r.view);
  const shown = Math.min(done.length, MAXLINES);
  document.getElementById('selection').textContent = runs.length + ' of ' + DATA.runs.length +
    ' runs selected, ' + done.length + ' completed' +
    (done.length > MAXLINES ? '; line plots show the first ' + shown : '');
  [['ttft', 'TTFT'], ['tpot', 'TPOT'], ['e2e', 'End-to-end latency']].forEach(([k, name]) =>
    lines('plot-cdf-' + k, name + ' CDF', name + ' (s)', 'fraction of requests', done,
      (r) => r.view.cdf[k]));
  slo(done);
  bars('plot-cost', 'Cost per configuration', 'cost (USD)', done, 'cost_usd');
  bars('plot-energy', 'Energy per configuration', 'energy (kWh, facility)', done, 'energy_kwh');
  lines('plot-insys', 'Requests in system over time', 'simulated time (s)', 'requests', done,
    (r) => r.view.insys);
  mix(done);
  table(runs);
  document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
}
function controls() {
  const box = document.getElementById('controls');
  DATA.dims.forEach((d, i) => {
    const lab = el('label', d.key + ' ');
    const s = el('select');
    s.id = 'dim-' + i;
    s.appendChild(el('option', '(all)'));
    s.options[0].value = '';
    d.values.forEach((v) => { const o = el('option', v); o.value = v; s.appendChild(o); });
    s.addEventListener('change', () => { sel[d.key] = s.value; render(); });
    lab.appendChild(s);
    box.appendChild(lab);
  });
  if (!DATA.dims.length) box.appendChild(el('span', 'no swept dimension varies', 'note'));
  document.getElementById('fixed').textContent = DATA.fixed.length ?
    'fixed in every run: ' + DATA.fixed.map((kv) => kv[0] + '=' + kv[1]).join(', ') : '';
}
controls();
render();
})();
"""
