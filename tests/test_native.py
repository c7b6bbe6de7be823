"""The event loop's optional compiled modules (`wrpsim._native`, `setup.py`): the `.pxd`
declarations match the classes' slots, the choice between compiled and pure Python is all or
none and never runs a stale extension, and both ways simulate byte-identical results."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import wrpsim
from wrpsim import _native
from wrpsim.eventloop import Arrivals
from wrpsim.metrics.qoe import QoEMeter
from wrpsim.pool.instance import Instance
from wrpsim.pool.kernels.model import KernelLatency
from wrpsim.pool.kvcache import KVLedger
from wrpsim.pool.latency import LatencyModel
from wrpsim.pool.sequence import Seq
from wrpsim.pool.wakeup import JoinedWakeup, Wakeup

ROOT = Path(__file__).resolve().parent.parent


def _declared(pxd: str, cls: str) -> set:
    text = (ROOT / pxd).read_text()
    body = text.split(f"cdef class {cls}")[1].split("\ncdef class")[0]
    return set(re.findall(r"cdef public (?:object|double|long long|Py_ssize_t|bint|KVLedger|"
                          r"dict|list) (\w+)\n", body))


#: the attributes declared with a C type (the rest hold Python objects); each is shown, in the
#: `.pxd`, never to hold a value whose type a C number would change (an int 0 where 0.0 is
#: written out, None, a float where an int is counted)
C_TYPED = {
    "AccountingMixin": {"_t0": "double", "_dur": "double", "_power": "double",
                        "busy_s": "double", "energy_j": "double", "_c_cum": "double",
                        "_e_cum": "double", "_in_area": "double", "_in_t": "double",
                        "_load_s": "double", "step": "long long", "n_dec": "long long",
                        "_n": "long long", "_token": "long long", "iterations": "long long",
                        "decode_tokens": "long long", "prefill_tokens": "long long",
                        "decode_iterations": "long long",
                        "_in_system": "long long", "_dec_in_iter": "long long",
                        "_pre_tokens": "long long", "_kind": "long long",
                        "_ctx_const": "long long", "tp": "long long", "busy": "bint",
                        "_kick": "bint", "_lag": "bint", "kv": "KVLedger"},
    "KVLedger": {"block_size": "Py_ssize_t", "capacity": "Py_ssize_t",
                 "decoders": "Py_ssize_t", "evictable": "Py_ssize_t", "peak": "Py_ssize_t",
                 "used": "Py_ssize_t", "_area": "double", "_t_last": "double"},
    "Seq": {"gpu_s": "double", "energy_j": "double", "cost_usd": "double", "c0": "double",
            "e0": "double"},
    "QoEMeter": {"deficit": "double", "e": "double", "p": "double", "t": "double",
                 "y": "double"},
    # (`_cpu0`, `_cpu_seq`, `_floor`, `_eager`, `_mamba_dec`, `_idx_dec`, `_idx_pre`: products
    # with a float constant;
    # the layer counts, window, group count and `max_tokens` are ints of the model's spec and
    # the pool's config; `_async`, `_graph_mixed`, `schedule_lag`, `_split`, `_dsa` are made
    # with `bool()`)
    "KernelLatency": {"_cpu0": "double", "_cpu_seq": "double", "_floor": "double",
                      "_eager": "double", "_mamba_dec": "double", "_idx_dec": "double",
                      "_dsa_pair": "double", "_dsa_pick": "double", "_dsa": "bint",
                      "_idx_pre": "double", "_n_full": "long long", "_n_gdn": "long long",
                      "_n_slide": "long long", "_window": "long long", "adp": "long long",
                      "max_tokens": "long long", "_async": "bint", "_graph_mixed": "bint",
                      "schedule_lag": "bint", "_has_bound": "bint", "_split": "bint"},
}


def _slots(cls) -> set:
    # (the pure-Python class's own slots; compiled, `__slots__` is a plain class attribute)
    return set(cls.__slots__) - {"__dict__"}


def test_pxd_c_types_are_the_listed_ones():
    for pxd, cls in (("wrpsim/pool/accounting.pxd", "AccountingMixin"),
                     ("wrpsim/pool/kvcache.pxd", "KVLedger"),
                     ("wrpsim/pool/sequence.pxd", "Seq"),
                     ("wrpsim/metrics/qoe.pxd", "QoEMeter"),
                     ("wrpsim/pool/kernels/model.pxd", "KernelLatency")):
        text = (ROOT / pxd).read_text()
        body = text.split(f"cdef class {cls}")[1].split("\ncdef class")[0]
        typed = dict((n, t) for t, n in re.findall(
            r"cdef public (double|long long|Py_ssize_t|bint|KVLedger) (\w+)\n", body))
        assert typed == C_TYPED[cls]


def test_pxd_declares_exactly_the_slots():
    assert _declared("wrpsim/pool/accounting.pxd", "AccountingMixin") == _slots(Instance)
    assert _declared("wrpsim/pool/kvcache.pxd", "KVLedger") == _slots(KVLedger)
    assert _declared("wrpsim/pool/sequence.pxd", "Seq") == _slots(Seq)
    assert _declared("wrpsim/metrics/qoe.pxd", "QoEMeter") == _slots(QoEMeter)
    assert _declared("wrpsim/eventloop.pxd", "Arrivals") == _slots(Arrivals)
    assert _declared("wrpsim/pool/wakeup.pxd", "Wakeup") == _slots(Wakeup)
    assert _declared("wrpsim/pool/wakeup.pxd", "JoinedWakeup") == _slots(JoinedWakeup)
    assert _declared("wrpsim/pool/kernels/model.pxd", "KernelLatency") == _slots(KernelLatency)


def test_kernel_latency_is_a_latency_model_defining_the_whole_contract():
    # an extension type cannot derive from the ABC: it is registered, and inherits nothing
    assert issubclass(KernelLatency, LatencyModel)
    contract = {n for n in vars(LatencyModel) if not n.startswith("_")}
    assert contract >= {"iteration_s", "power_w", "decode_run_cum_s", "frontend_s"}
    for name in contract - {"schedule_lag"}:  # (an instance attribute of KernelLatency)
        assert name in vars(KernelLatency), name



def _assigned(py: str, cls: str) -> set:
    """The attributes the methods of class `cls` in `py` assign on `self`."""
    tree = ast.parse((ROOT / py).read_text())
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    out = set()
    for n in ast.walk(node):
        targets = n.targets if isinstance(n, ast.Assign) else (
            [n.target] if isinstance(n, (ast.AugAssign, ast.AnnAssign)) else [])
        for t in targets:
            for e in (t.elts if isinstance(t, ast.Tuple) else [t]):
                if isinstance(e, ast.Attribute) and isinstance(e.value, ast.Name) and (
                        e.value.id == "self"):
                    out.add(e.attr)
    return out


def test_pxd_declares_every_attribute_of_the_dict_classes():
    # (classes that keep an instance dict: an attribute missing from the .pxd would still work,
    # through the dict, only slower; `_routed` belongs there: a user's router's checker
    # shadows the method)
    assert _declared("wrpsim/dispatcher.pxd", "Dispatcher") == (
        _assigned("wrpsim/dispatcher.py", "Dispatcher") - {"_routed"})
    assert _declared("wrpsim/metrics/records.pxd", "RequestLog") == (
        _assigned("wrpsim/metrics/records.py", "RequestLog"))

def test_every_compiled_module_has_its_python_source():
    for name in _native.MODULES:
        assert (ROOT / (name.replace(".", "/") + ".py")).is_file(), name


def test_instance_chain_keeps_the_method_order():
    assert [c.__name__ for c in Instance.__mro__] == [
        "Instance", "BatchingMixin", "SequenceSetMixin", "HandoffMixin", "FailureMixin",
        "AccountingMixin", "object"]


def _touch(path: Path, t: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    os.utime(path, (t, t))


def test_stale_or_missing_extensions_count_as_not_built(tmp_path):
    mods = ("pkg.a", "pkg.b")
    ext = _native.EXTENSION_SUFFIXES[0]
    (tmp_path / "setup.py").write_text("")  # a source tree: times decide
    for m in ("a", "b"):
        _touch(tmp_path / "pkg" / f"{m}.py", 100.0)
    assert _native.built(str(tmp_path), mods) == (0, 0)
    _touch(tmp_path / "pkg" / f"a{ext}", 200.0)
    assert _native.built(str(tmp_path), mods) == (1, 1)  # b missing: not all
    _touch(tmp_path / "pkg" / f"b{ext}", 200.0)
    assert _native.built(str(tmp_path), mods) == (2, 2)
    _touch(tmp_path / "pkg" / "b.py", 300.0)  # edited after the build
    assert _native.built(str(tmp_path), mods) == (2, 1)
    _touch(tmp_path / "pkg" / "b.py", 100.0)
    _touch(tmp_path / "pkg" / "a.pxd", 300.0)  # declarations changed after the build
    assert _native.built(str(tmp_path), mods) == (2, 1)


def test_an_installed_package_takes_its_extensions_whatever_their_times(tmp_path):
    # a wheel's installer writes the files in its own order: an extension may be older than
    # its .py; without setup.py beside the package that says nothing (issue found by
    # `pip install --target DIR .`: every extension counted stale, all pure Python)
    mods = ("pkg.a", "pkg.b")
    ext = _native.EXTENSION_SUFFIXES[0]
    for m in ("a", "b"):
        _touch(tmp_path / "pkg" / f"{m}{ext}", 100.0)
        _touch(tmp_path / "pkg" / f"{m}.py", 200.0)
    assert _native.built(str(tmp_path), mods) == (2, 2)
    (tmp_path / "pkg" / f"b{ext}").unlink()
    assert _native.built(str(tmp_path), mods) == (1, 1)  # still all or none: b is missing
    (tmp_path / "setup.py").write_text("")
    assert _native.built(str(tmp_path), mods) == (1, 0)  # a source tree: a is stale


def _where(env: dict) -> dict:
    code = ("import json, wrpsim, wrpsim._native as n, wrpsim.pool.instance as i, "
            "wrpsim.eventloop as e; print(json.dumps([n.COMPILED, i.__file__, e.__file__]))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    compiled, *files = json.loads(p.stdout)
    return {"compiled": compiled, "files": files}


def _env(**extra) -> dict:
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


BUILT = _native.built()[1] == len(_native.MODULES)
needs_build = pytest.mark.skipif(not BUILT, reason="compiled modules not built (setup.py)")


def test_pure_python_is_all_or_none():
    pure = _where(_env(WRPSIM_PURE="1"))
    assert not pure["compiled"]
    assert all(f.endswith(".py") for f in pure["files"])
    either = _where(_env(WRPSIM_PURE="0"))
    assert either["compiled"] == BUILT
    assert all(f.endswith(".py") != BUILT for f in either["files"])
    assert wrpsim._native.COMPILED == (BUILT and os.environ.get("WRPSIM_PURE", "0") in ("", "0"))


WALL = {"sim_wall_s", "wall_s"}


def _run(tmp: Path, pure: str, overrides: list) -> Path:
    out = tmp / f"pure{pure}"
    cmd = [sys.executable, "-m", "wrpsim", f"hydra.run.dir={out}", *overrides]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, timeout=300,
                       env=_env(WRPSIM_PURE=pure))
    assert p.returncode == 0, p.stderr
    return out


@needs_build
@pytest.mark.parametrize("overrides", [
    ["workload.max_requests=600", "+experiment=overload"],
    ["workload.max_requests=300", "pool=h100-llama70b-disagg", "failures=random"],
])
def test_compiled_and_pure_python_give_identical_results(tmp_path, overrides):
    compiled, pure = _run(tmp_path, "0", overrides), _run(tmp_path, "1", overrides)
    names = sorted(p.name for p in compiled.iterdir() if p.suffix in (".parquet", ".json"))
    assert "requests.parquet" in names and "summary.json" in names
    assert names == sorted(p.name for p in pure.iterdir() if p.suffix in (".parquet", ".json"))
    for name in names:
        a, b = (compiled / name).read_bytes(), (pure / name).read_bytes()
        if name.endswith(".json"):
            a, b = ({k: v for k, v in json.loads(x).items() if k not in WALL} for x in (a, b))
        assert a == b, name


#: `KernelLatency`'s methods over the paths of its hot code (sliding window, MLA, Mamba state,
#: data-parallel attention, synchronous scheduling, eager launches, beyond `max_tokens`, int
#: and float arguments), printed as `repr`s: compiled (C-typed arguments, attributes and locals)
#: and pure Python must print the same
_LATENCY_CALLS = """
import wrpsim
from wrpsim.pool.engines import build_latency_model as b
eager = {"cudagraph_mixed": 0, "eager_layer_us": 400.0, "iter_overhead_us": 12}
cases = [b("gemma-3-12b", "h100-80gb", 1, max_tokens=2048),
         b("deepseek-v3", "h200-141gb", 8, precision="fp8_block"),
         b("nemotron-nano-9b-v2", "h100-80gb", 1),
         b("qwen3-30b-a3b", "h100-80gb", 4, ep=4, attn_dp=2),
         b("llama3.1-8b", "h100-80gb", 1, engine="vllm-0.11"),
         b("llama3.1-8b", "h100-80gb", 1, overrides=eager, max_tokens=1024),
         b("gemma-4-26b-a4b", "h100-80gb", 1, max_tokens=2048),
         b("gemma-4-31b", "h200-141gb", 8, max_tokens=2048),
         b("deepseek-v3.2", "h200-141gb", 8, precision="fp8_block", max_tokens=2048),
         b("deepseek-v3.2", "a100-80gb", 8, precision="fp4", max_tokens=2048),
         b("qwen3.5-35b-a3b", "h200-141gb", 1, max_tokens=2048)]
