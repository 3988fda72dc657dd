"""Parity tests for PicoGPT on tiny configs: the contract every TRL trainer relies on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import make_tiny_config
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
)
from transformers.cache_utils import Cache

from pipelines import (
    PicoGPTConfig,
    PicoGPTForCausalLM,
    PicoGPTForSequenceClassification,
    PicoGPTModel,
)
from pipelines.models.picogpt.modeling_picogpt import _CACHE_FIELD


def _model(tokenizer, cls=PicoGPTForCausalLM, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    model = cls(make_tiny_config(tokenizer, **overrides))
    return model.eval()


def _ids(tokenizer, text: str) -> torch.Tensor:
    return torch.tensor([tokenizer(text).input_ids])


def test_generate_identical_with_and_without_cache(tiny_tokenizer):
    model = _model(tiny_tokenizer)
    prompt = _ids(tiny_tokenizer, "the quick fox jumps over")
    kwargs = dict(
        max_new_tokens=12,
        do_sample=False,
        pad_token_id=tiny_tokenizer.pad_token_id,
        return_dict_in_generate=True,
        output_logits=True,
    )
    with_cache = model.generate(prompt, use_cache=True, **kwargs)
    without_cache = model.generate(prompt, use_cache=False, **kwargs)
    assert with_cache.sequences.shape[1] == prompt.shape[1] + 12
    assert torch.equal(with_cache.sequences, without_cache.sequences)
    # The logits too: an untrained model's greedy tokens barely depend on the context, so equal
    # tokens alone would not show that the cached steps saw the whole prefix.
    torch.testing.assert_close(
        torch.stack(with_cache.logits), torch.stack(without_cache.logits), atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize("name", ["cache", "past_key_values"])
def test_cache_logits_match_full_forward(tiny_tokenizer, name):
    """The cache is `cache` from transformers 5.24 and `past_key_values` before; both names work."""
    model = _model(tiny_tokenizer)
    ids = _ids(tiny_tokenizer, "the big owl counts to 12 and jumps")
    full = model(ids, use_cache=False).logits
    first = model(ids[:, :-3], use_cache=True)
    cache = getattr(first, _CACHE_FIELD)
    assert isinstance(cache, Cache) and cache.get_seq_length() == ids.shape[1] - 3
    step = model(ids[:, -3:], use_cache=True, **{name: cache}).logits
    torch.testing.assert_close(step, full[:, -3:], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="not both"):
        model(ids[:, -3:], cache=cache, past_key_values=cache)


@pytest.mark.parametrize("cls", [PicoGPTForCausalLM, PicoGPTForSequenceClassification])
def test_eager_and_sdpa_agree(tiny_tokenizer, cls):
    sdpa = _model(tiny_tokenizer, cls, num_labels=1)
    eager = _model(tiny_tokenizer, cls, num_labels=1)
    eager.config._attn_implementation = "eager"
    assert sdpa.config._attn_implementation == "sdpa"  # the default
    batch = tiny_tokenizer(
        ["the quick fox", "the slow red cat jumps over 3 lazy hens"], padding=True, return_tensors="pt"
    )
    torch.testing.assert_close(sdpa(**batch).logits, eager(**batch).logits, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_left_padding_matches_each_row_alone(tiny_tokenizer, attn):
    texts = ["the quick fox", "the slow red cat jumps over 3 lazy hens"]
    tiny_tokenizer.padding_side = "left"
    try:
        batch = tiny_tokenizer(texts, padding=True, return_tensors="pt")
    finally:
        tiny_tokenizer.padding_side = "right"
    assert batch.attention_mask[0, 0] == 0  # the short row really is left-padded

    lm = _model(tiny_tokenizer)
    rm = _model(tiny_tokenizer, PicoGPTForSequenceClassification, num_labels=1)
    for model in (lm, rm):
        model.config._attn_implementation = attn
    batch_logits = lm(**batch).logits
    batch_scores = rm(**batch).logits
    for row, text in enumerate(texts):
        alone = _ids(tiny_tokenizer, text)
        n = alone.shape[1]
        torch.testing.assert_close(batch_logits[row, -n:], lm(alone).logits[0], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(batch_scores[row], rm(alone).logits[0], atol=1e-5, rtol=1e-4)


def test_right_padded_score_is_read_at_last_real_token(tiny_tokenizer):
    rm = _model(tiny_tokenizer, PicoGPTForSequenceClassification, num_labels=1)
    texts = ["the quick fox", "the slow red cat jumps over 3 lazy hens"]
    batch = tiny_tokenizer(texts, padding=True, return_tensors="pt")
    scores = rm(**batch).logits
    assert scores.shape == (2, 1)
    torch.testing.assert_close(scores[0], rm(_ids(tiny_tokenizer, texts[0])).logits[0], atol=1e-5, rtol=1e-4)


def test_left_padded_generation_matches_unpadded(tiny_tokenizer):
    model = _model(tiny_tokenizer)
    texts = ["the quick fox", "the slow red cat jumps over 3 lazy hens"]
    tiny_tokenizer.padding_side = "left"
    try:
        batch = tiny_tokenizer(texts, padding=True, return_tensors="pt")
    finally:
        tiny_tokenizer.padding_side = "right"
    kwargs = dict(max_new_tokens=8, do_sample=False, pad_token_id=tiny_tokenizer.pad_token_id)
    batched = model.generate(**batch, **kwargs)[:, batch.input_ids.shape[1] :]
    for row, text in enumerate(texts):
        alone = model.generate(_ids(tiny_tokenizer, text), **kwargs)[0, -8:]
        assert torch.equal(batched[row], alone)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_sequences_match_separate_ones(tiny_tokenizer, attn):
    model = _model(tiny_tokenizer)
    model.config._attn_implementation = attn
    a = _ids(tiny_tokenizer, "the quick fox jumps")
    b = _ids(tiny_tokenizer, "the big owl counts to 12")
    packed = torch.cat([a, b], dim=1)
    # Padding-free packing: positions restart at 0 where each sequence starts.
    position_ids = torch.cat([torch.arange(a.shape[1]), torch.arange(b.shape[1])]).unsqueeze(0)
    logits = model(packed, position_ids=position_ids, use_cache=False).logits
    torch.testing.assert_close(logits[:, : a.shape[1]], model(a).logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(logits[:, a.shape[1] :], model(b).logits, atol=1e-5, rtol=1e-4)
    # Without the restart the second sequence sees the first: the test can tell.
    leaked = model(packed, use_cache=False).logits[:, a.shape[1] :]
    assert not torch.allclose(leaked, model(b).logits, atol=1e-3)


def test_hidden_states_last_is_final_norm_output(tiny_tokenizer):
    model = _model(tiny_tokenizer)
    ids = _ids(tiny_tokenizer, "the quick fox")
    out = model.model(ids, output_hidden_states=True)
    assert len(out.hidden_states) == model.config.num_hidden_layers + 1
    torch.testing.assert_close(out.hidden_states[-1], out.last_hidden_state)


def test_save_load_exact_and_tied(tiny_tokenizer, tmp_path):
    model = _model(tiny_tokenizer)
    ids = _ids(tiny_tokenizer, "the quick fox jumps over")
    model.save_pretrained(tmp_path)
    loaded = PicoGPTForCausalLM.from_pretrained(tmp_path).eval()
    assert torch.equal(loaded(ids).logits, model(ids).logits)
    # Rotary frequencies are not saved; they must be rebuilt after meta-device loading.
    assert torch.equal(loaded.model.rotary_emb.inv_freq, model.model.rotary_emb.inv_freq)
    assert loaded.lm_head.weight is loaded.model.embed_tokens.weight
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "picogpt"
    assert set(config["auto_map"]) == {
        "AutoConfig",
        "AutoModel",
        "AutoModelForCausalLM",
        "AutoModelForSequenceClassification",
    }
    assert (tmp_path / "modeling_picogpt.py").is_file() and (tmp_path / "configuration_picogpt.py").is_file()


def test_auto_classes_resolve(tiny_model_dir):
    assert isinstance(AutoConfig.from_pretrained(tiny_model_dir), PicoGPTConfig)
    assert type(AutoModel.from_pretrained(tiny_model_dir)) is PicoGPTModel
    assert type(AutoModelForCausalLM.from_pretrained(tiny_model_dir)) is PicoGPTForCausalLM
    rm = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1)
    assert type(rm) is PicoGPTForSequenceClassification


def test_reward_model_from_causal_checkpoint_misses_only_score(tiny_model_dir):
    causal = PicoGPTForCausalLM.from_pretrained(tiny_model_dir)
    rm, info = PicoGPTForSequenceClassification.from_pretrained(
        tiny_model_dir, num_labels=1, output_loading_info=True
    )
    assert info["missing_keys"] == {"score.weight"} or set(info["missing_keys"]) == {"score.weight"}
    assert not info["unexpected_keys"] or set(info["unexpected_keys"]) <= {"lm_head.weight"}
    assert torch.equal(rm.model.embed_tokens.weight, causal.model.embed_tokens.weight)
    assert rm.score.weight.shape == (1, causal.config.hidden_size)


def test_trust_remote_code_load_without_pipelines(tiny_model_dir, tmp_path):
    """A user without this package loads the saved folder with trust_remote_code."""
    script = textwrap.dedent(
        f"""
        import importlib.abc, sys

        class NoPipelines(importlib.abc.MetaPathFinder):
            # Simulate a machine without this package, even where it is pip-installed.
            def find_spec(self, name, path=None, target=None):
                if name == "pipelines" or name.startswith("pipelines."):
                    raise ModuleNotFoundError(f"No module named {{name!r}}")

        sys.meta_path.insert(0, NoPipelines())
        import torch
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
        path = {str(tiny_model_dir)!r}
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=True)
        lm = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True)
        rm = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True, num_labels=1)
        ids = torch.tensor([tok("the quick fox").input_ids])
        out = lm.generate(ids, max_new_tokens=3, do_sample=False, pad_token_id=tok.pad_token_id)
        assert "pipelines" not in sys.modules
        print("RESULT", type(lm).__module__, type(lm).__name__, type(rm).__name__, out.shape[1] - ids.shape[1])
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HF_HOME"] = str(tmp_path / "hf-home")
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(
        (x for x in result.stdout.splitlines() if x.startswith("RESULT ")),
        result.stdout + result.stderr[-3000:],
    )
    assert line.startswith("RESULT "), line
    module, lm_name, rm_name, new_tokens = line.split()[1:]
    assert module.startswith("transformers_modules")
    assert (lm_name, rm_name, new_tokens) == ("PicoGPTForCausalLM", "PicoGPTForSequenceClassification", "3")


