"""Hydra's failures before a run starts, told in wrpsim's one-line form.

Hydra reports a bad command line (unknown config-group option, unknown key, malformed override,
a sweep launcher that cannot start, an output directory it cannot create) as a multi-line
message, or as a traceback. The Hydra apps
(`wrpsim`, `wrpsim.plan`) run Hydra with `HYDRA_FULL_ERROR=1` so those exceptions reach
`wrpsim.app.hydra_entry`, which prints `explain(exc)` as one line `wrpsim: error: …` (exit
status 2). Contract of `explain`: one line naming the field and the valid choices where Hydra
knows them, or None for an exception that is not a command-line problem (a bug: its traceback is
shown).

`missing_extra(argv)` checks, before Hydra starts, that a `hydra/launcher=NAME` the command line
asks for has its optional dependency installed; `no_slurm(argv)` that a sweep on a Slurm
launcher runs where Slurm's `srun` is.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import traceback
from collections.abc import Mapping

from wrpsim.errors import (
    TRACE_BENCH,
    VLLM_BENCH_ARGS,
    VLLM_BENCH_SYNTHETIC,
    VLLM_ENGINE_ARGS,
    VLLM_NOTES,
    WrpsimError,
    closest,
    did_you_mean,
)

# launcher option -> (module it needs, pip extra of wrpsim that installs it)
EXTRAS = {
    "ray": ("ray", "ray"),
    "slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
}
# code that starts a sweep's launcher: an exception raised there is the launcher's, not a run's
LAUNCHER_PATHS = ("/hydra_plugins/", "/submitit/", "/ray/", "/joblib/", "/hydra/core/plugins.py")


def _first(text: str) -> str:
    return " ".join(str(text).strip().splitlines()[:1]).strip()


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_extra(argv: list[str], extras: dict | None = None) -> str | None:
    """The one-line error for a `hydra/launcher=NAME` whose module is not installed, else None."""
    extras = EXTRAS if extras is None else extras
    for arg in argv:
        key, _, name = arg.partition("=")
        if key.lstrip("+~") != "hydra/launcher" or name not in extras:
            continue
        module, extra = extras[name]
        if not _installed(module):
            return (f"hydra/launcher={name} needs {module.split('.')[-1]}, which is not "
                    f"installed: pip install -e '.[{extra}]' (or drop hydra/launcher= to run "
                    f"the sweep in this process)")
    return None


def no_slurm(argv: list[str], which=None) -> str | None:
    """The one-line error for a sweep (-m) on a Slurm launcher (`hydra/launcher=slurm` or
    `submitit_slurm`) where Slurm's `srun` is not on PATH, else None; checked before Hydra
    starts, so no empty sweep folder is left. `which`: `shutil.which` (tests)."""
    import shutil

    which = shutil.which if which is None else which
    if not any(a in ("-m", "--multirun") for a in argv):
        return None
    for arg in argv:
        key, _, name = arg.partition("=")
        if key.lstrip("+~") == "hydra/launcher" and name in ("slurm", "submitit_slurm") \
                and which("srun") is None:
            return (f"hydra/launcher={name}: Slurm's srun is not on PATH, so this is not a "
                    f"Slurm login node; run the sweep there, or try the same set-up locally with "
                    f"hydra/launcher=submitit_local (or hydra/launcher=joblib)")
    return None


def _missing_config(exc) -> str:
    missing = str(getattr(exc, "missing_cfg_file", "") or "")
    options = list(getattr(exc, "options", None) or [])
    group, _, value = missing.rpartition("/")
    if not group or not options:
        return _first(exc)
    return (f"{group}: unknown value {value!r}; valid choices: {', '.join(sorted(options))}"
            f"{did_you_mean(value, options)}")


#: config sections whose valid keys depend on a kind or option (a workload source's `kind`, a
#: router's class, ...): the YAML file lists only its own, the others need Hydra's `+`
OPEN_SECTIONS = ("workload", "router", "network", "failures")
#: names users give a run's output folder (the other verbs' key is out_dir)
OUTPUT_DIR_KEYS = ("out_dir", "output_dir", "outdir", "results_dir", "run_dir")


def _network_options() -> dict[str, dict] | None:
    """{option name: its conf/network file as a mapping}, or None when they cannot be read."""
    try:
        import yaml

        from wrpsim.paths import catalog_dir

        return {p.stem: dict(yaml.safe_load(p.read_text("utf-8")) or {})
                for p in sorted((catalog_dir("conf") / "network").glob("*.yaml"))}
    except Exception:  # an explanation must not fail: the caller words it without the hint
        return None


def _options_with(options: dict[str, dict], key: str) -> list[str]:
    """The network options whose file has `key` and whose kind takes a value for it
    (`VALUE_KINDS`: the packet option lists `packet_window` only to refuse it)."""
    from wrpsim.network import VALUE_KINDS

    return [name for name, keys in options.items() if key in keys
            and keys.get("kind", name) in VALUE_KINDS.get(key, (keys.get("kind", name),))]


def _selected_network(argv: list[str], config_name: str) -> str | None:
    """The network option the command line selects, else the config's default."""
    sel = _override(argv, "network")
    return sel[1] if sel else _default_option("network", config_name)


