"""PicoGPT: a small GPT-style decoder written to the transformers contract.

The architecture is nanoGPT's (pre-LN blocks, GELU MLP, tied embeddings, no biases) with
rotary positions instead of a learned position table, so that packed sequences and left
padding need nothing but `position_ids`. The names follow `modeling_llama.py`, so PEFT's
default LoRA targets, TRL's helpers and Accelerate's FSDP auto-wrap find what they expect:

    PicoGPTModel                       the backbone: embeddings -> N x PicoGPTDecoderLayer -> norm
    PicoGPTForCausalLM                 backbone + tied LM head (pretraining, SFT, policy, reference)
    PicoGPTForSequenceClassification  backbone + scalar `score` head pooled at the last real token
                                       (reward and value models)

Shapes in comments: B batch, T query length, S key length (T + cached), C hidden size,
H query heads, K key/value heads, D head dim (C // H), V vocabulary.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
from torch import nn
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache
from transformers.generation import GenerationMixin
from transformers.masking_utils import create_causal_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import (
    BaseModelOutputWithPast,
    CausalLMOutputWithPast,
    SequenceClassifierOutputWithPast,
)
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel

from .configuration_picogpt import PicoGPTConfig

__all__ = [
    "AUTO_MAP",
    "PicoGPTForCausalLM",
    "PicoGPTForSequenceClassification",
    "PicoGPTModel",
    "PicoGPTPreTrainedModel",
]


# The key/value cache is called `cache` since transformers 5.24 (`generate()` passes `cache=`,
# outputs carry `.cache`); 5.0-5.23 call it `past_key_values`. PicoGPT uses the new name, takes
# the old one at its public `forward`s (`_accepts_past_key_values`) and fills whichever output
# field the installed transformers defines, so a saved folder runs on both.
_CACHE_FIELD = "cache" if "cache" in BaseModelOutputWithPast.__dataclass_fields__ else "past_key_values"


def _accepts_past_key_values(forward: Callable) -> Callable:
    """Let `forward(cache=...)` also be called as `forward(past_key_values=...)` (transformers < 5.24)."""

    @functools.wraps(forward)
    def wrapper(*args, **kwargs):
        if "past_key_values" in kwargs:
            legacy = kwargs.pop("past_key_values")
            if kwargs.get("cache") is not None and legacy is not None:
                raise ValueError(
                    "Pass the key/value cache once, as `cache` (or `past_key_values`), not both."
                )
            kwargs["cache"] = kwargs.get("cache") if legacy is None else legacy
        return forward(*args, **kwargs)

    return wrapper


class PicoGPTLayerNorm(nn.LayerNorm):
    """LayerNorm with an optional bias, computed in float32 and returned in the input's dtype.

    float32 inside, as LlamaRMSNorm does: bf16's 8-bit mantissa is too coarse for the mean and
    variance of a wide hidden state. It also lets the weight's dtype differ from the input's:
    TRL's PPOTrainer casts norm weights to float32 for 4-bit LoRA in bf16
    (`peft_module_casting_to_bf16`) while the activations stay bf16, and `F.layer_norm` on CUDA
    refuses mixed dtypes (tests/test_gpu.py, QLoRA PPO). In float32 both casts are no-ops.
    """

    def __init__(self, hidden_size: int, eps: float, bias: bool) -> None:
        super().__init__(hidden_size, eps=eps, bias=bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        input_dtype = hidden_states.dtype
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        out = nn.functional.layer_norm(hidden_states.float(), self.normalized_shape, weight, bias, self.eps)
        return out.to(input_dtype)


class PicoGPTRotaryEmbedding(nn.Module):
    """Rotary position embedding (RoFormer): rotates query/key pairs by position-dependent angles.

    `inv_freq` is a non-persistent buffer (it is a pure function of the config, so it is not
    saved). transformers 5 builds models on the meta device before loading weights, which
    leaves such buffers empty; `_init_weights` recomputes it (see `PicoGPTPreTrainedModel`).
    """

    def __init__(self, config: PicoGPTConfig) -> None:
        super().__init__()
        self.config = config
        self.rope_type = "default"
        inv_freq = self.compute_default_rope_parameters(config)[0]
        self.inv_freq = nn.Buffer(inv_freq, persistent=False)
        # transformers' generic `_init_weights` recognises rotary modules by this buffer.
        self.original_inv_freq = nn.Buffer(inv_freq.clone(), persistent=False)

    @staticmethod
    def compute_default_rope_parameters(config: PicoGPTConfig, *args, **kwargs) -> tuple[torch.Tensor, float]:
        dim = config.head_dim
        # One frequency per pair of channels: theta^(-2i/D), i = 0 .. D/2 - 1.
        inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
        return inv_freq, 1.0

    @torch.no_grad()
    def forward(self, x: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # position_ids: (B, T) -> angles (B, T, D/2), always in float32: bf16 positions past
        # 256 would collide.
        freqs = position_ids[..., None].float() * self.inv_freq.to(device=x.device, dtype=torch.float)
        emb = torch.cat((freqs, freqs), dim=-1)  # (B, T, D): the same angle for both halves
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) -> (-x2, x1) on the two halves of the last dimension."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(
    q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    # q: (B, H, T, D), k: (B, K, T, D), cos/sin: (B, T, D) -> (B, 1, T, D) to broadcast over heads.
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


def repeat_kv(hidden_states: torch.Tensor, n_rep: int) -> torch.Tensor:
    """(B, K, S, D) -> (B, K * n_rep, S, D): share each key/value head with n_rep query heads."""
    if n_rep == 1:
        return hidden_states
    b, k, s, d = hidden_states.shape
    return hidden_states[:, :, None].expand(b, k, n_rep, s, d).reshape(b, k * n_rep, s, d)


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain-PyTorch attention, the reference every other implementation must match."""
    key = repeat_kv(key, module.num_key_value_groups)
    value = repeat_kv(value, module.num_key_value_groups)
    attn_weights = torch.matmul(query, key.transpose(2, 3)) * scaling  # (B, H, T, S)
    if attention_mask is not None:
        # An additive float mask from `create_causal_mask`: 0 where allowed, dtype-min elsewhere.
        attn_weights = attn_weights + attention_mask[:, :, :, : key.shape[-2]]
    # Softmax in float32: in bf16 the sum over long rows loses most of its precision.
    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = nn.functional.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value)  # (B, H, T, D)
    return attn_output.transpose(1, 2).contiguous(), attn_weights  # (B, T, H, D)


