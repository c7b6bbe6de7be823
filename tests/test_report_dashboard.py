"""The dashboard in a real headless Chromium: every plot drawn, controls redraw, no JS errors,
no network fetch, hostile config strings inert. Chromium is driven over the DevTools protocol by
a small stdlib websocket client (no browser-automation package needed). Skips when `chromium`
is not installed (`apt-get install -y chromium`)."""

from __future__ import annotations

import base64
import json
import math
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HOSTILE = "</script><img src=x onerror=alert(1)>"
PLOTS = ("pareto-ttft", "pareto-tpot", "cdf-ttft", "cdf-tpot", "cdf-e2e", "slo", "cost", "energy",
         "insys", "mix")
# Layout faults of every Plotly plot on a page (`wrpsim.report.plotstyle`'s contracts): a legend
# over the plot area, an axis title or tick labels, or outside its div; the mode bar over the
# legend, the plot area or the plot's title (an HTML caption above the div); labels that overlap.
LAYOUT_FAULTS = r"""(() => {
  const box = (e) => {
    const r = e && e.getBoundingClientRect();
    return r && r.width && r.height ? r : null;
  };
  const hit = (a, b) => a && b && a.left < b.right - 1 && b.left < a.right - 1 &&
    a.top < b.bottom - 1 && b.top < a.bottom - 1;
  const out = [];
  document.querySelectorAll('.js-plotly-plot').forEach((p) => {
    const q = (s) => [...p.querySelectorAll(s)].map(box).filter((b) => b);
    const legend = q('g.legend')[0] || null, modebar = q('.modebar')[0] || null;
    const area = q('.nsewdrag')[0] || null, div = box(p);
    const title = box(p.parentElement.querySelector('.ptitle'));
    const labels = [['x title', q('.g-xtitle')], ['y title', q('.g-ytitle')],
      ['y2 title', q('.g-y2title')], ['x tick', q('.xtick text')], ['y tick', q('.ytick text')],
      ['y2 tick', q('.y2tick text')]];
    const say = (what) => out.push(p.id + ': ' + what);
    if (!title || title.bottom > div.top + 1) say('title not above the plot');
    if (!modebar) say('no mode bar');
    if (legend) {
      if (hit(legend, area)) say('legend over the plot area');
      labels.forEach(([n, bs]) => bs.forEach((b) => {
        if (hit(legend, b)) say('legend over ' + n);
      }));
      if (legend.bottom > div.bottom + 1 || legend.right > div.right + 1) say('legend outside');
    }
    if (hit(modebar, legend)) say('mode bar over the legend');
    if (hit(modebar, area)) say('mode bar over the plot area');
    if (hit(modebar, title)) say('mode bar over the title');
    labels.forEach(([n, bs]) => labels.forEach(([m, cs]) => {
      if (n < m) bs.forEach((b) => cs.forEach((c) => { if (hit(b, c)) say(n + ' over ' + m); }));
    }));
  });
  return out;
})()"""
# the tick labels of every log axis on a page, as "plot-id: label"
LOG_TICKS = r"""[...document.querySelectorAll('.js-plotly-plot')].flatMap((gd) =>
  Object.keys(gd._fullLayout).filter((k) => /^[xy]axis\d*$/.test(k) &&
    gd._fullLayout[k].type === 'log').flatMap((k) => [...gd.querySelectorAll(
      '.' + gd._fullLayout[k]._id + 'tick text')].map((t) => gd.id + ': ' + t.textContent)))"""


def check_layout(dev) -> None:
    """Assert the page's plots keep plotstyle's contracts: no layout fault; log-axis tick
    labels carry a unit (never a bare digit such as "4" for 40 s). Hovers a plot first, so the
    mode bar is drawn where a user sees it."""
    dev.js("document.querySelector('.js-plotly-plot .nsewdrag').dispatchEvent("
           "new MouseEvent('mousemove', {bubbles: true, clientX: 200, clientY: 200}))")
    assert dev.js(LAYOUT_FAULTS) == []
    ticks = dev.js(LOG_TICKS)
    assert ticks, "no log axis drawn"
    bare = [t for t in ticks if not re.fullmatch(r"[\w-]+: [\d.]+ (µs|ms|s)", t)]
    assert bare == [], bare
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--remote-debugging-port=0")


