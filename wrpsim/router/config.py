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
from wrpsim.errors import number as _number


def plain(value: Any) -> Any:
    """OmegaConf containers as plain dicts / lists (resolved); anything else unchanged."""
    if type(value).__name__ in ("DictConfig", "ListConfig"):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(value, resolve=True)
    return value


def number(field: str, value: Any, lo: float | None = None, hi: float | None = None,
           strict_lo: bool = False, finite: bool = False) -> float:
    """`value` as a float within the bounds (finite too when `finite`), else `ConfigError`
    naming `router.<field>`."""
    return _number(f"router.{field}", value, lo, hi, strict_lo, finite)


def routers_dir() -> Path:
    """The `routers/` catalog (falls back to the checkout's)."""
    from wrpsim.paths import catalog_dir

    try:
        return catalog_dir("routers")
    except ConfigError:
        return Path(__file__).resolve().parents[2] / "routers"


def routers_dirs() -> list[Path]:
    """The `routers/` catalog folders to search, the user's (`$WRPSIM_CATALOG/routers`) first."""
    from wrpsim.paths import catalog_dirs

    try:
        return list(reversed(catalog_dirs("routers")))
    except ConfigError:
        return [routers_dir()]


def router_path(field: str, value: Any) -> Path:
    """An existing file named by `value`, relative paths against the `routers/` catalog
    folders: the user's first (a user's router YAML names its own rule files), then the
    shipped one."""
    if not isinstance(value, (str, Path)) or not str(value):
        raise ConfigError(f"router.{field}: a file path is required, got {value!r}")
    p = Path(str(value)).expanduser()
    if p.is_absolute():
        if not p.is_file():
            raise ConfigError(f"router.{field}: file not found: {p}")
        return p
    folders = routers_dirs()
    found = next((f / p for f in folders if (f / p).is_file()), None)
    if found is None:
        where = (f"{folders[0] / p}" if len(folders) == 1 else
                 f"{p} in {' nor in '.join(map(str, folders))} (the router catalog folders)")
        raise ConfigError(f"router.{field}: file not found: {where}")
    return found


def name_list(field: str, values: Any, kind: str) -> list:
    """`values` as a non-empty list (of `kind` names), else `ConfigError` naming the field."""
    values = plain(values)
    if isinstance(values, str) or not isinstance(values, (list, tuple)) or not values:
        raise ConfigError(f"router.{field} must be a non-empty list of {kind} names, got "
                          f"{values!r}")
    return list(values)


def served(field: str, models: Any, fleet) -> list[str]:
    """Validate a list of model names against the fleet; None means every served model."""
    if plain(models) is None:
        return list(fleet.models)
    models = name_list(field, models, "model")
    for m in models:
        if m not in fleet.models:
            pair = fleet_serving([str(x) for x in models])
            raise ConfigError(f"router.{field}: model {m!r} is served by no pool; the fleet "
                              f"serves: {', '.join(fleet.models)}"
                              + (f" (pool={pair} serves {', '.join(map(str, models))})"
                                 if pair else ""))
    return [str(m) for m in models]


def fleet_serving(models: list[str]) -> str | None:
    """The first catalog fleet (`pools/`, the user's included; by name) whose pools serve every
    one of `models`, for a message that says what to pair a router with; None when none does
    or the catalog cannot be read."""
    try:
        import yaml

        from wrpsim.paths import catalog_dirs

        files = {f.stem: f for d in catalog_dirs("pools") for f in sorted(d.glob("*.yaml"))}
        for name in sorted(files):
            raw = yaml.safe_load(files[name].read_text("utf-8")) or {}
            have = {str(p.get("model")) for p in (raw.get("pools") or {}).values()
                    if isinstance(p, dict)}
            if set(models) <= have:
                return name
    except Exception:  # (a hint must not fail the message it joins)
        return None
    return None