def _network_hint(leaf: str, full_key: str, argv: list[str]) -> str | None:
    """The hint for a top-level `network` key the selected option's file lacks. Each option's
    file lists every key its kind takes, so a `+` would only be refused by the kind: name the
    options that take the key (`_options_with`), with a command that selects one, else the
    nearest key of any option ("" without one); None when the files cannot be read."""
    options = _network_options()
    if options is None:
        return None
    having = _options_with(options, leaf)
    if not having:
        return did_you_mean(leaf, sorted({k for keys in options.values() for k in keys}))
    typed = _override(argv, full_key)
    return (f"; the network options with this key: {', '.join(having)} (e.g. "
            f"network={having[0]} {full_key}={typed[1] if typed else '…'})")


def _value_not_section(where: str, leaf: str, full_key: str, argv: list[str],
                       config_name: str) -> str:
    """The error for a key under `where`, which is a single value (`network.collectives`, a
    boolean), not a section: the nearest key of `where`'s section to `<last>_<leaf>`
    (network.collectives.alpha_us -> network.collective_alpha_us), with an option that takes
    it when the selected one does not."""
    section, _, last = where.rpartition(".")
    keys: list[str] = []
    if section == "network":
        options = _network_options() or {}
        keys = sorted({k for v in options.values() for k in v})
    near = closest(f"{last}_{leaf}", keys) or closest(leaf, keys)
    typed = _override(argv, full_key)
    pick = ""
    if near and section == "network":  # the selected option lacks it: name one that has it
        having = _options_with(options, near)
        if having and _selected_network(argv, config_name) not in having:
            pick = f"network={having[0]} "
    hint = (f"; did you mean {pick}{section}.{near}={typed[1] if typed else '…'}?" if near
            else "")
    return f"{full_key}: unknown key: {where} is a single value, not a section with keys{hint}"


def _override(argv: list[str], key: str) -> tuple[str, str] | None:
    """(as typed, value) of the command line's override of `key` (`key=v`, `+key=v`, ...)."""
    for arg in argv:
        k, eq, v = arg.partition("=")
        if eq and k.lstrip("+~") == key:
            return arg, v
    return None


def _sweeps_group(argv: list[str], group: str) -> bool:
    """True when `argv` is a sweep (-m) whose override of `group` lists several options."""
    sel = _override(argv, group)
    return (any(a in ("-m", "--multirun") for a in argv) and sel is not None
            and ("," in sel[1] or re.match(r"\s*(range|choice|glob)\(", sel[1]) is not None))


def _options_lacking(group: str, where: str, leaf: str, argv: list[str]) -> list[str]:
    """The options a sweep's override of `group` lists (`pool=a,b`; plain comma lists only)
    whose YAML has no key `leaf` under `where` (a dotted path below the group), in the order
    given; [] when that cannot be told (a range or glob, a file that does not read)."""
    sel = _override(argv, group)
    if sel is None or not re.fullmatch(r"[\w.\-]+(,[\w.\-]+)*", sel[1].strip()):
        return []
    try:
        import yaml

        from wrpsim.paths import option_file

        dirs = _group_dirs(group)
        out = []
        for name in sel[1].strip().split(","):
            path = option_file(dirs, name)
            if path is None:
                return []
            node = yaml.safe_load(path.read_text("utf-8")) or {}
            for part in where.split(".")[1:]:
                node = node.get(part) if isinstance(node, dict) else None
            if not (isinstance(node, dict) and leaf in node):
                out.append(name)
        return out
    except Exception:  # an explanation must not fail: the caller words it without the names
        return []


def _group_dirs(group: str) -> list:
    """The folders of config group `group`'s options: a catalog's (workloads/, pools/,
    routers/, the user's too) or conf/<group>/."""
    from wrpsim.app import GROUPS
    from wrpsim.paths import catalog_dir, catalog_dirs

    dirname = dict(GROUPS).get(group)
    return catalog_dirs(dirname) if dirname else [catalog_dir("conf") / group]


def _group_options(group: str) -> list[str]:
    """The option names of config group `group` (its YAML files), [] when unknown."""
    try:
        return sorted({p.stem for d in _group_dirs(group) if d.is_dir() for p in d.glob("*.yaml")})
    except Exception:  # an explanation must not fail: the caller words it without the names
        return []


