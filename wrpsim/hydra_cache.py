"""Hydra's composition of a run's config, reused from an earlier identical one.

Hydra composes a run's config (`ConfigLoaderImpl.load_configuration`: the defaults list, every
config file it names, the merges, the command-line overrides, the `hydra.runtime` fields) in
~75 ms of every run's ~1.5 s, and the result depends only on its inputs. Inside
`cached_composition()`, a single run's composition (`RunMode.RUN`) is stored, pickled, under a
key that covers all of them, and a later composition with the same key is the stored one:

- the arguments (config name, overrides, run mode, the two flags), the working directory, the
  whole environment (the defaults list may interpolate `oc.env`; `hydra.job.env_copy`), the
  job name Hydra detected, Hydra's version base, the Python, Hydra and OmegaConf versions;
- every config source on the search path, by what it reads: a `file://` folder and a `pkg://`
  package by the name, size, inode, mtime and ctime of every file under it (a write changes
  ctime), `wrpsim://catalogs` by those of every YAML in its folders, `structured://` by the
  pickled contents of Hydra's ConfigStore (what Hydra and the plugins registered); a source
  of any other kind turns the reuse off;
- the code that composes: the files of the installed `hydra` and `omegaconf` packages and of
  the catalog source and YAML loader, by the same stamps.

A composition that raised is not stored (the next run raises the same way), nor one that
read a source the key does not cover (`hydra.searchpath` in the primary config or an override
adds sources while composing), nor one that issued a warning (it is composed again, outside
the recording, so that the warning shows as before, and the next run composes too). The store
is `<trace cache>/compose/` (`WRPSIM_CACHE`; off: no reuse), at most `KEEP` files, written
atomically; an unreadable one is composed again. A sweep's own composition
(`RunMode.MULTIRUN`) is never reused; its jobs', composed as single runs, are.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

FORMAT = 1
#: stored compositions kept (the oldest are removed beyond this)
KEEP = 64


def _tree(h, root: Path) -> None:
    """Add the name and stamp of every file under `root` (sorted) to hash `h`."""
    if not root.is_dir():
        h.update(f"missing {root}\n".encode())
        return
    seen = set()
    for folder, dirs, files in os.walk(root, followlinks=True):  # (Hydra reads through links)
        real = os.path.realpath(folder)
        if real in seen:  # a link back up the tree
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            p = os.path.join(folder, name)
            try:
                st = os.stat(p)
            except OSError:
                h.update(f"gone {p}\n".encode())
                continue
            h.update(f"{p} {st.st_size} {st.st_ino} {st.st_mtime_ns} {st.st_ctime_ns}\n"
                     .encode())


def _package_dir(name: str) -> Path | None:
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) if len(locations) == 1 else None


def composition_key(loader, config_name, overrides, run_mode, from_shell,
                    validate_sweep_overrides) -> str | None:
    """The key of a composition's inputs (module docstring), or None when one of its config
    sources is of a kind this does not know how to fingerprint."""
    import hydra
    import omegaconf
    from hydra import version
    from hydra.core.config_store import ConfigStore
    from hydra.core.utils import JobRuntime

    h = hashlib.sha256()
    try:
        job_name = JobRuntime.instance().get("name")
    except KeyError:
        job_name = None
    head = [FORMAT, sys.version, hydra.__version__, str(version.getbase()),
            omegaconf.__version__, os.getcwd(), sorted(os.environ.items()), job_name,
            config_name, list(overrides), str(run_mode), from_shell, validate_sweep_overrides]
    h.update(repr(head).encode())
    for pkg in ("hydra", "omegaconf"):
        root = _package_dir(pkg)
        if root is None:
            return None
        _tree(h, root)
    here = Path(__file__).resolve()
    for code in (here, here.with_name("yamlfast.py"), here.with_name("paths.py"),
                 here.parents[1] / "hydra_plugins" / "wrpsim_catalog" / "catalog_source.py"):
        h.update(_stamp(code).encode())
    for src in loader.get_sources():
        scheme = src.scheme()
        h.update(f"source {type(src).__module__}.{type(src).__qualname__} {scheme} "
                 f"{src.provider} {src.path}\n".encode())
        if scheme == "file":
            _tree(h, Path(src.path))
        elif scheme == "pkg":
            root = _package_dir(src.path)
            if root is None:
                return None
            _tree(h, root)
        elif scheme == "structured":
            h.update(pickle.dumps(ConfigStore.instance().repo, protocol=4))
        elif scheme == "wrpsim":
            from hydra_plugins.wrpsim_catalog.catalog_source import GROUPS
            from wrpsim.errors import ConfigError
            from wrpsim.paths import catalog_dirs

            for dirname in GROUPS.values():
                try:
                    folders = catalog_dirs(dirname)
                except ConfigError as e:
                    h.update(f"error {e}\n".encode())
                    continue
                for folder in folders:
                    h.update(f"folder {folder}\n".encode())
                    for p in sorted(folder.glob("*.yaml")):
                        h.update(_stamp(p).encode())
        else:
            return None
    return h.hexdigest()


def _stamp(p: Path) -> str:
    try:
        st = p.stat()
    except OSError:
        return f"{p} missing\n"
    return f"{p} {st.st_size} {st.st_ino} {st.st_mtime_ns} {st.st_ctime_ns}\n"


def _store_dir() -> Path | None:
    from wrpsim.workload.cachedir import cache_dir

    root = cache_dir()
    return None if root is None else root / "compose"


def _save(folder: Path, path: Path, blob: bytes) -> None:
    """Write `blob` to `path` atomically and keep the folder at `KEEP` files at most; a
    store that cannot be written is skipped."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(blob)
        os.replace(tmp, path)
        stored = sorted(folder.glob("*.pkl"), key=lambda p: p.stat().st_mtime_ns)
        for old in stored[:-KEEP]:
            old.unlink(missing_ok=True)
    except OSError:
        tmp.unlink(missing_ok=True)


