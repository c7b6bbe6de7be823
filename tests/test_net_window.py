"""`network.packet_window`: transfers starting inside [t0, t1) run on the packet engine, the
others on the fluid engine (wrpsim/network/transfer.py docstring)."""

from __future__ import annotations

import math

import pytest
import simpy

from tests.conftest import fabric_transfers
from wrpsim.errors import ConfigError, WrpsimWarning
from wrpsim.network.config import NetConfig

MIB = 1 << 20
SMALL = {"leaves": 2, "hosts_per_leaf": 4, "spines": 2, "gpus_per_host": 1, "host_gbps": 400,
         "prop_delay_ns": 1000}
# (start s, src GPUs, dst GPUs, bytes, name): overlapping pairs on shared links at 0 and 2 s,
# a lone transfer at 1 s and a tensor-parallel one at 3 s
PLAN = [(0.0, [0], [4], 2 * MIB, "a"), (0.0, [1], [4], MIB, "b"),
        (1.0, [2], [5], MIB, "c"),
        (2.0, [0], [4], MIB, "d"), (2.0, [1], [4], 2 * MIB, "e"),
        (3.0, [0, 1], [6, 7], 3 * MIB, "f")]


def run(kind, plan=PLAN, **kw):
    """Finish time of every transfer of `plan`, and the fabric."""
    return fabric_transfers({"kind": kind, **SMALL, **kw}, plan)


def without_window_keys(stats: dict) -> dict:
    return {k: v for k, v in stats.items() if k not in ("kind", "packet_window",
                                                        "window_transfers")}


def test_window_over_the_whole_run_is_the_packet_engine():
    out, f = run("fluid", packet_window=[0, math.inf])
    ref, p = run("packet")
    assert out == ref
    assert without_window_keys(f.stats()) == without_window_keys(p.stats())
    assert f.stats()["window_transfers"] == len(PLAN)
    assert len(f.engine.start_s) == 0  # the fluid engine carried nothing


def test_window_no_transfer_starts_in_is_the_fluid_engine():
    out, f = run("fluid", packet_window=[10.0, 20.0])
    ref, g = run("fluid")
    assert out == ref
    assert without_window_keys(f.stats()) == {
        **without_window_keys(g.stats()), "data_packets": 0, "retransmits": 0, "drops": 0,
        "trims": 0, "ecn_marks": 0, "control_packets": 0, "out_of_order_packets": 0,
        "max_reorder_distance": 0}
    assert f.stats()["window_transfers"] == 0
    assert list(f._carried()) == g.engine.port_bytes.tolist()


def test_window_transfers_are_packets_and_the_rest_stays_fluid():
    """Window [1.5, 2.5): the pair at 2 s runs as packets (exactly as on a packet fabric carrying
    only them), everything else exactly as on the all-fluid fabric: no transfer of one engine
    overlaps one of the other here, so the cross-engine coupling changes nothing."""
    out, f = run("fluid", packet_window=[1.5, 2.5])
    fluid, _ = run("fluid")
    inside = [x for x in PLAN if 1.5 <= x[0] < 2.5]
    packet, _ = run("packet", plan=inside)
    assert {k: out[k] for k in "abcf"} == {k: fluid[k] for k in "abcf"}
    assert {k: out[k] for k in "de"} == packet
    assert out["d"] != fluid["d"]  # packets: headers, ACKs and path latency
    st = f.stats()
    assert st["window_transfers"] == 2 and st["packet_window"] == [1.5, 2.5]
    assert st["data_packets"] >= 3 * MIB // 4096 and st["flows_completed"] == 7
    # per-port bytes are both engines' together
    assert sum(f._carried()) == pytest.approx(
        sum(f.engine.port_bytes) + sum(f.wengine.pbytes), rel=1e-12)


