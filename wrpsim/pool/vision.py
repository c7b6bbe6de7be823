"""Requests with images: encoder tokens, the vision-encoder time, and refusal by text models.

A request's `images` (trace column, `wrpsim.workload.request`) matter only where it is
admitted (`wrpsim.dispatcher`):

- a model whose catalog entry has no `vision:` block (`wrpsim.pool.modelspec.VisionSpec`)
  refuses it: `drop_reason` = ``modality``, next to the ``context`` check;
- a vision model adds `images x tokens_per_image` encoder output tokens to its prompt: they
  hold KV and go through prefill like text tokens, and count in the row's `prompt_tokens` (and
  in the context and KV-capacity checks); the request's `image_tokens` keeps the number;
- the encoder runs on the instance's GPUs before the language model reads its tokens:
  FLOPs = images x (2 P n + 4 L n^2 H) (`VisionSpec.flops`: every weight once per patch, plus
  bidirectional attention over the n patches), timed by the instance's latency model
  (`LatencyModel.encoder_s`: the measured BF16 GEMM table at the encoder's shape for the
  kernel engines, the compute roofline at the calibrated GEMM efficiency for
  `splitwise-2023`, nothing for the constant model) and added to the iteration that schedules
  the request's first prompt chunk. The encoder runs inside the engine's step, as in vLLM V1
  (its model runner encodes the scheduled requests' images before the forward pass), so it
  delays the whole batch of that iteration, not only the request. A request preempted and
  recomputed is not encoded again (vLLM keeps encoder outputs in its encoder cache).
"""

from __future__ import annotations

from wrpsim.pool.catalog import get_model


def admit_images(req, inst) -> bool:
    """Prepare image request `req` for `inst` (module docstring); False when `inst`'s model
    takes no images (the request is then dropped with reason ``modality``)."""
    spec = get_model(inst.model).vision if inst.model else None
    if spec is None:
        return False
    tokens = req.images * spec.tokens_per_image
    req.prompt_tokens += tokens - req.image_tokens  # a request routed again is counted once
    req.image_tokens = tokens
    inst.encode_s[req.id] = inst.latency.encoder_s(spec, req.images)
    return True