def _scalar_group(argv: list[str], config_name: str) -> str:
    """The line for a config group given a number, a boolean or null (`pool=1`: Hydra's
    "Config group override must be a string or a list")."""
    literal = re.compile(r"[+-]?(\d[\d_]*(\.\d*)?([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|nan)"
                         r"|true|false|null", re.IGNORECASE)
    for arg in argv:
        key, eq, value = arg.partition("=")
        key = key.lstrip("+~")
        if eq and key and "." not in key and literal.fullmatch(value.strip()):
            options = _group_options(key)
            if options:
                return (f"{key}={value}: a config group takes the name of one of its options; "
                        f"valid choices: {', '.join(options)}")
    return ("a config group was given a number, true / false or null; it takes the name of "
            "one of its options (--help lists the groups)")


def _default_option(group: str, config_name: str) -> str | None:
    """The option conf/<config_name>.yaml's defaults list picks for `group`, else None."""
    try:
        import yaml

        from wrpsim.paths import catalog_dir

        raw = yaml.safe_load((catalog_dir("conf") / f"{config_name}.yaml").read_text("utf-8"))
        for d in (raw or {}).get("defaults") or []:
            if isinstance(d, dict) and group in d:
                return str(d[group])
    except Exception:  # an explanation must not fail: the caller words it without the name
        return None
    return None


def _source_node(workload) -> dict | None:
    """The `source` mapping of a workload config node as a plain dict, else None."""
    try:
        from omegaconf import OmegaConf

        source = workload.get("source")
        plain = OmegaConf.to_container(source) if OmegaConf.is_config(source) else source
    except Exception:  # an explanation must not fail: the caller words it without the hint
        return None
    return plain if isinstance(plain, dict) else None


def _vllm_engine_arg(full_key: str, leaf: str, owner: str, what: str) -> str | None:
    """The line for a vLLM engine argument's name given as a key of pool / candidate `owner`
    (its config key) or of its scheduler: where wrpsim holds it; None for another name."""
    name = VLLM_ENGINE_ARGS.get(leaf.replace("-", "_"))
    if not name:
        return None
    note = VLLM_NOTES.get(leaf.replace("-", "_"), "")
    return (f"{full_key}: unknown key; vLLM's {leaf} is {owner}.{name} here{note} (with a '+' "
            f"first where the {what}'s file leaves it out)")


def _scheduler_key(full_key: str, leaf: str) -> str:
    """A scheduler key a pool's file leaves out (added with '+'), a vLLM argument's name for
    one (said in wrpsim's words), or an unknown key (the valid ones)."""
    from wrpsim.pool.scheduler import SchedulerConfig

    keys = list(SchedulerConfig.__dataclass_fields__)
    pool = full_key.rpartition(".scheduler.")[0]
    what = "candidate" if full_key.startswith("plan.") else "pool"
    if leaf in keys:
        return (f"{full_key}: not set in this {what}'s config, so add it with a '+': "
                f"+{full_key}=…; scheduler keys: {', '.join(keys)}")
    vllm = _vllm_engine_arg(full_key, leaf, pool, what)
    if vllm:
        return f"{vllm}; scheduler keys: {', '.join(keys)}"
    return (f"{full_key}: unknown key; scheduler keys (those the {what}'s file leaves out are "
            f"added with '+'): {', '.join(keys)}{did_you_mean(leaf, keys)}")