def test_gradient_checkpointing_gives_same_gradients(tiny_tokenizer):
    ids = _ids(tiny_tokenizer, "the quick fox jumps over 3 lazy dogs")
    grads = []
    for checkpointing in (False, True):
        model = _model(tiny_tokenizer).train()
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            assert model.model.gradient_checkpointing
        model(ids, labels=ids).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 0
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(
    ("cls", "task_type"),
    [(PicoGPTForCausalLM, "CAUSAL_LM"), (PicoGPTForSequenceClassification, "SEQ_CLS")],
)
def test_lora_wraps_intended_modules_and_trains(tiny_tokenizer, cls, task_type):
    from peft import LoraConfig, get_peft_model

    model = _model(tiny_tokenizer, cls, num_labels=1).train()
    config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type=task_type)
    peft_model = get_peft_model(model, config)
    wrapped = {name.rsplit(".", 1)[-1] for name, m in peft_model.named_modules() if hasattr(m, "lora_A")}
    assert wrapped == {"q_proj", "k_proj", "v_proj", "o_proj", "fc_in", "fc_out"}
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert all("lora_" in n or (task_type == "SEQ_CLS" and ".score." in n) for n in trainable)
    if task_type == "SEQ_CLS":  # the head must train, or the reward model stays random
        assert any(".score." in n for n in trainable)

    before = {n: p.detach().clone() for n, p in peft_model.named_parameters() if p.requires_grad}
    frozen_before = peft_model.base_model.model.model.embed_tokens.weight.detach().clone()
    opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2)
    ids = _ids(tiny_tokenizer, "the quick fox jumps over")
    out = peft_model(ids, labels=ids) if task_type == "CAUSAL_LM" else peft_model(ids)
    loss = out.loss if task_type == "CAUSAL_LM" else out.logits.sum()
    loss.backward()
    opt.step()
    moved = [n for n, p in peft_model.named_parameters() if p.requires_grad and not torch.equal(p, before[n])]
    assert any("lora_B" in n for n in moved)
    assert torch.equal(peft_model.base_model.model.model.embed_tokens.weight, frozen_before)


