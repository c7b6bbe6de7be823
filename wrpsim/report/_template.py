"""The dashboard's page skeleton, style sheet and script (kept as Python strings so they ship
inside the package). The script runs after `wrpsim.report.plotstyle.JS` (titles, legends, log
axes, threshold lines), reads the data block `#wrpsim-data` (JSON), fills the winner box, builds
one `<select>` per swept dimension and redraws every view with `Plotly.react` when a control
changes. The cost-vs-p99 views show every completed run whatever the selection (unselected ones
faded) with the Pareto front and the winner, coloured on a scale from the lowest SLO attainment
(down to a 5 % step, at most 95 %) to 100 %; the other views show the selected runs, each run
(load series, router target) in one colour whatever the selection. Strings
from configs and traces reach the page only through `textContent` (DOM) or `esc()` (Plotly's
pseudo-HTML labels), never through `innerHTML`. `document.body.dataset.renders` counts redraws.
"""

CSS = """
body{font-family:system-ui,sans-serif;margin:1.2em;color:#222;background:#fafafa}
h1{font-size:1.35em;margin:0 0 .2em} h2{font-size:1.05em;margin:1.2em 0 .3em}
#controls{display:flex;flex-wrap:wrap;gap:.8em;padding:.6em;background:#fff;border:1px solid #ddd}
#controls label{font-size:.9em} .fixed,.note{color:#666;font-size:.85em}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:.8em}
#winner{margin:.6em 0;padding:.6em .8em;background:#fff;border:1px solid #ddd;
  border-left:6px solid #f90} #winner b{font-size:1.05em} #winner .why{color:#555;font-size:.85em}
#tablebox{overflow-x:auto} table{border-collapse:collapse;font-size:.82em;background:#fff}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right} th{background:#eee}
td.txt{text-align:left;white-space:nowrap} td.err{text-align:left;min-width:30em}
tr.failed{background:#fde2e2} tr.incomplete{background:#fff4cc} tr.winner{background:#fff0d6}
"""