out = []
for lat in cases:
    for args in ((0, 0.0, 0, 0), (1, 1.0, 0, 0, 1), (512, 512 * 513 / 2, 0, 0),
                 (300, 300 * 2000.5, 32, 32 * 2000, 3), (0, 0.0, 1, 5), (0, 0.0, 64, 64 * 900.0),
                 (3000, 4.5e6, 7, 7 * 40000), (0, 0.0, 3000, 3000 * 1500), (8000, 32004000, 0, 0),
                 (100, 5050, 5, 5 * 700000, 2)):
        out += [lat.iteration_s(*args), lat.gpu_s(*args)]
        out += [lat.power_w(args[0], args[2], args[3], d) for d in (None, 0.0, 0.01, 3)]
    out.append(lat.power_w(10, 4))
    for batch, ctx0, n in ((1, 100, 1), (1, 100, 50), (32, 32 * 1000, 200), (7, 7 * 1023, 3),
                           (64, 64 * 120000, 10), (3000, 3000 * 10, 5), (0, 0, 4)):
        out += [lat.decode_run_linear(batch, ctx0, n), lat.decode_run_cum_s(batch, ctx0, n),
                lat.decode_run_s(batch, ctx0, n)]
        out += [lat.decode_power_w(batch, ctx0, d) for d in (0.0, 0.02)]
    out += [lat.frontend_s(1000), lat.frontend_work_s(7), lat.frontend_stream_s(),
            lat.idle_power_w(), lat.prefill_s(2, 3000), lat.decode_step_s(16, 4096)]
    out += [lat._prefill_attn(3, 900, 900 * 5000.0), lat._decode_attn1(5, 12345.5)]