def test_qlora_4bit_step_on_cpu(tiny_model_dir):
    bnb = pytest.importorskip("bitsandbytes", reason="bitsandbytes is not installed (extra `quantization`)")
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig

    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.float32,
    )
    try:
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, quantization_config=quant)
    except (RuntimeError, ImportError, ValueError) as err:  # a build without CPU kernels
        pytest.skip(f"this bitsandbytes build ({bnb.__version__}) cannot load 4-bit on CPU: {err}")
    assert isinstance(model.model.layers[0].self_attn.q_proj, bnb.nn.Linear4bit)
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    model = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM")
    )
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = torch.tensor([tok("the quick fox jumps over").input_ids])
    before = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_B" in n}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    loss = model(ids, labels=ids).loss
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(p, before[n]) for n, p in model.named_parameters() if n in before)


def test_config_rejects_bad_heads():
    with pytest.raises(ValueError, match="multiple of num_attention_heads"):
        PicoGPTConfig(hidden_size=30, num_attention_heads=4)
    with pytest.raises(ValueError, match="num_key_value_heads"):
        PicoGPTConfig(hidden_size=32, num_attention_heads=4, num_key_value_heads=3)


def test_grouped_query_attention_eager_sdpa_agree(tiny_tokenizer):
    sdpa = _model(tiny_tokenizer, num_key_value_heads=2)
    eager = _model(tiny_tokenizer, num_key_value_heads=2)
    eager.config._attn_implementation = "eager"
    ids = _ids(tiny_tokenizer, "the quick fox jumps over")
    torch.testing.assert_close(sdpa(ids).logits, eager(ids).logits, atol=1e-5, rtol=1e-4)
    assert sdpa.model.layers[0].self_attn.k_proj.out_features == 2 * sdpa.config.head_dim


