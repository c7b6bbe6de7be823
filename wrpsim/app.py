"""The thin Hydra shell shared by wrpsim's command-line verbs.

The catalogs at the repository's top level feed Hydra's config groups: every `workloads/*.yaml`
is an option of group `workload`, `pools/*.yaml` of `pool`, `routers/*.yaml` of `router` (file
stem = option name). They are registered in Hydra's ConfigStore at start-up, so Hydra's own
messages list the valid options of a group. User errors (`WrpsimError`) are printed as one line
on stderr with exit status 2, never as a traceback.
"""

from __future__ import annotations

import sys

from wrpsim.errors import ConfigError, WrpsimError
from wrpsim.paths import catalog_dir

GROUPS = (("workload", "workloads"), ("pool", "pools"), ("router", "routers"))


def register_catalogs() -> None:
    """Store every catalog YAML as an option of its Hydra config group."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException
    from yaml import YAMLError

    cs = ConfigStore.instance()
    for group, dirname in GROUPS:
        for path in sorted(catalog_dir(dirname).glob("*.yaml")):
            try:
                node = OmegaConf.load(path)
            except (YAMLError, OmegaConfBaseException) as e:
                raise ConfigError(f"{path}: invalid YAML: {e}") from None
            cs.store(group=group, name=path.stem, node=node, provider="wrpsim")


def hydra_entry(task, config_name: str = "config"):
    """Run `task(cfg_dict, out_dir)` as a Hydra app over `conf/<config_name>.yaml`."""
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    try:
        register_catalogs()
        conf_dir = str(catalog_dir("conf"))
    except WrpsimError as e:
        print(f"wrpsim: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None

    def _job(cfg) -> None:
        try:
            container = OmegaConf.to_container(cfg, resolve=True)
            task(container, HydraConfig.get().runtime.output_dir)
        except WrpsimError as e:
            print(f"wrpsim: error: {e}", file=sys.stderr)
            raise SystemExit(2) from None

    return hydra.main(version_base="1.3", config_path=conf_dir, config_name=config_name)(_job)()