def _unknown_key(exc, argv: list[str] | None = None, config_name: str = "config") -> str | None:
    cause = exc.__cause__
    full_key = getattr(cause, "full_key", None)
    parent = getattr(cause, "parent_node", None)
    # "Key 'k' is not in struct" (a YAML option), "Key 'k' not in 'JobLibLauncherConf'" (a
    # plugin's structured config: joblib, submitit_local)
    if not full_key or parent is None or not re.match(r"Key '[^']*' (is )?not in ", str(cause)):
        return None
    try:
        valid = [str(k) for k in parent.keys() if k != "hydra"]
    except Exception:
        return None
    where, _, leaf = full_key.rpartition(".")
    if re.fullmatch(r"(pool\.pools|plan\.candidates)\.[^.]+", where):
        from wrpsim.pool.fleet import POOL_KEYS

        plan = where.startswith("plan.")
        if plan and leaf == "count":  # what the plan would say with the '+' (config.py)
            return f"{full_key}: candidates have no count (the planner chooses it); remove the key"
        keys = [k for k in POOL_KEYS if not (plan and k == "count")]
        keys += ["prefill", "decode"] if plan else []
        if leaf in keys:  # a pool key this pool's file leaves out: Hydra wants a `+`
            return (f"{full_key}: not set in this {'candidate' if plan else 'pool'}'s config, "
                    f"so add it with a '+': +{full_key}=…; keys of a "
                    f"{'candidate' if plan else 'pool'}: {', '.join(keys)}")
        vllm = _vllm_engine_arg(full_key, leaf, where, "candidate" if plan else "pool")
        if vllm:  # a vLLM engine argument's name: say where wrpsim holds it
            return vllm
        return (f"{full_key}: unknown key; keys of a {'candidate' if plan else 'pool'} (those "
                f"its {'config' if plan else 'file'} leaves out are added with '+'): "
                f"{', '.join(keys)}{_near(leaf, where, keys, valid, argv)}")
    if re.fullmatch(r"(pool\.pools|plan\.candidates)\.[^.]+\.scheduler", where):
        return _scheduler_key(full_key, leaf)
    if where == "plan.slo":  # targets conf/plan.yaml leaves out are added with '+'
        from wrpsim.plan.slo import LATENCY_KEYS, OTHER_KEYS

        targets = LATENCY_KEYS + OTHER_KEYS
        if leaf in targets:
            return (f"{full_key}: not set in conf/plan.yaml, so add it with a '+': "
                    f"+{full_key}=…; targets: {', '.join(targets)}")
        return (f"{full_key}: unknown target; valid targets (those conf/plan.yaml leaves out are "
                f"added with '+'): {', '.join(targets)}{did_you_mean(leaf, targets)}")
    if "." in where and not valid:  # a key under a value: network.collectives.alpha_us
        return _value_not_section(where, leaf, full_key, argv or [], config_name)
    group = where.partition(".")[0]
    swept = where and _sweeps_group(argv or [], group)
    lacking = _options_lacking(group, where, leaf, argv or []) if swept else []
    listed = len(_override(argv or [], group)[1].split(",")) if swept else 0
    if lacking and len(lacking) < listed:  # some options of the sweep have it, some do not
        names = ", ".join(f"{group}={n}" for n in lacking)
        typed = next((a for a in argv or [] if a.lstrip("+~").partition("=")[0] == full_key
                      or a.lstrip("+~").startswith(full_key + ".")), None)
        add = (f"++{typed.lstrip('+~')}" if typed and "=" in typed
               else f"++{full_key}=…")
        return (f"{full_key}: {names} {'has' if len(lacking) == 1 else 'have'} no such key"
                + (f" (keys under {where}: {', '.join(valid)})" if valid else " (no keys)")
                + f", and a sweep sets every override in every job: sweep "
                f"{'that option' if len(lacking) == 1 else 'those options'} apart, or write "
                f"{add} to add the key to every option (an option that does not take it then "
                f"refuses it)")
    if lacking:  # no option of the sweep has it: a typo, most likely
        return (f"{full_key}: unknown key: no option of the sweep ({_override(argv, group)[0]})"
                f" has it" + (f"; keys under {where}: {', '.join(valid)}" if valid else "")
                + did_you_mean(leaf, valid))
    if where and not valid:  # the selected option is an empty mapping (failures=none)
        return (f"{full_key}: unknown key: the selected {where} option sets no keys; choose "
                f"one that does first ({where}=NAME; --help lists the options)")
    under = f" under {where}" if where else ""
    if where and _sweeps_group(argv or [], group):  # e.g. -m workload=a,b workload.source.x=1
        # A sweep over the group composes the primary config with the default option and the
        # other overrides first, so a key the default lacks fails there, before any job's
        # option applies; `++` sets it whether or not the option has it, in every job.
        default = _default_option(group, config_name)
        typed = _override(argv or [], full_key)
        value = typed[1] if typed else "…"
        named = f"{group}={default}" if default else f"the default {group}"
        return (f"{full_key}: Hydra checks this key against the default {named} (keys"
                f"{under}: {', '.join(valid)}) before the command line's "
                f"{_override(argv, group)[0]} applies; write ++{full_key}={value} to set it "
                f"whether or not an option has it")
    if where in ("pool.pools", "plan.candidates"):  # a new pool / candidate: a new key
        what = "pool" if where == "pool.pools" else "candidate"
        typo = closest(leaf, valid)
        return (f"{full_key}: unknown key; {where} holds {', '.join(valid)}; to add a {what}, "
                f"write +{full_key}={{gpu: …, model: …, tp: …"
                f"{', count: …' if what == 'pool' else ''}}}"
                f"{f' (or did you mean {typo!r}?)' if typo else ''}")
    # (a workload's nearest key is sought among all it takes: below)
    hint = "" if where == "workload" else did_you_mean(leaf, valid)
    if not where and leaf in OUTPUT_DIR_KEYS and config_name in ("config", "plan"):
        # (the verbs without Hydra take out_dir=; a run's folder is Hydra's)
        made = "plans" if config_name == "plan" else "runs"
        hint = (f"; a run's folder is hydra.run.dir=… (a sweep's hydra.sweep.dir=…; default "
                f"results/{made}/<date>/<time>)")
    source = _source_node(parent) if where == "workload" else None
    if source is not None:  # a key of workload.source given one level up
        from wrpsim.workload.build import misplaced_source_key

        if misplaced_source_key(leaf, source):
            hint = (f"; did you mean workload.source.{leaf}?" if leaf in source else
                    f"; did you mean +workload.source.{leaf}=…? (a key of workload.source this "
                    f"file leaves out is added with '+')")
    network = _network_hint(leaf, full_key, argv or []) if where == "network" else None
    if network and network.startswith("; the network options"):  # another option's key
        chosen = _selected_network(argv or [], config_name)
        return f"{full_key}: not a key of network={chosen}{network}"
    bench = None
    typed = _override(argv or [], full_key)
    value = typed[1] if typed else None
    if where == "workload.source":
        bench = _bench_key(leaf, valid, parent, value)
    elif where == "workload" and source is not None:  # given one level up
        bench = _bench_key(leaf, list(source), source, value)
    elif where == "workload.source.arrivals":
        bench = _bench_key(leaf, ("lengths", "arrivals"))
    if bench and leaf.replace("-", "_") == "request_rate":  # inf: every request at once
        if value is not None and _number_or_none(value) == float("inf"):
            bench = "INF"
    if bench and "burstiness" in leaf:  # the cv its value makes
        b = _number_or_none(value) if value is not None else None
        if b is not None and b > 0:
            bench = bench.replace("cv=…", f"cv={1 / b ** 0.5:.4g}")
    if network is not None:  # a typo of some network option's key, or none at all
        hint = network
    elif bench == "INF":
        hint = ("; vllm bench serve's --request-rate inf (every request at once) is a closed "
                "loop with one client per request: workload=closed-loop "
                "workload.source.concurrency=N workload.source.num_requests=N")
    elif bench:  # a `vllm bench serve` argument: say which source key holds it
        hint = f"; vllm bench serve's {leaf}: {bench}"
    elif where.endswith((".lengths.prompt", ".lengths.output")):
        # a mapping replacing a length distribution is merged into the file's, whose keys
        # Hydra holds fixed: one that adds keys needs '++' (and the old keys it drops, null)
        hint = (f"{hint}; a distribution given as a mapping is merged into the workload's own, "
                f"so it adds no keys: write it with '++' and each key it drops as null, e.g. "
                f"'++{where}={_with_nulls(_override(argv or [], where), valid)}'")
    elif not hint and where == "workload.source" and _kind_lacks(parent, leaf):
        from wrpsim.workload.build import source_keys

        kind, keys = parent.get("kind"), source_keys(parent.get("kind"))
        hint = (f"; a {kind} source takes no other key" if set(keys) <= set(valid)
                else f"; a {kind} source takes {', '.join(keys)}")
    elif not hint and where == "workload":  # the transforms a workload's file leaves out
        from wrpsim.workload.build import TOP_KEYS

        other = [k for k in TOP_KEYS if k not in valid]
        if leaf in other:  # a key the workload's file leaves out: Hydra wants a '+'
            rest, value = _typed(argv, where, leaf)
            return (f"{full_key}: not set in this workload's file, so add it with a '+': "
                    f"+{full_key}{rest}={value}")
        hint = (f"; and, added with '+' (this file leaves them out): {', '.join(other)}"
                if other else "") + _near(leaf, where, TOP_KEYS, valid, argv)
    elif not hint and where.startswith(OPEN_SECTIONS):  # keys some kinds take, this file omits
        hint = f" (a key this file leaves out is added with '+': +{full_key}=…)"
    return f"{full_key}: unknown key; valid keys{under}: {', '.join(valid)}{hint}"


