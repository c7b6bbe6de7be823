"""Atomic file output: a reader never sees a half-written result file.

Each file is written to a temporary name in the same directory and renamed into place, so an
interrupted run leaves either the old file, no file, or the complete new one.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from fnmatch import fnmatch
from pathlib import Path


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside `path`; on success rename it to `path`, else remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class Background:
    """Calls run on their own threads while the caller goes on (`start`), all waited for by
    `join`, which raises the first one's exception, if any, in the caller. For result files
    whose writing releases the GIL (Arrow's Parquet encoder): a run writes its large tables
    while it computes its summary. `start_file(write, data, path)` writes a file so: into a
    hidden name beside `path`, moved to `path` only by a `join` at which every call succeeded
    (removed otherwise), so a run that fails leaves none of its files next to an earlier run's.
    A `with` block joins on leaving; on an error inside it, it waits for the threads, removes
    their files and lets that error through."""

    def __init__(self):
        self._threads: list = []
        self._errors: list = []
        self._staged: list = []  # (hidden name, final path) of `start_file`'s files

    def start(self, fn, *args) -> None:
        import threading

        def work():
            try:
                fn(*args)
            except BaseException as e:  # (re-raised by `join`, in the caller's thread)
                self._errors.append(e)

        t = threading.Thread(target=work, name=f"wrpsim-{getattr(fn, '__name__', 'io')}",
                             daemon=True)
        t.start()
        self._threads.append(t)

    def start_file(self, write, data, path) -> None:
        """`write(data, hidden)` on a thread (class docstring); `path` appears at `join`."""
        path = Path(path)
        hidden = path.with_name(f".{path.name}.bg-{os.getpid()}")
        self._staged.append((hidden, path))
        self.start(write, data, hidden)

    def _wait(self) -> None:
        while self._threads:
            self._threads.pop(0).join()

    def _discard(self) -> None:
        for hidden, _ in self._staged:
            hidden.unlink(missing_ok=True)
        self._staged = []

    def join(self) -> None:
        self._wait()
        if self._errors:
            e, self._errors = self._errors[0], []
            self._discard()
            raise e
        for hidden, path in self._staged:
            os.replace(hidden, path)
        self._staged = []

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if kind is None:
            self.join()
        else:  # (the caller's error wins; the writers' are dropped)
            self._wait()
            self._errors = []
            self._discard()
        return False


def prune(directory: Path | str, pattern: str, keep: int) -> int:
    """Bound a cache folder: remove all but the `keep` most recently modified files of
    `directory` whose names match `pattern` (its readers mark a file they use as recent with
    `touch`, so this keeps the most recently used). Files that vanish meanwhile or cannot be
    removed are skipped, as is a folder that cannot be listed (a cache is never worth a
    failure). Returns how many files it removed."""
    found = []
    try:
        with os.scandir(directory) as entries:
            for e in entries:
                if fnmatch(e.name, pattern) and e.is_file(follow_symlinks=False):
                    try:
                        found.append((e.stat(follow_symlinks=False).st_mtime_ns, e.name))
                    except OSError:
                        continue
    except OSError:
        return 0
    if len(found) <= keep:
        return 0
    found.sort(reverse=True)
    removed = 0
    for _, name in found[keep:]:
        try:
            os.unlink(os.path.join(directory, name))
            removed += 1
        except OSError:
            continue
    return removed


def touch(path: Path | str) -> None:
    """Mark cache file `path` as just used (its modification time: `prune` keeps the most
    recent); nothing when that is not allowed (a read-only cache)."""
    try:
        os.utime(path)
    except OSError:
        pass


def path_value(value, field: str) -> Path:
    """`value` (a str or path) as a Path, a leading `~` expanded as every other path key of
    wrpsim expands it (`out_dir='~/x'` made a folder named `~` here and then wrote into
    `$HOME/x`, which pyarrow expands); else a `ConfigError`: Hydra reads `out_dir=2024` as a
    number and `out_dir=[a]` as a list, which pathlib refuses with a TypeError (or a bool's
    str() would name a folder 'True')."""
    if not isinstance(value, (str, os.PathLike)):
        from wrpsim.errors import ConfigError

        shown = f"'{value}'" if isinstance(value, (int, float)) else "'DIR'"
        raise ConfigError(f"{field} must be a folder path, got {value!r}; quote a name Hydra "
                          f"reads as a number or a list, quotes and all: \"{field}={shown}\"")
    try:
        return Path(value).expanduser()
    except RuntimeError:  # (~nosuchuser: a folder of that name, as the shell leaves it)
        return Path(value)


def make_dir(path: Path | str, field: str) -> Path:
    """Create the output folder `path` (and its parents) now, before any work is done; a folder
    that cannot be created is a `ConfigError` naming `field` (one line), not a traceback at the
    end of the run."""
    from wrpsim.errors import ConfigError

    path = path_value(path, field)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{field}: cannot create the folder {str(path)!r}: "
                          f"{e.strerror or type(e).__name__}") from None
    return path


def fresh_dir(root: str, field: str, now: float | None = None) -> Path:
    """Create and return a new, empty default output folder `<root>/<date>/<H-M-S>`
    (`now`: seconds since the epoch, default the current time). When that folder exists — a
    run started in the same second — the next free one of `<H-M-S>-1`, `<H-M-S>-2`, … is
    taken. Each try is an atomic `mkdir` that fails if the folder exists, so two processes
    never share one; a folder that cannot be created is a one-line `ConfigError` naming
    `field`."""
    import time

    from wrpsim.errors import ConfigError

    stamp = time.localtime(time.time() if now is None else now)
    base = Path(root) / time.strftime("%Y-%m-%d/%H-%M-%S", stamp)
    try:
        # (the date folder always: new, or one `drop_if_empty` leaves where it is not empty)
        made = [*(p for p in reversed(base.parent.parents) if str(p) != "." and not p.exists()),
                base.parent]
        base.parent.mkdir(parents=True, exist_ok=True)
        for i in range(10_000):
            path = base if i == 0 else base.with_name(f"{base.name}-{i}")
            try:
                path.mkdir()
                _MADE[path] = made
                return path
            except FileExistsError:
                continue
    except OSError as e:
        raise ConfigError(f"{field}: cannot create a folder under {str(base.parent)!r}: "
                          f"{e.strerror or type(e).__name__}") from None
    raise ConfigError(f"{field}: {str(base)!r} and 9,999 numbered folders beside it exist; "
                      f"give {field}=<folder>")


#: `fresh_dir` folder -> the folders above it that its call created (`drop_if_empty`)
_MADE: dict = {}


def drop_if_empty(path: Path) -> None:
    """Remove `path` (a `fresh_dir` folder), its date folder and the folders above that
    `fresh_dir` created for it, each only while empty: a command stopped by bad input before
    writing anything leaves no empty folder behind."""
    for p in (path, *reversed(_MADE.pop(path, []))):
        try:
            p.rmdir()  # (only an empty folder)
        except OSError:
            return


def not_given(value) -> bool:
    """Whether an optional path key holds no path: None or '' (a false number, list or mapping
    is a value to refuse, not a default: `path_value`)."""
    return value is None or (isinstance(value, str) and value == "")


def optional_path(value, field: str) -> Path | None:
    """An optional path key: None when `not_given`, else `path_value` (its path or its error)."""
    return None if not_given(value) else path_value(value, field)


@contextmanager
def output_dir(given, root: str, field: str = "out_dir"):
    """The output folder of a command: `given` (made now: `make_dir`), else — `given` None
    or '' — a fresh default under `root` (`fresh_dir`), which is removed again
    (`drop_if_empty`) when the block stops with an exception — bad input found late, Ctrl-C —
    before writing into it. Any other value is a path or `path_value`'s error: `out_dir=0`
    (Hydra's number 0), `[]` or `{}` wrote into the default folder."""
    if not not_given(given):
        yield make_dir(given, field)
        return
    out = fresh_dir(root, field)
    try:
        yield out
    except BaseException:
        drop_if_empty(out)
        raise


def write_text(path: Path, text: str) -> None:
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def write_json(path: Path, obj) -> None:
    """Write `obj` as indented, key-sorted JSON to `path` atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def screenshot(html: Path, png: Path, width: int, height: int) -> bool:
    """Write a PNG of the page `html` by headless Chromium (Debian's `chromium`), for the
    studies that publish a plot as an image; False (nothing written) when no Chromium is on
    the PATH."""
    import shutil
    import subprocess

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        return False
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={Path(png).resolve()}", f"--window-size={width},{height}",
                    Path(html).resolve().as_uri()], check=False, capture_output=True, timeout=120)
    return True
