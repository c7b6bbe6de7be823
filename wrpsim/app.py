"""The thin Hydra shell shared by wrpsim's command-line verbs.

The catalogs at the repository's top level feed Hydra's config groups: every `workloads/*.yaml`
is an option of group `workload`, `pools/*.yaml` of `pool`, `routers/*.yaml` of `router` (file
stem = option name). Hydra reads them through the config source `wrpsim://catalogs`
(`hydra_plugins/wrpsim_catalog`, on every Hydra app's search path), which parses only the options
a composition selects; `check_catalogs` parses every file once at start-up so a broken one fails
there. Hydra's own messages list the valid options of a group.

Contracts of a job (one run, or one point of a `-m` sweep), in its output directory (the markers
are `wrpsim.jobs`'):

- a run that returns normally gets a completion marker `_DONE` (JSON: the SHA-256 of the resolved
  config, the overrides, the wall time), written atomically *after* every result file; a directory
  without `_DONE` is never a finished run. Before a job runs, an earlier job's `_DONE`,
  `error.json` and the leftover `.NAME.tmp-*` files of interrupted writes are removed; once it
  completes, the earlier job's output files it did not write again (the `outputs` given to
  `hydra_entry`, e.g. `trace.json` of a run with `sim.trace=true`) are, so no stale result
  outlives a rerun and a rerun rejected for bad input leaves the earlier results (without
  `_DONE`); other files are left;
- single run: a user error (`WrpsimError`) prints one line `wrpsim: error: …` on stderr and exits
  with status 2, never a traceback; so does a bad command line that Hydra rejects before the run
  (unknown group option or key, malformed override, a launcher that cannot start: see
  `wrpsim.hydra_errors`); any other exception is a failure of the run: traceback, status 1. A
  user error inside the run also leaves `error.json` in its folder, so `wrpsim.report` says why
  the folder has no results;
- a sweep whose job's worker process died (killed, crashed) prints one line `wrpsim: error: …`
  and exits with status 1 (a failure, not bad input); Ctrl-C prints one line
  `wrpsim: interrupted…` and exits with status 130, under any launcher;
- a `WrpsimWarning` (a configuration that runs but is probably not meant) prints one line
  `wrpsim: warning: …` on stderr and writes it to the run's `wrpsim.log` (Hydra's log file in
  the output folder), so a sweep's warnings stay with their runs;
- sweep (`-m`): a failing job — user error or any other exception — writes `error.json` (message,
  exception type, traceback, overrides) atomically, prints one line on stderr and returns normally,
  so the other jobs go on; a job whose directory already holds `_DONE` with the same config digest
  is skipped with a line `wrpsim: skip …` on stderr (resume: re-run the sweep with the same
  `hydra.sweep.dir`). `WRPSIM_RERUN=1` in the environment disables the skipping.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
from pathlib import Path

from wrpsim.errors import ConfigError, WrpsimError, WrpsimWarning, yaml_error
from wrpsim.paths import catalog_dir, catalog_dirs, option_file, use_user_modules
from wrpsim.rundir import MULTIRUN, OTHER_CONFIG

GROUPS = (("workload", "workloads"), ("pool", "pools"), ("router", "routers"))


def check_catalogs() -> None:
    """Parse every catalog YAML and every file of `conf/` (`ConfigError` naming the file of an
    invalid one) and put the user's router modules on `sys.path`; the options are read by
    `wrpsim://catalogs`.

    A file that passed this check before and has not changed since (same inode, size, mtime
    and ctime, same PyYAML, OmegaConf and loader code: `_checked`) is not parsed again: its
    check would pass again. The record of passed files lives beside the trace cache
    (`WRPSIM_CACHE`; off: every file is parsed every time). Parsing all ~65 files took ~15 ms
    of every run's start-up."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException
    from yaml import YAMLError

    from wrpsim.yamlfast import omegaconf_load

    use_user_modules()
    record, version, passed = _checked()
    seen = {}
    paths = [path for _, dirname in GROUPS for folder in catalog_dirs(dirname)
             for path in sorted(folder.glob("*.yaml"))]
    # the verbs' own config tree (conf/: config.yaml, network/, failures/, ...), which Hydra
    # parses with a four-line ParserError traceback
    paths += sorted(Path(catalog_dir("conf")).rglob("*.yaml"))
    for path in paths:
        key, stamp = str(path), _file_stamp(path)
        if stamp is not None and passed.get(key) == stamp:
            seen[key] = stamp
            continue
        try:
            node = omegaconf_load(path)
            if not isinstance(node, (dict, list, type(None))):
                OmegaConf.create(node)  # what the ConfigStore would reject
        except (YAMLError, OmegaConfBaseException) as e:
            raise ConfigError(yaml_error(path, e)) from None
        if stamp is not None:
            seen[key] = stamp
    if record is not None and any(passed.get(k) != v for k, v in seen.items()):
        # (files of other catalogs are kept while they exist)
        _record_checked(record, version, {**{k: v for k, v in passed.items()
                                             if k not in seen and Path(k).is_file()}, **seen})


