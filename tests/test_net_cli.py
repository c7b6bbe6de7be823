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


@pytest.mark.parametrize("args, pattern", [
    (["colour=red"], r"unknown key 'colour'; valid keys: ack_bytes, .*lb, .*seed"),
    (["lb=ecnp"], r"net\.lb: unknown value 'ecnp'; valid choices: bitmap, ecmp, ecmp_subflows, "
                  r"flowlet, reps, split, spray"),
    (["transport=tcp"], r"net\.transport: unknown value 'tcp'; valid choices: dctcp, roce, uec"),
    (["engine=ns3"], r"engine: unknown value 'ns3'; valid choices: fluid, packet"),
    (["pattern=ring"], r"pattern: unknown value 'ring'; valid choices: all_to_all, allgather, "
                       r"allreduce_ring, allreduce_tree, alltoall, permutation, reducescatter, "
                       r"ring_allreduce"),
    (["flow_bytes=4XB"], r"flow_bytes must be a byte count like 4194304 or 4MiB"),
    (["link_gbps=0"], r"net\.link_gbps must be a number > 0, got 0"),
    (["leaves=1"], r"pattern=permutation needs leaves >= 2"),
    (["seed=abc"], r"seed must be an integer"),
])
def test_bad_input_one_line_status_2(args, pattern, tmp_path):
    with pytest.raises(ConfigError, match=pattern):
        run(parse_args([*args, f"out_dir={tmp_path}"]))


@pytest.mark.parametrize("arg, start", [
    ("lb=nope", "wrpsim: error: net.lb: unknown value 'nope'; valid choices: bitmap, ecmp"),
    ("transport=tcp", "wrpsim: error: net.transport: unknown value 'tcp'; valid choices: dctcp, "
                      "roce, uec")])
def test_bad_input_exit_code(arg, start):
    r = cli(arg)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith(start)
    assert len(r.stderr.strip().splitlines()) == 1


def test_parse_bytes():
    assert parse_bytes("4MiB") == 4 * 2**20 and parse_bytes(4096) == 4096
    assert parse_bytes("1.5 GB") == 1_500_000_000 and parse_bytes("512KiB") == 524288
    with pytest.raises(ConfigError):
        parse_bytes(0)
