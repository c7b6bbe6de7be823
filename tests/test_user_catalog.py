"""A user's own catalog outside the repository (`$WRPSIM_CATALOG`): a GPU, a model given as
its config.json numbers, a router module and a pool, used by `python -m wrpsim` run from a
folder outside the checkout — no file of the repository edited, no PYTHONPATH."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import gpu_yaml
from wrpsim.errors import ConfigError


def _catalog(d: Path) -> Path:
    (d / "routers").mkdir(parents=True)
    (d / "pools").mkdir()
    (d / "gpus.yaml").write_text(textwrap.dedent("""\
        h100-capped:
          bf16_tflops: 989
          fp8_tflops: 1979
          mem_gib: 80
          mem_bw_gbs: 3350
          tdp_w: 500
          idle_w: 75
          link_gbs: 450
          price_per_hour_usd: 3.5
          sources: "H100 SXM datasheet, capped at 500 W (illustration)"
          calibration: {from: h100-80gb}
        """))
    (d / "models.yaml").write_text(textwrap.dedent("""\
        my-8b:
          hf_config: {num_hidden_layers: 32, hidden_size: 4096, num_attention_heads: 32,
                      num_key_value_heads: 8, intermediate_size: 14336, vocab_size: 128256,
                      max_position_embeddings: 32768}
          source: "a Llama-3-8B-shaped config.json"
        """))
    (d / "myrouters.py").write_text(textwrap.dedent('''\
        from wrpsim.router import Router


        class ShortestQueue(Router):
            name = "shortest_queue"

            def choose(self, request, candidates):
                return min(candidates, key=lambda i: (i.num_waiting, i.outstanding))
        '''))
    (d / "routers" / "shortest-queue.yaml").write_text("_target_: myrouters.ShortestQueue\n")
    (d / "pools" / "capped.yaml").write_text(textwrap.dedent("""\
        name: capped
        pools:
          capped:
            gpu: h100-capped
            model: my-8b
            tp: 1
            count: 2
            scheduler: {policy: sarathi, token_budget: 2048, max_seqs: 64, block_size: 16}
        """))
    return d


def test_a_users_gpu_model_router_and_pool_run_without_touching_the_repository(tmp_path):
    cat = _catalog(tmp_path / "mycat")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["WRPSIM_CATALOG"] = str(cat)
    r = subprocess.run(
        [sys.executable, "-m", "wrpsim", "pool=capped", "router=shortest-queue",
         "workload.max_requests=40", "json=true", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["router"] == "shortest_queue" and summary["pool"] == "capped"
    assert summary["requests_completed"] == 40 and summary["gpu_count"] == 2
    # a GPU without kernel tables of its own is labelled as such
    assert "uncalibrated: roofline" in summary["calibration"]["capped"]


def test_user_catalog_entries_join_the_shipped_ones(tmp_path, monkeypatch):
    from wrpsim.pool import catalog

    cat = _catalog(tmp_path / "mycat")
    monkeypatch.setenv("WRPSIM_CATALOG", str(cat))
    catalog.gpus.cache_clear()
    catalog.models.cache_clear()
    try:
        g, ship = catalog.get_gpu("h100-capped"), catalog.get_gpu("h100-80gb")
        assert g.tdp_w == 500 and g.eff_mem == ship.eff_mem  # calibration copied from shipped
        assert g.calibration_source.startswith("uncalibrated: roofline (the 2023 fit of h100-80gb")
        assert catalog.get_model("my-8b").kv_heads == 8
        assert catalog.get_model("llama3.1-8b").layers == 32  # shipped entries stay
    finally:
        monkeypatch.delenv("WRPSIM_CATALOG")
        catalog.gpus.cache_clear()
        catalog.models.cache_clear()


def test_a_typo_in_a_users_pool_file_names_the_key_and_the_file(tmp_path):
    """A misspelled key in a user's pool YAML named the pool path but not the file, and a
    misspelled top-level `pools:` said 'config key pools is required'. Now both name the key,
    the nearest valid one and the file (not when the command line overrides the group's keys:
    its error names the key it set)."""
    cat = tmp_path / "cat"
    (cat / "pools").mkdir(parents=True)
    (cat / "pools" / "typo1.yaml").write_text(
        "name: typo1\npols:\n  h100: {gpu: h100-80gb, model: llama3.1-8b, tp: 1, count: 1}\n")
    (cat / "pools" / "typo2.yaml").write_text(
        "name: typo2\npools:\n  h100: {gpu: h100-80gb, modle: llama3.1-8b, tp: 1, count: 1}\n")
    env = {**os.environ, "WRPSIM_CATALOG": str(cat)}

    def err(*args):
        p = subprocess.run([sys.executable, "-m", "wrpsim", *args,
                            f"hydra.run.dir={tmp_path / 'run'}"],
                           capture_output=True, text=True, env=env, timeout=120)
        assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
        return p.stderr.strip()

    one = err("pool=typo1")
    assert one.startswith("wrpsim: error: pool: unknown key(s) ['pols']; valid keys: pools,")
    assert one.endswith(f"did you mean 'pools'? (pool=typo1: {cat / 'pools' / 'typo1.yaml'})")
    two = err("pool=typo2")
    assert two.startswith("wrpsim: error: pool.pools.h100: unknown key(s) ['modle']")
    assert two.endswith(f"did you mean 'model'? (pool=typo2: {cat / 'pools' / 'typo2.yaml'})")
    assert err("pool.pools.h100.tp=3").endswith("got 3")


def test_a_catalog_that_is_not_a_folder_is_one_clear_line(tmp_path, monkeypatch):
    from wrpsim.paths import user_catalog

    monkeypatch.setenv("WRPSIM_CATALOG", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=r"^WRPSIM_CATALOG=.*missing: not a directory"):
        user_catalog()


def test_a_user_gpu_copying_an_unknown_calibration_names_it(tmp_path):
    from wrpsim.pool.catalog import gpus, load_gpus

    f = tmp_path / "gpus.yaml"
    f.write_text("x:\n  bf16_tflops: 1\n  mem_gib: 1\n  mem_bw_gbs: 1\n  tdp_w: 2\n"
                 "  idle_w: 1\n  link_gbs: 1\n  price_per_hour_usd: 1\n"
                 "  calibration: {from: nope-gpu}\n")
    with pytest.raises(ConfigError, match=r"calibration\.from' names 'nope-gpu'"):
        load_gpus(f, known=gpus())


def _user_workload(tmp_path, stem: str, name: str) -> None:
    """A user catalog at `tmp_path`/cat with workloads/`stem`.yaml (`name:` `name`) replaying
    workloads/traces/mine.csv, two requests given relative to the YAML."""
    wl = tmp_path / "cat" / "workloads"
    (wl / "traces").mkdir(parents=True)
    (wl / "traces" / "mine.csv").write_text("arrival_s,prompt_tokens,output_tokens\n"
                                            "0,100,5\n2,200,6\n", encoding="utf-8")
    (wl / f"{stem}.yaml").write_text(f"name: {name}\nsource:\n  kind: generic\n"
                                     "  path: traces/mine.csv\n", encoding="utf-8")


def test_a_user_workload_path_is_relative_to_its_yaml_and_load_workload_finds_it(tmp_path,
                                                                                 monkeypatch):
    from wrpsim.workload import load_workload
    from wrpsim.workload.build import list_workloads, workload_label

    _user_workload(tmp_path, "my-trace", "my-trace")
    monkeypatch.setenv("WRPSIM_CATALOG", str(tmp_path / "cat"))
    monkeypatch.setenv("WRPSIM_CACHE", "off")
    assert "my-trace" in list_workloads() and "azure-conv-2023" in list_workloads()
    assert load_workload("my-trace")["prompt_tokens"].tolist() == [100, 200]
    assert workload_label({"name": "my-trace",
                           "source": {"kind": "generic", "path": "traces/mine.csv"}}) == "my-trace"
    assert workload_label({"name": "azure-conv-2023",
                           "source": {"kind": "generic", "path": "/x/mine.csv"}}) == \
        "azure-conv-2023:mine.csv"
    assert workload_label({"name": "mine", "source": {"path": "/x/mine.csv"}}) == "mine"
    own = tmp_path / "cat" / "workloads" / "traces" / "mine.csv"  # the same file, spelled
    for spelled in (str(own), "./traces/mine.csv", "traces/../traces/mine.csv"):  # otherwise
        assert workload_label({"name": "my-trace", "source": {"path": spelled}}) == "my-trace"


def test_a_user_workload_keeps_its_trace_when_its_name_is_overridden(tmp_path, monkeypatch):
    """`workload=mine workload.name=other`: the relative trace path of the user's YAML is still
    found (it used to be looked up beside a YAML named `other`, i.e. in the shipped folder)."""
    from wrpsim.workload.build import build_workload

    (tmp_path / "workloads" / "traces").mkdir(parents=True)
    (tmp_path / "workloads" / "traces" / "mini.csv").write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:50.9951690,396,109\n")
    monkeypatch.setenv("WRPSIM_CATALOG", str(tmp_path))
    cfg = {"name": "other", "source": {"kind": "azure", "path": "traces/mini.csv"}}
    df = build_workload(cfg, 0)
    assert df["prompt_tokens"].tolist() == [374, 396]
    cfg["source"]["path"] = "traces/none.csv"
    with pytest.raises(ConfigError, match=r"not found in .*workloads nor in .*workloads \(the "
                       r"workload catalog folders\)"):
        build_workload(cfg, 0)


def test_a_workload_yaml_whose_name_is_not_its_stem_is_warned_about_in_one_line(tmp_path):
    """A user who copied azure-conv-2023.yaml to mine.yaml and left its `name:` ran silently
    under the label 'azure-conv-2023' (a walkthrough): `name` labels the results and finds
    the relative paths, the stem is what `workload=` takes. One warning line names the file,
    its name: and its stem; `workload.name=` on the command line (a run's own label) is none."""
    _user_workload(tmp_path, "mine", "azure-conv-2023")
    wl = tmp_path / "cat" / "workloads"
    env = {**os.environ, "WRPSIM_CATALOG": str(tmp_path / "cat"), "WRPSIM_CACHE": "off"}

    def run(*args):
        r = subprocess.run([sys.executable, "-m", "wrpsim", "workload=mine", *args,
                            f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return [ln for ln in r.stderr.splitlines() if ln.startswith("wrpsim: warning:")]

    lines = [ln for ln in run() if "file stem" in ln]
    assert len(lines) == 1, lines
    assert f"{wl / 'mine.yaml'}: name: 'azure-conv-2023' is not the file stem 'mine'" in lines[0]
    assert lines[0].endswith("set name: mine in the file")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text(encoding="utf-8"))
    assert summary["workload"].startswith("azure-conv-2023")  # (what the warning says)
    assert not [ln for ln in run("workload.name=mine") if "file stem" in ln]


def test_load_workload_warns_of_a_name_that_is_not_the_stem(tmp_path):
    from wrpsim.errors import WrpsimWarning
    from wrpsim.workload import load_workload

    (tmp_path / "a.csv").write_text("arrival_s,prompt_tokens,output_tokens\n0,100,5\n",
                                    encoding="utf-8")
    (tmp_path / "b.yaml").write_text("source: {kind: generic, path: a.csv}\n", encoding="utf-8")
    with pytest.warns(WrpsimWarning, match=r"b\.yaml: has no name:, so a run of workload=b is "
                      r"labelled '' in its results; set name: b in the file"):
        load_workload("b", base_dir=tmp_path)


_GPU = gpu_yaml()


@pytest.mark.parametrize(("field", "value"), [
    ("price_per_hour_usd", ".nan"), ("price_per_hour_usd", ".inf"), ("idle_w", ".nan"),
    ("tdp_w", ".inf"), ("mem_gib", "-.inf"),
])
def test_a_gpu_number_that_is_not_finite_is_refused(tmp_path, field, value):
    """nan / inf passed the < 0 and == 0 checks (and idle_w >= tdp_w is false for nan): the run
    then printed null cost or energy and crashed."""
    from wrpsim.pool.catalog import gpus, load_gpus

    f = tmp_path / "gpus.yaml"
    old = next(ln for ln in _GPU.splitlines() if ln.strip().startswith(field + ":"))
    f.write_text(_GPU.replace(old, f"  {field}: {value}"))
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(f))}: entry 'x': field '{field}' "
                                          r"must be a finite number, got -?(nan|inf)$"):
        load_gpus(f, known=gpus())