def _file_stamp(path: Path) -> list | None:
    """[inode, size, mtime_ns, ctime_ns] of a file (ctime changes with any write, and cannot be
    set back), or None."""
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _check_version() -> str:
    """What a catalog file's check depends on besides the file: the YAML and OmegaConf
    libraries and the loader code (`wrpsim.yamlfast`, this module)."""
    import yaml
    from omegaconf.version import __version__ as omegaconf_version

    h = hashlib.sha256(f"1 {yaml.__version__} {yaml.__with_libyaml__} {omegaconf_version}"
                       .encode())
    for mod in ("yamlfast.py", "app.py"):
        h.update(Path(__file__).with_name(mod).read_bytes())
    return h.hexdigest()


def _checked() -> tuple[Path | None, str, dict]:
    """(the record file, this `_check_version`, {path: stamp} of the catalog files that passed
    `check_catalogs` under it); (None, "", {}) when the trace cache is off."""
    from wrpsim.workload.cachedir import cache_dir

    folder = cache_dir()
    if folder is None:
        return None, "", {}
    record, version = folder / "catalog-check.json", _check_version()
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return record, version, {}
    if not isinstance(data, dict) or data.get("version") != version:
        return record, version, {}
    passed = data.get("passed")
    return record, version, passed if isinstance(passed, dict) else {}


def _record_checked(record: Path, version: str, passed: dict) -> None:
    """Write the record of passed files (under `version`) atomically; a cache that cannot be
    written is skipped (the files are parsed again next time)."""
    from wrpsim.io import write_text

    try:
        write_text(record, json.dumps({"version": version, "passed": passed}))
    except OSError:
        pass


def register_catalogs() -> None:
    """For callers of Hydra's compose API (tests, studies, benchmarks): `check_catalogs`. Every
    Hydra app in the process reads the catalog groups through `wrpsim://catalogs`, so nothing is
    stored in Hydra's ConfigStore (a same-named stored copy would only add schema warnings)."""
    check_catalogs()


def say(line: str, stream=None) -> None:
    """Write one whole line in one call and flush, so lines of parallel jobs never interleave.

    When the reader of stdout has gone (`wrpsim json=true | head -c 100`) the line is dropped
    and stdout sent to /dev/null from then on, so a run whose results are written is not
    failed by a print (Python's advice for SIGPIPE); other streams raise as usual."""
    stream = stream or sys.stdout
    try:
        stream.write(line + "\n")
        stream.flush()
    except BrokenPipeError:
        if stream is not sys.stdout:
            raise
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def empty_mapping_override(cfg, overrides: list[str]) -> str | None:
    """The error for an override `KEY={}` of a mapping that has keys, else None: Hydra merges a
    mapping given on the command line into the config's own, so `{}` clears nothing and the run
    would silently keep every entry (e.g. `plan.candidates={}`)."""
    from omegaconf import DictConfig, OmegaConf

    for o in overrides:
        key, eq, value = o.partition("=")
        if not eq or value.strip() != "{}" or key.startswith("~"):
            continue
        key = key.lstrip("+")
        node = OmegaConf.select(cfg, key, default=None)
        if isinstance(node, DictConfig) and len(node):
            kept = ", ".join(str(k) for k in list(node)[:6]) + (", …" if len(node) > 6 else "")
            first = next(iter(node))
            return (f"{key}={{}} changes nothing: Hydra merges a mapping given on the command "
                    f"line into the config's, so {key} keeps its keys ({kept}); remove an "
                    f"entry with ~{key}.NAME (e.g. ~{key}.{first})")
    return None