def _near(leaf: str, where: str, keys, present, argv=None) -> str:
    """'; did you mean …?' for the key of `keys` closest to the unknown `leaf` under `where`:
    as itself where the config has it (`present`), as '+where.key…=value' where it must be
    added — with the rest of the key and the value the command line typed (`argv`:
    `prefil.gpu=x` is `+….prefill.gpu=x`)."""
    near = closest(leaf, keys)
    if near is None:
        return ""
    if near in present:
        return f"; did you mean {near!r}?"
    rest, value = _typed(argv, where, leaf)
    return (f"; did you mean +{where}.{near}{rest}={value}? (a key the config leaves out is "
            f"added with '+')")


def _typed(argv, where: str, leaf: str) -> tuple[str, str]:
    """(the rest of the key below `where.leaf`, the value) of the command line's override that
    names that key or one under it (`accuracy.default=0.5`: '.default', '0.5'); ('', '…')
    where none does."""
    key = f"{where}.{leaf}"
    for k, eq, v in (a.partition("=") for a in argv or []):
        if eq and (k.lstrip("+~") + ".").startswith(key + "."):
            return k.lstrip("+~")[len(key):], v
    return "", "…"


def _with_nulls(typed: tuple[str, str] | None, old_keys) -> str:
    """The distribution mapping the command line gave (`typed`: as typed, value), else an
    example, with each key of the workload's own (`old_keys`) it leaves out given as null."""
    import yaml

    given = None
    if typed is not None:
        try:
            given = yaml.safe_load(typed[1])
        except yaml.YAMLError:
            given = None
    if not isinstance(given, dict):
        given = {"dist": "lognormal", "mean": 3000, "sigma": 0.6}
    items = [f"{k}: {v}" for k, v in given.items()]
    items += [f"{k}: null" for k in old_keys if k not in given and k not in ("dist", "max")]
    return "{" + ", ".join(items) + "}"