def test_a_gpu_number_in_exponent_notation_is_read_as_a_number(tmp_path):
    """YAML 1.1 (PyYAML) reads 1e-3 as a string; a catalog number takes it as the number."""
    from wrpsim.pool.catalog import gpus, load_gpus

    f = tmp_path / "gpus.yaml"
    f.write_text(_GPU.replace("price_per_hour_usd: 1", "price_per_hour_usd: 1e-3")
                 .replace("bf16_tflops: 1", "bf16_tflops: 1.5E+2"))
    g = load_gpus(f, known=gpus())["x"]
    assert g.price_per_hour_usd == 1e-3 and g.bf16_tflops == 150.0
    f.write_text(_GPU.replace("price_per_hour_usd: 1", "price_per_hour_usd: 1e-3x"))
    with pytest.raises(ConfigError, match=r"field 'price_per_hour_usd' must be a finite number, "
                                          r"got '1e-3x'$"):
        load_gpus(f, known=gpus())


def test_a_models_vision_number_that_is_not_finite_is_refused(tmp_path):
    """An integer field given nan crashed in int(nan) (ValueError traceback)."""
    from wrpsim.pool.catalog import load_models

    f = tmp_path / "models.yaml"
    f.write_text("m:\n  layers: 2\n  hidden: 64\n  heads: 4\n  kv_heads: 4\n  head_dim: 16\n"
                 "  intermediate: 128\n  vocab: 100\n"
                 "  vision: {tokens_per_image: 16, patches_per_image: 16, encoder_params: .nan}\n")
    with pytest.raises(ConfigError, match=r"entry 'm': field 'vision\.encoder_params' must be an "
                                          r"integer, got nan$"):
        load_models(f)


