"""The Ray side of `RayLauncher` (imported only when a sweep is launched, so Hydra's plugin scan
does not import Ray)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import (
    JobReturn,
    JobStatus,
    configure_log,
    filter_overrides,
    run_job,
    setup_globals,
)
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)


def execute_job(hydra_context, sweep_config: DictConfig, task_function,
                singleton_state: dict[Any, Any], cwd: str) -> tuple[int, JobReturn]:
    """Run one job inside a Ray worker, in the driver's working directory; return the worker's
    process id with the job's result (the driver logs where each job ran)."""
    os.chdir(cwd)
    setup_globals()
    Singleton.set_state(singleton_state)
    HydraConfig.instance().set_config(sweep_config)
    ret = run_job(hydra_context=hydra_context, config=sweep_config, task_function=task_function,
                  job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    return os.getpid(), ret


def _options(node) -> dict[str, Any]:
    cfg = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    return {k: v for k, v in (cfg or {}).items() if v is not None}


def _gather(ray, ref, overrides: Sequence[str]) -> JobReturn:
    """The job's `JobReturn`; a Ray-level failure (worker crash, OOM kill) becomes a failed one
    so that the other jobs' results are still returned."""
    try:
        pid, ret = ray.get(ref)
    except ray.exceptions.RayError as e:
        log.error(f"Ray task of job {' '.join(overrides)} failed: {e}")
        return JobReturn(overrides=list(overrides), status=JobStatus.FAILED, _return_value=e)
    log.info(f"Ray worker pid {pid} (driver pid {os.getpid()}) ran job "
             f"{' '.join(filter_overrides(overrides))}")
    return ret


def launch(launcher, job_overrides: Sequence[Sequence[str]],
           initial_job_idx: int) -> Sequence[JobReturn]:
    """Submit every job as a Ray task (starting or joining a cluster), then gather them."""
    import ray

    setup_globals()
    config, ctx = launcher.config, launcher.hydra_context
    assert config is not None and ctx is not None and launcher.task_function is not None
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    ray_cfg = launcher.ray_cfg
    started = False
    if not ray.is_initialized():
        ray.init(**_options(ray_cfg.get("init")))
        started = True
    remote = ray.remote(**_options(ray_cfg.get("remote")))(execute_job)
    log.info(f"Ray launcher: {len(job_overrides)} jobs, sweep output dir: {sweep_dir}")
    refs = []
    for i, overrides in enumerate(job_overrides):
        idx = initial_job_idx + i
        log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
        sweep_config = ctx.config_loader.load_sweep_config(config, list(overrides))
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
            sweep_config.hydra.job.num = idx
        refs.append(remote.remote(ctx, sweep_config, launcher.task_function,
                                  Singleton.get_state(), os.getcwd()))
    try:
        return [_gather(ray, ref, ov) for ref, ov in zip(refs, job_overrides)]
    finally:
        if started and ray_cfg.get("shutdown", True):
            ray.shutdown()
