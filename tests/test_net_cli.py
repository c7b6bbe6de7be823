"""`python -m wrpsim.net key=value ...`: files, one JSON summary line, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from wrpsim.errors import ConfigError
from wrpsim.net import main, parse_args, parse_bytes, run
from wrpsim.network.records import FLOW_SCHEMA, LINK_SCHEMA

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"cct_s", "ideal_cct_s", "max_link_load", "data_packets", "out_of_order_packets",
        "sim_wall_s"}


def cli(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, "-m", "wrpsim.net", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_contract_example_packet(tmp_path):
    r = cli("pattern=permutation", "leaves=4", "hosts_per_leaf=4", "spines=4", "link_gbps=400",
            "flow_bytes=1MiB", "lb=ecmp", "engine=packet", "seed=1", f"out_dir={tmp_path}")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert KEYS <= set(out)
    assert out["data_packets"] >= 16 * 256 and out["cct_s"] >= out["ideal_cct_s"] > 0
    flows = pq.read_table(tmp_path / "flows.parquet")
    links = pq.read_table(tmp_path / "links.parquet")
    assert flows.schema.equals(FLOW_SCHEMA, check_metadata=True) and flows.num_rows == 16
    assert links.schema.equals(LINK_SCHEMA) and links.num_rows == 2 * 16 + 2 * 16
    assert json.loads((tmp_path / "summary.json").read_text())["cct_s"] == out["cct_s"]
    assert max(flows.column("finish_s").to_pylist()) == out["cct_s"]


@pytest.mark.parametrize("pattern, lb, extra", [
    ("all_to_all", "ecmp_subflows", ["subflows=2"]), ("ring_allreduce", "spray", []),
    ("permutation", "split", ["oversubscription=2"])])
def test_patterns_and_modes_in_process(tmp_path, pattern, lb, extra, capsys):
    rc = main([f"pattern={pattern}", f"lb={lb}", "leaves=3", "hosts_per_leaf=2", "spines=2",
               "flow_bytes=65536", f"out_dir={tmp_path}", *extra])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["pattern"] == pattern and out["lb"] == lb and out["engine"] == "fluid"
    assert out["data_packets"] is None and out["cct_s"] > 0
    if lb == "split":
        assert out["max_link_load"] == pytest.approx(1.0)


def test_default_out_dir_is_dated(tmp_path):
    r = cli("leaves=2", "hosts_per_leaf=2", "spines=2", "flow_bytes=4KiB", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    parts = Path(out["out_dir"]).parts
    assert parts[:2] == ("results", "net") and len(parts) == 4
    assert (tmp_path / out["out_dir"] / "flows.parquet").is_file()


def test_runs_in_the_same_second_get_their_own_default_folders(tmp_path, monkeypatch):
    """Two runs started in one second used to share results/net/<date>/<H-M-S> and overwrite
    each other's files; the second (and third) now take <H-M-S>-1 (-2), created atomically."""
    import time

    from wrpsim.io import fresh_dir

    monkeypatch.chdir(tmp_path)
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now)  # every run in this test starts in one second
    args = ["leaves=2", "hosts_per_leaf=2", "spines=2", "flow_bytes=4KiB"]
    outs = [Path(run(parse_args([*args, f"seed={s}"]))["out_dir"]) for s in range(3)]
    stamp = time.strftime("%H-%M-%S", time.localtime(now))
    assert [p.name for p in outs] == [stamp, f"{stamp}-1", f"{stamp}-2"]
    assert len({p.parent for p in outs}) == 1
    seeds = [json.loads((p / "summary.json").read_text())["seed"] for p in outs]
    assert seeds == [0, 1, 2]                     # nothing overwritten
    assert fresh_dir("results/net", "out_dir", now).name == f"{stamp}-3"



def test_drop_if_empty_removes_only_the_empty_folders_fresh_dir_made(tmp_path, monkeypatch):
    """Bad input found after a default folder was made leaves nothing behind: the folder and
    the ones above it `fresh_dir` created, each only while empty; a folder that was there
    before (the user's results/) stays."""
    from wrpsim.io import drop_if_empty, fresh_dir

    monkeypatch.chdir(tmp_path)
    out = fresh_dir("results/net", "out_dir")
    drop_if_empty(out)
    assert list(tmp_path.iterdir()) == []  # results/, results/net/, the date and time folders
    (tmp_path / "results").mkdir()
    out = fresh_dir("results/net", "out_dir")
    drop_if_empty(out)
    assert [p.name for p in tmp_path.iterdir()] == ["results"]
    assert list((tmp_path / "results").iterdir()) == []  # its net/ (made here) went
    out = fresh_dir("results/net", "out_dir")
    (out / "summary.json").write_text("{}")  # a command that wrote something keeps it all
    drop_if_empty(out)
    assert (out / "summary.json").is_file()