def system_allocator() -> None:
    """Arrow's buffers from the C library's `malloc` instead of pyarrow's bundled mimalloc
    (console entry points only; nothing when the user set `ARROW_DEFAULT_MEMORY_POOL`). The
    choice goes into the environment, which Arrow reads once, at pyarrow's import (so call this
    before it), and which launchers' worker processes inherit. Why: mimalloc asks the kernel for
    transparent huge pages, so each first touch of its arenas faults in and zeroes 2 MiB, with
    compaction stalls when memory is fragmented: on the default run, ~19 % of the whole
    process's CPU samples in the kernel's page clearing, 150 instead of 123 MiB peak, and
    1.18-1.29 s instead of 1.03-1.08 s wall (2-core Intel Xeon, 2026-12-05). The allocator
    changes no value: the result files are the same bytes."""
    if "ARROW_DEFAULT_MEMORY_POOL" in os.environ:
        return
    os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"
    pa = sys.modules.get("pyarrow")
    if pa is not None:  # (imported already: later buffers from the system pool)
        pa.set_memory_pool(pa.system_memory_pool())


_gc_paused = False


def pause_gc() -> None:
    """Turn the cyclic garbage collector off until `resume_gc` (console entry points only).
    Start-up (imports, Hydra's composition, building the fleet) creates ~10^5 objects that
    live as long as the run and hardly any garbage, so the collector's passes over them (one
    full collection and ~20 young ones, ~15-20 ms of the default run's ~1.6 s) find nothing;
    `Simulation.run` resumes it before its loop, where `gc.freeze` then takes those objects out
    of its sight. Does nothing when the collector is already off."""
    global _gc_paused
    import gc

    if gc.isenabled():
        gc.disable()
        _gc_paused = True


def resume_gc() -> None:
    """Turn the collector back on if `pause_gc` turned it off (else nothing)."""
    global _gc_paused
    if _gc_paused:
        import gc

        gc.enable()
        _gc_paused = False


def leave() -> None:
    """End a command-line process that has finished its work, without the interpreter's
    teardown: run the `atexit` handlers (logging's shutdown, launchers' clean-up), flush stdout
    and stderr, then `os._exit(0)`. The teardown frees every module, table and object one by
    one, ~0.1 s of the default run's ~1.6 s, and writes nothing. Returns normally (the usual
    exit) while another thread still runs, as it might still be writing, and under a profiler
    or tracer (`python -m cProfile -m wrpsim`, pdb, coverage), whose own code runs after the
    module returns. Only for console entry points (`wrpsim.__main__.cli`): called in-process
    it would end the caller too."""
    import threading

    if threading.active_count() > 1 or sys.getprofile() is not None or sys.gettrace() is not None:
        return
    import atexit

    atexit._run_exitfuncs()
    code = 0
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # e.g. stdout's reader went away: CPython's exit status
            code = 120
    os._exit(code)


def user_error(message: str) -> SystemExit:
    """Print one line `wrpsim: error: message` on stderr; the SystemExit (status 2) to raise."""
    say(f"wrpsim: error: {message}", sys.stderr)
    return SystemExit(2)


def _to_log_files(line: str) -> None:
    """Write `line` to the log files of the root logger (a Hydra run's `wrpsim.log` in its
    output folder), so a warning stays with the run it was given in; not to its console
    handler, whose stream is stdout (data)."""
    import logging

    record = logging.LogRecord("wrpsim", logging.WARNING, __file__, 0, line, None, None)
    for h in logging.getLogger().handlers:
        if isinstance(h, logging.FileHandler) and record.levelno >= h.level:
            h.handle(record)