def _kind_lacks(source, leaf: str) -> bool:
    """Whether `leaf` is a key no `workload.source` of that source's kind takes (so '+'
    would not help: the source refuses it)."""
    from collections.abc import Mapping

    from wrpsim.workload.build import source_keys

    if not isinstance(source, Mapping):
        return False
    keys = source_keys(source.get("kind"))
    return bool(keys) and leaf not in keys


def _number_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _bench_key(leaf: str, valid, source=None, value: str | None = None) -> str | None:
    """What a `vllm bench serve` argument `leaf` given under workload.source is here: the
    closed-loop / constant-rate key; for a synthetic source (its keys hold `lengths`) the nested
    key (`--burstiness` b is gamma arrivals of cv 1/sqrt(b)); for a trace (its keys hold `path`)
    the transform that does it. A fixed length (--random-input-len) is a `lengths.<side>.value`
    only where the `source` mapping draws that side from `dist: constant`; else the override
    that makes it one, with the typed `value`. None for other names."""
    name = leaf.replace("-", "_")
    n = value if value not in (None, "") else "N"
    if "path" in valid:  # a trace: its own arrivals, lengths and count
        return TRACE_BENCH.get(name)
    if "lengths" in valid:
        key = VLLM_BENCH_SYNTHETIC.get(name)
        if name == "max_concurrency":
            return ("+workload.source.max_concurrency=… beside a rate (at most that many in "
                    "flight; with --request-rate inf, a closed loop's concurrency: "
                    "workload=closed-loop)")
        if name == "burstiness":
            return ("gamma arrivals of cv 1/sqrt(burstiness): workload.source.arrivals.process="
                    "gamma ++workload.source.arrivals.cv=…")
        if key and key.startswith("lengths."):
            side = key.split(".")[1]
            if not _fixed_side(source, side):
                return _make_fixed(source, side, n)
        return f"workload.source.{key}" if key else None
    key = VLLM_BENCH_ARGS.get(name)
    if key is None:
        return None
    if key == "stages":
        return ("Poisson arrivals at workload=vllm-bench's workload.source.arrivals.rate (evenly "
                "spaced: workload=constant-rate's workload.source.stages with "
                "workload.source.spacing=even)")
    if name == "max_concurrency" and "stages" in valid:
        return ("a cap on requests in flight, which constant-rate stages do not take (a kind: "
                "synthetic source's max_concurrency, e.g. workload=vllm-bench)")
    return f"workload.source.{key}"


def _make_fixed(source, side: str, n: str) -> str:
    """The override that makes a synthetic source's `side` lengths a fixed `n` tokens: its
    fitted distribution replaced (the keys it has besides `dist` set null), or, for lengths
    drawn otherwise (a CDF), workload=vllm-bench's."""
    lengths = source.get("lengths") if isinstance(source, Mapping) else None
    spec = lengths.get(side) if isinstance(lengths, Mapping) else None
    if not isinstance(lengths, Mapping) or lengths.get("kind") != "fitted" or not isinstance(
            spec, Mapping):
        return (f"workload.source.lengths.{side}.value of workload=vllm-bench, whose lengths "
                f"are fixed (this workload draws them otherwise: workload.source.lengths)")
    drop = "".join(f", {k}: null" for k in spec if k not in ("dist", "value"))
    return f"'++workload.source.lengths.{side}={{dist: constant, value: {n}{drop}}}'"


def _fixed_side(source, side: str) -> bool:
    """Whether a synthetic source mapping draws its `side` lengths (prompt / output) from a
    fitted `dist: constant` (so `lengths.<side>.value` sets them); True when not known."""
    if not isinstance(source, Mapping):
        return True
    lengths = source.get("lengths")
    if not isinstance(lengths, Mapping):
        return True
    spec = lengths.get(side) if lengths.get("kind") == "fitted" else None
    return isinstance(spec, Mapping) and spec.get("dist") == "constant"