def test_a_fluid_transfer_straddling_t0_slows_a_window_transfer_on_its_link():
    """Fluid `a` (0 s, 8 MiB to host 4) still runs when window transfer `b` (1 MiB, host 1 to
    host 4) starts at t0 = 50 us: they share host 4's downlink, so b's packets see a's fluid
    rate as background and a sees b's phantom (crosstraffic.py): both slower than alone."""
    t0 = 50e-6
    a, b = (0.0, [0], [4], 8 * MIB, "a"), (t0, [1], [4], MIB, "b")
    out, f = run("fluid", plan=[a, b], packet_window=[t0, 1.0])
    alone_b, _ = run("packet", plan=[b])
    alone_a, _ = run("fluid", plan=[a])
    assert out["b"] - t0 > 1.6 * (alone_b["b"] - t0)  # about half the link: 46.8 vs 25.5 us
    assert out["a"] > alone_a["a"] + 0.9 * MIB * 8 / 400e9  # b's bytes took a's share
    assert out["a"] > out["b"] > t0
    assert not f.cross.phantom and not f.engine._conns  # every phantom removed at its end
    assert f.engine.port_max_conns[f.topo.n + 4] == 1  # phantoms are not fluid connections
    # the port's bytes: a's as a fluid, b's packets with their 64-byte headers, nothing twice
    assert list(f._carried())[f.topo.n + 4] == pytest.approx(9 * MIB + MIB // 4096 * 64,
                                                              rel=1e-9)


def test_a_window_transfer_running_after_t1_slows_a_new_fluid_one():
    """Window transfer `a` (8 MiB, started at 0, window [0, 1 us)) still runs when fluid `b`
    (1 MiB, same downlink) starts at 20 us: b gets half the link while a runs."""
    a, b = (0.0, [0], [4], 8 * MIB, "a"), (20e-6, [1], [4], MIB, "b")
    out, f = run("fluid", plan=[a, b], packet_window=[0.0, 1e-6])
    alone_a, _ = run("packet", plan=[a])
    alone_b, _ = run("fluid", plan=[b])
    assert out["b"] - 20e-6 == pytest.approx(2 * (alone_b["b"] - 20e-6), rel=1e-9)
    assert out["a"] > alone_a["a"] + 0.9 * MIB * 8 / 400e9
    assert f.stats()["window_transfers"] == 1


def test_window_takes_transfers_by_start_time_half_open():
    """A transfer starting at t0 is in the window, one starting at t1 is not; one started
    inside keeps its engine after t1."""
    plan = [(1.0, [0], [4], 8 * MIB, "at_t0"), (2.0, [1], [5], MIB, "at_t1")]
    out, f = run("fluid", plan=plan, packet_window=[1.0, 1.0001])
    assert f.stats()["window_transfers"] == 1
    assert len(f.engine.start_s) == 1 and len(f.wengine.conns) == 1
    assert out["at_t0"] > 1.0001  # finished as packets after the window closed
    fluid, _ = run("fluid", plan=plan)
    assert out["at_t1"] == fluid["at_t1"]


