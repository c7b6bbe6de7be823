"""The detector signals of a rule file: keyword, embedding, PII, jailbreak, language, modality.

vLLM Semantic Router (arXiv 2603.04444; its docs' "signal-driven decisions") extracts signals
from each request — sub-millisecond heuristics (keyword patterns, language, context length) and
neural classifiers (domain, embedding similarity, PII, jailbreak, modality) — and combines them
in Boolean decisions. A detector here reads the fact a signal is about from the request's trace
columns (`wrpsim.workload.request.TRACE_COLUMNS`: `tags`, `intent`, `pii`, `jailbreak`,
`language`, `modality`; drawn for synthetic traces by the workload's `signals:` transform), then
applies its own error model, drawing from the router's stream only where the model has errors:

- ``keyword`` ``{keywords: [...], operator: or|and, fn_rate: 0, fp_rate: 0}``: true when the
  prompt's tags hold any (or) / all (and) of the keywords; a true match is missed with
  `fn_rate` (a paraphrase the list lacks), a false one fires with `fp_rate` (the word in another
  sense). Exact (no draws) by default: keyword matching is deterministic on the text;
- ``embedding`` ``{candidates: [...], threshold: 0.7, match_similarity: 0.85,
  other_similarity: 0.5, similarity_sd: 0.08}``: the cosine similarity of the prompt to its
  nearest candidate is drawn N(match_similarity, sd) when the request's intent (its category
  where the trace has no `intent`) is a candidate, else N(other_similarity, sd); the signal
  fires at similarity >= threshold. So tpr = 1 - Phi((threshold - match) / sd) and
  fpr = 1 - Phi((threshold - other) / sd) (0.70 threshold from the vLLM SR docs' example; the
  similarity levels are assumptions);
- ``pii`` ``{pii_types_allowed: [], tpr: 0.95, fpr: 0.02}``: true when the prompt holds a PII
  type not allowed; the detector (a ModernBERT token classifier in vLLM SR) finds it with `tpr`
  and fires on a clean prompt with `fpr` (assumptions);
- ``jailbreak`` ``{tpr: 0.95, fpr: 0.01}``: the same for the trace's jailbreak flag
  (assumptions: the rates at the deployment's threshold);
- ``language`` ``{values: [...], accuracy: 1.0, choices: null}`` and ``modality`` (same keys;
  the request's language, default "en"; the modality it asks for: text, image or both, default
  "text"): the detected label is the true one with probability `accuracy`, else one of the
  other `choices` (default: `values` plus the default label) uniformly; fires when the detected
  label is in `values`.

Every signal type has a `latency_s` (`LATENCY_S`, overridable per signal); `wrpsim.router.rules`
turns the latencies of the signals a rule file uses into the router's service time.
"""

from __future__ import annotations

import math

from wrpsim.errors import ConfigError

#: Default latency of one evaluation, by signal type (seconds). keyword, language, context:
#: "less than 1 ms" (vLLM SR docs, signal-driven decisions); embedding "10-50 ms" (same page:
#: 20 ms); category / domain "50-100 ms" (same page: 50 ms); complexity: vLLM SR's complexity
#: signal compares embeddings to hard / easy candidates (assumption: an embedding's 20 ms); pii,
#: jailbreak, modality: ModernBERT classifiers like the domain one (assumption: 50 ms).
LATENCY_S = {"keyword": 1e-4, "language": 1e-4, "context": 1e-4, "embedding": 0.020,
             "category": 0.050, "domain": 0.050, "complexity": 0.020, "pii": 0.050,
             "jailbreak": 0.050, "modality": 0.050}


def _rate(where: str, key: str, v, lo: float = 0.0, hi: float = 1.0) -> float:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not lo <= v <= hi:
        raise ConfigError(f"{where} field {key}: a number in [{lo:g}, {hi:g}] is required, "
                          f"got {v!r}")
    return float(v)


def _names(where: str, key: str, v, empty: bool = False) -> tuple[str, ...]:
    if not isinstance(v, list) or (not v and not empty) or not all(isinstance(x, str) for x in v):
        raise ConfigError(f"{where} field {key}: a {'' if empty else 'non-empty '}list of names "
                          f"is required, got {v!r}")
    return tuple(v)


def _split(text) -> set[str]:
    return {t.strip() for t in text.split(",") if t.strip()} if text else set()


class Keyword:
    """Keyword tags with miss / false-fire rates (module docstring)."""

    KEYS = ("keywords", "operator", "fn_rate", "fp_rate")

    def __init__(self, where: str, spec: dict):
        self.keywords = frozenset(_names(where, "keywords", spec.get("keywords")))
        op = spec.get("operator", "or")
        if op not in ("or", "and", "OR", "AND"):
            raise ConfigError(f"{where} field operator: expected one of and, or, got {op!r}")
        self.all = op.lower() == "and"
        self.fn = _rate(where, "fn_rate", spec.get("fn_rate", 0.0))
        self.fp = _rate(where, "fp_rate", spec.get("fp_rate", 0.0))

    def truth(self, request) -> bool:
        """Whether the prompt's tags match (any / all keywords)."""
        tags = _split(request.tags)
        return self.keywords <= tags if self.all else bool(self.keywords & tags)

    def observe(self, request, rng) -> bool:
        """The keyword signal as the router computes it."""
        t = self.truth(request)
        p = (1.0 - self.fn) if t else self.fp
        if p in (0.0, 1.0):
            return p == 1.0
        return bool(rng.random() < p)


