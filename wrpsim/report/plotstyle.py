"""The common look of the plots on wrpsim's two pages (the sweep dashboard and a plan's
report.html): a style sheet and a script prelude, kept as Python strings so they ship inside
the package.

Contracts, which the pages' browser tests check:

- a plot's title is HTML, never Plotly's: `figure(id, title, note)` gives
  `<figure class="fig"><figcaption class="ptitle">title</figcaption><div class="plot"
  id="plot-ID"></div><p class="pnote">note</p></figure>` (both strings `html.escape`d), so
  the Plotly mode bar, drawn in the plot's top margin (`layout(...)` keeps `MODEBAR_PX` free
  there), can never cover it;
- legends are horizontal, below the x-axis title (placed in pixels from the container's bottom,
  with the bottom margin grown to hold them), so they cover neither data nor axis labels;
- log axes get explicit ticks at 1-2-5 per decade (1 per decade when the values span more than
  2.2 decades, where 1-2-5 labels would crowd a narrow plot) labelled with units
  (`logAxis(lo, hi, 's')` gives "40 ms", "2 s"), never bare digits; `logAxisOf` always adds a
  tick at or below the smallest value and at or above the largest where that grid has none (the
  nearest of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9 per decade clear of the grid's ticks) and
  sets the range a little past them, so every value lies between labelled ticks.

The prelude defines, for the page's own script: `esc` (Plotly pseudo-HTML escaping),
`CONFIG`, `layout(xTitle, yTitle, extra, legendNames)`, `logAxis(lo, hi, unit)`,
`logAxisOf(values, extraValues, unit)` (ticks and range over the positive values),
`fmtUnit(v, unit)`, `vline(x)` / `hline(y)` (dashed red threshold shapes) and
`setTitle(id, text)` (`textContent`).
"""

from __future__ import annotations

import html

MODEBAR_PX = 34

CSS = """
.fig{background:#fff;border:1px solid #ddd;margin:0;padding:.35em .4em .3em;min-width:0}
.ptitle{font-weight:600;font-size:.92em;margin:0 .2em .1em;color:#222}
.plot{min-height:360px}
.pnote{color:#555;font-size:.8em;margin:.25em .3em 0;line-height:1.3}
"""