def test_fleet_run_with_a_window_writes_both_engines_figures(tmp_path):
    """A disaggregated fleet: a window over the whole run gives network=packet's requests and
    figures; a window after the last transfer gives network=fluid's, byte for byte."""
    import json

    from tests.conftest import compose_cfg
    from wrpsim.sim import run as run_sim

    base = ("pool=h100-llama70b-disagg", "workload.max_requests=4",
            "pool.pools.prefill.model=llama3.1-8b", "pool.pools.decode.model=llama3.1-8b")
    runs = {}
    for name, extra in (("whole", ("network=fluid", "network.packet_window=[0,1e9]")),
                        ("packet", ("network=packet",)),
                        ("late", ("network=fluid", "network.packet_window=[1e8,1e9]")),
                        ("fluid", ("network=fluid",))):
        if name == "late":  # the packet engine never runs: the run says so
            with pytest.warns(WrpsimWarning, match=r"network.packet_window=\[1e\+08, 1e\+09\]: "
                              r"it starts after the run ended .* every transfer was fluid"):
                run_sim(compose_cfg(*base, *extra), tmp_path / name)
        else:
            run_sim(compose_cfg(*base, *extra), tmp_path / name)
        runs[name] = tmp_path / name
    same = ("requests.parquet", "instances.parquet")
    for a, b in (("whole", "packet"), ("late", "fluid")):
        for fn in same:
            assert (runs[a] / fn).read_bytes() == (runs[b] / fn).read_bytes(), (a, b, fn)
    whole = json.loads((runs["whole"] / "network.json").read_text())
    packet = json.loads((runs["packet"] / "network.json").read_text())
    assert whole["packet_window"] == [0, 1e9] and whole["window_transfers"] == 8
    assert without_window_keys(whole) == without_window_keys(packet)
    late = json.loads((runs["late"] / "network.json").read_text())
    fluid = json.loads((runs["fluid"] / "network.json").read_text())
    assert late["window_transfers"] == 0 and late["data_packets"] == 0
    assert {k: late[k] for k in fluid} == fluid
    # network.parquet: the fluid columns as network=fluid's; the packet engine's at 0, not null
    import pyarrow.parquet as pq

    lt, fl = (pq.read_table(runs[n] / "network.parquet") for n in ("late", "fluid"))
    packet_cols = ("max_queue_bytes", "drops", "trims", "ecn_marks")
    for name in fl.column_names:
        if name in packet_cols:
            assert fl.column(name).null_count == len(fl)
            assert set(lt.column(name).to_pylist()) == {0}
        else:
            assert lt.column(name).equals(fl.column(name)), name


@pytest.mark.parametrize("end", ["inf", ".inf"])
def test_open_ended_window_runs_and_writes_its_end_as_null(tmp_path, end):
    """`[t0, inf]` (and YAML's `.inf`, text on a command line) is an open-ended window: the run
    finishes, and network.json (JSON has no infinity) writes the end as null, with the same
    requests as a window ending after the run."""
    import json

    from tests.conftest import compose_cfg
    from wrpsim.sim import run as run_sim

    base = ("pool=h100-llama70b-disagg", "workload.max_requests=4", "network=fluid",
            "pool.pools.prefill.model=llama3.1-8b", "pool.pools.decode.model=llama3.1-8b")
    run_sim(compose_cfg(*base, f"network.packet_window=[0,{end}]"), tmp_path / "open")
    run_sim(compose_cfg(*base, "network.packet_window=[0,1e9]"), tmp_path / "closed")
    net = json.loads((tmp_path / "open" / "network.json").read_text())
    assert net["packet_window"] == [0, None] and net["window_transfers"] > 0
    assert ((tmp_path / "open" / "requests.parquet").read_bytes()
            == (tmp_path / "closed" / "requests.parquet").read_bytes())


@pytest.mark.parametrize("value", [[2.0, 1.0], [1.0, 1.0], [-1.0, 2.0], ["a", "b"], [1.0],
                                   5, [1.0, math.nan], [math.inf, math.inf], [True, 2]])
def test_bad_windows_name_the_field_and_the_valid_form(value):
    with pytest.raises(ConfigError, match=r"^network\.packet_window must be null or \[t0, t1\], "
                                          r"simulated seconds with 0 <= t0 < t1 "
                                          r"\(t1 may be inf\), got "):
        NetConfig.from_dict({"kind": "fluid", "packet_window": value})


@pytest.mark.parametrize("kind", ["packet", "none"])
def test_window_needs_the_fluid_engine(kind):
    with pytest.raises(ConfigError, match=f"^network.packet_window needs kind fluid .*got kind "
                                          f"{kind}$"):
        NetConfig.from_dict({"kind": kind, "packet_window": [0, 1]})


def test_window_without_a_fabric_is_an_unknown_key():
    from wrpsim.sim import build_transfer

    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['packet_window'\]; valid keys: "
                                          r"kind, nic_gbps"):
        build_transfer(simpy.Environment(), {"kind": "none", "packet_window": [0, 1]})