class Embedding:
    """Similarity to candidate intents against a threshold (module docstring)."""

    KEYS = ("candidates", "threshold", "match_similarity", "other_similarity", "similarity_sd")

    def __init__(self, where: str, spec: dict):
        self.candidates = frozenset(_names(where, "candidates", spec.get("candidates")))
        self.threshold = _rate(where, "threshold", spec.get("threshold", 0.7), -1.0)
        self.match = _rate(where, "match_similarity", spec.get("match_similarity", 0.85), -1.0)
        self.other = _rate(where, "other_similarity", spec.get("other_similarity", 0.5), -1.0)
        self.sd = _rate(where, "similarity_sd", spec.get("similarity_sd", 0.08), 0.0, math.inf)

    def truth(self, request) -> bool:
        """Whether the request's intent (else its category) is a candidate."""
        intent = request.intent if request.intent is not None else request.category
        return intent in self.candidates

    def rates(self) -> tuple[float, float]:
        """(tpr, fpr) of the threshold under the similarity model."""
        if self.sd == 0:
            return float(self.match >= self.threshold), float(self.other >= self.threshold)

        def above(mean):
            return 0.5 * math.erfc((self.threshold - mean) / (self.sd * math.sqrt(2)))

        return above(self.match), above(self.other)

    def observe(self, request, rng) -> bool:
        """Drawn similarity >= threshold."""
        mean = self.match if self.truth(request) else self.other
        if self.sd == 0:
            return mean >= self.threshold
        return bool(mean + self.sd * float(rng.standard_normal()) >= self.threshold)


class Flag:
    """A binary detector with tpr / fpr over a true flag (pii, jailbreak)."""

    def __init__(self, where: str, spec: dict, tpr: float, fpr: float):
        self.tpr = _rate(where, "tpr", spec.get("tpr", tpr))
        self.fpr = _rate(where, "fpr", spec.get("fpr", fpr))

    def observe(self, request, rng) -> bool:
        """Detected with tpr when true, with fpr when not."""
        p = self.tpr if self.truth(request) else self.fpr
        if p in (0.0, 1.0):
            return p == 1.0
        return bool(rng.random() < p)


class Pii(Flag):
    """PII types outside `pii_types_allowed` (module docstring)."""

    KEYS = ("pii_types_allowed", "tpr", "fpr")

    def __init__(self, where: str, spec: dict):
        super().__init__(where, spec, 0.95, 0.02)
        self.allowed = frozenset(_names(where, "pii_types_allowed",
                                        spec.get("pii_types_allowed", []), empty=True))

    def truth(self, request) -> bool:
        """Whether the prompt holds a PII type that is not allowed."""
        return bool(_split(request.pii) - self.allowed)


class Jailbreak(Flag):
    """The trace's jailbreak flag (module docstring)."""

    KEYS = ("tpr", "fpr")

    def __init__(self, where: str, spec: dict):
        super().__init__(where, spec, 0.95, 0.01)

    def truth(self, request) -> bool:
        """Whether the request is a jailbreak attempt."""
        return request.jailbreak == 1.0


class Label:
    """A detected label (language, modality) with an accuracy (module docstring)."""

    KEYS = ("values", "accuracy", "choices")
    FIELD, DEFAULT = "language", "en"

    def __init__(self, where: str, spec: dict):
        self.values = frozenset(_names(where, "values", spec.get("values")))
        self.accuracy = _rate(where, "accuracy", spec.get("accuracy", 1.0))
        ch = spec.get("choices")
        self.choices = (tuple(sorted(self.values | {self.DEFAULT})) if ch is None
                        else _names(where, "choices", ch))

    def truth(self, request) -> str:
        """The request's true label (the default where the trace has none)."""
        v = getattr(request, self.FIELD)
        return self.DEFAULT if v is None else v

    def observe(self, request, rng) -> bool:
        """The detected label is in `values`."""
        t = self.truth(request)
        if self.accuracy < 1.0 and rng.random() >= self.accuracy:
            others = [c for c in self.choices if c != t]
            if others:
                t = others[int(rng.random() * len(others)) % len(others)]
        return t in self.values


class Language(Label):
    """The prompt's language (default "en")."""

    FIELD, DEFAULT = "language", "en"


class Modality(Label):
    """The modality the request asks for: text, image or both (default: "image" for a request
    with images, else "text")."""

    FIELD, DEFAULT = "modality", "text"

    def __init__(self, where: str, spec: dict):
        super().__init__(where, spec)
        if spec.get("choices") is None:
            self.choices = tuple(sorted(self.values | {"text", "image", "both"}))

    def truth(self, request) -> str:
        """The trace's modality; a row with images and none is an image request (a trace that
        records images but no modality column routed them all as text)."""
        v = request.modality
        return v if v is not None else "image" if getattr(request, "images", 0) > 0 else "text"


#: detector signal types -> class
DETECTORS = {"keyword": Keyword, "embedding": Embedding, "pii": Pii, "jailbreak": Jailbreak,
             "language": Language, "modality": Modality}