def test_a_broken_user_catalog_entry_is_named_under_the_pool_not_glued_to_it(tmp_path,
                                                                            monkeypatch, capsys):
    """The pool key was glued to the file path: 'pool.pools.h100./tmp/…/gpus.yaml: entry …'."""
    from tests.conftest import run_app
    from wrpsim.pool import catalog

    (tmp_path / "cat").mkdir()
    f = tmp_path / "cat" / "gpus.yaml"
    f.write_text(_GPU.replace("price_per_hour_usd: 1", "price_per_hour_usd: -1"))
    monkeypatch.setenv("WRPSIM_CATALOG", str(tmp_path / "cat"))
    catalog.gpus.cache_clear()
    try:
        code, _, err = run_app(monkeypatch, capsys, tmp_path, "workload.max_requests=10",
                               "pool.pools.h100.gpu=x")
    finally:
        monkeypatch.delenv("WRPSIM_CATALOG")
        catalog.gpus.cache_clear()
    assert code == 2
    line = [ln for ln in err.splitlines() if ln.startswith("wrpsim: error:")]
    assert line == [f"wrpsim: error: pool.pools.h100: {f.resolve()}: entry 'x': field "
                    f"'price_per_hour_usd' must be > 0, got -1"], err


def test_a_nested_error_names_a_field_or_a_file_under_its_key():
    from wrpsim.errors import under

    assert under("pool.pools.a", "gpu: unknown value 'z'") == "pool.pools.a.gpu: unknown value 'z'"
    assert (under("pool.pools.a", "/c/gpus.yaml: entry 'x'")
            == "pool.pools.a: /c/gpus.yaml: entry 'x'")
    from wrpsim.pool.engines import _named

    for prefix, key in (("pool.pools.a.", "pool.pools.a"), ("perf: ", "perf")):
        assert (str(_named(ConfigError("\x00/c/e.yaml: bad"), "latency", prefix))
                == f"{key}: /c/e.yaml: bad")
        assert (str(_named(ConfigError("\x00precision: bad"), "latency", prefix))
                == f"{prefix}precision: bad")


