"""Where the catalogs live.

The catalogs (`workloads/`, `pools/`, `routers/`, `conf/`) sit at the repository's top level so
users add a workload, fleet or router without touching the engine. They are found, in order, under
`$WRPSIM_ROOT`, the parent of the installed package (an editable install or a checkout), or the
current working directory.

A user's own catalog lives outside the repository: `$WRPSIM_CATALOG` names a folder that may
hold `gpus.yaml` and `models.yaml` (entries added to the shipped ones; a shipped name is
replaced), `engines/` (engine profiles), `pools/`, `routers/` and `workloads/` (YAML options of
those config groups, next to the shipped ones), and Python modules its router YAMLs name in
`_target_` (the folder is put on `sys.path`). See README, "Your own catalog".
"""

from __future__ import annotations

import os
import sys
from functools import cache
from pathlib import Path

from wrpsim.errors import ConfigError, warn

CATALOGS = ("workloads", "pools", "routers", "conf")


@cache
def catalog_root() -> Path:
    """Return the directory that holds `workloads/`, `pools/`, `routers/` and `conf/`."""
    candidates = []
    if os.environ.get("WRPSIM_ROOT"):
        candidates.append(Path(os.environ["WRPSIM_ROOT"]))
    candidates += [Path(__file__).resolve().parent.parent, Path.cwd()]
    for c in candidates:
        if (c / "conf" / "config.yaml").is_file() and (c / "pools").is_dir():
            return c.resolve()
    raise ConfigError(
        "cannot find the wrpsim catalogs (conf/config.yaml, pools/, workloads/, routers/); "
        f"looked in: {', '.join(str(c) for c in candidates)}. Set WRPSIM_ROOT to the checkout."
    )


def catalog_dir(name: str) -> Path:
    """Return the path of catalog `name` (one of `CATALOGS`)."""
    if name not in CATALOGS:
        raise ValueError(f"unknown catalog {name!r}; valid: {', '.join(CATALOGS)}")
    return catalog_root() / name


def user_catalog() -> Path | None:
    """The user's catalog folder `$WRPSIM_CATALOG` (None when unset); `ConfigError` when it
    names something that is not a folder."""
    value = os.environ.get("WRPSIM_CATALOG")
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise ConfigError(
            f"WRPSIM_CATALOG={value}: not a directory; it names a folder of your own catalog "
            f"entries (gpus.yaml, models.yaml, engines/, pools/, routers/, workloads/)")
    if (path.name == "engines" and not (path / "engines").is_dir()
            and any(path.glob("*.yaml")) and value not in _WARNED):
        _WARNED.add(value)  # (once per process: every catalog read asks)
        warn(f"WRPSIM_CATALOG={value} looks like an engines folder itself (engine YAMLs, no "
             f"engines/ inside): the catalog is its parent, WRPSIM_CATALOG={path.parent}")
    return path.resolve()


_WARNED: set = set()


def catalog_dirs(name: str) -> list[Path]:
    """The folders of catalog `name`: the shipped one, then the user's (`user_catalog`) when it
    has that subfolder; a YAML in a later folder replaces one of the same name."""
    dirs = [catalog_dir(name)]
    user = user_catalog()
    if user is not None and (user / name).is_dir():
        dirs.append(user / name)
    return dirs


def option_file(folders: list[Path], option: str) -> Path | None:
    """The YAML of config option `option` among `folders` (e.g. `catalog_dirs("pools")`) as
    Hydra picks it: `<option>.yaml` in the last folder holding one (a user's catalog replaces a
    shipped file of the same name), or None."""
    for folder in reversed(folders):
        path = folder / f"{option}.yaml"
        if path.is_file():
            return path
    return None


def use_user_modules() -> None:
    """Put the user's catalog folder on `sys.path` (once) so its router modules import."""
    user = user_catalog()
    if user is not None and str(user) not in sys.path:
        sys.path.insert(0, str(user))
