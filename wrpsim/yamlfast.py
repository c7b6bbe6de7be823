"""YAML parsing at libyaml's speed, with the results of the pure-Python loaders.

PyYAML's pure-Python parser dominated wrpsim's start-up (the catalogs: ~50 files). Both loaders
here keep the pure-Python loaders' constructors and implicit resolvers and swap in libyaml's C
parser only (`yaml.CParser`), so they return the same objects; without libyaml they fall back to
the pure-Python parser:

- `safe_load(text)`: what `yaml.safe_load(text)` returns;
- `omegaconf_load(path)`: the plain objects `OmegaConf.load(path)` would wrap (OmegaConf's loader:
  YAML 1.2 floats such as `1e-3`, no timestamps, duplicate keys rejected); a parsed file is cached
  in the process by (path, mtime, size), so a caller gets a deep copy it may change;
- `omegaconf_libyaml()`: a block in which `OmegaConf.load` itself (Hydra's reading of conf/ and
  of its own configs) parses with libyaml.

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


@contextmanager
def omegaconf_libyaml():
    """Within the block, `OmegaConf.load` parses with `_omegaconf_loader()` (libyaml, the same
    constructors and resolvers, so the same objects) instead of building OmegaConf's
    pure-Python loader class anew and parsing with it: Hydra reads conf/ and its own configs
    that way, ~15 ms of a run's composition, ~5 with libyaml. OmegaConf looks the loader up in
    `omegaconf._utils` at each call, which is what the block swaps; without libyaml, or with an
    OmegaConf that has no such function, nothing changes. Broken YAML in conf/ never reaches
    Hydra (`wrpsim.app.check_catalogs` reports it first), so Hydra's wording of parse errors is
    not at stake."""
    try:
        import omegaconf._utils as utils
    except ImportError:
        yield
        return
    original = utils.__dict__.get("get_yaml_loader")
    fast = _omegaconf_loader() if original is not None else None
    if fast is None or all(c.__name__ != "CParser" for c in fast.__mro__):  # no libyaml
        yield
        return
    utils.get_yaml_loader = lambda: fast
    try:
        yield
    finally:
        utils.get_yaml_loader = original


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