def test_a_user_routers_relative_rules_path_is_found_in_the_users_routers_folder(
        tmp_path, monkeypatch, capsys):
    """A relative `rules:` of a router YAML in $WRPSIM_CATALOG/routers/ was looked up in the
    shipped routers/ only ('file not found'); now the user's folder first, then the shipped."""
    from tests.conftest import run_app
    from wrpsim.router.config import router_path

    shipped = Path(__file__).resolve().parents[1] / "routers"
    (tmp_path / "cat" / "routers" / "rules").mkdir(parents=True)
    mine = tmp_path / "cat" / "routers" / "rules" / "text-only.yaml"
    mine.write_text((shipped / "rules" / "modality-vision.yaml").read_text()
                    .replace("models: [gemma-3-12b]", "models: [llama3.1-8b]"))
    (tmp_path / "cat" / "routers" / "my-vision.yaml").write_text(
        (shipped / "modality-vision.yaml").read_text()
        .replace("rules: rules/modality-vision.yaml", "rules: rules/text-only.yaml"))
    monkeypatch.setenv("WRPSIM_CATALOG", str(tmp_path / "cat"))
    assert router_path("rules", "rules/text-only.yaml") == mine.resolve()
    assert router_path("rules", "rules/modality-vision.yaml").is_relative_to(shipped)
    with pytest.raises(ConfigError, match=r"^router\.rules: file not found: rules/nope\.yaml in "
                                          r".*cat/routers nor in .*routers \(the router catalog "
                                          r"folders\)$"):
        router_path("rules", "rules/nope.yaml")
    code, _, err = run_app(monkeypatch, capsys, tmp_path, "router=my-vision",
                           "pool=vision-text-h100-a100", "workload=semantic-router-images",
                           "workload.max_requests=40")
    assert code == 0, err
    import pandas as pd

    req = pd.read_parquet(tmp_path / "run" / "requests.parquet")
    assert (req["drop_reason"] == "modality").sum() > 0  # images sent to the text model