def _sources(cfg) -> list | None:
    """The config sources a composition used (`hydra.runtime.config_sources`): more than the
    key covered when the primary config or an override set `hydra.searchpath`, which is then
    not stored."""
    try:
        return [(s.path, s.schema, s.provider) for s in cfg.hydra.runtime.config_sources]
    except Exception:
        return None


@contextmanager
def cached_composition():
    """Within the block, a single run's composition is reused when its inputs are those of a
    stored one (module docstring)."""
    folder = _store_dir()
    try:
        from hydra._internal.config_loader_impl import ConfigLoaderImpl
        from hydra.types import RunMode
    except ImportError:  # another Hydra layout: compose as it does
        folder = None
    if folder is None or "load_configuration" not in ConfigLoaderImpl.__dict__:
        yield
        return
    original = ConfigLoaderImpl.load_configuration

    def load_configuration(self, config_name, overrides, run_mode, from_shell=True,
                           validate_sweep_overrides=True):
        args = (config_name, overrides, run_mode, from_shell, validate_sweep_overrides)
        if run_mode != RunMode.RUN:
            return original(self, *args)
        try:
            key = composition_key(self, *args)
        except Exception:  # anything unexpected: compose as Hydra does
            key = None
        if key is None:
            return original(self, *args)
        path = folder / f"{key}.pkl"
        try:
            return pickle.loads(path.read_bytes())
        except Exception:  # absent, partial or from another layout: compose
            pass
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cfg = original(self, *args)
        if caught:  # compose again unrecorded, so the warnings show (or raise) as before
            return original(self, *args)
        if _sources(cfg) == [(s.path, s.scheme(), s.provider) for s in self.get_sources()]:
            _save(folder, path, pickle.dumps(cfg, protocol=4))
        return cfg

    ConfigLoaderImpl.load_configuration = load_configuration
    try:
        yield
    finally:
        ConfigLoaderImpl.load_configuration = original
