"""A fresh default output folder for every run, plan and sweep started from the command line.

Hydra names the default folder by the second a command starts
(`results/runs/${now:%Y-%m-%d}/${now:%H-%M-%S}`), so two commands started in the same second
wrote into one folder and the later one's files replaced the earlier one's without a word.
`claim` takes the folder before Hydra starts, with `wrpsim.io.fresh_dir`'s atomic `mkdir`
(the same second's second command gets `<H-M-S>-1`, then `-2`, …), and hands it to Hydra as
`hydra.run.dir=` (or `hydra.sweep.dir=` for `-m`). A command that names its own folder, only
prints (`--help`, `--cfg`, `--info`), loads another primary config (`-cd`, `-cn`, `-cp`) or adds
a config group (`+experiment=x`, which may set the folder) is left alone; so is a config whose
folder is not that pattern. `release` removes a claimed folder the command left empty
(rejected before it ran; a rejected sweep's with only its `multirun.yaml` too).
"""

from __future__ import annotations

from pathlib import Path

PATTERN = "/${now:%Y-%m-%d}/${now:%H-%M-%S}"
PRINT_ONLY = ("--cfg", "-c", "--info", "-i", "--help", "-h", "--hydra-help", "--resolve",
              "--shell-completion", "-sc")
#: options that load another primary config, whose `hydra.run.dir` the shipped one does not say
OTHER_CONFIG = ("-cd", "--config-dir", "-cn", "--config-name", "-cp", "--config-path")
MULTIRUN = ("-m", "--multirun")


def _mode_and_named(argv: list[str]) -> tuple[str, set[str]]:
    """'run' or 'sweep' (what the command line asks for) and the hydra keys it sets itself."""
    mode, named = "run", set()
    for a in argv:
        if a in MULTIRUN or a.lstrip("+") == "hydra.mode=MULTIRUN":
            mode = "sweep"
        key = a.lstrip("+").split("=", 1)[0]
        if key in ("hydra.run.dir", "hydra.sweep.dir", "hydra.mode"):
            named.add(key)
    return mode, named


def claim(conf_yaml: Path, argv: list[str]) -> tuple[str, Path] | None:
    """(the override to append, the folder claimed), or None (module docstring)."""
    if any(a in PRINT_ONLY or a.startswith(("--cfg=", "--info=")) for a in argv):
        return None
    if any(a in OTHER_CONFIG or a.startswith(tuple(f"{o}=" for o in OTHER_CONFIG))
           for a in argv):
        return None
    if any(a.startswith("+") and "." not in a.lstrip("+").split("=", 1)[0] for a in argv):
        return None  # a config group added on the command line (+experiment=x) may set it
    mode, named = _mode_and_named(argv)
    if f"hydra.{mode}.dir" in named or ("hydra.mode" in named and mode == "run"):
        return None
    try:
        import yaml

        raw = ((yaml.safe_load(conf_yaml.read_text(encoding="utf-8")) or {})
               .get("hydra", {}).get(mode, {}).get("dir"))
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        return None
    if not isinstance(raw, str) or not raw.endswith(PATTERN) or "$" in raw[:-len(PATTERN)]:
        return None
    from wrpsim.io import fresh_dir

    path = fresh_dir(raw[:-len(PATTERN)], f"hydra.{mode}.dir")
    return f"hydra.{mode}.dir={path}", path


def release(path: Path, failed: bool = False) -> None:
    """Remove the claimed folder when nothing was written into it, and the empty folders above
    it that the claim made (a rejected command leaves no results/runs/<date>/ behind:
    `wrpsim.io.drop_if_empty`). A `failed` sweep's folder that holds only Hydra's
    `multirun.yaml` counts as empty: the launcher writes it before composing the first job,
    which Hydra then refused (`router=nope,round-robin`), so no run started."""
    from wrpsim.io import drop_if_empty

    if failed:
        try:
            if [p.name for p in path.iterdir()] == ["multirun.yaml"] and (
                    path / "multirun.yaml").is_file():
                (path / "multirun.yaml").unlink()
        except OSError:
            pass
    drop_if_empty(path)
