"""YAML parsing at libyaml's speed, with the results of the pure-Python loaders.

PyYAML's pure-Python parser dominated wrpsim's start-up (the catalogs: ~50 files). Both loaders
here keep the pure-Python loaders' constructors and implicit resolvers and swap in libyaml's C
parser only (`yaml.CParser`), so they return the same objects; without libyaml they fall back to
the pure-Python parser:

- `safe_load(text)`: what `yaml.safe_load(text)` returns;
- `omegaconf_load(path)`: the plain objects `OmegaConf.load(path)` would wrap (OmegaConf's loader:
  YAML 1.2 floats such as `1e-3`, no timestamps, duplicate keys rejected); a parsed file is cached
  in the process by (path, mtime, size), so a caller gets a deep copy it may change;
- `omegaconf_dumper()`: OmegaConf's YAML dumper over libyaml's emitter (the same text);
- `omegaconf_libyaml()`: a block in which `OmegaConf.load` and `OmegaConf.to_yaml` themselves
  (Hydra's reading of conf/ and of its own configs, its writing of `.hydra/`) use libyaml.

Errors are PyYAML's (`yaml.YAMLError`); libyaml words some messages differently.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import yaml


def _fast(loader: type) -> type:
    """`loader` with libyaml's parser (its constructors and resolvers kept), or `loader`."""
    try:
        from yaml.cyaml import CParser as cparser
    except ImportError:  # PyYAML built without libyaml
        return loader

    def __init__(self, stream):
        cparser.__init__(self, stream)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)

    return type(f"C{loader.__name__}", (cparser, loader), {"__init__": __init__})


@cache
def _safe_loader() -> type:
    return _fast(yaml.SafeLoader)


@cache
def _omegaconf_loader() -> type:
    from omegaconf._utils import get_yaml_loader

    return _fast(get_yaml_loader())


@cache
def omegaconf_dumper() -> type:
    """OmegaConf's YAML dumper (its representers: strings that read as bools or numbers
    quoted) over libyaml's emitter, which writes the same text ~3.5 x faster (every YAML the
    repository ships, and the `.hydra/` files of the check_identical scenarios, dump
    identically: tests/test_yamlfast.py); OmegaConf's own without libyaml."""
    from omegaconf._utils import get_omega_conf_dumper

    base = get_omega_conf_dumper()
    try:
        from yaml.cyaml import CEmitter
    except ImportError:  # PyYAML built without libyaml
        return base

    def __init__(self, stream, default_style=None, default_flow_style=False, canonical=None,
                 indent=None, width=None, allow_unicode=None, line_break=None, encoding=None,
                 explicit_start=None, explicit_end=None, version=None, tags=None,
                 sort_keys=True):
        CEmitter.__init__(self, stream, canonical=canonical, indent=indent, width=width,
                          encoding=encoding, allow_unicode=allow_unicode, line_break=line_break,
                          explicit_start=explicit_start, explicit_end=explicit_end,
                          version=version, tags=tags)
        yaml.representer.Representer.__init__(self, default_style=default_style,
                                              default_flow_style=default_flow_style,
                                              sort_keys=sort_keys)
        yaml.resolver.Resolver.__init__(self)

    return type(f"C{base.__name__}", (CEmitter, base), {"__init__": __init__})


@contextmanager
def omegaconf_libyaml():
    """Within the block, OmegaConf reads and writes YAML with libyaml: `OmegaConf.load` parses
    with `_omegaconf_loader()` (the same constructors and resolvers, so the same objects)
    instead of building its pure-Python loader class anew and parsing with it, and
    `OmegaConf.to_yaml` dumps with `omegaconf_dumper()` (the same text). Hydra reads conf/ and
    its own configs that way (~15 ms of a run's composition, ~5 with libyaml) and writes
    `.hydra/` (~7 ms, ~2). OmegaConf looks the loader up in `omegaconf._utils` at each call and
    the dumper in `omegaconf.omegaconf`, which is what the block swaps (without libyaml both are
    OmegaConf's own, the loader class built once instead of per file); with an OmegaConf that
    has no such functions nothing changes. Broken YAML in conf/ never reaches Hydra
    (`wrpsim.app.check_catalogs` reports it first), so Hydra's wording of parse errors is not
    at stake."""
    try:
        import omegaconf._utils as utils
        import omegaconf.omegaconf as oc
    except ImportError:
        yield
        return
    loader = utils.__dict__.get("get_yaml_loader")
    dumper = oc.__dict__.get("get_omega_conf_dumper")
    if loader is None or dumper is None:
        yield
        return
    fast, fast_dumper = _omegaconf_loader(), omegaconf_dumper()
    utils.get_yaml_loader = lambda: fast
    oc.get_omega_conf_dumper = lambda: fast_dumper
    try:
        yield
    finally:
        utils.get_yaml_loader = loader
        oc.get_omega_conf_dumper = dumper


def safe_load(text: str) -> Any:
    """`yaml.safe_load(text)`, parsed by libyaml when available."""
    return yaml.load(text, Loader=_safe_loader())


_parsed: dict[tuple[str, int, int, int, int], Any] = {}


def omegaconf_load(path: str | Path) -> Any:
    """The plain objects (dict, list, scalars; None for an empty file) that `OmegaConf.load(path)`
    wraps; a fresh copy on every call. A file is parsed again when its inode, size, mtime or
    ctime changed (any write changes its ctime, even one that restores size and mtime)."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key not in _parsed:
        _parsed[key] = yaml.load(p.read_text(encoding="utf-8"), Loader=_omegaconf_loader())
    return copy.deepcopy(_parsed[key])