JS = r"""
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const CONFIG = {displaylogo: false, responsive: true,
  modeBarButtonsToRemove: ['select2d', 'lasso2d', 'autoScale2d']};
const MODEBAR_PX = @MODEBAR@;
const LEGEND_ROW_PX = 20;
const PLOT_PX = 360;
const MIN_WIDTH_PX = 420;
function layout(xt, yt, extra, names) {
  // legend entries of one width, as many to a row as fit the narrowest plot (MIN_WIDTH_PX)
  const n = (names || []).length;
  const longest = Math.max(0, ...(names || []).map((s) => String(s).length));
  const entry = Math.min(MIN_WIDTH_PX, 44 + Math.ceil(longest * 6.2));
  const rows = Math.ceil(n / Math.max(1, Math.floor(MIN_WIDTH_PX / entry)));
  // the figure grows by its legend's rows, so a legend of many runs never squeezes the plot
  // area (12 runs' long names left it 6 px tall in a fixed 360 px figure)
  const base = {height: PLOT_PX + rows * LEGEND_ROW_PX,
    margin: {l: 64, r: 24, t: MODEBAR_PX, b: 60 + rows * LEGEND_ROW_PX},
    font: {size: 11}, showlegend: rows > 0, hoverlabel: {namelength: -1},
    legend: {orientation: 'h', x: 0, xanchor: 'left', xref: 'container',
      y: 0.01, yanchor: 'bottom', yref: 'container', font: {size: 10},
      entrywidth: entry, entrywidthmode: 'pixels', tracegroupgap: 0},
    xaxis: {title: {text: esc(xt)}, automargin: true},
    yaxis: {title: {text: esc(yt)}, automargin: true}};
  const out = Object.assign({}, base, extra || {});
  ['xaxis', 'yaxis', 'legend', 'margin'].forEach((k) => {
    if (extra && extra[k]) out[k] = Object.assign({}, base[k], extra[k]);
  });
  return out;
}
function fmtUnit(v, unit) {
  const sig = (x) => String(Number(x.toPrecision(3)));
  if (unit === 's') {
    if (v === 0) return '0 s';
    if (v < 1e-3) return sig(v * 1e6) + ' µs';
    if (v < 1) return sig(v * 1e3) + ' ms';
    return sig(v) + ' s';
  }
  return sig(v) + (unit ? ' ' + unit : '');
}
function logAxis(lo, hi, unit) {
  const vals = [];
  if (!(lo > 0) || !(hi > 0)) return {type: 'log'};
  const d0 = Math.floor(Math.log10(lo)), d1 = Math.ceil(Math.log10(hi));
  const steps = d1 - d0 > 3 ? [1] : [1, 2, 5];
  // no label in the outer 4 % of the axis, where it would meet the other axis's labels
  const edge = 0.04 * (Math.log10(hi) - Math.log10(lo));
  const inside = (v) => Math.log10(v) >= Math.log10(lo) + edge &&
    Math.log10(v) <= Math.log10(hi) - edge;
  for (let d = d0; d <= d1; d++) {
    steps.forEach((m) => {
      const v = Number((m * Math.pow(10, d)).toPrecision(6));
      if (inside(v)) vals.push(v);
    });
  }
  if (vals.length < 2) {
    [lo, hi].forEach((v) => vals.push(Number(v.toPrecision(2))));
  }
  return {type: 'log', tickmode: 'array', tickvals: vals,
    ticktext: vals.map((v) => fmtUnit(v, unit)), minor: {showgrid: false}};
}
function finite(xs) {
  return xs.filter((v) => typeof v === 'number' && isFinite(v) && v > 0);
}
// ticks and range of a log axis over the positive values: the 1-2-5 grid (1 per decade when
// the values span more than 2.2 decades) inside the values' range, plus a labelled tick at or
// below the smallest value and at or above the largest (from 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 7,
// 8, 9 per decade: the nearest one clear of the grid's ticks; 35.6 ms to 13.2 s gets 30 ms,
// 100 ms, 1 s, 10 s, 20 s), and a range a little past those two, so every value lies between
// labelled ticks and no label sits in the axis's outer 4 %
function logAxisOf(xs, extra, unit) {
  const v = finite(xs.concat(extra || []));
  if (!v.length) return {type: 'log'};
  let dlo = v[0], dhi = v[0];
  v.forEach((x) => { if (x < dlo) dlo = x; if (x > dhi) dhi = x; });
  const L = Math.log10;
  const dspan = L(dhi) - L(dlo);
  // 1-2-5 puts ticks 0.3 decade apart: over more than 2.2 decades of values, too close for
  // the labels on the narrowest plot (MIN_WIDTH_PX), so one per decade
  const steps = dspan > 2.2 ? [1] : [1, 2, 5];
  const at = (m, d) => Number((m * Math.pow(10, d)).toPrecision(6));
  // a bracket tick closer than a tenth of the values' decades to a grid tick would crowd it
  const gap = 0.1 * Math.max(dspan, 0.3);
  const grid = [], fine = [], reach = 1 + Math.ceil(gap);
  for (let d = Math.floor(L(dlo)) - reach; d <= Math.ceil(L(dhi)) + reach; d++) {
    steps.forEach((m) => { const t = at(m, d); if (t >= dlo && t <= dhi) grid.push(t); });
    [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9].forEach((m) => fine.push(at(m, d)));
  }
  const clear = (c) => grid.every((t) => t === c || Math.abs(L(t) - L(c)) >= gap);
  const below = grid.includes(dlo) ? dlo : fine.filter((c) => c <= dlo && clear(c)).pop();
  const above = grid.includes(dhi) ? dhi : fine.find((c) => c >= dhi && clear(c));
  const ticks = [...new Set([below, ...grid, above])].sort((a, b) => a - b);
  const pad = Math.max(0.05, 0.06 * (L(above) - L(below)));
  const lo = below / Math.pow(10, pad), hi = above * Math.pow(10, pad);
  return {type: 'log', tickmode: 'array', tickvals: ticks,
    ticktext: ticks.map((t) => fmtUnit(t, unit)), minor: {showgrid: false},
    range: [L(lo), L(hi)]};
}
function vline(x, color) {
  return [{type: 'line', yref: 'paper', y0: 0, y1: 1, x0: x, x1: x,
    line: {dash: 'dash', color: color || '#c22', width: 1.5}}];
}
function hline(y, color) {
  return [{type: 'line', xref: 'paper', x0: 0, x1: 1, y0: y, y1: y,
    line: {dash: 'dash', color: color || '#c22', width: 1.5}}];
}
function setTitle(id, text) {
  const cap = document.getElementById('plot-' + id).parentElement.querySelector('.ptitle');
  cap.textContent = text;
}
""".replace("@MODEBAR@", str(MODEBAR_PX))


def figure(pid: str, title: str, note: str = "") -> str:
    """One plot's HTML: its title, the div Plotly draws into (`plot-<pid>`), a note below."""
    note_html = f'<p class="pnote">{html.escape(note)}</p>' if note else ""
    return (f'<figure class="fig"><figcaption class="ptitle">{html.escape(title)}</figcaption>'
            f'<div class="plot" id="plot-{html.escape(pid, quote=True)}"></div>{note_html}'
            "</figure>")