def warning_line(line: str, prefix: str = "wrpsim") -> None:
    """Print `<prefix>: warning: <line>` on stderr and write it to the run's `wrpsim.log` (a
    warning the command itself words, e.g. after the simulation, kept as `show_warnings` keeps
    a `WrpsimWarning`)."""
    text = f"{prefix}: warning: {line}"
    say(text, sys.stderr)
    _to_log_files(text)


def show_warnings() -> None:
    """Show every `WrpsimWarning` as one line `wrpsim: warning: …` on stderr (others as usual)."""
    shown = warnings.showwarning
    if getattr(shown, "wrpsim", False):
        return

    def _show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, WrpsimWarning):
            warning_line(str(message))
        else:
            shown(message, category, filename, lineno, file, line)

    _show.wrpsim = True
    warnings.showwarning = _show
    warnings.simplefilter("always", WrpsimWarning)


def interrupted(argv: list[str]) -> str:
    """The line printed on Ctrl-C (exit status 130): a sweep's completed runs keep their
    results (`_DONE`), and the same command resumes it."""
    if any(a in ("-m", "--multirun") for a in argv):
        return ("wrpsim: interrupted; completed runs keep their results — rerun the same command "
                "to resume")
    return "wrpsim: interrupted"


def _hydra_main(main, config_name: str = "config") -> None:
    """Call a `hydra.main` app with Hydra's exceptions let through (`HYDRA_FULL_ERROR=1`) and
    turn the command-line ones into one line (`wrpsim.hydra_errors`). A user who set
    HYDRA_FULL_ERROR=1 gets Hydra's tracebacks."""
    from wrpsim.hydra_errors import explain, worker_died

    full = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        main()
    except Exception as e:
        line = None if full == "1" else explain(e, config_name=config_name)
        if line is None:
            raise
        if worker_died(e):  # a failure, not bad input: status 1, as a run's crash
            say(f"wrpsim: error: {line}", sys.stderr)
            raise SystemExit(1) from None
        raise user_error(line) from None
    except KeyboardInterrupt:  # Ctrl-C, under any launcher: one line, not Hydra's traceback
        say(interrupted(sys.argv[1:]), sys.stderr)
        raise SystemExit(130) from None
    finally:
        if full is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = full


def launcher_options(conf: Path) -> list[str]:
    """The `hydra/launcher` options Hydra would accept: conf/hydra/launcher/*.yaml and those the
    installed Hydra plugins register (basic, joblib, submitit_local, ...), not a fixed list."""
    names = {p.stem for p in (conf / "hydra" / "launcher").glob("*.yaml")}
    try:
        from hydra.core.config_store import ConfigStore
        from hydra.core.plugins import Plugins

        Plugins.instance()  # imports the plugins, which register their launcher configs
        names |= {n.removesuffix(".yaml") for n in ConfigStore.instance().list("hydra/launcher")}
    except Exception:  # help must print: fall back to the ones Hydra ships
        names |= {"basic"}
    return sorted(names)


def app_help(config_name: str) -> str:
    """`--help` of a Hydra app: its config groups (catalogs, conf/ folders, launchers) with the
    defaults list's choices marked, then the keys of conf/<config_name>.yaml (`wrpsim.keyhelp`)."""
    import yaml

    from wrpsim.keyhelp import app_help as page

    conf = catalog_dir("conf")
    raw = yaml.safe_load((conf / f"{config_name}.yaml").read_text(encoding="utf-8")) or {}
    chosen = {k: v for d in raw.get("defaults") or [] if isinstance(d, dict) for k, v in d.items()}
    groups = {g: (sorted({p.stem for f in catalog_dirs(d) for p in f.glob("*.yaml")}),
                  chosen.get(g)) for g, d in GROUPS if g in chosen}
    for sub in sorted(p for p in conf.iterdir() if p.is_dir()):
        if sub.name in chosen or sub.name == "experiment":  # the one optional group
            groups[sub.name] = (sorted(p.stem for p in sub.glob("*.yaml")), chosen.get(sub.name))
    # the plugin's own submitit_slurm has none of the preset's settings (docs/sweeps.md: use slurm)
    bare = "submitit_slurm (use slurm)"
    groups["hydra/launcher"] = ([bare if o == "submitit_slurm" else o
                                 for o in launcher_options(conf)], "basic")
    help_cfg = (raw.get("hydra") or {}).get("help") or {}
    return page(config_name, help_cfg.get("header", ""), groups, conf / f"{config_name}.yaml",
                help_cfg.get("footer", ""))