#: exceptions a sweep launcher raises when a job's worker process died (killed, e.g. out of
#: memory, or crashed): joblib/loky, concurrent.futures, Ray, submitit (a job that ended without
#: a result)
WORKER_DIED = ("TerminatedWorkerError", "BrokenProcessPool", "WorkerCrashedError",
               "OutOfMemoryError", "NodeDiedError", "LocalRayletDiedError", "UncompletedJobError")
#: of those, the ones after which the launcher cancelled the sweep's other jobs (joblib's loky
#: executor shuts down when a worker dies; Ray and submitit let the other jobs finish)
CANCELS_SWEEP = ("TerminatedWorkerError", "BrokenProcessPool")


def worker_died(exc: BaseException) -> bool:
    """True for a launcher's error that says a job's worker died (Ray wraps one in a
    RayTaskError whose `cause` is it), not that the launcher could not start."""
    for e in (exc, getattr(exc, "cause", None), exc.__cause__):
        if e is not None and any(c.__name__ in WORKER_DIED for c in type(e).__mro__):
            return True
    return False


def _finished(where: str) -> int:
    """How many run folders under the sweep directory hold a completion marker `_DONE`."""
    from pathlib import Path

    try:
        return sum(1 for _ in Path(where).rglob("_DONE"))
    except OSError:
        return 0


def _died(exc: BaseException, where: str) -> str:
    """The one line of a sweep whose job's worker died: which error, whether the other jobs were
    cancelled, and where the finished runs are — only when some are."""
    name = type(exc).__name__
    message = " ".join(str(exc).split())
    if name == "UncompletedJobError":  # "Job 123 (task: 0) with path /…/x.pkl has not produced…"
        message = re.sub(r" with path \S+", "", message)
    cancelled = any(c.__name__ in CANCELS_SWEEP for c in type(exc).__mro__)
    done = _finished(where)
    one = done == 1
    kept = (f"{done} finished run{'' if one else 's'} in {where} (python -m wrpsim.report "
            f"sweep_dir={where} tabulates {'it' if one else 'them'})" if done else
            f"no run in {where} has finished")
    cancel = "; the launcher cancelled the sweep's other jobs" if cancelled else ""
    return (f"a sweep job's worker died (killed, e.g. out of memory, or crashed): {name}: "
            f"{message.split('. ')[0][:200]}{cancel}; {kept}; rerunning the same command "
            f"resumes the sweep (completed runs are skipped)")


def _sweep_dir(argv: list[str]) -> str:
    """The sweep's output directory as far as it is known here."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return str(HydraConfig.get().sweep.dir)
    except Exception:  # Hydra's config is not set: the command line's, else its key
        sel = _override(argv, "hydra.sweep.dir")
        return sel[1] if sel else "the sweep directory (hydra.sweep.dir)"


def _from_launcher(exc: BaseException) -> bool:
    frames = traceback.extract_tb(exc.__traceback__)
    return any(m in f.filename.replace("\\", "/") for f in frames for m in LAUNCHER_PATHS)


def _output_dir(exc: BaseException) -> str | None:
    """One line for an `OSError` that Hydra itself raised creating a run's or a sweep's output
    directory (`hydra.run.dir`, `hydra.sweep.dir`), else None: the innermost frame outside
    `pathlib` / `os` is Hydra's own code calling `mkdir`."""
    if not isinstance(exc, OSError):
        return None
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.replace("\\", "/").endswith(("/pathlib.py", "/os.py"))]
    if not frames:
        return None
    last = frames[-1]
    if "/hydra/" not in last.filename.replace("\\", "/") or "mkdir" not in (last.line or ""):
        return None
    reason = exc.strerror or type(exc).__name__
    return (f"hydra.run.dir / hydra.sweep.dir: cannot create the output directory "
            f"{exc.filename!r}: {reason}")


def tilde_hint(override: str) -> str:
    """A hint for an override whose value holds a `~` that Hydra's grammar refused (a lexer
    error that names no cause): a shell that leaves `~/x` after `=` unexpanded — zsh does,
    bash does not — passes it as typed. '' for any other override."""
    value = override.partition("=")[2]
    if not (value.startswith("~") or "~/" in value):  # (a home folder, not a typo'd name)
        return ""
    return ("; Hydra's override grammar takes no '~' in a value (the shell left it "
            "unexpanded, as zsh does after '='): write $HOME or the absolute path instead")


