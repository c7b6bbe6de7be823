"""`wrpsim.yamlfast` returns what the pure-Python loaders return, for every YAML in the repo."""

from pathlib import Path

import pytest
import yaml
from omegaconf._utils import get_yaml_loader

from wrpsim import yamlfast

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted(p for d in ("conf", "pools", "routers", "workloads")
               for p in (ROOT / d).rglob("*.yaml"))


def _typed(x):
    """x with the type of every value kept (1 == 1.0 == True otherwise)."""
    if isinstance(x, dict):
        return ("dict", [(k, _typed(v)) for k, v in x.items()])
    if isinstance(x, list):
        return ("list", [_typed(v) for v in x])
    return (type(x).__name__, repr(x))


def test_catalogs_parse_identically():
    assert len(FILES) > 40
    for path in FILES:
        text = path.read_text(encoding="utf-8")
        assert _typed(yamlfast.safe_load(text)) == _typed(yaml.safe_load(text)), path
        ref = yaml.load(text, Loader=get_yaml_loader())
        assert _typed(yamlfast.omegaconf_load(path)) == _typed(ref), path


def test_omegaconf_rules_kept(tmp_path):
    f = tmp_path / "a.yaml"
    f.write_text("x: 1e-3\nwhen: 2024-01-01\n")
    assert yamlfast.omegaconf_load(f) == {"x": 0.001, "when": "2024-01-01"}
    f.write_text("x: 1\nx: 2\n")
    with pytest.raises(yaml.YAMLError, match="duplicate key"):
        yamlfast.omegaconf_load(f)


def test_cache_returns_copies(tmp_path):
    f = tmp_path / "a.yaml"
    f.write_text("a: {b: 1}\n")
    yamlfast.omegaconf_load(f)["a"]["b"] = 2
    assert yamlfast.omegaconf_load(f) == {"a": {"b": 1}}


def test_config_yaml_is_omegaconfs_text_of_the_config():
    """`wrpsim.sim.config_yaml` (config.yaml) gives what `OmegaConf.to_yaml(OmegaConf.create(
    cfg))` gives, for plain trees dumped directly and for the rest."""
    import math

    from omegaconf import OmegaConf

    from wrpsim.sim import _plain, config_yaml

    plain = {"a": 1, "b": 2.5, "c": "true", "d": "1e3", "e": "", "f": None, "g": [1, "x", None],
             "h": {"é": "ünïcode", "n": math.nan, "i": math.inf, "big": 2**70, "t": True},
             "k": "null", "l": "~", "m": "a: b", "o": "- x", "p": [[{"q": []}], {}],
             "r": "0x1F", "s": "2026-12-04", "u": "line\nbreak", "v": " lead", "w": "#c"}
    others = [{"x": "${a}"}, {"x": "???"}, {"x": (1, 2)}, {1: "int key"}, {"x": {"y": "\\${z}"}}]
    assert _plain(plain) and not any(_plain(o) for o in others)
    for cfg in (plain, *others):
        assert config_yaml(cfg) == OmegaConf.to_yaml(OmegaConf.create(cfg))


def test_a_same_size_edit_with_its_mtime_restored_is_parsed_again(tmp_path):
    """The per-process parse cache of `omegaconf_load` keys on inode, size, mtime and ctime: an
    edit that keeps the size and puts the mtime back (a sweep's catalog edited mid-run) is
    still seen (ctime cannot be set back)."""
    import os
    import time

    from wrpsim.yamlfast import omegaconf_load

    f = tmp_path / "pool.yaml"
    f.write_text("count: 2\n")
    assert omegaconf_load(f) == {"count": 2}
    st = f.stat()
    time.sleep(0.01)
    with open(f, "r+") as fh:  # same inode, same size
        fh.write("count: 1\n")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert f.stat().st_mtime_ns == st.st_mtime_ns and f.stat().st_size == st.st_size
    assert omegaconf_load(f) == {"count": 1}


def test_omegaconf_load_inside_the_block_gives_the_same_configs_and_is_restored(tmp_path):
    """Within `omegaconf_libyaml()` OmegaConf.load (how Hydra reads conf/ and its own configs)
    parses with libyaml: every conf/ file gives the same config, OmegaConf's own rules hold,
    and the loader is OmegaConf's again after the block."""
    import omegaconf._utils as utils
    from omegaconf import OmegaConf

    conf = [p for p in FILES if p.is_relative_to(ROOT / "conf")]
    plain = [OmegaConf.to_yaml(OmegaConf.load(p)) for p in conf]
    with yamlfast.omegaconf_libyaml():
        assert "CParser" in [c.__name__ for c in utils.get_yaml_loader().__mro__]
        fast = [OmegaConf.to_yaml(OmegaConf.load(p)) for p in conf]
        f = tmp_path / "a.yaml"
        f.write_text("x: 1\nx: 2\n")
        with pytest.raises(yaml.YAMLError, match="duplicate key"):
            OmegaConf.load(f)
    assert fast == plain
    assert utils.get_yaml_loader is get_yaml_loader


def test_omegaconfs_dumper_over_libyaml_writes_the_same_text():
    """`omegaconf_dumper()` writes what OmegaConf's own dumper writes, for every YAML the
    repository ships (as `OmegaConf.to_yaml` and `wrpsim.sim.config_yaml` dump them) and for
    strings that must be quoted, multi-line text and non-ASCII; inside `omegaconf_libyaml()`
    `OmegaConf.to_yaml` uses it."""
    import omegaconf.omegaconf as oc
    from omegaconf import OmegaConf
    from omegaconf._utils import get_omega_conf_dumper

    def dump(x, dumper):
        return yaml.dump(x, default_flow_style=False, allow_unicode=True, sort_keys=False,
                         Dumper=dumper)

    fast = yamlfast.omegaconf_dumper()
    tricky = {"s": ["true", "1", "1.5", "no", "", "a: b", "# x", "- y", "x\ny\n", "é ü 漢",
                    "${a.b}", "???", " lead", "trail ", "long " * 40],
              "n": [None, 0, -1.5e-3, float("inf"), True], "nested": {"k": [{"a": 1}]}}
    for x in [tricky, *(yaml.load(p.read_text(encoding="utf-8"), Loader=get_yaml_loader())
                        for p in FILES)]:
        assert dump(x, fast) == dump(x, get_omega_conf_dumper())
    original = oc.get_omega_conf_dumper
    with yamlfast.omegaconf_libyaml():
        assert oc.get_omega_conf_dumper() is fast
        text = OmegaConf.to_yaml(OmegaConf.create(tricky))
    assert oc.get_omega_conf_dumper is original
    assert text == OmegaConf.to_yaml(OmegaConf.create(tricky))