class PicoGPTAttention(nn.Module):
    """Causal self-attention, dispatched through transformers' attention-function registry.

    `config._attn_implementation` picks the kernel: "sdpa" (default: PyTorch's fused
    scaled-dot-product attention), "eager" (the function above), "flash_attention_2/3" or
    "flex_attention" where installed. All receive the same (B, H, T, D) tensors.
    """

    def __init__(self, config: PicoGPTConfig, layer_idx: int) -> None:
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx  # which cache slot `cache.update` writes to
        self.head_dim = config.head_dim
        self.num_key_value_groups = config.num_attention_heads // config.num_key_value_heads
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = config.dropout
        self.is_causal = True  # read by the SDPA and flash integrations
        c, h, k, d = config.hidden_size, config.num_attention_heads, config.num_key_value_heads, self.head_dim
        # Separate q/k/v projections (not GPT-2's fused c_attn) so that LoRA can target each.
        self.q_proj = nn.Linear(c, h * d, bias=config.bias)
        self.k_proj = nn.Linear(c, k * d, bias=config.bias)
        self.v_proj = nn.Linear(c, k * d, bias=config.bias)
        self.o_proj = nn.Linear(h * d, c, bias=config.bias)
        self.o_proj.is_residual_out = True  # scaled init, see `_init_weights`

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        input_shape = hidden_states.shape[:-1]  # (B, T)
        hidden_shape = (*input_shape, -1, self.head_dim)  # (B, T, heads, D)

        # (B, T, C) -> (B, T, heads, D) -> (B, heads, T, D)
        query = self.q_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        key = self.k_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        value = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)

        cos, sin = position_embeddings
        query, key = apply_rotary_pos_emb(query, key, cos, sin)

        if cache is not None:
            # Append this step's keys/values; get back all S of them: (B, K, S, D).
            key, value = cache.update(key, value, self.layer_idx)

        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        attn_output, attn_weights = attention_interface(
            self,
            query,
            key,
            value,
            attention_mask,
            dropout=self.attention_dropout if self.training else 0.0,
            scaling=self.scaling,
            **kwargs,
        )
        attn_output = attn_output.reshape(*input_shape, -1).contiguous()  # (B, T, H * D)
        return self.o_proj(attn_output), attn_weights


class PicoGPTMLP(nn.Module):
    """GPT's position-wise MLP: C -> 4C -> GELU -> C."""

    def __init__(self, config: PicoGPTConfig) -> None:
        super().__init__()
        self.fc_in = nn.Linear(config.hidden_size, config.intermediate_size, bias=config.bias)
        self.act_fn = ACT2FN[config.hidden_act]
        self.fc_out = nn.Linear(config.intermediate_size, config.hidden_size, bias=config.bias)
        self.fc_out.is_residual_out = True  # scaled init, see `_init_weights`

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_out(self.act_fn(self.fc_in(x)))