@pytest.mark.parametrize("args, pattern", [
    (["colour=red"], r"unknown key 'colour'; valid keys: ack_bytes, .*lb, .*seed"),
    (["fail_links=1"], r"^net: unknown key 'fail_links'; valid keys: .*; "
                       r"did you mean 'failed_links'\?$"),
    (["lb=ecnp"], r"^lb: unknown value 'ecnp'; valid choices: bitmap, ecmp, ecmp_subflows, "
                  r"flowlet, reps, split, spray"),
    (["transport=tcp"], r"^transport: unknown value 'tcp'; valid choices: dctcp, roce, uec"),
    (["engine=ns3"], r"engine: unknown value 'ns3'; valid choices: fluid, packet"),
    (["pattern=ring"], r"pattern: unknown value 'ring'; valid choices: all_to_all, allgather, "
                       r"allreduce_ring, allreduce_tree, alltoall, permutation, reducescatter, "
                       r"ring_allreduce"),
    (["flow_bytes=4XB"], r"flow_bytes must be a byte count like 4194304 or 4MiB"),
    # keys named as typed on this command line (lb=, failed_links=), not net.<key>
    (["failed_links=x"], r"^failed_links must be a list of links like"),
    (["rail_optimized=maybe"], r"^rail_optimized must be true or false, got 'maybe'$"),
    (["link_gbps=0"], r"^link_gbps must be a finite number in \[1e-06, 1e\+06\] \(Gb/s\), "
                      r"got 0$"),
    (["link_gbps=inf"], r"^link_gbps must be a finite number in \[1e-06, 1e\+06\]"),
    (["engine=packet", "rto_us=inf"], r"^rto_us must be a finite number in \(0, 1e\+09\]"),
    (["engine=packet", "buffer_bdp=0.001"], r"^buffer_bdp must give every switch port a buffer "
                                            r"of at least one packet"),
    (["leaves=1"], r"pattern=permutation needs leaves >= 2"),
    # a load balancer's own key under another lb (subflows=8 alone ran plain ECMP)
    (["subflows=8"], r"^subflows applies only to lb=ecmp_subflows; with lb=ecmp it changes "
                     r"nothing \(set lb=ecmp_subflows too, or leave subflows out\)$"),
    (["engine=packet", "lb=spray", "reps_buffer=4"], r"^reps_buffer applies only to lb=reps; "),
    # how a packet is sprayed: the fluid engine splits a sprayed flow evenly
    (["lb=spray", "spray=random"], r"^spray applies to the packet engine \(engine=packet\)"),
    (["seed=abc"], r"seed must be an integer"),
    (["seed=-1"], r"^net: seed must be an integer >= 0, got -1$"),
    (["flow_bytes=1.5"], r"^flow_bytes must be a whole number of bytes like 4194304 or a size "
                         r"like 4MiB, got 1\.5$"),
    (["flow_bytes=0.5B"], r"^flow_bytes must be a whole number of bytes"),
    (["pattern=all_to_all", "leaves=1", "hosts_per_leaf=1", "spines=1"],
     r"^pattern=all_to_all needs at least 2 endpoints \(leaves x hosts_per_leaf\), got 1$"),
    (["pattern=ring_allreduce", "leaves=1", "hosts_per_leaf=1", "spines=1"],
     r"^pattern=ring_allreduce needs at least 2 endpoints"),
    (["pattern=alltoall", "leaves=1", "hosts_per_leaf=1", "spines=1"],
     r"^group=spread: a collective needs at least 2 endpoints and this fabric has 1"),
    (["engine=packet", "buffer_bytes=1"],
     r"^buffer_bytes must hold at least one packet \(mtu_bytes \+ header_bytes = 4160\), "
     r"got 1$"),
    (["leaves=100000", "hosts_per_leaf=1000", "spines=1000"],
     r"^net: leaves x hosts_per_leaf = 100,000,000 endpoints; at most 262,144$"),
    (["leaves=2048", "hosts_per_leaf=2", "spines=1024"],
     r"^net: leaves x spines = 2,097,152 leaf-spine links; at most 1,048,576$"),
    # a packet-engine key under the fluid engine changed nothing, silently
    (["engine=fluid", "transport=dctcp"],
     r"^transport applies to the packet engine \(engine=packet\); the fluid engine models "
     r"flows, not packets, and would ignore it"),
    (["mtu_bytes=1500"], r"^mtu_bytes applies to the packet engine"),
    # true and false compare equal to the defaults 1 and 0.0: they passed as 'not set' where
    # the pattern does not read the key (tests/test_fuzz_verbs.py)
    (["chunks=true"], r"^chunks applies only to pattern allreduce_tree; got chunks=True with "
                      r"pattern=permutation$"),
    (["alpha_us=false"], r"^alpha_us applies only to the collective patterns .*; got "
                         r"alpha_us=False with pattern=permutation$"),
])
def test_bad_input_one_line_status_2(args, pattern, tmp_path):
    with pytest.raises(ConfigError, match=pattern):
        run(parse_args([*args, f"out_dir={tmp_path}"]))


@pytest.mark.parametrize("arg, start", [
    ("lb=nope", "wrpsim: error: lb: unknown value 'nope'; valid choices: bitmap, ecmp"),
    ("transport=tcp", "wrpsim: error: transport: unknown value 'tcp'; valid choices: dctcp, "
                      "roce, uec")])
def test_bad_input_exit_code(arg, start):
    r = cli(arg)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith(start)
    assert len(r.stderr.strip().splitlines()) == 1