def group_source(message: str, choices, overrides=()) -> str:
    """' (pool=NAME: FILE)' when `message` is about the config of a catalog group (`GROUPS`:
    it starts with the group's key, as `pool.pools.h100: unknown key(s) ...`) chosen from a
    YAML file and no override of the command line changes that group's keys — the file is
    then what a user edits to fix it (the last of `catalog_dirs` holding it, as Hydra picks
    it); '' otherwise (an override's error names the key the command line set)."""
    for group, dirname in GROUPS:
        if not (message == group or message.startswith((f"{group}.", f"{group}:"))):
            continue
        name = (choices or {}).get(group)
        if not name:
            return ""
        path = option_file(catalog_dirs(dirname), name)
        if path is None or any(o.lstrip("+~").startswith(f"{group}.") for o in overrides):
            return ""
        return f" ({group}={name}: {path})"
    return ""


#: Hydra's command-line flags: Hydra's parser takes the overrides as one run of words, so a flag
#: after an override (`seed=1 -m seed=1,2`) left the words after it unparsed; `flags_first`
#: moves the flags (with their values) in front. Value-less ones, ones that take a value, and
#: `--info`, whose value is optional (one of `_INFO_VALUES`)
_BARE_FLAGS = (*MULTIRUN, "-r", "--run", "--resolve", "-h", "--help", "--hydra-help",
               "--version", "-sc", "--shell-completion")
_VALUE_FLAGS = ("-c", "--cfg", "-p", "--package", *OTHER_CONFIG, "--experimental-rerun")
_INFO_VALUES = ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath")


def flags_first(argv: list[str]) -> list[str]:
    """`argv` with Hydra's flags (and the value each takes) moved in front of the overrides,
    order otherwise kept: the same command whatever order the user typed it in."""
    front, rest, i = [], [], 0
    while i < len(argv):
        a = argv[i]
        n = 1
        if a in _VALUE_FLAGS and i + 1 < len(argv):
            n = 2
        elif a in ("-i", "--info") and i + 1 < len(argv) and argv[i + 1] in _INFO_VALUES:
            n = 2
        if a in _BARE_FLAGS or a in _VALUE_FLAGS or a in ("-i", "--info") or (
                a.startswith("--") and "=" in a):
            front += argv[i:i + n]
        else:
            rest.append(a)
        i += n
    return front + rest


def _words(argv: list[str]):
    """The words of `argv` past Hydra's flags that take a value and their values (`-cn NAME`,
    `-i job`): overrides and the other flags, in order."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in _VALUE_FLAGS or (a in ("-i", "--info") and i + 1 < len(argv)
                                 and argv[i + 1] in _INFO_VALUES):
            i += 2
            continue
        yield a
        i += 1


def unknown_flag(argv: list[str]) -> str | None:
    """The first word of `argv` that looks like an option (a leading '-') but is none of
    Hydra's flags, nor the value one takes; None if there is none. Hydra's parser answered it
    with its eight-line usage (a mapping split by the shell, `{a: -1}`, gives such a word)."""
    return next((a for a in _words(argv) if a.startswith("-") and a not in _BARE_FLAGS
                 and a not in ("-i", "--info") and not (a.startswith("--") and "=" in a)), None)


def keyless_override(argv: list[str]) -> str | None:
    """The first override of `argv` with no key before its '=' (`wrpsim.cli.keyless`), past
    Hydra's flags and the values they take; None if there is none."""
    from wrpsim.cli import keyless

    return next((a for a in _words(argv) if not a.startswith("-") and keyless(a)), None)


