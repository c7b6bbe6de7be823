"""Where the trace cache lives (`wrpsim.workload.cache`), without that module's imports:
`$WRPSIM_CACHE` (default `~/.cache/wrpsim/traces`); off / 0 / false / no / none disables it.
`wrpsim.app.check_catalogs` keeps its record of checked catalog files there too."""

from __future__ import annotations

import os
from pathlib import Path

_OFF = ("off", "0", "false", "no", "none")


def cache_dir() -> Path | None:
    """The trace cache directory, or None when `WRPSIM_CACHE` is set to off/0/false/no/none."""
    env = os.environ.get("WRPSIM_CACHE")
    if env is not None and env.strip().lower() in _OFF:
        return None
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "wrpsim" / "traces"
