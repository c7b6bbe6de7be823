"""Model architectures: `ModelSpec` and its sizes.

A catalog entry (pools/catalog/models.yaml) is either wrpsim's own field names or a
`config.json` given inline (`hf_config: {...}`) or by path (`config_json: file`), converted by
`wrpsim.pool.hfconfig.from_hf_config`: a new model needs nothing but its config.json numbers.

Architectures covered: dense transformers (GQA / MHA), mixture-of-experts (routed experts with
an expert FFN width, shared experts, leading or interleaved dense layers), MLA (DeepSeek-style
latent KV: `kv_lora_rank` > 0) with DeepSeek Sparse Attention (DeepSeek-V3.2's lightning
indexer: `index_topk` > 0, each query attends to the top `index_topk` keys its indexer scores
over the whole context), sliding-window layers (`sliding_window`, `sliding_layers`; Llama
4's chunked attention counts as one) and hybrid stacks of attention and recurrent layers
(`attention_layers`, `mamba_layers`, `mlp_layers`: Mamba-2, Mamba-1 and Gated DeltaNet linear
attention, all held in Mamba-2's shape). Norms, biases and rotary tables are ignored (< 0.1 % of
parameters).

A model that accepts images has a `vision` block (`VisionSpec`, catalog key `vision:`); a
text-only model has none and refuses image requests (`wrpsim.pool.vision`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class VisionSpec:
    """The vision encoder of a multimodal model (numbers from its config.json `vision_config`).

    `tokens_per_image`: encoder output tokens one image adds to the prompt (Gemma-3's
    `mm_tokens_per_image`); `patches_per_image`: tokens the encoder itself runs on,
    (image_size / patch_size)^2; `encoder_params`: its weights; `encoder_layers` and
    `encoder_hidden`: for the attention term of its FLOPs (0: term left out)."""

    tokens_per_image: int
    patches_per_image: int
    encoder_params: int
    encoder_layers: int = 0
    encoder_hidden: int = 0

    def flops(self, images: int) -> float:
        """Encoder FLOPs of `images` images: per image 2 P n (every weight once per patch) plus
        4 L n^2 H (bidirectional attention over the n patches: QK^T and PV)."""
        n = float(self.patches_per_image)
        return images * (2.0 * self.encoder_params * n
                         + 4.0 * self.encoder_layers * n * n * self.encoder_hidden)


VISION_FIELDS = ("tokens_per_image", "patches_per_image", "encoder_params", "encoder_layers",
                 "encoder_hidden")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One transformer architecture. `intermediate` is the FFN width of one routed expert for a
    mixture-of-experts model (of the dense FFN otherwise); `dense_intermediate` that of its
    `dense_layers` leading dense layers and `shared_intermediate` the summed width of its shared
    experts. `gated_mlp`: three FFN matrices (SwiGLU) instead of two. `bytes_per_param` is the
    checkpoint's native width (2 = BF16); a pool's `precision` overrides it."""

    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    experts: int = 1
    active_experts: int = 1
    bytes_per_param: int = 2
    gated_mlp: bool = True
    tied_embeddings: bool = False
    max_context: int = 0
    #: the context vLLM serves the model at when a pool sets none (`--max-model-len` unset):
    #: 0 for max_context; a LongRoPE model's original length (Phi-3 / 3.5 / 4: 4,096 of 131,072)
    default_context: int = 0
    dense_intermediate: int = 0
    dense_layers: int = 0
    shared_intermediate: int = 0
    #: latent MoE (Nemotron 3 Super / Ultra `moe_latent_size`): the routed experts work at this
    #: width, the layer's tokens projected down to it before them and back up after (0: none)
    moe_latent: int = 0
    sliding_window: int = 0
    sliding_layers: int = 0
    #: the full-attention layers' own head width and KV heads where they differ from the
    #: sliding-window layers' (Gemma 4 `global_head_dim`, `num_global_key_value_heads`; 0: the
    #: same as `head_dim`, `kv_heads`) and whether they have no V projection, their values
    #: taken from the key projection (`attention_k_eq_v`; the KV cache still holds K and V)
    global_head_dim: int = 0
    global_kv_heads: int = 0
    global_k_eq_v: bool = False
    #: the windowed layers are Llama 4's chunked local attention, whose KV vLLM keeps whole
    #: (its hybrid KV-cache manager frees the blocks of sliding windows only)
    chunked_attention: bool = False
    #: gated attention (Qwen3-Next, Qwen3.5 `attn_output_gate`): the query projection also
    #: produces a per-head gate on the attention output, so it is twice as wide
    attn_gate: bool = False
    #: the QK norm spans every head of the layer (MiniMax-M2 `qk_norm_type: per_layer`): under
    #: tensor parallelism its RMSNorm's variance is all-reduced across the group in every layer
    #: (vLLM's MiniMaxText01RMSNormTP: a (tokens, 2) FP32 all-reduce beside the two bf16 ones)
    qk_norm_allreduce: bool = False
    kv_lora_rank: int = 0
    q_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    #: DeepSeek Sparse Attention (DSA, DeepSeek-V3.2): keys each query attends to (0: dense),
    #: and the lightning indexer's heads and head width that score every cached key to pick them
    index_topk: int = 0
    index_heads: int = 0
    index_head_dim: int = 0
    #: attention layers with an indexer of their own (GLM-5's IndexShare: the others reuse the
    #: top-k of the layer before, and hold no indexer weights or key cache); 0: every one
    index_layers: int = 0
    attention_layers: int = 0
    mamba_layers: int = 0
    mlp_layers: int = 0
    mamba_heads: int = 0
    mamba_head_dim: int = 0
    ssm_state: int = 0
    mamba_groups: int = 0
    conv_kernel: int = 0
    #: the recurrent layers are Gated DeltaNet linear attention (Qwen3-Next, Qwen3.5: config.json
    #: `linear_*` keys), held in Mamba-2's shape (value heads as `mamba_heads`, their width as
    #: `mamba_head_dim`, the key width as `ssm_state`, key heads as `mamba_groups`) but run by
    #: their own prefill kernels (`Kernels.gdn_prefill`)
    gated_delta: bool = False
    #: bytes per element of the Mamba SSM state the checkpoint asks for (config.json
    #: `mamba_ssm_cache_dtype` of Nemotron-H, `mamba_ssm_dtype` of Qwen3.5: float32 4,
    #: bfloat16 / float16 2; 0: not given), which vLLM's `--mamba-ssm-cache-dtype auto` takes
    mamba_ssm_bytes: int = 0
    vision: VisionSpec | None = None
    source: str = ""

    # ------------------------------------------------------------------ layer counts
    @property
    def attn_layers(self) -> int:
        """Layers with self-attention (all of them unless the model is a hybrid)."""
        return self.attention_layers or self.layers

    @property
    def ffn_layers(self) -> int:
        """Layers with an FFN (dense or MoE)."""
        return self.mlp_layers or self.layers

    @property
    def moe(self) -> bool:
        return self.experts > 1

    @property
    def moe_layers(self) -> int:
        """FFN layers with routed experts."""
        return self.ffn_layers - self.dense_layers if self.moe else 0

    @property
    def full_attn_layers(self) -> int:
        """Attention layers that keep every token's KV (not sliding-window)."""
        return self.attn_layers - self.sliding_layers

    @property
    def full_head_dim(self) -> int:
        """Head width of the full-attention layers (`global_head_dim`, else `head_dim`)."""
        return self.global_head_dim or self.head_dim

    @property
    def full_kv_heads(self) -> int:
        """KV heads of the full-attention layers (`global_kv_heads`, else `kv_heads`)."""
        return self.global_kv_heads or self.kv_heads

    @property
    def split_attention(self) -> bool:
        """Whether the full-attention layers' attention differs in shape from the
        sliding-window layers' (Gemma 4): each kind then has its own projections, KV size
        and attention kernel."""
        return bool(self.sliding_layers and self.full_attn_layers and (
            self.full_head_dim != self.head_dim or self.full_kv_heads != self.kv_heads
            or self.global_k_eq_v))

    @property
    def attn_dim_layers(self) -> int:
        """Head width summed over the attention layers (FLOPs per query-key pair and head,
        over two, are 2 x this): attn_layers x head_dim, the full layers at `full_head_dim`."""
        return self.sliding_layers * self.head_dim + (
            self.attn_layers - self.sliding_layers) * self.full_head_dim

    @property
    def mla(self) -> bool:
        """DeepSeek-style multi-head latent attention (one latent KV vector per token)."""
        return self.kv_lora_rank > 0

    @property
    def dsa(self) -> bool:
        """DeepSeek Sparse Attention: a lightning indexer picks `index_topk` keys per query."""
        return self.index_topk > 0

    @property
    def capped_layers(self) -> int:
        """Attention layers whose attention kernel reads at most `attn_cap` keys per query:
        the sliding-window layers, or every attention layer of a DSA model (its top-k keys).
        Unlike a window's, a DSA layer's KV is kept whole (any key may be picked)."""
        return self.attn_layers if self.dsa else self.sliding_layers

    @property
    def attn_cap(self) -> int:
        """Keys a query of a `capped_layers` layer attends to at most (0: none capped)."""
        return self.index_topk if self.dsa else self.sliding_window

    @property
    def indexer_layers(self) -> int:
        """Attention layers that run a DSA indexer (`index_layers`, else every attention
        layer); 0 without DSA."""
        if not self.dsa:
            return 0
        return self.index_layers or self.attn_layers

    @property
    def index_bytes_per_token_layer(self) -> int:
        """Bytes of the DSA indexer's key cache per token and layer: `index_head_dim` FP8
        values and one FP32 scale per 128 of them (vLLM `DeepseekV32IndexerCache`: 132 bytes
        for DeepSeek-V3.2), whatever the pool's `kv_dtype`; 0 without DSA."""
        if not self.dsa:
            return 0
        return fp8_scaled_bytes(self.index_head_dim)

    @property
    def index_params_per_layer(self) -> int:
        """Weights of one layer's DSA indexer: its query up-projection (from the q latent, of
        `q_lora_rank`; from the hidden state without one), key projection and per-head weights
        (`wq_b`, `wk`, `weights_proj`); vLLM replicates them on every tensor-parallel GPU."""
        if not self.dsa:
            return 0
        q_in = self.q_lora_rank or self.hidden
        return (q_in * self.index_heads * self.index_head_dim
                + self.hidden * (self.index_head_dim + self.index_heads))

    # ------------------------------------------------------------------ tensor parallelism
    def fits_tp(self, tp: int) -> bool:
        """Whether `tp` GPUs can split the attention: tp divides the attention heads and, as
        vLLM requires, the KV heads are split evenly (kv_heads % tp == 0 when kv_heads >= tp)
        or replicated evenly (tp % kv_heads == 0 when tp > kv_heads), a Gemma 4's global layers'
        own KV heads too. MLA has one latent KV vector per token, replicated on every GPU: only
        the heads rule applies."""
        if tp < 1 or self.heads % tp:
            return False
        if self.mla:
            return True
        return all(kv % tp == 0 if kv >= tp else tp % kv == 0
                   for kv in {self.kv_heads, self.full_kv_heads})

    def tp_choices(self) -> list[int]:
        """Every tensor-parallel degree `fits_tp` accepts (divisors of the attention heads)."""
        return [t for t in range(1, self.heads + 1) if self.fits_tp(t)]

    def tp_rule(self, across: bool = True, domain: int | None = None) -> str:
        """The tp rule of this model in words, with its valid values (for error messages);
        `across` False: one scale-up domain's only (`python -m wrpsim.perf`, which has no
        fabric and no network.collectives to run a larger group on); `domain`: the GPUs of
        the GPU's scale-up domain (`GpuSpec.scaleup_gpus`; default one 8-GPU server)."""
        from wrpsim.sanity import GPUS_PER_SERVER  # (a larger group spans servers)

        domain = GPUS_PER_SERVER if domain is None else domain
        kv = "" if self.mla or self.kv_heads == self.heads else (
            f" and splits or replicates its {self.kv_heads} KV heads evenly")
        choices = self.tp_choices()
        one = [t for t in choices if t <= domain]
        more = [t for t in choices if t > domain and across]
        spanning = (f" ({', '.join(map(str, more))} only as a group across servers, with its "
                    f"collectives on a fabric: network.collectives=true)" if more else "")
        return (f"divides the attention heads of {self.name} ({self.heads}){kv}; valid: "
                f"{', '.join(map(str, one))}{spanning}")

    # ------------------------------------------------------------------ parameters
    @property
    def attn_params(self) -> int:
        """Attention projection weights of all attention layers (the full-attention layers'
        own shapes where they differ: `split_attention`)."""
        if not self.split_attention:
            return (self.attn_layers * self.attn_params_per_layer
                    + self.indexer_layers * self.index_params_per_layer)
        return (self.sliding_layers * self.attn_params_per_layer
                + self.full_attn_layers * self._gqa_params(
                    self.full_head_dim, self.full_kv_heads, 1 if self.global_k_eq_v else 2))

    def _gqa_params(self, head_dim: int, kv_heads: int, kv_mats: int) -> int:
        """Q, O and `kv_mats` K / V projections of a GQA layer of that head width."""
        h, H = self.hidden, self.heads
        q = h * H * head_dim * (2 if self.attn_gate else 1)
        return q + h * H * head_dim + kv_mats * h * kv_heads * head_dim

    @property
    def attn_params_per_layer(self) -> int:
        """Attention projection weights of one layer (Q, K, V, O; MLA: its low-rank factors; a
        DSA model's indexer is counted apart, in the layers that have one: `attn_params`); of a
        sliding-window layer where the full-attention layers differ (`attn_params`)."""
        h, H = self.hidden, self.heads
        if self.mla:
            qk = self.head_dim  # nope + rope per head
            q = (h * self.q_lora_rank + self.q_lora_rank * H * qk) if self.q_lora_rank \
                else h * H * qk
            kv = h * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank * H * (
                qk - self.qk_rope_head_dim + self.v_head_dim)
            return q + kv + H * self.v_head_dim * h
        return self._gqa_params(self.head_dim, self.kv_heads, 2)

    @property
    def mats(self) -> int:
        return 3 if self.gated_mlp else 2

    @property
    def expert_params_per_layer(self) -> int:
        """FFN weights of one routed expert (of the dense FFN for a dense model) in one layer."""
        return self.mats * self.expert_hidden * self.intermediate

    @property
    def expert_hidden(self) -> int:
        """The width the routed experts read and write: `moe_latent` for a latent MoE (the
        layer's projections to and from it: `latent_params_per_layer`), else `hidden`."""
        return self.moe_latent or self.hidden

    @property
    def latent_params_per_layer(self) -> int:
        """A latent MoE layer's projections from the hidden width to the experts' and back
        (`fc1_latent_proj`, `fc2_latent_proj`; vLLM replicates them over tensor parallelism);
        0 without `moe_latent`."""
        return 2 * self.hidden * self.moe_latent

    @property
    def mamba_params_per_layer(self) -> int:
        """Mamba-2 mixer weights: in_proj (z, x, B, C, dt), conv, out_proj."""
        if not self.mamba_layers:
            return 0
        d_in = self.mamba_heads * self.mamba_head_dim
        bc = 2 * self.mamba_groups * self.ssm_state
        return (self.hidden * (2 * d_in + bc + self.mamba_heads)
                + self.conv_kernel * (d_in + bc) + d_in * self.hidden)

    @property
    def embedding_params(self) -> int:
        """Input embedding plus the LM head (shared when `tied_embeddings`)."""
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    def _ffn_params(self, experts: int) -> int:
        dense_w = self.mats * self.hidden * (self.dense_intermediate or self.intermediate)
        if not self.moe:
            return self.ffn_layers * self.expert_params_per_layer
        shared = self.mats * self.hidden * self.shared_intermediate
        router = self.hidden * self.experts
        return (self.dense_layers * dense_w
                + self.moe_layers * (experts * self.expert_params_per_layer + shared + router
                                     + self.latent_params_per_layer))

    @property
    def params(self) -> int:
        """Total parameters (all experts)."""
        return (self.attn_params + self._ffn_params(self.experts)
                + self.mamba_layers * self.mamba_params_per_layer + self.embedding_params)

    @property
    def active_params(self) -> int:
        """Parameters one token goes through (routed experts only), the input embedding and
        LM head matrices counted as `params` counts them (model cards' "activated" figures
        often leave the embeddings out: DeepSeek-V2-Lite's 2.4 B is 2.66 B here)."""
        return (self.attn_params + self._ffn_params(self.active_experts)
                + self.mamba_layers * self.mamba_params_per_layer + self.embedding_params)

    @property
    def expert_params(self) -> int:
        """Weights of all routed experts (the part expert parallelism distributes)."""
        return self.moe_layers * self.experts * self.expert_params_per_layer if self.moe else 0

    # ------------------------------------------------------------------ KV cache
    def kv_elems_per_token_layer(self) -> int:
        """KV elements one token stores in one attention layer (whole model, all heads); in a
        sliding-window layer where the full-attention layers differ (`split_kv_elems`)."""
        if self.mla:
            return self.kv_lora_rank + self.qk_rope_head_dim
        return 2 * self.kv_heads * self.head_dim

    def split_kv_elems(self, tp: int = 1) -> tuple[int, int]:
        """(a sliding-window layer's, a full-attention layer's) KV elements of one token on one
        of `tp` GPUs where the two kinds differ (`split_attention`): K and V of each kind's KV
        heads, split over the GPUs or replicated (ceil(heads / tp)), at its head width (both
        kept even where V is K's projection)."""
        return (2 * -(-self.kv_heads // tp) * self.head_dim,
                2 * -(-self.full_kv_heads // tp) * self.full_head_dim)

    @property
    def kv_bytes_per_token(self) -> int:
        """KV-cache bytes of one token at the native width: 2 (K and V) x attention layers x
        kv_heads x head_dim x bytes (MLA: the latent vector per layer), every attention layer
        counted: the memory one token takes in all of them. An instance pages sliding-window
        layers apart, as vLLM does (`wrpsim.pool.window`): beyond the window they hold only
        its last `sliding_window` tokens. A DSA model adds its indexer's key cache
        (`index_bytes_per_token_layer`) in the layers with an indexer (`indexer_layers`);
        full-attention layers of their own shape
        (`split_attention`) count theirs (`split_kv_elems`)."""
        if self.split_attention:
            slide, full = self.split_kv_elems()
            return (self.sliding_layers * slide + self.full_attn_layers * full
                    ) * self.bytes_per_param
        return (self.attn_layers * self.kv_elems_per_token_layer() * self.bytes_per_param
                + self.indexer_layers * self.index_bytes_per_token_layer)

    @property
    def mamba_state_bytes(self) -> int:
        """Bytes of recurrent state one sequence holds in the Mamba-2 layers, whatever its
        length: SSM state (heads x head_dim x state) and the convolution window, in BF16."""
        return self.mamba_state_bytes_at(2.0)

    def mamba_state_bytes_at(self, ssm_bytes: float) -> float:
        """`mamba_state_bytes` with the SSM state stored at `ssm_bytes` per element (vLLM's
        `--mamba-ssm-cache-dtype`: 2 for the model's BF16, 4 for float32); the convolution
        window stays BF16."""
        if not self.mamba_layers:
            return 0
        d_in = self.mamba_heads * self.mamba_head_dim
        conv = (self.conv_kernel - 1) * (d_in + 2 * self.mamba_groups * self.ssm_state)
        return self.mamba_layers * (2 * conv + ssm_bytes * d_in * self.ssm_state)


def fp8_scaled_bytes(n: int) -> int:
    """Bytes of `n` values in vLLM's FP8 caches with scales (DeepSeek-V3.2's indexer cache, the
    `fp8_ds_mla` latent): one byte a value and an FP32 scale per 128 values."""
    return n + 4 * -(-n // 128)


SPEC_FIELDS = tuple(f.name for f in fields(ModelSpec) if f.name != "name")
BOOL_FIELDS = ("gated_mlp", "tied_embeddings", "chunked_attention", "attn_gate",
               "global_k_eq_v", "gated_delta", "qk_norm_allreduce")
INT_FIELDS = tuple(f for f in SPEC_FIELDS
                   if f not in (*BOOL_FIELDS, "source", "vision"))
REQUIRED = ("layers", "hidden", "heads", "kv_heads", "head_dim", "intermediate", "vocab")