BODY = """
<h1>{title}</h1>
<div class="note">{subtitle}</div>
<div id="winner"></div>
<h2>Controls</h2>
<div id="controls"></div>
<div class="fixed" id="fixed"></div>
<div class="note" id="selection"></div>
<h2>Which configuration: cost vs p99 latency, every completed run</h2>
<div class="grid">{pareto}</div>
<h2>Latency distributions</h2>
<div class="grid">{cdfs}</div>
<h2>SLO attainment, cost and energy</h2>
<div class="grid">{totals}</div>
<h2>Load over time and router decisions</h2>
<div class="grid">{over_time}</div>
<h2>Runs</h2>
<div class="note">Latencies in seconds; cost_usd and energy_kwh (facility, PUE included) are
totals over each run's trace; mean_utilization is the busy fraction (near 1 whenever any request
is in flight), mean_token_budget_use and mean_kv_use how full batches and the KV cache were.
</div>
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
const el = (tag, text, cls) => {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
};
const fmt = (v) => (v === null || v === undefined) ? '' :
  (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : String(v));
const pct = (v) => (v === null || v === undefined) ? 'n/a' : (100 * v).toFixed(1) + ' %';
const secs = (v) => (v === null || v === undefined) ? 'n/a' : fmtUnit(v, 's');
const WIN = DATA.winner ? DATA.winner.run : null;
// a run's colour is fixed by its place among all completed runs (and a series' or a router
// target's by its place among all of them), so it never changes with the selection
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2',
  '#7f7f7f', '#bcbd22', '#17becf'];
const DONE = DATA.runs.filter((r) => r.status === 'completed' && r.view).map((r) => r.run);
const colourOf = (r) => PALETTE[Math.max(0, DONE.indexOf(r.run)) % PALETTE.length];
const stable = (keys) => {
  const all = [...new Set(keys)].sort();
  return (k) => PALETTE[Math.max(0, all.indexOf(k)) % PALETTE.length];
};

// a run's short name on category axes: '#' + its folder's name, or, for a long folder name
// (`hydra.sweep.subdir=${hydra.job.override_dirname}`), '#' + its place in the sweep + '…'
// (never a folder's own name, so no two runs share a bar) — long names crowded the bar plots
// down to nothing; the table and hovers give the whole name
function tag(r) {
  return r.run.length <= 8 ? '#' + r.run : '#' + (DATA.runs.indexOf(r) + 1) + '…';
}
function label(r) {
  const parts = DATA.dims.map((d) => r.params[d.key] === undefined ? '-' : r.params[d.key]);
  return tag(r) + (parts.length ? ' ' + parts.join(' | ') : '');
}
function selected() {
  const match = (r, d) => !sel[d.key] || r.params[d.key] === sel[d.key];
  return DATA.runs.filter((r) => DATA.dims.every((d) => match(r, d)));
}
const names = (traces) => traces.filter((t) => t.showlegend !== false).map((t) => t.name);
function empty(id, text) {
  Plotly.react('plot-' + id, [], layout('', '', {annotations: [{
    text: esc(text || 'no completed run selected'), showarrow: false, xref: 'paper',
    yref: 'paper', x: 0.5, y: 0.5}]}, []), CONFIG);
}
// a completed run none of whose requests completed (all dropped, or unfinished at the
// horizon) has no latency to draw: it is named in a legend entry instead of vanishing
const noneDone = (r) => !(r.summary.requests_completed > 0);
const NONE_DONE = 'no completed request';
function thresholds(runs, key) {
  return [...new Set(runs.map((r) => r.summary[key]).filter((v) => typeof v === 'number'))];
}
function sloLegend(values) {
  return values.length ? [{type: 'scatter', mode: 'lines', name: 'SLO threshold', x: [null],
    y: [null], line: {dash: 'dash', color: '#c22'}}] : [];
}
// requests of a completed run left unanswered (dropped or unfinished), 0 for most runs
const lost = (r) => (DATA.unanswered || {})[r.run] || 0;
const lostText = (r) => lost(r) ? ' · ' + lost(r).toLocaleString('en-US') + ' of ' +
  (r.summary.requests_total || 0).toLocaleString('en-US') + ' unanswered (' +
  pct(lost(r) / (r.summary.requests_total || 1)) + ')' : '';
function cdf(key, name, sloKey, runs) {
  setTitle('cdf-' + key, name + ' distribution (CDF) of completed requests, selected runs');
  if (!runs.length) { empty('cdf-' + key); return; }
  // one completed request is one point, which a line would not draw: a marker then
  const traces = runs.slice(0, MAXLINES).map((r) => {
    const [x, y] = r.view.cdf[key];
    return {x: x.length ? x : [null], y: y.length ? y : [null], type: 'scatter',
      mode: x.length === 1 ? 'markers' : 'lines', line: {color: colourOf(r)},
      marker: {color: colourOf(r), size: 8},
      name: esc(label(r) + (x.length ? '' : ' · ' + NONE_DONE) + lostText(r))};
  });
  const slo = sloKey ? thresholds(runs, sloKey) : [];
  traces.push(...sloLegend(slo));
  Plotly.react('plot-cdf-' + key, traces, layout(name + ' (log scale)',
    'fraction of completed requests',
    {xaxis: logAxisOf(traces.flatMap((t) => t.x), slo, 's'), yaxis: {range: [0, 1.02]},
     shapes: slo.flatMap((v) => vline(v))}, names(traces)), CONFIG);
}
// a cost axis never shows negative dollars; one cost alone (a single run, or runs of one
// fleet) spans 0 to a quarter past it instead of Plotly's ±1 around the point; costs within
// a few per cent of each other (the winner rule's ties are within 1 %) span at least 4 % of
// the highest, so that cents do not look like a front
function costAxis(runs) {
  const c = runs.map((r) => r.summary.cost_usd);
  const lo = Math.min(...c), hi = Math.max(...c);
  if (hi - lo <= 1e-9 * hi) return {range: [0, hi > 0 ? 1.25 * hi : 1]};
  if (hi - lo >= 0.04 * hi) return {rangemode: 'nonnegative'};
  const mid = (lo + hi) / 2;
  return {range: [Math.max(0, mid - 0.02 * hi), mid + 0.02 * hi]};
}
function pareto(key, name, sloKey, shown) {
  const id = 'pareto-' + key;
  const runs = DATA.runs.filter((r) => r.status === 'completed' &&
    typeof r.summary[key + '_p99_s'] === 'number' && typeof r.summary.cost_usd === 'number');
  const undrawn = DATA.runs.filter((r) => r.status === 'completed' && noneDone(r))
    .map((r) => '#' + r.run);
  const undrawnText = NONE_DONE + ', not drawn: ' + undrawn.join(', ');
  if (!runs.length) { empty(id, undrawn.length ? undrawnText : null); return; }
  const front = new Set(DATA.pareto[key] || []);
  const isShown = new Set(shown.map((r) => r.run));
  const y = (r) => r.summary[key + '_p99_s'];
  const pts = (rs, nm, color, symbol, size) => ({type: 'scatter', mode: 'markers', name: nm,
    x: rs.map((r) => r.summary.cost_usd), y: rs.map(y),
    text: rs.map((r) => esc(label(r) + ' · SLO attainment ' + pct(r.summary.slo_attainment) +
      lostText(r) + (lost(r) ? ', off the front' : ''))),
    marker: {color: color, symbol: symbol, size: size,
      opacity: rs.map((r) => isShown.has(r.run) ? 1 : 0.25)},
    hovertemplate: '%{text}<br>$%{x:.2f} total<br>p99 %{y:.4g} s<extra></extra>'});
  const line = DATA.runs.filter((r) => front.has(r.run) && runs.includes(r))
    .sort((a, b) => a.summary.cost_usd - b.summary.cost_usd);
  const slo = thresholds(runs, sloKey);
  const all = pts(runs, 'run (colour: SLO attainment)', null,
    runs.map((r) => lost(r) ? 'x' : 'circle'), 10);
  all.marker.color = runs.map((r) => r.summary.slo_attainment || 0);
  // the scale spans the runs' attainments (from the lowest, down to a 5 % step, at most 95 %,
  // to 100 %), so 95.7 % and 100 % differ in colour; the colour bar shows the range
  const cmin = Math.min(0.95, Math.floor(Math.min(...all.marker.color) * 20) / 20);
  Object.assign(all.marker, {colorscale: [[0, '#c22'], [0.5, '#e8b830'], [1, '#2a2']],
    cmin: cmin, cmax: 1, line: {color: '#444', width: 0.5}, colorbar: {thickness: 10, len: 0.9,
      title: {text: 'SLO att.', side: 'top'}, tickformat: '.0%', x: 1.01, xpad: 4}});
  const traces = [all,
    {type: 'scatter', mode: 'lines', name: 'Pareto front', x: line.map((r) => r.summary.cost_usd),
     y: line.map(y), line: {shape: 'hv', color: '#555'}, hoverinfo: 'skip'},
    pts(runs.filter((r) => r.run === WIN), 'winner', '#f90', 'star', 20), ...sloLegend(slo)];
  const lostWin = runs.filter((r) => r.run === WIN && lost(r));
  if (lostWin.length) {  // the star hides the winner's cross: draw the cross over the star
    const c = pts(lostWin, 'winner (dropped requests)', '#444', 'x-thin-open', 14);
    c.marker.line = {color: '#444', width: 2};
    c.showlegend = false;
    traces.splice(3, 0, c);
  }
  if (runs.some(lost)) {  // a legend entry for the crosses
    traces.push({type: 'scatter', mode: 'markers', name: 'dropped requests (off the front)',
      x: [null], y: [null], marker: {symbol: 'x', color: '#444', size: 9}});
  }
  if (undrawn.length) {
    traces.push({type: 'scatter', mode: 'markers', name: esc(undrawnText), x: [null],
      y: [null], marker: {symbol: 'circle-open', color: '#999', size: 9}});
  }
  Plotly.react('plot-' + id, traces, layout('cost, total over the trace (USD)',
    'p99 ' + name + ' (log scale)', {xaxis: costAxis(runs), yaxis: logAxisOf(runs.map(y),
      slo, 's'), shapes: slo.flatMap((v) => hline(v))}, names(traces)), CONFIG);
}
function bars(id, yt, runs, key) {
  if (!runs.length) { empty(id); return; }
  Plotly.react('plot-' + id, [{type: 'bar', x: runs.map((r) => esc(tag(r))),
    hovertext: runs.map((r) => esc(r.run + ' · ' + label(r))),
    y: runs.map((r) => r.summary[key]), name: esc(key),
    marker: {color: runs.map((r) => r.run === WIN ? '#f90' : '#1f77b4')}}],
    layout('configuration (orange: the winner)', yt, {xaxis: {type: 'category'}}, []), CONFIG);
}
function slo(runs) {
  setTitle('slo', 'SLO attainment vs ' + (DATA.load || 'run') + ', selected runs');
  if (!runs.length) { empty('slo'); return; }
  if (!DATA.load) { bars('slo', 'SLO attainment (share of requests)', runs, 'slo_attainment');
    return; }
  const others = DATA.dims.filter((d) => d.key !== DATA.load);
  const seriesOf = (r) => others.map((d) => r.params[d.key]).join(' | ') || 'all';
  const colour = stable(DATA.runs.filter((r) => r.status === 'completed').map(seriesOf));
  const series = new Map();
  runs.forEach((r) => {
    const name = seriesOf(r);
    if (!series.has(name)) series.set(name, []);
    series.get(name).push(r);
  });
  const traces = [];
  series.forEach((rs, name) => {
    rs.sort((a, b) => parseFloat(a.params[DATA.load]) - parseFloat(b.params[DATA.load]));
    traces.push({x: rs.map((r) => parseFloat(r.params[DATA.load])), type: 'scatter',
      y: rs.map((r) => r.summary.slo_attainment), mode: 'lines+markers', name: esc(name),
      line: {color: colour(name)}, marker: {color: colour(name)}});
  });
  Plotly.react('plot-slo', traces, layout(DATA.load + ' (offered load)',
    'SLO attainment (share of requests)', {yaxis: {range: [0, 1.05]}}, names(traces)), CONFIG);
}
function mix(runs) {
  if (!runs.length) { empty('mix'); return; }
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r.view.mix)))].sort();
  const colour = stable(DATA.runs.filter((r) => r.view).flatMap((r) => Object.keys(r.view.mix)));
  const total = (r) => Object.values(r.view.mix).reduce((a, b) => a + b, 0) || 1;
  const traces = keys.map((k) => ({type: 'bar', name: esc(k), x: runs.map((r) => esc(tag(r))),
    hovertext: runs.map((r) => esc(r.run + ' · ' + label(r))),
    y: runs.map((r) => (r.view.mix[k] || 0) / total(r)), marker: {color: colour(k)}}));
  Plotly.react('plot-mix', traces, layout('configuration', 'share of requests',
    {barmode: 'stack', xaxis: {type: 'category'}}, names(traces)), CONFIG);
}
function insys(runs) {
  if (!runs.length) { empty('insys'); return; }
  const traces = runs.slice(0, MAXLINES).map((r) => ({x: r.view.insys[0], y: r.view.insys[1],
    mode: 'lines', type: 'scatter', name: esc(label(r)), line: {color: colourOf(r)}}));
  Plotly.react('plot-insys', traces, layout('simulated time (s)', 'requests in the system',
    {}, names(traces)), CONFIG);
}
function table(runs) {
  const t = document.getElementById('runs');
  const head = el('tr');
  ['run', 'status', ...DATA.dims.map((d) => d.key), ...DATA.metrics, 'error / reason']
    .forEach((h) => head.appendChild(el('th', h)));
  t.tHead.replaceChildren(head);
  const rows = runs.map((r) => {
    const tr = el('tr', null, r.status === 'completed' ? (r.run === WIN ? 'winner' : '') :
      r.status);
    const short = tag(r) === '#' + r.run ? '' : ' (' + tag(r) + ')';
    tr.appendChild(el('td', r.run + short + (r.run === WIN ? ' ★ winner' : '') +
      ((r.uncalibrated || []).length ? ' (uncalibrated: roofline: ' +
        r.uncalibrated.join(', ') + ')' : ''), 'txt'));
    tr.appendChild(el('td', r.status, 'txt'));
    DATA.dims.forEach((d) => tr.appendChild(el('td', r.params[d.key], 'txt')));
    DATA.metrics.forEach((m) => tr.appendChild(el('td', fmt((r.summary || {})[m]))));
    tr.appendChild(el('td', r.error || r.reason || '', 'err'));
    return tr;
  });
  t.tBodies[0].replaceChildren(...rows);
}
function winner() {
  const box = document.getElementById('winner');
  const w = DATA.winner;
  if (!w) {
    box.appendChild(el('b', 'No completed run: no winner.'));
    const bad = DATA.runs.filter((r) => r.status !== 'completed').map((r) =>
      r.run + ' (' + r.status + (r.reason ? ': ' + r.reason : '') + ')');
    if (bad.length) box.appendChild(el('div', 'Not completed: ' + bad.join(', ') + '.', 'why'));
    return;
  }
  const s = w.summary;
  box.appendChild(el('b', 'Winner: run ' + w.run));
  box.appendChild(el('span', ' — ' + (w.overrides.join(' ') || 'the only configuration')));
  box.appendChild(el('div', 'SLO attainment ' + pct(s.slo_attainment) + ' · cost ' +
    (typeof s.cost_usd === 'number' ? '$' + s.cost_usd.toFixed(2) : 'n/a') +
    ' total over the trace · p99 TTFT ' + secs(s.ttft_p99_s) + ' · p99 TPOT ' +
    secs(s.tpot_p99_s) + ' · ' + fmt(s.gpu_count) + ' GPUs'));
  if ((w.uncalibrated || []).length) box.appendChild(el('div', 'Uncalibrated: roofline for ' +
    'pool(s) ' + w.uncalibrated.join(', ') + ': no kernel measurements for that GPU, so this ' +
    'run\'s times are roofline estimates (summary.json: calibration).', 'why'));
  box.appendChild(el('div', 'Rule: ' + w.rule + '; over the ' + w.among +
    ' completed runs' + (w.excluded.length ? '; not considered (not completed): ' +
    w.excluded.join(', ') : '') + '.', 'why'));
  if (DATA.load) box.appendChild(el('div', 'The runs differ in offered load (' + DATA.load +
    '): a total over the trace shrinks with a shorter trace, so compare costs of runs at the ' +
    'same load (control above).', 'why'));
  else if (DATA.sizes) box.appendChild(el('div', 'The runs replay traces of ' + DATA.sizes +
    ' requests: a total over the trace shrinks with a shorter trace, so compare costs of runs ' +
    'at the same load.', 'why'));
}
function render() {
  const runs = selected();
  const done = runs.filter((r) => r.status === 'completed' && r.view);
  const shown = Math.min(done.length, MAXLINES);
  document.getElementById('selection').textContent = runs.length + ' of ' + DATA.runs.length +
    ' runs selected, ' + done.length + ' completed' +
    (done.length > MAXLINES ? '; line plots show the first ' + shown : '');
  pareto('ttft', 'TTFT', 'slo_ttft_s', done);
  pareto('tpot', 'TPOT', 'slo_tpot_s', done);
  cdf('ttft', 'TTFT', 'slo_ttft_s', done);
  cdf('tpot', 'TPOT', 'slo_tpot_s', done);
  cdf('e2e', 'End-to-end latency', null, done);
  slo(done);
  bars('cost', 'USD, total over the trace', done, 'cost_usd');
  bars('energy', 'kWh (facility), total over the trace', done, 'energy_kwh');
  insys(done);
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
winner();
controls();
render();
})();
"""
