"""`--help` of every wrpsim verb: its keys with their defaults and one-line descriptions.

The defaults files (`conf/<verb>.yaml`, `conf/config.yaml` for `wrpsim`, `conf/plan.yaml`) are
the single source: a key's description is its inline comment, or else the first line of the
comment block right above it (a one- or two-word block is a section heading, not a description);
the first key under a mapping without a description of its own takes the mapping's; comment lines
right below a key whose `#` stands in the column of its inline comment continue that description.
`yaml_keys`
reads them (dotted keys for nested mappings; the
`defaults:` list and the `hydra:` node are left out); `verb_help` and `app_help` assemble the
page. Contract: the text ends with the exit statuses shared by every verb (`EXIT_STATUSES`).
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

EXIT_STATUSES = ("exit status: 0 done; 2 bad input (one line 'wrpsim: error: …' on stderr, naming\n"
                 "the field and the valid choices); 1 a failure inside the run (a traceback; one\n"
                 "line when a sweep job's worker process died); 130 interrupted (Ctrl-C)")
_KEY = re.compile(r"^(\s*)([A-Za-z_][\w.-]*):(?:\s+(.*?))?\s*$")
_SKIP = ("defaults", "hydra")


def _split_comment(text: str) -> tuple[str, str]:
    """(value, comment) of a YAML line's text after `key:` (a '#' inside quotes is kept)."""
    quote = None
    for i, ch in enumerate(text):
        if ch in "'\"" and quote in (None, ch):
            quote = None if quote else ch
        elif ch == "#" and quote is None and (i == 0 or text[i - 1].isspace()):
            return text[:i].strip(), text[i + 1:].strip()
    return text.strip(), ""


def _comment_col(raw: str) -> int:
    """Column of the inline comment's '#' on a `key: value  # comment` line."""
    m = _KEY.match(raw)
    start = m.start(3)
    value, _ = _split_comment(m.group(3))
    return raw.index("#", start + len(value))


def yaml_keys(path: Path) -> list[tuple[str, str, str]]:
    """(dotted key, default as written, description) of every leaf key of a defaults file."""
    out: list[tuple[str, str, str]] = []
    stack: list[tuple[int, str, str]] = []  # (indent, key, unused description) of open mappings
    block: list[str] = []  # comment lines right above the current line
    skip_indent = None
    cont = None  # column of the last key line's inline '#' while its description may continue
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if stripped.startswith("#"):
            text = stripped.lstrip("#").strip()
            if cont is not None and raw.index("#") == cont and out and text:
                k, v, d = out[-1]
                out[-1] = (k, v, f"{d} {text}")
                continue
            cont = None
            block.append(text)
            continue
        cont = None
        m = _KEY.match(raw) if stripped and not stripped.startswith("-") else None
        if m is None:
            block = []
            continue
        indent, key = len(m.group(1)), m.group(2)
        value, comment = _split_comment(m.group(3) or "")
        if skip_indent is not None and indent > skip_indent:
            continue
        skip_indent = None
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if not stack and key in _SKIP:
            skip_indent, block = indent, []
            continue
        desc = comment or (block[0] if block and len(block[0].split()) > 2 else "")
        block = []
        if value == "":
            stack.append((indent, key, desc))
            continue
        if not desc:
            for i, (ind, k, d) in reversed(list(enumerate(stack))):
                if d:
                    desc, stack[i] = d, (ind, k, "")
                    break
        out.append((".".join([k for _, k, _ in stack] + [key]), value, desc))
        if comment:
            cont = _comment_col(raw)
    return out


def format_keys(keys: list[tuple[str, str, str]], width: int = 34) -> str:
    """Aligned lines `key=default  description`."""
    lines = []
    for key, value, desc in keys:
        left = f"  {key}={value}"
        lines.append(f"{left:<{width}} {desc}".rstrip() if len(left) < width else
                     f"{left}\n{'':<{width}} {desc}".rstrip())
    return "\n".join(lines)


def verb_help(verb: str, doc: str | None, defaults: Path) -> str:
    """The `--help` page of a key=value verb `python -m wrpsim.<verb>`."""
    body = textwrap.dedent(doc or "").strip()
    return (f"usage: python -m wrpsim.{verb} [key=value ...]   (--help: this page)\n\n{body}\n\n"
            f"keys (key=default  description; from {defaults.parent.name}/{defaults.name}):\n"
            f"{format_keys(yaml_keys(defaults))}\n\n{EXIT_STATUSES}\n")


def app_help(app: str, header: str, groups: dict[str, tuple[list[str], str | None]],
             defaults: Path, footer: str) -> str:
    """The `--help` page of a Hydra app (`wrpsim`, `wrpsim.plan`): config groups with their
    options (default marked *), then the keys of its defaults file."""
    glines = []
    for group, (options, default) in sorted(groups.items()):
        opts = ", ".join(f"{o}*" if o == default else o for o in options)
        glines.append(textwrap.fill(f"{group}: {opts}", 100, initial_indent="  ",
                                    subsequent_indent="    ", break_on_hyphens=False))
    return (f"{header.strip()}\n\nconfig groups (group=option; * the default; +group=option for "
            f"one without a default):\n" + "\n".join(glines) +
            f"\n\nkeys (key=default  description; from conf/{defaults.name}):\n"
            f"{format_keys(yaml_keys(defaults))}\n  <group>.<key>=value{'':<13} any key of a "
            f"selected group option (all of them, composed: --cfg job)\n\n{footer.strip()}\n"
            f"sweeps: -m key=a,b ...; Hydra's own flags: --hydra-help\n{EXIT_STATUSES}\n")