class PicoGPTDecoderLayer(GradientCheckpointingLayer):
    """Pre-LN transformer block: x + attn(ln(x)), then x + mlp(ln(x)) (GPT-2, nanoGPT).

    Subclassing `GradientCheckpointingLayer` makes `model.gradient_checkpointing_enable()`
    recompute this block's activations in the backward pass instead of storing them.
    """

    def __init__(self, config: PicoGPTConfig, layer_idx: int) -> None:
        super().__init__()
        self.input_layernorm = PicoGPTLayerNorm(config.hidden_size, config.layer_norm_eps, config.bias)
        self.self_attn = PicoGPTAttention(config, layer_idx)
        self.post_attention_layernorm = PicoGPTLayerNorm(
            config.hidden_size, config.layer_norm_eps, config.bias
        )
        self.mlp = PicoGPTMLP(config)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        **kwargs,
    ) -> torch.Tensor:
        attn_output, _ = self.self_attn(
            self.input_layernorm(hidden_states),
            position_embeddings=position_embeddings,
            attention_mask=attention_mask,
            cache=cache,
            **kwargs,
        )
        hidden_states = hidden_states + self.resid_dropout(attn_output)
        hidden_states = hidden_states + self.resid_dropout(
            self.mlp(self.post_attention_layernorm(hidden_states))
        )
        return hidden_states  # (B, T, C)


# Every Auto class a saved folder can be loaded with, written into `config.json` on save.
# `register_for_auto_class` alone records only the config and the class being saved, and a
# reward model could then not be loaded from a causal-LM checkpoint with trust_remote_code.
AUTO_MAP = {
    "AutoConfig": "configuration_picogpt.PicoGPTConfig",
    "AutoModel": "modeling_picogpt.PicoGPTModel",
    "AutoModelForCausalLM": "modeling_picogpt.PicoGPTForCausalLM",
    "AutoModelForSequenceClassification": "modeling_picogpt.PicoGPTForSequenceClassification",
}


class PicoGPTPreTrainedModel(PreTrainedModel):
    config_class = PicoGPTConfig
    config: PicoGPTConfig
    # TRL and PEFT reach the backbone through `getattr(model, model.base_model_prefix)`.
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["PicoGPTDecoderLayer"]  # device_map="auto" never splits a block
    _skip_keys_device_placement = ["cache", "past_key_values"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _can_compile_fullgraph = True

    def save_pretrained(self, save_directory, *args, **kwargs) -> None:
        """Save weights, config and (through the Auto-class registration) this code."""
        self.config.auto_map = {**self.config.auto_map, **AUTO_MAP}
        super().save_pretrained(save_directory, *args, **kwargs)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """GPT-2 init: N(0, 0.02) weights, zero biases, unit norms.

        The projections that write into the residual stream (`o_proj`, `fc_out`) get
        std / sqrt(2 * n_layer): each block adds two such terms, and without the scaling the
        residual's variance grows with depth (GPT-2 paper, section 2.3); they are marked with
        `is_residual_out` where they are built. The `transformers.initialization` helpers
        skip tensors that were loaded from a checkpoint.
        """
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            scale = (
                1.0 / math.sqrt(2 * self.config.num_hidden_layers)
                if getattr(module, "is_residual_out", False)
                else 1.0
            )
            init.normal_(module.weight, mean=0.0, std=std * scale)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, PicoGPTRotaryEmbedding):
            inv_freq = module.compute_default_rope_parameters(module.config)[0]
            init.copy_(module.inv_freq, inv_freq)
            init.copy_(module.original_inv_freq, inv_freq)