def explain(exc: BaseException, argv: list[str] | None = None,
            config_name: str = "config") -> str | None:
    """One line for a command-line problem Hydra raised (see module docstring), else None.
    `argv`: the command line (default sys.argv[1:]); `config_name`: the app's primary config."""
    argv = sys.argv[1:] if argv is None else argv
    from hydra.errors import (
        ConfigCompositionException,
        HydraException,
        MissingConfigException,
        OverrideParseException,
    )

    if isinstance(exc, MissingConfigException):
        return _missing_config(exc)
    if isinstance(exc, OverrideParseException):
        override = getattr(exc, "override", "")
        if override.rstrip().endswith(",") and "mismatched input '<EOF>'" in _first(exc):
            return (f"bad override {override!r}: a sweep list has no empty item: drop the "
                    f"trailing comma")
        return (f"bad override {override!r}: {_first(exc)}{tilde_hint(override)}" if override
                else _first(exc))
    if isinstance(exc, ConfigCompositionException):
        line = _unknown_key(exc, argv, config_name)
        if line:
            return line
        group = re.match(r"Could not override '([^']+)'\. No match in the defaults list", str(exc))
        if group:  # (the '+' hint only where it helps: `+failures=…` or `+pool=…` on a plan
            # composed, then the plan refused it as no key of its own)
            name = group[1]
            if name == "experiment":  # the one optional group (`wrpsim.app.app_help`)
                tail = f"; an optional one is added as +{name}=NAME"
            elif name == "pool" and config_name == "plan":
                tail = "; a plan's pools are plan.candidates, pool templates without count"
            else:
                tail = ""
            return f"{name}: not a config group of this command (--help lists its groups{tail})"
        cause = f": {_first(exc.__cause__)}" if exc.__cause__ is not None else ""
        kinds = re.match(r"Error merging override ([^=]+)=(.*): Cannot merge \w+Config with "
                         r"\w+Config", f"{_first(exc)}{cause}")
        if kinds:  # a mapping given for a list (constant-rate stages) or the other way round
            given = kinds[2].strip()
            if given.startswith("{"):
                return f"{kinds[1]}: expects a list, e.g. [{{...}}, {{...}}], got a mapping"
            if given.startswith("["):
                return f"{kinds[1]}: expects a mapping, e.g. {{key: value}}, got a list"
        taken = re.search(r"An item is already at '([^']+)'", f"{exc}{cause}")
        if taken:  # '+key=…' on a key the config has: Hydra wants it without the '+'
            key = taken[1]
            return (f"{key}: set already in the config, so drop the '+' ({key}=…), or write "
                    f"++{key}=… to set it whether or not it is there")
        return f"{_first(exc)}{cause}"
    if isinstance(exc, HydraException):
        if "does not support sweep type : INTERVAL_SWEEP" in str(exc):
            return ("interval(...) sweeps need an optimising sweeper; the basic sweeper takes a "
                    "comma list (a,b,c), range(start, stop, step) or choice(a,b,c)")
        return _first(exc)
    if isinstance(exc, ValueError) and str(exc).startswith("Only one of --run, --multirun"):
        flags = [a for a in argv if a in ("-m", "--multirun", "-c", "--cfg", "-i", "--info",
                                          "-r", "--run", "--shell-completion", "-sc")]
        line = (f"{' and '.join(flags) or 'these flags'} cannot be combined: Hydra takes one of "
                f"-m/--multirun, -r/--run, -c/--cfg, -i/--info, -sc/--shell-completion")
        if {"-c", "--cfg"} & set(flags) and {"-m", "--multirun"} & set(flags):
            app = "wrpsim" if config_name == "config" else f"wrpsim.{config_name}"
            shown = " ".join(a for a in argv if a not in ("-m", "--multirun"))
            line += (f"; --cfg prints the config without running, so drop -m: "
                     f"python -m {app} {shown}")
        return line
    if isinstance(exc, WrpsimError):  # a launcher's own check (hydra_plugins/wrpsim_ray_launcher)
        return str(exc)
    if isinstance(exc, ValueError) and str(exc).startswith("Config group override must be"):
        return _scalar_group(argv, config_name)
    if isinstance(exc, ValueError) and str(exc) == "range() arg 3 must not be zero":
        swept = [a for a in argv if "range(" in a]  # (Hydra's sweep parser builds the range)
        return (f"{swept[0] if swept else 'range(...)'}: a sweep's range() step must not be 0; "
                f"range(start, stop, step) with step >= 1, or a comma list (a,b,c)")
    line = _output_dir(exc)
    if line:
        return line
    if worker_died(exc):  # the launcher had started the jobs: one died, the others may be done
        return _died(exc, _sweep_dir(argv))
    if _from_launcher(exc):  # (an ImportError elsewhere is a bug: its traceback is shown)
        return (f"the sweep launcher (hydra/launcher) cannot start: {type(exc).__name__}: "
                f"{_first(exc)}")
    return None
