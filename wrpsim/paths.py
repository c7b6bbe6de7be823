"""Where the catalogs live.

The catalogs (`workloads/`, `pools/`, `routers/`, `conf/`) sit at the repository's top level so
users add a workload, fleet or router without touching the engine. They are found, in order, under
`$WRPSIM_ROOT`, the parent of the installed package (an editable install or a checkout), or the
current working directory.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from wrpsim.errors import ConfigError

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