def test_out_dir_that_cannot_be_made_is_one_line(tmp_path):
    """An `out_dir` under a file stops before the scenario runs, naming the key."""
    (tmp_path / "f").write_text("x")
    r = cli("leaves=2", "hosts_per_leaf=2", "spines=2", f"out_dir={tmp_path / 'f' / 'sub'}")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith(f"wrpsim: error: out_dir: cannot create the folder "
                               f"'{tmp_path / 'f' / 'sub'}': ")
    assert len(r.stderr.strip().splitlines()) == 1


def test_parse_bytes():
    assert parse_bytes("4MiB") == 4 * 2**20 and parse_bytes(4096) == 4096
    assert parse_bytes("1.5 GB") == 1_500_000_000 and parse_bytes("512KiB") == 524288
    assert parse_bytes(4096.0) == 4096 and parse_bytes("1.5MiB") == 1_572_864
    assert parse_bytes(str(2**50)) == 2**50
    assert parse_bytes("1PiB") == 2**50 and parse_bytes("1TiB") == 2**40
    assert parse_bytes("1TB") == 10**12 and parse_bytes("1PB") == 10**15
    # an OverflowError deep in the engines before
    for big in (1e300, "2000000GiB", 2**50 + 1, "2PiB", "1.2PB"):
        with pytest.raises(ConfigError, match=r"^flow_bytes must be between 1 byte and 1 PiB "
                                              r"\(1,125,899,906,842,624\), got "):
            parse_bytes(big)
    with pytest.raises(ConfigError):
        parse_bytes(0)


@pytest.mark.parametrize("args, packets", [
    (["flow_bytes=1000000000000000"], "976,562,500,000"),   # a MemoryError before
    (["flow_bytes=1e12"], "976,562,500"),                   # hours before
    (["mtu_bytes=1", "flow_bytes=1GiB"], "4,294,967,296"),
])
def test_packet_runs_too_large_are_one_line(args, packets):
    """The packet engine refuses a run of more than 2^25 data packets (minutes of wall time)
    before it starts, naming flow_bytes and mtu_bytes; the fluid engine takes the same run."""
    r = cli("leaves=2", "hosts_per_leaf=2", "spines=2", "engine=packet", *args)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith(f"wrpsim: error: flow_bytes / mtu_bytes: the 4 fabric flows of "
                               f"permutation are {packets} packets at mtu_bytes=")
    assert "engine=packet takes at most 33,554,432 (2^25) per run" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_fluid_runs_of_too_many_flows_are_one_line():
    """The fluid engine refuses more than 2^18 fabric flows (an all-to-all of 4,096 hosts,
    16.7 M flows, filled 24 GiB and was killed) before it rates them, naming the pattern."""
    r = cli("pattern=all_to_all", "leaves=32", "hosts_per_leaf=32", "spines=2")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("wrpsim: error: pattern: the 1,047,552 fabric flows of "
                               "all_to_all are more than engine=fluid takes in one run (262,144")
    assert len(r.stderr.strip().splitlines()) == 1


def test_the_packet_limit_counts_every_fabric_flow():
    """2^25 packets in all: 4 flows of 2^23 packets fit, 4 of 2^23 + 1 do not; the fluid
    engine has no packet limit."""
    from wrpsim.net import net_config
    from wrpsim.network.config import MAX_PACKETS, check_packets

    fabric = ["leaves=2", "hosts_per_leaf=2", "spines=2"]
    packet = net_config(parse_args([*fabric, "engine=packet", "mtu_bytes=1048576"]))
    check_packets(packet, [MAX_PACKETS // 4 * 2**20] * 4)
    with pytest.raises(ConfigError, match=r"are 33,554,436 packets at mtu_bytes=1048576"):
        check_packets(packet, [(MAX_PACKETS // 4 + 1) * 2**20] * 4)
    check_packets(net_config(parse_args(fabric)), [2**50] * 4)


def test_carried_ratio_shows_what_the_packets_did_where_offered_load_cannot(tmp_path):
    """max_link_load spreads a sprayed connection's offered bytes evenly, so it reads 1.0 for
    packet spraying; max_link_carried_ratio is the busiest working fabric port's carried bytes
    over the mean: 1.0 for the fluid engine's ideal spray and for split, above for hashed
    spraying on packets, far above for ECMP."""
    def net(engine, lb):
        return run(parse_args([f"engine={engine}", f"lb={lb}", "leaves=4", "hosts_per_leaf=4",
                               "spines=4", "flow_bytes=1MiB", f"out_dir={tmp_path / lb}"]))

    fluid = net("fluid", "spray")
    assert fluid["max_link_carried_ratio"] == pytest.approx(1.0)
    spray, split, ecmp = (net("packet", lb) for lb in ("spray", "split", "ecmp"))
    assert spray["max_link_load"] == pytest.approx(1.0)
    assert spray["max_link_carried_ratio"] > 1.02
    assert split["max_link_carried_ratio"] == pytest.approx(1.0, abs=0.02)
    assert ecmp["max_link_carried_ratio"] > spray["max_link_carried_ratio"]
