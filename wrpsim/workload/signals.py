"""The facts a semantic router's signals read, for traces that do not carry them.

A real trace rarely records whether a prompt was a jailbreak attempt, which PII it held or which
language it was in; the rule router's detectors (`wrpsim.router.detectors`) read these as trace
columns (`tags`, `intent`, `pii`, `jailbreak`, `language`, `modality`: see
`wrpsim.workload.request.TRACE_COLUMNS`). Transform `signals:` of a workload draws them::

    signals:
      jailbreak: 0.02                       # share of rows that are attempts: a number, or
                                            #   {category: share, default: share}
      pii: {EMAIL_ADDRESS: 0.05, US_SSN: {rag: 0.02}}   # each type independently, same rates
      tags: {urgent: 0.05, proof: {mixed: 0.3}}         # keyword tags, each independently
      language: {en: 0.9, es: 0.06, zh: 0.04}           # mix: one per row, weight / sum
      modality: {text: 0.97, image: 0.03}               # mix
      intent: {code: {debug: 0.6, write_code: 0.4}, default: {chat: 1}}  # mix per category
      images: 1                             # images per image / both request (not drawn)

Only rows without a value draw one (a trace's own column wins). `images: N` (an integer >= 1)
gives N images to every row whose modality is image or both and has no images of its own,
and modality "image" to a row with images but no modality, so the two columns agree (the
image share is the modality mix's); it draws nothing. Draws come from stream
`workload.signals` in the order above (n uniforms per configured item, types and tags in
sorted order), so adding a tag leaves the other columns' draws unchanged. Without `signals:`
nothing is drawn and the frame is unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from wrpsim.errors import ConfigError, keyed_mapping, unknown_choice
from wrpsim.workload.validate import MODALITIES

KEYS = ("jailbreak", "pii", "tags", "language", "modality", "intent", "images")


def _share(value: Any, field: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
        raise ConfigError(f"{field}: a share in [0, 1] is required, got {value!r}")
    return float(value)


def _rates(value: Any, field: str, cats: list) -> np.ndarray:
    """Per-row probability of a number or a {category: share, default: share} mapping."""
    if isinstance(value, Mapping):
        table = {str(k): _share(v, f"{field}.{k}") for k, v in value.items()}
        dflt = table.get("default", 0.0)
        return np.array([table.get(c, dflt) if c is not None else dflt for c in cats])
    return np.full(len(cats), _share(value, field))


def _mix(value: Any, field: str) -> tuple[list[str], np.ndarray]:
    """(names sorted, cumulative probabilities) of a {name: weight} mix."""
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(f"{field}: expected a mix {{name: weight}}, got {value!r}")
    names = sorted(str(k) for k in value)
    w = []
    for k in names:
        v = value[k]
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
            raise ConfigError(f"{field}.{k}: a weight >= 0 is required, got {v!r}")
        w.append(float(v))
    w = np.array(w)
    if w.sum() <= 0:
        raise ConfigError(f"{field}: weights must not all be 0")
    return names, np.cumsum(w / w.sum())


def _pick(names: list[str], cum: np.ndarray, u: float) -> str:
    return names[min(int(np.searchsorted(cum, u, side="right")), len(names) - 1)]


def _column(out: pd.DataFrame, name: str) -> list:
    if name not in out.columns:
        return [None] * len(out)
    return [None if v is None or (isinstance(v, float) and np.isnan(v)) else v
            for v in out[name].tolist()]


def assign_signals(df: pd.DataFrame, spec: Mapping, rng: np.random.Generator) -> pd.DataFrame:
    """The trace with the configured signal columns drawn (see the module docstring)."""
    spec = keyed_mapping(dict(spec) if isinstance(spec, Mapping) else spec, KEYS, "signals")
    out = df.copy()
    n = len(out)
    cats = _column(out, "category")
    if spec.get("jailbreak") is not None:
        p = _rates(spec["jailbreak"], "signals.jailbreak", cats)
        u = rng.random(n)
        old = _column(out, "jailbreak")
        out["jailbreak"] = np.array([float(u[i] < p[i]) if old[i] is None else float(old[i])
                                     for i in range(n)], dtype=np.float64)
    for key in ("pii", "tags"):
        table = spec.get(key)
        if table is None:
            continue
        if not isinstance(table, Mapping) or not table:
            raise ConfigError(f"signals.{key}: expected {{name: share}}, got {table!r}")
        got: list[list[str]] = [[] for _ in range(n)]
        for name in sorted(str(k) for k in table):
            p = _rates(table[name], f"signals.{key}.{name}", cats)
            u = rng.random(n)
            for i in np.flatnonzero(u < p):
                got[i].append(name)
        old = _column(out, key)
        out[key] = pd.Series([old[i] if old[i] is not None else (",".join(got[i]) or None)
                              for i in range(n)], dtype=object)
    for key in ("language", "modality"):
        if spec.get(key) is None:
            continue
        names, cum = _mix(spec[key], f"signals.{key}")
        for name in names if key == "modality" else ():
            if name not in MODALITIES:
                raise unknown_choice("signals.modality", name, MODALITIES)
        u = rng.random(n)
        old = _column(out, key)
        out[key] = pd.Series([old[i] if old[i] is not None else _pick(names, cum, u[i])
                              for i in range(n)], dtype=object)
    if spec.get("intent") is not None:
        table = spec["intent"]
        if not isinstance(table, Mapping):
            raise ConfigError(f"signals.intent: expected {{category: {{intent: weight}}}}, "
                              f"got {table!r}")
        mixes = {str(c): _mix(m, f"signals.intent.{c}") for c, m in table.items()}
        u = rng.random(n)
        old = _column(out, "intent")
        vals = []
        for i in range(n):
            mix = mixes.get(cats[i], mixes.get("default")) if cats[i] is not None else \
                mixes.get("default")
            vals.append(old[i] if old[i] is not None or mix is None else _pick(*mix, u[i]))
        out["intent"] = pd.Series(vals, dtype=object)
    if spec.get("images") is not None:
        _images(out, spec["images"])
    return out


def _images(out: pd.DataFrame, per: Any) -> None:
    """Set `images` (and `modality`) consistently in place (module docstring)."""
    if isinstance(per, bool) or not isinstance(per, int) or per < 1:
        raise ConfigError(f"signals.images: an integer >= 1 (images per image request) is "
                          f"required, got {per!r}")
    n = len(out)
    mod = _column(out, "modality")
    old = out["images"].tolist() if "images" in out.columns else [0] * n
    imgs = [int(old[i]) if old[i] > 0 else per if mod[i] in ("image", "both") else 0
            for i in range(n)]
    out["images"] = np.array(imgs, dtype=np.int64)
    out["modality"] = pd.Series([m if m is not None or not k else "image"
                                 for m, k in zip(mod, imgs)], dtype=object)