def hydra_entry(task, config_name: str = "config", outputs: tuple[str, ...] = ()):
    """Run `task(cfg_dict, out_dir)` as a Hydra app over `conf/<config_name>.yaml`; `outputs`:
    the names of every file the task may write into `out_dir` (removed before it runs)."""
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from wrpsim.hydra_errors import missing_extra, no_slurm
    from wrpsim.hydra_mode import single_composition
    from wrpsim.hydra_overrides import simple_overrides
    from wrpsim.jobs import _run_marked, config_digest, record_failure, sweep_job
    from wrpsim.yamlfast import omegaconf_libyaml

    show_warnings()
    try:
        check_catalogs()
        conf_dir = str(catalog_dir("conf"))
    except WrpsimError as e:
        raise user_error(str(e)) from None
    if any(a in ("--help", "-h") for a in sys.argv[1:]):
        print(app_help(config_name), end="")
        return
    prog = "wrpsim" if config_name == "config" else f"wrpsim.{config_name}"
    flag = unknown_flag(sys.argv[1:])
    if flag is not None:
        raise user_error(f"unknown option {flag!r}; arguments are key=value overrides (quote a "
                         f"value with spaces: 'key={{a: 1, b: 2}}') and Hydra's flags (python "
                         f"-m {prog} --help)")
    keyless = keyless_override(sys.argv[1:])
    if keyless is not None:
        from wrpsim.cli import keyless_message

        raise user_error(keyless_message(keyless, prog))
    sys.argv[1:] = flags_first(sys.argv[1:])
    missing = missing_extra(sys.argv[1:]) or no_slurm(sys.argv[1:])
    if missing:
        raise user_error(missing)

    def _job(cfg) -> None:
        show_warnings()  # (again in a launcher's worker process: one line, into wrpsim.log)
        hc = HydraConfig.get()
        out_dir = hc.runtime.output_dir
        overrides = list(hc.overrides.task)
        noop = empty_mapping_override(cfg, overrides)
        if noop:
            raise user_error(noop)
        if hc.runtime.choices.get("workload"):  # (a YAML whose name: is not its stem)
            from wrpsim.workload.build import warn_name_not_stem

            warn_name_not_stem(hc.runtime.choices["workload"], overrides)
        if hc.mode == RunMode.MULTIRUN:
            sweep_job(task, cfg, out_dir, overrides, outputs)
            return
        try:
            container = OmegaConf.to_container(cfg, resolve=True)
            _run_marked(task, container, Path(out_dir), config_digest(container), overrides,
                        outputs)
        except WrpsimError as e:
            message = str(e) + group_source(str(e), hc.runtime.choices, overrides)
            try:  # the run's folder says why it has no results (`wrpsim.report` reads it)
                record_failure(Path(out_dir), WrpsimError(message), overrides, None,
                               say_it=False)
            except OSError:
                pass
            raise user_error(message) from None

    app = hydra.main(version_base="1.3", config_path=conf_dir, config_name=config_name)(_job)
    from wrpsim import rundir

    try:  # a folder of its own, even when another command started in the same second
        claimed = rundir.claim(Path(conf_dir) / f"{config_name}.yaml", sys.argv[1:])
    except WrpsimError as e:
        raise user_error(str(e)) from None
    if claimed is not None:
        sys.argv.append(claimed[0])
    try:
        # Hydra composes once, not twice (`wrpsim.hydra_mode`), its YAML parsed by libyaml, the
        # plain overrides (`hydra.mode=RUN`, `key=10`, `key=some/path`) without ANTLR
        from wrpsim.runview import ALL_FAILED

        ALL_FAILED[0] = None  # (set by a sweep's closing callback: `runview.note_all_failed`)
        with single_composition(GROUPS), omegaconf_libyaml(), simple_overrides():
            _hydra_main(app, config_name)
        failed, ALL_FAILED[0] = ALL_FAILED[0], None
        if failed is not None:  # nothing to report: an error, as a single failed run is
            raise user_error(f"every run of the sweep {failed} failed (each one's error is "
                             f"above and in its error.json)")
    finally:
        resume_gc()  # (a run resumed it before its loop; a failed or help-only one did not)
        if claimed is not None:  # (failed: an exception, a user error's exit, is propagating)
            rundir.release(claimed[1], failed=sys.exc_info()[0] is not None)