def test_training_forward_builds_no_cache_so_packing_stays_exact(tiny_tokenizer):
    model = _model(tiny_tokenizer).train()
    a = _ids(tiny_tokenizer, "the quick fox jumps")
    b = _ids(tiny_tokenizer, "the big owl counts to 12")
    position_ids = torch.cat([torch.arange(a.shape[1]), torch.arange(b.shape[1])]).unsqueeze(0)
    out = model(
        torch.cat([a, b], dim=1), position_ids=position_ids
    )  # as TRL's padding-free collator calls it
    assert getattr(out, _CACHE_FIELD) is None
    torch.testing.assert_close(out.logits[:, a.shape[1] :], model(b).logits, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    ("input_dtype", "weight_dtype"), [(torch.bfloat16, torch.float32), (torch.float32, torch.bfloat16)]
)
def test_layer_norm_accepts_mixed_dtypes_and_returns_the_input_dtype(input_dtype, weight_dtype):
    """QLoRA keeps norm weights in float32 beside bf16 activations (TRL's
    `peft_module_casting_to_bf16`); on CUDA `F.layer_norm` refuses any mix, on CPU one of the two.
    PicoGPT's norm computes in float32 and hands back the input's dtype."""
    from pipelines.models.picogpt.modeling_picogpt import PicoGPTLayerNorm

    torch.manual_seed(0)
    norm = PicoGPTLayerNorm(32, eps=1e-5, bias=True)
    torch.nn.init.normal_(norm.weight, 1.0, 0.2)
    torch.nn.init.normal_(norm.bias, 0.0, 0.2)
    x = (torch.randn(2, 5, 32) * 3 + 1).to(input_dtype)
    expected = torch.nn.functional.layer_norm(
        x.float(), (32,), norm.weight.to(weight_dtype).float(), norm.bias.to(weight_dtype).float(), 1e-5
    )
    out = norm.to(weight_dtype)(x)
    assert out.dtype == input_dtype
    torch.testing.assert_close(out.float(), expected.to(input_dtype).float())
