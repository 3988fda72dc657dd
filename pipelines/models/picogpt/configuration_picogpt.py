"""PicoGPT configuration.

PicoGPT is a GPT-style decoder (pre-LN blocks, rotary positions, tied embeddings) written to
the transformers contract so that every TRL trainer, PEFT, bitsandbytes, Accelerate and the
Hub take it like any model from the Hub. The `model_type` ("picogpt") is used by no model in
transformers, so registering it with the Auto classes cannot shadow anything.
"""

from __future__ import annotations

from transformers import PreTrainedConfig

__all__ = ["PicoGPTConfig"]


class PicoGPTConfig(PreTrainedConfig):
    r"""Configuration of a PicoGPT model.

    Args:
        vocab_size: number of tokens of the tokenizer, special tokens included.
        hidden_size: width of the residual stream (GPT-2's `n_embd`).
        intermediate_size: width of the MLP; `None` means `4 * hidden_size`, GPT's ratio.
        num_hidden_layers: number of decoder blocks (`n_layer`).
        num_attention_heads: number of query heads (`n_head`).
        num_key_value_heads: number of key/value heads; `None` means multi-head attention
            (as many as query heads). Fewer gives grouped-query attention.
        hidden_act: MLP activation. `gelu_pytorch_tanh` is GPT-2's tanh-approximated GELU, in
            one fused PyTorch kernel.
        max_position_embeddings: longest sequence the model is meant for. Rotary positions have
            no table, so this only informs generation defaults and users.
        rope_theta: base of the rotary frequencies (RoFormer / Llama use 10000).
        layer_norm_eps: epsilon of the LayerNorms.
        bias: whether Linear and LayerNorm layers have biases. nanoGPT showed they are not
            needed; without them the model is a little faster and smaller.
        dropout: dropout on the embeddings, the residual branches and the attention weights.
            0.0 by default: pretraining small models does not need it, and RLHF must not have
            it (PPO compares log-probabilities of the same tokens under two forward passes).
        initializer_range: standard deviation of the normal init of weights (GPT-2's 0.02).
        use_cache: whether `generate()` keeps a key/value cache.
        tie_word_embeddings: share the input embedding with the LM head (GPT-2 does).
        pad_token_id / bos_token_id / eos_token_id: special token ids. transformers 5's
            `PreTrainedConfig` no longer defines them, so every model config must.
    """

    model_type = "picogpt"
    keys_to_ignore_at_inference = ["cache", "past_key_values"]  # transformers >= 5.24, < 5.24
    # Tensor-parallel plan, used by `from_pretrained(..., tp_plan="auto")` on many GPUs.
    base_model_tp_plan = {
        "layers.*.self_attn.q_proj": "colwise",
        "layers.*.self_attn.k_proj": "colwise",
        "layers.*.self_attn.v_proj": "colwise",
        "layers.*.self_attn.o_proj": "rowwise",
        "layers.*.mlp.fc_in": "colwise",
        "layers.*.mlp.fc_out": "rowwise",
    }

    def __init__(
        self,
        vocab_size: int = 8192,
        hidden_size: int = 256,
        intermediate_size: int | None = None,
        num_hidden_layers: int = 4,
        num_attention_heads: int = 4,
        num_key_value_heads: int | None = None,
        hidden_act: str = "gelu_pytorch_tanh",
        max_position_embeddings: int = 1024,
        rope_theta: float = 10000.0,
        layer_norm_eps: float = 1e-5,
        bias: bool = False,
        dropout: float = 0.0,
        initializer_range: float = 0.02,
        use_cache: bool = True,
        tie_word_embeddings: bool = True,
        pad_token_id: int | None = None,
        bos_token_id: int | None = None,
        eos_token_id: int | None = None,
        auto_map: dict[str, str] | None = None,
        **kwargs,
    ) -> None:
        if hidden_size % num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({hidden_size}) must be a multiple of num_attention_heads ({num_attention_heads})."
            )
        num_key_value_heads = num_key_value_heads or num_attention_heads
        if num_attention_heads % num_key_value_heads != 0:
            raise ValueError(
                f"num_attention_heads ({num_attention_heads}) must be a multiple of "
                f"num_key_value_heads ({num_key_value_heads})."
            )
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size or 4 * hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads
        self.head_dim = hidden_size // num_attention_heads
        self.hidden_act = hidden_act
        self.max_position_embeddings = max_position_embeddings
        self.rope_theta = rope_theta
        self.layer_norm_eps = layer_norm_eps
        self.bias = bias
        self.dropout = dropout
        self.initializer_range = initializer_range
        self.use_cache = use_cache
        self.tie_word_embeddings = tie_word_embeddings
        self.pad_token_id = pad_token_id
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        # TRL's `create_model_from_path` reads `auto_map`; it must be a dict, never None.
        self.auto_map = dict(auto_map) if auto_map else {}
        super().__init__(**kwargs)
