"""`RayLauncher`: a Hydra launcher that runs every sweep job as a Ray task.

Why our own plugin rather than `hydra-ray-launcher`: its last release (1.2.2) requires
`cloudpickle<3`, which conflicts with joblib ≥ 1.5 (`cloudpickle>=3`, used by the joblib launcher
of single-machine sweeps), and pulls `ray[default]` and `boto3` for its AWS launcher. This one
needs only `ray` (`pip install -e '.[ray]'`).

Config (`hydra.launcher.ray.*`, see conf/hydra/launcher/ray.yaml): `init` — keyword arguments of
`ray.init()` (null values dropped; `address: null` starts a local cluster, `auto` joins a running
one, `ray://host:10001` a remote one); `remote` — `ray.remote()` options of each job (the
preset sets `num_cpus`, `memory`, `max_retries`; another is added with a '+', e.g.
`+hydra.launcher.ray.remote.num_gpus=1`); `shutdown` — call `ray.shutdown()` after the sweep if
this launcher started Ray. On a local cluster the launcher started itself, a job request larger
than the whole cluster (`num_cpus`, `num_gpus`, `memory`, `resources`) is one line
`wrpsim: error: …` before any job is submitted, rather than a sweep that waits for ever.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class RayLauncher(Launcher):
    """Launch each job of a sweep as a Ray task; jobs run in parallel on the Ray cluster.

    Contract (Hydra's `Launcher`): `launch` returns one `JobReturn` per job, in the order of
    `job_overrides`; a job's exception is carried in its `JobReturn`, not raised here.
    """

    def __init__(self, ray: DictConfig | dict[str, Any] | None = None) -> None:
        self.ray_cfg = ray if ray is not None else {}
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        """Keep what `launch` needs (Hydra calls this once before the sweep)."""
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(self, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int) -> Sequence[JobReturn]:
        """Run one batch of jobs on Ray and wait for all of them."""
        from hydra_plugins.wrpsim_ray_launcher._core import launch

        return launch(self, job_overrides, initial_job_idx)