print(wrpsim._native.COMPILED, [x.tolist() if hasattr(x, "tolist") else x for x in out])
"""


@needs_build
def test_compiled_and_pure_kernel_latency_give_identical_values():
    runs = []
    for pure in ("0", "1"):
        p = subprocess.run([sys.executable, "-c", _LATENCY_CALLS], capture_output=True,
                           text=True, timeout=300,
                           env=_env(WRPSIM_PURE=pure, WRPSIM_MODEL_CACHE="off"))
        assert p.returncode == 0, p.stderr
        runs.append(p.stdout.split(" ", 1))
    assert [r[0] for r in runs] == ["True", "False"]
    assert runs[0][1] == runs[1][1]


def _pxd_locals(pxd: str) -> set:
    text = (ROOT / pxd).read_text()
    decl = text.split("@cython.locals(")[1].split(")\ncdef")[0]
    return set(re.findall(r"(\w+)=", decl))


def test_packet_pxd_types_only_locals_of_the_hop_loop():
    # (a name typed in the .pxd but renamed in the .py would silently go untyped)
    import ast

    tree = ast.parse((ROOT / "wrpsim/network/packet.py").read_text())
    run = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "_run")
    names = {a.arg for a in run.args.args} | {
        n.id for n in ast.walk(run) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    typed = _pxd_locals("wrpsim/network/packet.pxd")
    assert typed <= names, typed - names
    assert {"t", "b", "p", "hop", "row", "s", "meta", "cs", "q"} <= typed


def test_packet_engine_runs_without_cython_installed():
    code = ("import sys; sys.modules['cython'] = None\n"
            "import wrpsim, wrpsim._native as n\n"
            "assert not n.COMPILED\n"
            "from wrpsim.network.config import NetConfig\n"
            "from wrpsim.network.scenario import run_scenario\n"
            "cfg = NetConfig.from_dict({'kind': 'packet', 'leaves': 2, 'hosts_per_leaf': 2, "
            "'spines': 2, 'lb': 'spray'})\n"
            "print(run_scenario(cfg, 'permutation', 1 << 16, seed=1).summary['data_packets'])")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=_env(WRPSIM_PURE="1"), timeout=120)
    assert p.returncode == 0, p.stderr
    assert int(p.stdout.split()[-1]) >= 64


def _net(tmp: Path, pure: str, overrides: list) -> Path:
    out = tmp / f"net-pure{pure}"
    p = subprocess.run([sys.executable, "-m", "wrpsim.net", f"out_dir={out}", *overrides],
                       capture_output=True, text=True, cwd=tmp, timeout=300,
                       env=_env(WRPSIM_PURE=pure))
    assert p.returncode == 0, p.stderr
    return out


@needs_build
@pytest.mark.parametrize("overrides", [
    ["lb=spray"],
    ["lb=ecmp", "transport=roce", "failed_links=[leaf0-spine1]"],
    ["pattern=all_to_all", "oversubscription=4", "lb=bitmap", "transport=dctcp"],
    ["pattern=all_to_all", "oversubscription=4", "lb=reps", "flow_bytes=256KiB"],
])
def test_compiled_and_pure_packet_engine_give_identical_results(tmp_path, overrides):
    args = ["engine=packet", "leaves=4", "hosts_per_leaf=4", "spines=2", "flow_bytes=512KiB",
            "seed=1", *overrides]
    compiled, pure = _net(tmp_path, "0", args), _net(tmp_path, "1", args)
    for name in ("flows.parquet", "links.parquet"):
        assert (compiled / name).read_bytes() == (pure / name).read_bytes(), name
    a, b = ({k: v for k, v in json.loads((d / "summary.json").read_text()).items()
             if k not in WALL and k not in ("engine_wall_s", "out_dir")}
            for d in (compiled, pure))
    assert a == b
    assert a["data_packets"] > 0


#: the packet engine's attributes (declared on its chain's root, `TransportBase`) that are C
#: numbers, and those that are typed memoryviews of `long long` (over `array('q')`); the rest
#: are Python objects (`object`, `list`, `dict`, the `EventQueue`)
PACKET_C_TYPED = {"wmax": "double", "pi_gain": "double", "ctrl_packets": "long long",
                  "rwnd": "long long", "tkind": "Py_ssize_t",
                  "sacking": "bint", "ack": "long long", "hdr": "long long", "mtu": "long long",
                  "rto_ps": "long long", "target_ps": "long long", "wire": "long long"}
PACKET_ARRAYS = {"acktx", "bufps", "busy", "ecnps", "evp", "pathb", "pdrops", "pmarks",
                 "pmaxq", "pports", "prop", "ptrims", "rate", "txf"}
_DECL = re.compile(r"cdef (?:public |readonly )?(object|double|long long|Py_ssize_t|bint|list|dict|"
                   r"bytearray|EventQueue|Chooser|long long\[::1\]) (\w+)\n")


def _class_declared(pxd: str, cls: str) -> dict:
    text = (ROOT / pxd).read_text()
    body = text.split(f"cdef class {cls}")[1].split("\ncdef class")[0]
    return {n: t for t, n in _DECL.findall(body)}


def test_packet_pxd_declares_exactly_the_engines_slots():
    from wrpsim.network.packet import PacketEngine

    declared = _class_declared("wrpsim/network/transport.pxd", "TransportBase")
    assert set(declared) == _slots(PacketEngine)
    assert {n: t for n, t in declared.items() if t in (
        "double", "long long", "Py_ssize_t", "bint")} == PACKET_C_TYPED
    assert {n for n, t in declared.items() if t == "long long[::1]"} == PACKET_ARRAYS


def test_connection_pxd_declares_exactly_its_slots():
    from wrpsim.network.connection import FIELDS, ConnState

    declared = _class_declared("wrpsim/network/connection.pxd", "ConnState")
    assert set(declared) == _slots(ConnState) == {"cid", *FIELDS}
    assert {n for n, t in declared.items() if t == "double"} == {"wnd", "alpha"}
    assert {n for n, t in declared.items() if t == "long long[::1]"} == {"sendt"}


def test_event_queue_pxd_declares_exactly_its_slots():
    from wrpsim.network.calendar import EventQueue

    declared = _class_declared("wrpsim/network/calendar.pxd", "EventQueue")
    assert set(declared) == _slots(EventQueue)


def test_packet_engine_chain_keeps_the_method_order():
    from wrpsim.network.packet import PacketEngine

    assert [c.__name__ for c in PacketEngine.__mro__] == [
        "PacketEngine", "UecMixin", "DctcpMixin", "RoceMixin", "TransportBase", "object"]
    heap_type = bool(PacketEngine.__flags__ & (1 << 9))  # (Py_TPFLAGS_HEAPTYPE)
    assert heap_type != _native.COMPILED  # compiled: an extension type


def test_packet_engine_attributes_are_readable_and_typed():
    from wrpsim.network.config import NetConfig
    from wrpsim.network.packet import PacketEngine
    from wrpsim.network.topology import LeafSpine

    eng = PacketEngine(LeafSpine(NetConfig(leaves=2, hosts_per_leaf=2, spines=2)), 1)
    for name, kind in PACKET_C_TYPED.items():
        v = getattr(eng, name)
        assert type(v) is {"double": float, "bint": bool}.get(kind, int), name
    assert eng.column("finish") == [] and eng.pbytes == [0] * eng.topo.nports
    assert set(eng.port(0)) == {"rate_bps", "tx_ps", "ack_tx_ps", "buffer_ps", "ecn_ps",
                                "busy_until_ps"}


def test_entropy_pxd_declares_exactly_each_choosers_slots():
    from wrpsim.network import entropy

    text = (ROOT / "wrpsim/network/entropy.pxd").read_text()
    for name in ("Chooser", "Oblivious", "Reps", "Bitmap", "Flowlet"):
        body = text.split(f"cdef class {name}")[1].split("\ncdef class")[0]
        declared = set(re.findall(r"cdef public (?:object|bint|Py_ssize_t|bytearray) (\w+)\n",
                                  body))
        assert declared == set(getattr(entropy, name).__slots__), name
        assert getattr(entropy, name).__slots__ == getattr(entropy, name).__dict__["__slots__"]


def test_a_none_where_an_instance_is_typed_raises_as_pure_python_does():
    # (compiled, a None in an argument typed `Instance` / `Seq` would be read through a null
    # struct without `nonecheck`: a crash instead of Python's AttributeError)
    from wrpsim.dispatcher import Dispatcher
    from wrpsim.metrics.records import RequestLog

    with pytest.raises(AttributeError):
        Dispatcher.__new__(Dispatcher)._fits(None, None, 5)
    with pytest.raises(AttributeError):
        RequestLog().finished(None, None, 0.0)