class DevTools:
    """A minimal Chrome DevTools protocol client over one websocket (RFC 6455, text frames)."""

    def __init__(self, ws_url: str):
        u = urlparse(ws_url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(4096)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert b" 101 " in head.split(b"\r\n")[0], head
        self.ids, self.events = 0, []

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("devtools socket closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _message(self) -> dict:
        data = b""
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._exact(8))[0]
            payload = self._exact(n)
            if b0 & 0x0F == 8:
                raise ConnectionError("devtools websocket closed")
            data += payload
            if b0 & 0x80:
                return json.loads(data)

    def call(self, method: str, **params):
        self.ids += 1
        msg = json.dumps({"id": self.ids, "method": method, "params": params}).encode()
        n, mask = len(msg), os.urandom(4)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else
                                bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536 else
                                bytes([0x80 | 127]) + struct.pack(">Q", n))
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(msg)))
        while True:
            m = self._message()
            if m.get("id") == self.ids:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def js(self, expr: str):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise AssertionError(f"{expr!r} raised {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait(self, expr: str, timeout: float = 30.0):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.js(expr):
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {expr!r}")

    def errors(self) -> list:
        bad = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown" or m == "Page.javascriptDialogOpening" or (
                    m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert")) or (
                    m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error"):
                bad.append(e)
            if m == "Network.requestWillBeSent" and not p["request"]["url"].startswith(
                    ("file:", "data:", "blob:", "about:")):
                bad.append(e)
        return bad


def open_dashboard(dev, sweep):
    """Build `sweep`'s report and load its dashboard in the browser, waiting for the first
    render; the browser session back."""
    r = subprocess.run([sys.executable, "-m", "wrpsim.report", f"sweep_dir={sweep}"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    dev.call("Page.navigate", url=(sweep / "dashboard.html").as_uri())
    dev.wait("document.body && document.body.dataset.renders === '1'")
    return dev


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    """A 2 × 2 × 2 sweep (half of it failing, a hostile pool name) and its report."""
    sweep = tmp_path_factory.mktemp("dash") / "sweep"
    cmd = [sys.executable, "-m", "wrpsim", "-m", f"hydra.sweep.dir={sweep}",
           "router=round-robin,least-outstanding", "workload.rate_scale=1,2",
           "pool.pools.h100.gpu=h100-80gb,a10g-24gb", "workload.max_requests=300",
           f"pool.name='{HOSTILE}'", "sim.progress=false"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    r = subprocess.run([sys.executable, "-m", "wrpsim.report", f"sweep_dir={sweep}"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return {**json.loads(r.stdout.strip().splitlines()[-1]), "sweep_stderr": p.stderr}


def _expected_winner(results: str) -> str:
    """The winner by the documented rule, computed here from results.parquet."""
    import pyarrow.parquet as pq

    rows = [r for r in pq.read_table(results).to_pylist() if r["status"] == "completed"]
    top = max(r["slo_attainment"] for r in rows)
    rows = [r for r in rows if r["slo_attainment"] >= top - 0.001]  # within 0.1 point tie
    cheapest = min(r["cost_usd"] for r in rows)
    rows = [r for r in rows if r["cost_usd"] <= 1.01 * cheapest]  # costs within 1 % tie
    return min(rows, key=lambda r: (r["ttft_p99_s"], int(r["run"])))["run"]


def sweep_of(sweep: Path, *overrides: str) -> subprocess.CompletedProcess:
    """`python -m wrpsim -m` into `sweep` with the progress line off and `overrides`."""
    return subprocess.run([sys.executable, "-m", "wrpsim", "-m", f"hydra.sweep.dir={sweep}",
                           "sim.progress=false", *overrides],
                          capture_output=True, text=True, timeout=300)


def test_hostile_strings_never_reach_the_page_unescaped(dashboard):
    text = Path(dashboard["dashboard"]).read_text(encoding="utf-8")
    assert dashboard["completed"] == 4 and dashboard["failed"] == 4
    assert "<img src=x" not in text and "</script><img" not in text
    assert text.count("<script") == text.count("</script>") == 3


def test_a_report_written_elsewhere_does_not_link_the_sweeps_earlier_page(dashboard,
                                                                           tmp_path):
    """With out_dir= elsewhere, the sweep's own earlier dashboard.html was listed among its
    reports, as if it were a plan's (new-user walkthrough, 2026-12-07)."""
    from wrpsim.report.dashboard import report_links

    sweep = Path(dashboard["dashboard"]).parent
    assert (sweep / "dashboard.html").is_file()
    assert not any(text == "dashboard.html" for _, text in report_links(sweep, tmp_path))


def test_the_page_holds_no_clock_time_so_the_same_runs_give_the_same_bytes(dashboard):
    """The page said when it was generated, so a report of the same runs differed from one
    second to the next (new-user walkthrough, 2026-12-07); rendered again, it is the same."""
    import re

    from wrpsim.report.__main__ import main

    text = Path(dashboard["dashboard"]).read_text(encoding="utf-8")
    assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", text.split("<script>")[0])
    sweep = Path(dashboard["dashboard"]).parent
    assert main([f"sweep_dir={sweep}"]) == 0
    assert Path(dashboard["dashboard"]).read_text(encoding="utf-8") == text


@pytest.fixture()
def browser(tmp_path):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    profile = tmp_path / "profile"
    log = (tmp_path / "chromium.log").open("w")
    proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        port_file = profile / "DevToolsActivePort"
        for _ in range(600):
            if port_file.is_file() and port_file.read_text().strip():
                break
            time.sleep(0.1)
        else:
            log.flush()
            pytest.fail(f"chromium did not open its DevTools port (exit status {proc.poll()}): "
                        + (tmp_path / "chromium.log").read_text()[-2000:])
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as f:
            pages = [t for t in json.load(f) if t["type"] == "page"]
        dev = DevTools(pages[0]["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log", "Network"):
            dev.call(f"{domain}.enable")
        yield dev
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        log.close()


def test_dashboard_renders_every_view_and_controls_switch_it(dashboard, browser):
    dev = browser
    dev.call("Page.navigate", url=Path(dashboard["dashboard"]).as_uri())
    dev.wait("document.body && document.body.dataset.renders === '1'")
    for name in PLOTS:
        assert dev.js(f"!!document.querySelector('#plot-{name}.js-plotly-plot .main-svg')"), name
    n_traces = ("document.getElementById('plot-cdf-ttft').data"
                ".filter(t => t.name !== 'SLO threshold').length")  # one line per run
    assert dev.js(n_traces) == 4
    colours = ("Object.fromEntries(['plot-cdf-ttft', 'plot-insys'].flatMap((id) => "
               "document.getElementById(id).data.filter(t => t.name !== 'SLO threshold')"
               ".map(t => [id + ' ' + t.name, t.line.color])))")
    before = dev.js(colours)
    assert len(set(before.values())) == 4  # one colour per run
    assert dev.js("document.querySelectorAll('#runs tbody tr').length") == 8
    assert dev.js("document.querySelectorAll('#runs tr.failed').length") == 4
    keys = dev.js("[...document.querySelectorAll('#controls select')].map(s => s.id)")
    assert len(keys) == 3
    router = dev.js("[...document.querySelectorAll('#controls label')]"
                    ".findIndex(l => l.textContent.startsWith('router'))")
    dev.js(f"(() => {{ const s = document.getElementById('dim-{router}');"
           "s.value = 'least-outstanding'; s.dispatchEvent(new Event('change')); })()")
    dev.wait("document.body.dataset.renders === '2'")
    assert dev.js(n_traces) == 2
    after = dev.js(colours)  # a run keeps its colour when the selection changes
    assert len(after) == 4 and all(before[k] == v for k, v in after.items()), (before, after)
    assert dev.js("document.querySelectorAll('#runs tbody tr').length") == 4
    assert dev.js("document.getElementById('plot-slo').data.length") == 1
    assert dev.js("document.querySelectorAll('img').length") == 0
    assert HOSTILE in dev.js("document.getElementById('fixed').textContent")
    dev.js("new Promise(r => setTimeout(r, 300))")
    assert dev.errors() == []


def test_dashboard_names_the_winner_and_draws_pareto_and_slo_lines(dashboard, browser):
    import pyarrow.parquet as pq

    dev = browser
    dev.call("Page.navigate", url=Path(dashboard["dashboard"]).as_uri())
    dev.wait("document.body && document.body.dataset.renders === '1'")
    win = _expected_winner(dashboard["results"])
    closing = [ln for ln in dashboard["sweep_stderr"].splitlines()
               if ln.startswith("best SLO attainment (within 0.1 point ties), then lowest")]
    assert closing and f": run {win} (" in closing[0]  # the terminal names the same run
    box = dev.js("document.getElementById('winner').textContent")
    assert box.startswith(f"Winner: run {win} — ") and "router=" in box
    assert "not considered (not completed): " in box
    # with the reason: a user error's own first line (an A10G is too small for the model)
    assert box.count("(failed: bad input: ") == 4 and "GiB" in box
    # run labels such as '#0 1' stay labels: Plotly would read them as numbers (0 10 20)
    for bar in ("cost", "energy", "mix"):
        assert dev.js(f"document.getElementById('plot-{bar}').layout.xaxis.type") == "category"
    assert dev.js("document.querySelector('#runs tr.winner td').textContent") == f"{win} ★ winner"
    for key, slo in (("ttft", 2.0), ("tpot", 0.1)):
        data = dev.js(f"document.getElementById('plot-pareto-{key}').data"
                      ".map(t => [t.name, (t.x || []).length])")
        assert data[0] == ["run (colour: SLO attainment)", 4]  # completed runs only
        assert ["winner", 1] in data and data[1][0] == "Pareto front" and data[1][1] >= 1
        shapes = dev.js(f"document.getElementById('plot-cdf-{key}').layout.shapes"
                        ".map(s => [s.x0, s.x1])")
        assert shapes == [[slo, slo]]  # the runs' slo.{key}_s threshold
        assert dev.js(f"document.getElementById('plot-pareto-{key}').layout.shapes"
                      ".map(s => s.y0)") == [slo]
        # a labelled tick at or below the lowest p99 and at or above the highest
        ticks, ys = dev.js(f"(() => {{ const gd = document.getElementById('plot-pareto-{key}');"
                           " return [gd.layout.yaxis.tickvals, gd.data[0].y]; })()")
        assert min(ticks) <= min(ys) and max(ticks) >= max([*ys, slo]), (ticks, ys)
        # the colour scale spans the runs' SLO attainments (down to a 5 % step), not 0-100 %
        att = [r["slo_attainment"] for r in pq.read_table(dashboard["results"]).to_pylist()
               if r["status"] == "completed"]
        cmin = dev.js(f"document.getElementById('plot-pareto-{key}').data[0].marker.cmin")
        assert cmin == pytest.approx(min(0.95, math.floor(min(att) * 20) / 20))
    titles = dev.js("[...document.querySelectorAll('.ptitle')].map(t => t.textContent)")
    assert "Cost per configuration: total over the trace (USD)" in titles
    assert "Energy per configuration: total over the trace (kWh, facility)" in titles
    assert dev.js("document.getElementById('plot-cost').layout.yaxis.title.text") == (
        "USD, total over the trace")
    check_layout(dev)


def test_a_run_that_dropped_requests_is_flagged_and_off_the_pareto_front(tmp_path, browser):
    """Instance failures with policy=drop: 83 % of the run's requests dropped, its completed
    ones fast. It must not sit on the cost-vs-p99 front as if it served the trace: it is drawn
    as a cross off the front, its hover and CDF legend say how many were dropped, and the CDFs
    say they are of completed requests."""
    sweep = tmp_path / "sweep"
    for name, extra in (("0", ()), ("1", ("failures=random", "failures.mtbf_s=100",
                                          "failures.policy=drop"))):
        p = subprocess.run([sys.executable, "-m", "wrpsim", f"hydra.run.dir={sweep / name}",
                            "sim.progress=false", "workload.max_requests=2000", *extra],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
    s = json.loads((sweep / "1" / "summary.json").read_text())
    assert s["requests_dropped"] > 1000 and s["cost_usd"] < json.loads(
        (sweep / "0" / "summary.json").read_text())["cost_usd"]  # cheaper: it would be on it
    dev = open_dashboard(browser, sweep)
    assert dev.js("JSON.parse(document.getElementById('wrpsim-data').textContent)"
                  ".pareto") == {"ttft": ["0"], "tpot": ["0"]}
    for key in ("ttft", "tpot"):
        data = dev.js(f"document.getElementById('plot-pareto-{key}').data")
        runs = data[0]
        crossed = [t for t, sym in zip(runs["text"], runs["marker"]["symbol"]) if sym == "x"]
        assert len(crossed) == 1 and crossed[0].startswith("#1 ")
        assert (f"{s['requests_dropped']:,} of 2,000 unanswered "
                f"({100 * s['requests_dropped'] / 2000:.1f} %), off the front") in crossed[0]
        assert "dropped requests (off the front)" in [t["name"] for t in data]
        front = next(t for t in data if t["name"] == "Pareto front")
        assert len(front["x"]) == 1
    titles = dev.js("[...document.querySelectorAll('.ptitle')].map(t => t.textContent)")
    assert sum("CDF) of completed requests" in t for t in titles) == 3
    legend = dev.js("document.getElementById('plot-cdf-ttft').data.map(t => t.name)")
    assert any(n.startswith("#1 ") and "unanswered" in n for n in legend)
    assert dev.js("document.getElementById('plot-cdf-ttft').layout.yaxis.title.text") == (
        "fraction of completed requests")
    check_layout(dev)
    assert dev.errors() == []
    # a winner that left requests unanswered: its cross is drawn over its star, not under it
    w = json.loads((sweep / "0" / "summary.json").read_text())
    w["requests_completed"] -= 5
    w["requests_dropped"] = w.get("requests_dropped", 0) + 5
    (sweep / "0" / "summary.json").write_text(json.dumps(w))
    open_dashboard(dev, sweep)
    names = dev.js("document.getElementById('plot-pareto-ttft').data.map(t => t.name)")
    star, cross = names.index("winner"), names.index("winner (dropped requests)")
    assert cross > star  # drawn after, so on top
    assert dev.errors() == []


@pytest.mark.parametrize("values,ticks", [
    ([0.0356, 13.2], ["30 ms", "100 ms", "1 s", "10 s", "20 s"]),  # a TTFT CDF of a review
    ([0.34, 2.0], ["300 ms", "500 ms", "1 s", "2 s"]),
    ([0.0181, 0.0367], ["15 ms", "20 ms", "40 ms"]),
    ([1.0, 100.0], ["1 s", "2 s", "5 s", "10 s", "20 s", "50 s", "100 s"]),
    ([1e-5, 1e3], ["10 µs", "100 µs", "1 ms", "10 ms", "100 ms", "1 s", "10 s", "100 s",
                   "1000 s"]),
])
def test_log_axis_ticks_are_1_2_5_and_bracket_the_values(tmp_path, browser, values, ticks):
    """plotstyle's logAxisOf (docs/sweeps.md): 1-2-5 ticks (one per decade over more than 2.2
    decades), always a labelled tick at or below the smallest value and at or above the largest,
    and the axis range past both."""
    from wrpsim.report import plotstyle

    page = tmp_path / "axis.html"
    page.write_text(f"<html><body><script>{plotstyle.JS}</script></body></html>")
    dev = browser
    dev.call("Page.navigate", url=page.as_uri())
    dev.wait("typeof logAxisOf === 'function'")
    axis = dev.js(f"logAxisOf({json.dumps(values)}, [], 's')")
    assert axis["ticktext"] == ticks
    vals = axis["tickvals"]
    assert vals[0] <= min(values) and vals[-1] >= max(values)
    lo, hi = axis["range"]
    assert lo < math.log10(vals[0]) and hi > math.log10(vals[-1])
    # no tick in the axis's outer 4 %, where it would meet the other axis's labels
    assert all(lo + 0.04 * (hi - lo) <= math.log10(v) <= hi - 0.04 * (hi - lo) for v in vals)


def test_a_sweep_whose_every_run_failed_lists_them_in_the_winner_box(tmp_path, browser):
    """No completed run: the box says there is no winner and names the runs that failed (the
    docs promise the box lists what it left out)."""
    sweep = tmp_path / "sweep"
    p = sweep_of(sweep, "workload.max_requests=20", "pool.pools.h100.gpu=a10g-24gb,l4-24gb")
    assert (sweep / "0" / "error.json").is_file() and (sweep / "1" / "error.json").is_file(), \
        p.stderr
    dev = open_dashboard(browser, sweep)
    box = dev.js("document.getElementById('winner').textContent")
    assert box.startswith("No completed run: no winner.Not completed: 0 (failed")
    assert ", 1 (failed" in box
    assert dev.errors() == []


def test_a_sweep_over_a_gpu_without_kernel_tables_says_uncalibrated_everywhere(tmp_path,
                                                                               browser):
    """A planner comparing GPUs in a sweep sees which runs are roofline estimates: the line each
    run prints, the closing table's note and winner line, and the dashboard's table row and
    winner box ("uncalibrated: roofline", as a single run's summary says it)."""
    sweep = tmp_path / "sweep"
    p = sweep_of(sweep, "workload.max_requests=200", "pool.pools.h100.gpu=mi300x-192gb,h100-80gb")
    assert p.returncode == 0, p.stderr
    err = p.stderr.splitlines()
    run0 = next(x for x in err if x.startswith("wrpsim: run    0 "))
    run1 = next(x for x in err if x.startswith("wrpsim: run    1 "))
    assert run0.endswith("| uncalibrated: roofline (h100)") and "uncalibrated" not in run1
    assert "  run 0: uncalibrated: roofline (h100): no kernel measurements for that GPU" in \
        p.stderr
    best = next(x for x in err if x.startswith("best SLO attainment"))
    won = best.split(": run ")[1].split(" ")[0]  # whichever wins, its line says what it is
    assert ("uncalibrated: roofline (h100)" in best) == (won == "0")
    dev = open_dashboard(browser, sweep)
    data = dev.js("JSON.parse(document.getElementById('wrpsim-data').textContent)")
    assert {r["run"]: r["uncalibrated"] for r in data["runs"]} == {"0": ["h100"], "1": []}
    cells = dev.js("[...document.querySelectorAll('#runs tbody tr td:first-child')]"
                   ".map(td => td.textContent)")
    assert any(c.startswith("0") and "(uncalibrated: roofline: h100)" in c for c in cells)
    assert not any(c.startswith("1") and "uncalibrated" in c for c in cells)
    box = dev.js("document.getElementById('winner').textContent")
    assert ("Uncalibrated: roofline for pool(s) h100" in box) == (won == "0")
    assert dev.errors() == []


def test_runs_with_no_or_one_completed_request_and_a_single_cost_are_drawn(tmp_path, browser):
    """Edge cases of the views: a completed run none of whose requests completed (the horizon
    cut them off) is named in the Pareto and CDF legends instead of vanishing; a run with one
    completed request shows its one CDF point as a marker (a line through one point draws
    nothing); and a cost axis with one cost spans 0 to past it, never negative dollars."""
    sweep = tmp_path / "sweep"
    p = sweep_of(sweep, "workload.max_requests=1", "sim.horizon_s=0.01,1000")
    assert p.returncode == 0, p.stderr
    s0 = json.loads((sweep / "0" / "summary.json").read_text())
    s1 = json.loads((sweep / "1" / "summary.json").read_text())
    assert s0["requests_completed"] == 0 and s1["requests_completed"] == 1
    dev = open_dashboard(browser, sweep)
    for key in ("ttft", "tpot"):
        data = dev.js(f"document.getElementById('plot-pareto-{key}').data")
        assert "no completed request, not drawn: #0" in [t["name"] for t in data]
        assert data[0]["x"] == [s1["cost_usd"]]
        lo, hi = dev.js(f"document.getElementById('plot-pareto-{key}')._fullLayout.xaxis.range")
        assert lo == 0 and hi == pytest.approx(1.25 * s1["cost_usd"])
    for key in ("ttft", "tpot", "e2e"):
        data = dev.js(f"document.getElementById('plot-cdf-{key}').data")
        by_run = {t["name"].split(" ")[0]: t for t in data if t["name"].startswith("#")}
        assert "no completed request" in by_run["#0"]["name"]
        assert by_run["#1"]["mode"] == "markers" and by_run["#1"]["y"] == [1]
        assert by_run["#1"]["x"] == [pytest.approx(s1[f"{key}_p99_s"], rel=1e-5)]
    check_layout(dev)
    assert dev.errors() == []


def test_long_run_names_and_many_runs_keep_every_plot_usable(tmp_path, browser):
    """Runs named by their overrides (`hydra.sweep.subdir=${hydra.job.override_dirname}`, as
    docs/sweeps.md suggests for growing a sweep) broke the page (Plotly threw in its axis
    layout and the table stayed empty) and eight runs' legends squeezed the CDFs to a few
    pixels. Now bars are labelled by a short tag, the table names the run in full, and a
    figure grows with its legend."""
    sweep = tmp_path / "sweep"
    p = subprocess.run([sys.executable, "-m", "wrpsim", "-m", f"hydra.sweep.dir={sweep}",
                        "hydra.sweep.subdir=${hydra.job.override_dirname}",
                        "sim.progress=false", "workload.max_requests=60",
                        "router=round-robin,least-outstanding", "workload.rate_scale=1,2,3,4"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    dev = open_dashboard(browser, sweep)
    assert dev.errors() == []
    rows = dev.js("[...document.querySelectorAll('#runs tbody tr')].map(t => t.cells[0]"
                  ".textContent)")
    assert len(rows) == 8 and all(t.startswith("router=") and "(#" in t for t in rows)
    for pid in ("cdf-ttft", "cdf-tpot", "insys", "cost", "mix"):
        h = dev.js(f"document.getElementById('plot-{pid}')._fullLayout._size.h")
        assert h >= 150, (pid, h)
    ticks = dev.js("document.getElementById('plot-cost').data[0].x")
    assert sorted(ticks) == sorted(f"#{i}…" for i in range(1, 9))
    check_layout(dev)


def test_costs_within_a_few_percent_are_not_spread_over_the_whole_axis(dashboard, browser,
                                                                      tmp_path):
    """Two routers on one fleet cost within cents of each other; the Pareto plots' cost axis
    spanned those cents (62.6828–62.6836 USD), drawing a front across what the winner rule
    calls a tie (new-user walkthrough, 2026-12-07). It spans at least 4 % of the cost. (The
    module sweep's two completed runs at rate_scale 1, its two routers, are such a pair.)"""
    import shutil

    import yaml

    sweep = Path(dashboard["dashboard"]).parent
    pair = [d for d in sorted(sweep.iterdir()) if (d / "summary.json").is_file()
            and yaml.safe_load((d / "config.yaml").read_text())["workload"]["rate_scale"] == 1]
    assert len(pair) == 2
    for d in pair:
        shutil.copytree(d, tmp_path / d.name)
    costs = [json.loads((d / "summary.json").read_text())["cost_usd"] for d in pair]
    assert abs(costs[0] - costs[1]) < 0.04 * max(costs)
    dev = open_dashboard(browser, tmp_path)
    for key in ("ttft", "tpot"):
        lo, hi = dev.js(f"document.getElementById('plot-pareto-{key}')._fullLayout.xaxis.range")
        assert hi - lo >= 0.04 * max(costs) - 1e-9 and lo <= min(costs) and hi >= max(costs)
    assert dev.errors() == []