@pytest.mark.parametrize(("text", "says"), [
    ("_target_: myrouters.X\nfoo: [1, 2\nbar: 3\n",
     r"bad\.yaml:3:4: invalid YAML: did not find expected ',' or '\]' \(while parsing a flow "
     r"sequence at line 2\)"),
    ("a: 1\n  b: 2\n", r"bad\.yaml:2:4: invalid YAML: mapping values are not allowed in this "
     r"context"),
])
def test_an_invalid_catalog_yaml_is_one_line_naming_file_and_line(tmp_path, monkeypatch, text,
                                                                  says):
    from wrpsim.app import check_catalogs

    (tmp_path / "routers").mkdir()
    (tmp_path / "routers" / "bad.yaml").write_text(text)
    monkeypatch.setenv("WRPSIM_CATALOG", str(tmp_path))
    monkeypatch.setattr(sys, "path", list(sys.path))
    with pytest.raises(ConfigError) as e:
        check_catalogs()
    assert re.fullmatch(rf"{re.escape(str(tmp_path.resolve()))}/routers/{says}", str(e.value))


def test_a_users_router_that_raises_is_one_line_with_exit_status_2(tmp_path):
    """The CLI path of `wrpsim.router.checked`: no traceback, the router and its file:line."""
    cat = _catalog(tmp_path / "mycat")
    (cat / "myrouters.py").write_text(
        "from wrpsim.router import Router\n\n\nclass Raises(Router):\n"
        "    def route(self, request, view):\n        raise ValueError('boom')\n")
    (cat / "routers" / "raises.yaml").write_text("_target_: myrouters.Raises\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    env["WRPSIM_CATALOG"] = str(cat)
    r = subprocess.run(
        [sys.executable, "-m", "wrpsim", "pool=capped", "router=raises",
         "workload.max_requests=5", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert re.search(r"^wrpsim: error: router myrouters\.Raises raised ValueError: boom "
                     r"\(.*myrouters\.py:6\)$", r.stderr, re.M), r.stderr


def test_config_json_keys_wrpsim_does_not_model_are_named(tmp_path, monkeypatch):
    """A model whose config.json shapes layers wrpsim does not read (DeepSeek-V3.2's
    multi-token-prediction layer; its sparse-attention indexer is read since 2026-12-06) still
    loads, with one warning naming those keys; a plain Llama config.json (rope scaling,
    dropout, norms) and a Llama 4 one (interleaved MoE, chunked attention: read since
    2026-12-05) get none."""
    import yaml

    from wrpsim.errors import WrpsimWarning
    from wrpsim.pool import catalog
    from wrpsim.pool.hfconfig import unread_keys

    nxt = {"model_type": "deepseek_v32", "hidden_size": 7168, "intermediate_size": 18432,
           "moe_intermediate_size": 2048, "num_hidden_layers": 61, "num_attention_heads": 128,
           "num_key_value_heads": 128, "n_routed_experts": 256, "num_experts_per_tok": 8,
           "n_shared_experts": 1, "first_k_dense_replace": 3, "kv_lora_rank": 512,
           "q_lora_rank": 1536, "qk_rope_head_dim": 64, "qk_nope_head_dim": 128,
           "v_head_dim": 128, "vocab_size": 129280, "index_head_dim": 128, "index_n_heads": 64,
           "index_topk": 2048, "num_nextn_predict_layers": 1, "rms_norm_eps": 1e-6,
           "max_position_embeddings": 163840}
    unread = ["num_nextn_predict_layers"]
    assert unread_keys(nxt) == unread
    plain = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
             "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
             "vocab_size": 128256, "attention_bias": False, "attention_dropout": 0.0,
             "rope_scaling": {"factor": 8.0, "rope_type": "llama3"}, "rms_norm_eps": 1e-5,
             "mlp_bias": False, "hidden_act": "silu", "max_position_embeddings": 131072}
    assert unread_keys(plain) == []
    llama4 = {"model_type": "llama4", "text_config": {
        "model_type": "llama4_text", "hidden_size": 5120, "intermediate_size": 8192,
        "intermediate_size_mlp": 16384, "num_hidden_layers": 48, "num_attention_heads": 40,
        "num_key_value_heads": 8, "head_dim": 128, "num_local_experts": 16,
        "num_experts_per_tok": 1, "interleave_moe_layer_step": 1, "vocab_size": 202048,
        "attention_chunk_size": 8192, "no_rope_layers": [], "rms_norm_eps": 1e-5,
        "max_position_embeddings": 10485760}}
    assert unread_keys(llama4) == []
    (tmp_path / "models.yaml").write_text(yaml.safe_dump({"my-next": {"hf_config": nxt}}))
    monkeypatch.setenv("WRPSIM_CATALOG", str(tmp_path))
    catalog.models.cache_clear()
    try:
        with pytest.warns(WrpsimWarning, match=r"entry 'my-next': config.json keys that shape "
                          r"the model but that wrpsim does not read: " + ", ".join(unread)
                          + r"; it is modelled from the keys it reads"):
            assert catalog.get_model("my-next").experts == 256
    finally:
        monkeypatch.delenv("WRPSIM_CATALOG")
        catalog.models.cache_clear()


def test_a_catalog_yaml_broken_after_it_passed_the_check_still_fails(tmp_path, monkeypatch):
    """`check_catalogs` skips a file that passed before and has not changed (its record beside
    the trace cache); one written since is parsed again."""
    from wrpsim import app, yamlfast

    (tmp_path / "routers").mkdir()
    bad = tmp_path / "routers" / "bad.yaml"
    bad.write_text("_target_: myrouters.X\n")
    monkeypatch.setenv("WRPSIM_CATALOG", str(tmp_path))
    monkeypatch.setenv("WRPSIM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    app.check_catalogs()
    record, _version, passed = app._checked()
    assert record.is_file() and str(bad.resolve()) in passed
    calls = []
    monkeypatch.setattr(yamlfast, "omegaconf_load", lambda p: calls.append(p))
    app.check_catalogs()
    assert calls == []  # nothing changed: nothing parsed
    monkeypatch.undo()
    monkeypatch.setenv("WRPSIM_CATALOG", str(tmp_path))
    monkeypatch.setenv("WRPSIM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    bad.write_text("a: 1\n  b: 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:2:4: invalid YAML"):
        app.check_catalogs()


def test_a_broken_yaml_in_conf_is_one_line_naming_file_line_and_column(tmp_path, monkeypatch):
    """`conf/` (the verbs' configs: network/, failures/, ...) is checked with the catalogs: a
    broken file is one line (Hydra's own parse printed a four-line ParserError traceback)."""
    import shutil

    from wrpsim import app
    from wrpsim.paths import catalog_dir

    conf = tmp_path / "conf"
    shutil.copytree(catalog_dir("conf"), conf)
    (conf / "network" / "none.yaml").write_text("kind: [none\ncollectives: false\n")
    monkeypatch.setenv("WRPSIM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(app, "catalog_dir", lambda name: conf if name == "conf"
                        else catalog_dir(name))
    with pytest.raises(ConfigError, match=r"^.*conf/network/none\.yaml:2:12: invalid YAML: did "
                       r"not find expected ',' or '\]' \(while parsing a flow sequence at line "
                       r"1\)$"):
        app.check_catalogs()


def test_one_broken_entry_leaves_the_others_running(tmp_path):
    """A user's models.yaml with one entry wrpsim cannot read (here a config.json without
    num_experts_per_tok) stopped every run, whatever model it used; now that entry is left out
    with one warning naming it, the others run, and asking for it fails with its one line
    (exit 2), also where it was meant to replace a shipped entry."""
    (tmp_path / "moe.json").write_text(json.dumps({
        "model_type": "hunyuan_v1_moe", "num_hidden_layers": 32, "hidden_size": 4096,
        "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 3072,
        "num_experts": 64, "vocab_size": 128167}))
    (tmp_path / "models.yaml").write_text(
        "broken-moe:\n  config_json: moe.json\n"
        "llama3.1-8b:\n  layers: 0\n  hidden: 4096\n  heads: 32\n  kv_heads: 8\n"
        "  head_dim: 128\n  intermediate: 14336\n  vocab: 128256\n"
        "fine:\n  layers: 4\n  hidden: 1024\n  heads: 8\n  kv_heads: 8\n  head_dim: 128\n"
        "  intermediate: 2048\n  vocab: 1000\n")
    env = {**os.environ, "WRPSIM_CATALOG": str(tmp_path),
           "WRPSIM_MODEL_CACHE": str(tmp_path / "mc")}

    def perf(model):
        return subprocess.run([sys.executable, "-m", "wrpsim.perf", f"model={model}",
                               "gpu=h100-80gb", "batch=8"], capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=120)

    ok = perf("fine")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout.strip().splitlines()[-1])["model"] == "fine"
    warned = [ln for ln in ok.stderr.splitlines() if "entry left out" in ln]
    assert len(warned) == 2 and "entry 'broken-moe': config.json lacks 'num_experts_per_tok'" \
        in warned[0] and "entry 'llama3.1-8b': field 'layers' must be > 0" in warned[1]
    for name, why in (("broken-moe", "config.json lacks 'num_experts_per_tok'"),
                      ("llama3.1-8b", "field 'layers' must be > 0")):
        bad = perf(name)
        assert bad.returncode == 2 and bad.stdout == ""
        errors = [ln for ln in bad.stderr.splitlines() if ln.startswith("wrpsim: error:")]
        assert len(errors) == 1 and f"entry {name!r}: {why}" in errors[0], bad.stderr
        # said once, by its error (it was also a warning with the same text just before)
        assert sum(f"entry {name!r}" in ln for ln in bad.stderr.splitlines()) == 1, bad.stderr


def test_a_models_yaml_entry_names_its_fields_and_sizes(tmp_path):
    """A misspelt config_json key listed wrpsim's own fields without it (and no did-you-mean);
    a KV-head count that does not divide the heads did not say either number; dense layers
    beyond the layers gave negative parameter counts."""
    from wrpsim.pool.catalog import load_models

    base = ("  layers: 4\n  hidden: 1024\n  heads: 24\n  kv_heads: 8\n  head_dim: 128\n"
            "  intermediate: 2048\n  vocab: 1000\n")
    for text, message in (
            ("x:\n  config_jsn: c.json\n", r"unknown field 'config_jsn'; .*did you mean "
                                           r"'config_json'\?"),
            ("x:\n" + base.replace("kv_heads: 8", "kv_heads: 7"),
             r"field 'kv_heads' must divide heads \(24\), got 7; valid: 1, 2, 3, 4, 6, 8, 12, "
             r"24"),
            ("x:\n" + base + "  experts: 8\n  active_experts: 2\n  dense_layers: 4\n",
             r"field 'dense_layers' must be below layers \(4\) for a model with experts, got 4"),
            ("x:\n" + base + "  dense_layers: 9\n",
             r"field 'dense_layers' must be <= layers \(4\), got 9")):
        (tmp_path / "models.yaml").write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_models(tmp_path / "models.yaml")


def test_a_user_catalog_file_that_is_not_yaml_is_one_line(tmp_path):
    """A syntax error in a user's models.yaml was PyYAML's four-line message; now one line
    naming the file, line and column (as for the conf YAMLs)."""
    (tmp_path / "models.yaml").write_text("good:\n  layers: 4\n  hidden: [1024\n")
    env = {**os.environ, "WRPSIM_CATALOG": str(tmp_path),
           "WRPSIM_MODEL_CACHE": str(tmp_path / "mc")}
    r = subprocess.run([sys.executable, "-m", "wrpsim.perf", "model=llama3.1-8b",
                        "gpu=h100-80gb"], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    errors = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(errors) == 1, r.stderr
    assert re.match(rf"wrpsim: error: .*{re.escape(str(tmp_path / 'models.yaml'))}:\d+:\d+: "
                    r"invalid YAML: ", errors[0]), errors[0]


def test_one_broken_engine_file_leaves_the_others_running(tmp_path):
    """A typo in one engine file of a user's catalog stopped every run, whatever engine it
    named, with that file's error; invalid YAML was three lines. Now such a file is left out
    with one warning, the other engines run, naming it is its one line — also one meant to
    replace a shipped engine — and a kernels engine without tables for the GPU says what it
    lacks."""
    eng = tmp_path / "engines"
    eng.mkdir()
    (eng / "typo.yaml").write_text("kind: kernels\nconstants: {allreduce_fusoin: true}\n")
    (eng / "bad-yaml.yaml").write_text("kind: kernels\nconstants: {frontend_us: [1,\n")
    (eng / "vllm-0.19.yaml").write_text("kind: kernels\nbatch_defaults: sometimes\n")
    (eng / "bare.yaml").write_text("kind: kernels\nconstants: {frontend_us: 5}\n")
    env = {**os.environ, "WRPSIM_CATALOG": str(tmp_path)}

    def perf(engine):
        return subprocess.run([sys.executable, "-m", "wrpsim.perf", "model=llama3.1-8b",
                               "gpu=h100-80gb", "tp=1", f"engine={engine}"],
                              capture_output=True, text=True, env=env, cwd=tmp_path,
                              timeout=120)

    ok = perf("vllm-0.24")
    assert ok.returncode == 0, ok.stderr
    warned = [ln for ln in ok.stderr.splitlines() if "engine file left out" in ln]
    assert len(warned) == 3, ok.stderr
    assert f"{eng / 'bad-yaml.yaml'}:3:1: invalid YAML: " in warned[0]
    assert "allreduce_fusoin" in warned[1] and "batch_defaults" in warned[2]
    for name, why in (("typo", "allreduce_fusoin"), ("bad-yaml", "invalid YAML"),
                      ("vllm-0.19", "batch_defaults"),
                      ("bare", "no gpus.h100-80gb entry, and default_roofline 'h100-80gb' has "
                               "no kernel tables in this engine (GPUs with tables: none)")):
        bad = perf(name)
        assert bad.returncode == 2 and bad.stdout == "", bad.stderr
        lines = bad.stderr.strip().splitlines()
        errors = [ln for ln in lines if ln.startswith("wrpsim: error:")]
        assert len(errors) == 1 and why in errors[0], bad.stderr
        if name != "bare":  # said once, by its error, not also as a warning
            assert sum(f"{name}.yaml" in ln for ln in lines) == 1, bad.stderr
