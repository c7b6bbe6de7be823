"""Small helpers the routers share for their config values.

Router constructors take plain config values (Hydra passes nested mappings as OmegaConf
containers; `plain` turns them into dicts and lists). Relative file paths in a router's config
(rule files, accuracy tables, confusion matrices) are resolved against the `routers/` catalog.
Every check raises `ConfigError` naming the field as `router.<name>`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wrpsim.errors import ConfigError


def plain(value: Any) -> Any:
    """OmegaConf containers as plain dicts / lists (resolved); anything else unchanged."""
    if type(value).__name__ in ("DictConfig", "ListConfig"):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(value, resolve=True)
    return value


def number(field: str, value: Any, lo: float | None = None, hi: float | None = None,
           strict_lo: bool = False) -> float:
    """`value` as a float within the bounds, else `ConfigError` naming `router.<field>`."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and lo is not None:
        ok = value > lo if strict_lo else value >= lo
    if ok and hi is not None:
        ok = value <= hi
    if not ok:
        bounds = []
        if lo is not None:
            bounds.append(f"{'>' if strict_lo else '>='} {lo}")
        if hi is not None:
            bounds.append(f"<= {hi}")
        raise ConfigError(f"router.{field} must be a number {' and '.join(bounds)}, "
                          f"got {value!r}")
    return float(value)


def routers_dir() -> Path:
    """The `routers/` catalog (falls back to the checkout's)."""
    from wrpsim.paths import catalog_dir

    try:
        return catalog_dir("routers")
    except ConfigError:
        return Path(__file__).resolve().parents[2] / "routers"


def router_path(field: str, value: Any) -> Path:
    """An existing file named by `value`, relative paths against the `routers/` catalog."""
    if not isinstance(value, (str, Path)) or not str(value):
        raise ConfigError(f"router.{field}: a file path is required, got {value!r}")
    p = Path(str(value)).expanduser()
    if not p.is_absolute():
        p = routers_dir() / p
    if not p.is_file():
        raise ConfigError(f"router.{field}: file not found: {p}")
    return p


def served(field: str, models: Any, fleet) -> list[str]:
    """Validate a list of model names against the fleet; None means every served model."""
    models = plain(models)
    if models is None:
        return list(fleet.models)
    if isinstance(models, str) or not isinstance(models, (list, tuple)) or not models:
        raise ConfigError(f"router.{field} must be a non-empty list of model names, got "
                          f"{models!r}")
    for m in models:
        if m not in fleet.models:
            raise ConfigError(f"router.{field}: model {m!r} is served by no pool; the fleet "
                              f"serves: {', '.join(fleet.models)}")
    return [str(m) for m in models]