class PicoGPTModel(PicoGPTPreTrainedModel):
    """The backbone: token embeddings -> decoder blocks -> final LayerNorm."""

    def __init__(self, config: PicoGPTConfig) -> None:
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.embed_dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(
            [PicoGPTDecoderLayer(config, layer_idx) for layer_idx in range(config.num_hidden_layers)]
        )
        self.norm = PicoGPTLayerNorm(config.hidden_size, config.layer_norm_eps, config.bias)
        self.rotary_emb = PicoGPTRotaryEmbedding(config)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embed_tokens = value

    @_accepts_past_key_values
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPast:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of `input_ids` or `inputs_embeds`.")
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        if use_cache is None:
            # No cache in training unless asked: it costs a copy of K and V per layer, and with a
            # Cache object `create_causal_mask` stops detecting packed sequences.
            use_cache = self.config.use_cache and not self.training
        if self.gradient_checkpointing and self.training:
            use_cache = False  # a cache breaks activation recomputation
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)  # (B, T) -> (B, T, C)

        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)

        seq_len = inputs_embeds.shape[1]
        if position_ids is None and attention_mask is not None and attention_mask.dim() == 2:
            # Count only real tokens, so that a left-padded row gets the positions it would
            # have alone: mask (B, S) covers cached + new tokens; keep the last T positions.
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -seq_len:]
        elif position_ids is None:
            # Positions continue after the cached tokens.
            past_seen = cache.get_seq_length() if cache is not None else 0
            position_ids = torch.arange(seq_len, device=inputs_embeds.device) + past_seen
            position_ids = position_ids.unsqueeze(0)  # (1, T), broadcast over the batch

        # One mask for all layers, in the form the chosen attention kernel wants. Without a
        # cache it also detects packed sequences from position_ids that restart at 0, and
        # keeps attention inside each of them (padding-free packing).
        causal_mask = create_causal_mask(
            self.config,
            inputs_embeds,
            attention_mask,
            cache,  # positional: the keyword is `cache` from transformers 5.24, `past_key_values` before
            position_ids=position_ids,
        )

        hidden_states = self.embed_dropout(inputs_embeds)
        position_embeddings = self.rotary_emb(hidden_states, position_ids)  # cos, sin: (B, T, D)
        all_hidden_states: list[torch.Tensor] = []
        for layer in self.layers:
            if output_hidden_states:
                all_hidden_states.append(hidden_states)
            hidden_states = layer(
                hidden_states,
                position_embeddings=position_embeddings,
                attention_mask=causal_mask,
                cache=cache,
                position_ids=position_ids,  # the flash-attention kernels read packing from these
                **kwargs,
            )
        hidden_states = self.norm(hidden_states)
        if output_hidden_states:
            # The last entry is the state after the final norm: TRL's reward and value scoring
            # apply `score` to `hidden_states[-1]`.
            all_hidden_states.append(hidden_states)

        return BaseModelOutputWithPast(
            last_hidden_state=hidden_states,
            hidden_states=tuple(all_hidden_states) if output_hidden_states else None,
            **{_CACHE_FIELD: cache if use_cache else None},
        )


class PicoGPTForCausalLM(PicoGPTPreTrainedModel, GenerationMixin):
    """Backbone + LM head whose weight is the token embedding (`tie_word_embeddings`)."""

    # {target: source}: transformers 5 ties `lm_head.weight` to the embedding at load time.
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}
    _tp_plan = {"lm_head": "colwise_gather_output"}

    def __init__(self, config: PicoGPTConfig) -> None:
        super().__init__(config)
        self.model = PicoGPTModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.model.embed_tokens = value

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        self.lm_head = new_embeddings

    @_accepts_past_key_values
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        r"""`labels` (B, T) are the input ids with -100 where no loss is wanted; the shift by one
        happens inside the loss. `logits_to_keep=n` computes logits for the last n positions
        only (`generate()` uses 1): the (B, T, V) logits are the largest tensor of a small model.
        """
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state  # (B, T, C)
        keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(hidden_states[:, keep, :])  # (B, T', V)

        loss = None
        if labels is not None:
            loss = self.loss_function(
                logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs
            )

        return CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            **{_CACHE_FIELD: getattr(outputs, _CACHE_FIELD)},
        )


class PicoGPTForSequenceClassification(PicoGPTPreTrainedModel):
    """Backbone + `score` head read at the last real token of each sequence.

    With `num_labels=1` this is a reward model (RewardTrainer) or a value model (PPO). The
    head must be called `score`: TRL's PPO applies `model.score` to every position of
    `hidden_states[-1]` to get per-token values and rewards.
    """

    def __init__(self, config: PicoGPTConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = PicoGPTModel(config)
        # No bias: a reward's offset is arbitrary (the Bradley-Terry loss only sees differences).
        self.score = nn.Linear(config.hidden_size, self.num_labels, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.model.embed_tokens = value

    @_accepts_past_key_values
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.Tensor | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> SequenceClassifierOutputWithPast:
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        logits = self.score(outputs.last_hidden_state)  # (B, T, num_labels)
        batch_size, seq_len = logits.shape[:2]

        # Index of the last real token of each row, for left and right padding alike: the
        # rightmost position whose mask is 1 (or whose id is not the pad id).
        if attention_mask is not None:
            real = attention_mask.to(logits.device, torch.int64)
        elif input_ids is not None and self.config.pad_token_id is not None:
            real = (input_ids != self.config.pad_token_id).to(logits.device, torch.int64)
        else:
            real = torch.ones(batch_size, seq_len, dtype=torch.int64, device=logits.device)
        positions = torch.arange(seq_len, device=logits.device)
        last_token = (positions * real).argmax(-1)  # (B,)
        pooled_logits = logits[torch.arange(batch_size, device=logits.device), last_token]  # (B, num_labels)

        loss = None
        if labels is not None:
            loss = self.loss_function(
                logits=logits, labels=labels, pooled_logits=pooled_logits, config=self.config
            )

        return SequenceClassifierOutputWithPast(
            loss=loss,
            logits=pooled_logits,
            hidden_states=outputs.hidden_states,
            **{_CACHE_FIELD: getattr(outputs, _CACHE_FIELD)},
        )
