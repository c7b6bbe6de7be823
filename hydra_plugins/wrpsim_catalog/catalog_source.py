"""The catalogs as Hydra config groups, read on demand: `wrpsim://catalogs`.

Group `workload` is `workloads/*.yaml`, `pool` is `pools/*.yaml`, `router` is `routers/*.yaml`
(file stem = option name), each over `wrpsim.paths.catalog_dirs` (the user's catalog last: its
names win). `CatalogSearchPath` appends the source to wrpsim's own apps' search paths. Only the
options a composition selects are parsed (`wrpsim.yamlfast.omegaconf_load`: what `OmegaConf.load`
reads), with no package header: the configs the ConfigStore gave when every option was stored
there at start-up (before issue 16).
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource
from hydra.plugins.search_path_plugin import SearchPathPlugin

GROUPS = {"workload": "workloads", "pool": "pools", "router": "routers"}


def _catalog_file(group: str, filename: str) -> Path | None:
    """The YAML that option `filename` (with `.yaml`) of `group` names, or None."""
    try:
        from wrpsim.errors import ConfigError
        from wrpsim.paths import catalog_dirs
    except ImportError:  # another wrpsim checkout first on sys.path: its own ConfigStore serves
        return None

    if group not in GROUPS or "/" in filename:
        return None
    try:
        folders = catalog_dirs(GROUPS[group])
    except ConfigError:
        return None
    for folder in reversed(folders):  # the user's catalog first: its names win
        if (folder / filename).is_file():
            return folder / filename
    return None


class CatalogSource(ConfigSource):
    """Config source of scheme `wrpsim`: the catalog groups (see module doc)."""

    @staticmethod
    def scheme() -> str:
        return "wrpsim"

    def load_config(self, config_path: str) -> ConfigResult:
        from omegaconf import OmegaConf

        from wrpsim.yamlfast import omegaconf_load

        normalized = self._normalize_file_name(config_path)
        group, _, filename = normalized.rpartition("/")
        path = _catalog_file(group, filename)
        if path is None:
            raise ConfigLoadError(f"Config not found : {normalized}")
        obj = omegaconf_load(path)
        return ConfigResult(config=OmegaConf.create({} if obj is None else obj),
                            path=f"{self.scheme()}://{self.path}", provider=self.provider,
                            header={"package": None})

    def available(self) -> bool:
        return True

    def is_group(self, config_path: str) -> bool:
        return config_path.strip("/") in ("", *GROUPS)

    def is_config(self, config_path: str) -> bool:
        group, _, filename = self._normalize_file_name(config_path.rstrip("/")).rpartition("/")
        return _catalog_file(group, filename) is not None

    def list(self, config_path: str, results_filter: ObjectType | None) -> list[str]:
        from wrpsim.errors import ConfigError
        from wrpsim.paths import catalog_dirs

        group = config_path.strip("/")
        ret: list[str] = []
        if group == "":
            names = list(GROUPS)
        elif group in GROUPS:
            try:
                folders = catalog_dirs(GROUPS[group])
            except ConfigError:
                folders = []
            names = [p.name for f in folders for p in f.glob("*.yaml")]
        else:
            names = []
        for name in names:
            path = f"{group}/{name}" if group else name
            self._list_add_result(files=ret, file_path=path, file_name=name,
                                  results_filter=results_filter)
        return sorted(set(ret))


class CatalogSearchPath(SearchPathPlugin):
    """Appends `wrpsim://catalogs` (provider `wrpsim`) to the config search path of wrpsim's
    own apps only — those whose search path holds wrpsim's `conf/` — so another Hydra app in
    the same environment never sees wrpsim's groups."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        try:
            from wrpsim.paths import catalog_dir

            conf = str(catalog_dir("conf"))
        except Exception:  # no wrpsim catalogs here: not a wrpsim app
            return
        if any(conf in str(e.path) for e in search_path.get_path()):
            search_path.append(provider="wrpsim", path="wrpsim://catalogs")
