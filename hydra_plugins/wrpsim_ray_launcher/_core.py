"""The Ray side of `RayLauncher` (imported only when a sweep is launched, so Hydra's plugin scan
does not import Ray)."""

from __future__ import annotations

import logging
import os
import time
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


#: `ray.remote()` option -> the cluster resource it reserves, and what sizes a local cluster's
RESOURCES = {"num_cpus": ("CPU", "hydra.launcher.ray.init.num_cpus sets it"),
             "num_gpus": ("GPU", "+hydra.launcher.ray.init.num_gpus=N sets it"),
             "memory": ("memory", "bytes; Ray gives a local cluster most of the free memory")}
KEY = "hydra.launcher.ray"


def _n(v: float) -> str:
    return f"{v:.0f}" if float(v).is_integer() else f"{v:g}"


def unmet(remote: dict[str, Any], total: dict[str, float]) -> str | None:
    """One line when a job's `ray.remote()` request (`remote`: num_cpus, num_gpus, memory,
    resources) exceeds what the whole cluster has (`total`: `ray.cluster_resources()`), so no job
    could ever be scheduled (Ray would wait for the autoscaler for ever); else None."""
    asks = [(f"{KEY}.remote.{k}", res, remote[k], why)
            for k, (res, why) in RESOURCES.items() if remote.get(k)]
    asks += [(f"{KEY}.remote.resources.{r}", r, v, "+hydra.launcher.ray.init.resources sets it")
             for r, v in (remote.get("resources") or {}).items() if v]
    for key, res, want, why in asks:
        have = total.get(res, 0)
        if want > have:
            return (f"{key}={_n(want)}: every job asks for {_n(want)} {res} but the local Ray "
                    f"cluster this sweep started has {_n(have)} in all ({why}), so no job could "
                    f"ever start; ask for at most {_n(have)}, or give the cluster more")
    return None


#: seconds the driver waits for Ray's log forwarder before shutting a cluster it started down
DRAIN_S = 1.0


def _init(ray, init: dict[str, Any]) -> None:
    """`ray.init(**init)`; a `ConfigError` naming `init.address` when no cluster answers there."""
    from wrpsim.errors import ConfigError

    try:
        ray.init(**init)
    except ConnectionError as e:
        if not init.get("address"):
            raise
        first = " ".join(str(e).strip().splitlines()[:1])
        raise ConfigError(f"{KEY}.init.address={init['address']}: no Ray cluster found there "
                          f"({first}); start one (ray start --head) or leave the key null to "
                          f"start a local cluster for the sweep") from None


def launch(launcher, job_overrides: Sequence[Sequence[str]],
           initial_job_idx: int) -> Sequence[JobReturn]:
    """Submit every job as a Ray task (starting or joining a cluster), then gather them. A local
    cluster that this launcher started and that could never meet one job's request is a
    `ConfigError` (`unmet`) before any job is submitted. The workers' lines (a run's summary
    line, its `json=true` JSON line) reach the driver through Ray's log forwarding, which by
    default folds lines that differ only in numbers into one (`[repeated 2x across
    cluster]`) and stops with `ray.shutdown()`: both would lose runs' lines, so deduplication
    is off (`RAY_DEDUP_LOGS=0` unless set) and the forwarder gets a moment to drain before a
    cluster this launcher started is shut down."""
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    import ray

    setup_globals()
    config, ctx = launcher.config, launcher.hydra_context
    assert config is not None and ctx is not None and launcher.task_function is not None
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    ray_cfg = launcher.ray_cfg
    started, init = False, {}
    if not ray.is_initialized():
        init = _options(ray_cfg.get("init"))
        _init(ray, init)
        started = True
    try:
        return _submit(ray, launcher, ray_cfg, job_overrides, initial_job_idx, sweep_dir,
                       local=started and not init.get("address"))
    finally:
        if started and ray_cfg.get("shutdown", True):
            time.sleep(DRAIN_S)  # (the log forwarder polls the workers' files)
            ray.shutdown()


def _submit(ray, launcher, ray_cfg, job_overrides: Sequence[Sequence[str]],
            initial_job_idx: int, sweep_dir: Path, local: bool) -> list[JobReturn]:
    from wrpsim.errors import ConfigError

    config, ctx = launcher.config, launcher.hydra_context
    options = _options(ray_cfg.get("remote"))
    if local:  # a cluster of others may grow (autoscaler); one this sweep started does not
        problem = unmet(options, ray.cluster_resources())
        if problem:
            raise ConfigError(problem)
    remote = ray.remote(**options)(execute_job)
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
    return [_gather(ray, ref, ov) for ref, ov in zip(refs, job_overrides)]
