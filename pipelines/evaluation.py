"""Evaluation: reward-model accuracy, policy generation, gold scores, win rate and KL.

The numbers themselves are computed by the project's `evaluate` modules
(`pipelines/metrics/`), so they can be loaded and checked on their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

from pipelines.metrics import load_metric
from pipelines.preprocessing import chat_token_ids

__all__ = [
    "evaluate_policies",
    "evaluate_reward_model",
    "decode_responses",
    "generate_response_ids",
    "generate_responses",
    "load_policy",
    "response_logprobs",
    "score_conversations",
]

Messages = list[dict[str, str]]


def load_policy(
    path: str | Path, trust_remote_code: bool = False, revision: str | None = None
) -> PreTrainedModel:
    """A causal LM from a stage folder or Hub id (at `revision`): a full model, or a LoRA adapter on its base."""
    if (Path(path) / "adapter_config.json").is_file():
        from peft import AutoPeftModelForCausalLM

        return AutoPeftModelForCausalLM.from_pretrained(path, trust_remote_code=trust_remote_code).eval()
    return AutoModelForCausalLM.from_pretrained(
        path, trust_remote_code=trust_remote_code, revision=revision
    ).eval()


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def score_conversations(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    conversations: Sequence[Messages],
    batch_size: int = 64,
) -> list[float]:
    """Scalar reward of each whole conversation, as the reward model sees it in training."""
    was_training = model.training
    model.eval()
    texts = [tokenizer.apply_chat_template(c, tokenize=False) for c in conversations]
    scores: list[float] = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            texts[start : start + batch_size], padding=True, return_tensors="pt", add_special_tokens=False
        ).to(_device(model))
        scores.extend(model(**batch).logits[:, 0].float().tolist())
    model.train(was_training)
    return scores


def evaluate_reward_model(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    pairs,
    max_length: int | None = None,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Pairwise accuracy on `pairs` (prompt/chosen/rejected), beside the length baseline.

    Pairs longer than `max_length` tokens are left out, as RewardTrainer drops them in
    training; `n` and `n_dropped` say which pairs the accuracy is about.
    """
    kept_chosen, kept_rejected, chosen_len, rejected_len = [], [], [], []
    dropped = 0
    for row in pairs:
        chosen, rejected = row["prompt"] + row["chosen"], row["prompt"] + row["rejected"]
        if (
            max_length is not None
            and max(len(chat_token_ids(tokenizer, c)) for c in (chosen, rejected)) > max_length
        ):
            dropped += 1
            continue
        kept_chosen.append(chosen)
        kept_rejected.append(rejected)
        chosen_len.append(len(row["chosen"][-1]["content"]))
        rejected_len.append(len(row["rejected"][-1]["content"]))
    if not kept_chosen:
        raise ValueError(f"All {dropped} evaluation pairs are longer than max_length={max_length}.")
    result = load_metric("reward_accuracy").compute(
        chosen_rewards=score_conversations(model, tokenizer, kept_chosen, batch_size),
        rejected_rewards=score_conversations(model, tokenizer, kept_rejected, batch_size),
        chosen_lengths=chosen_len,
        rejected_lengths=rejected_len,
    )
    return {**result, "n_dropped": dropped}


@torch.no_grad()
def generate_response_ids(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Messages],
    max_new_tokens: int = 32,
    batch_size: int = 64,
    do_sample: bool = False,
    temperature: float = 1.0,
    seed: int = 0,
) -> list[list[int]]:
    """The token ids of each response as the policy generated them (greedy unless `do_sample`).

    A response runs up to and including its first EOS; one cut at `max_new_tokens` has no EOS.
    Scoring these ids (`response_logprobs`) scores exactly what was sampled: decoding and
    tokenising again can give other tokens, and would add an EOS the policy never produced.
    """
    padding_side, tokenizer.padding_side = tokenizer.padding_side, "left"  # generation continues on the right
    model.eval()
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    eos = tokenizer.eos_token_id
    out: list[list[int]] = []
    try:
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[start : start + batch_size], padding=True, return_tensors="pt", add_special_tokens=False
            ).to(_device(model))
            generated = model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=do_sample,
                temperature=temperature if do_sample else None,
                top_k=0 if do_sample else None,
                top_p=1.0 if do_sample else None,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=eos,
            )
            # (B, prompt + new) -> the new tokens; after a row's EOS, generate() fills in padding.
            for row in generated[:, batch["input_ids"].shape[1] :].tolist():
                out.append(row[: row.index(eos) + 1] if eos in row else row)
    finally:
        tokenizer.padding_side = padding_side
        torch.random.set_rng_state(generator_state)
    return out


def decode_responses(tokenizer: PreTrainedTokenizerBase, response_ids: Sequence[Sequence[int]]) -> list[str]:
    """The text of generated responses, special tokens and surrounding whitespace removed."""
    return [text.strip() for text in tokenizer.batch_decode(response_ids, skip_special_tokens=True)]


def generate_responses(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Messages],
    max_new_tokens: int = 32,
    batch_size: int = 64,
    do_sample: bool = False,
    temperature: float = 1.0,
    seed: int = 0,
) -> list[str]:
    """Responses of a policy to conversational prompts (greedy unless `do_sample`), as text."""
    ids = generate_response_ids(
        model, tokenizer, prompts, max_new_tokens, batch_size, do_sample, temperature, seed
    )
    return decode_responses(tokenizer, ids)


@torch.no_grad()
def response_logprobs(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Messages],
    response_ids: Sequence[Sequence[int]],
    batch_size: int = 64,
) -> list[list[float]]:
    """Per-token log-probabilities of each response given its prompt.

    Responses are token ids as the policy generated them (`generate_response_ids`), scored as they
    are: text tokenised again can give other tokens than the ones sampled.
    """
    model.eval()
    out: list[list[float]] = []
    for start in range(0, len(prompts), batch_size):
        ids, masks = [], []
        for prompt, response in zip(
            prompts[start : start + batch_size], response_ids[start : start + batch_size], strict=True
        ):
            p = chat_token_ids(tokenizer, prompt, add_generation_prompt=True)
            r = list(response)
            ids.append(p + r)
            masks.append([0] * len(p) + [1] * len(r))
        width = max(map(len, ids))
        input_ids = torch.tensor([x + [tokenizer.pad_token_id] * (width - len(x)) for x in ids])
        attention = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids])
        response_mask = torch.tensor([m + [0] * (width - len(m)) for m in masks])
        logits = model(
            input_ids=input_ids.to(_device(model)), attention_mask=attention.to(_device(model))
        ).logits
        logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
        token_lp = logprobs.gather(-1, input_ids[:, 1:, None].to(logits.device))[..., 0].cpu()
        for row in range(len(ids)):
            keep = response_mask[row, 1:].bool()
            out.append(token_lp[row][keep].tolist())
    return out


def evaluate_policies(
    policies: dict[str, str | Path],
    prompts: Sequence[Messages],
    reference: str = "sft",
    max_new_tokens: int = 32,
    seed: int = 0,
    trust_remote_code: bool = False,
    samples_per_prompt: int = 4,
) -> dict[str, dict[str, Any]]:
    """Gold score of each policy, and its win rate and KL against the `reference` policy.

    `gold_score` and `win_rate_vs_<reference>` judge greedy responses (the policy's best answer).
    `sampled_gold_score` and `sampled_win_rate_vs_<reference>` judge `samples_per_prompt` responses
    per prompt sampled at temperature 1 (0: skip), the policy's own distribution (PPO may roll out at
    another temperature: the tiny recipe's 0.5); the j-th sample of each policy meets the j-th of the
    reference. `kl_to_<reference>` estimates KL(policy || reference) on the same samples, as PPO
    measures it: the mean over responses of the summed per-token log-ratio, on the tokens the policy
    generated (it needs `samples_per_prompt` >= 1).
    """
    from transformers import AutoTokenizer

    from pipelines.data import judge_batch

    if reference not in policies:
        raise ValueError(f"reference {reference!r} is not among the policies {sorted(policies)}.")
    user_texts = [p[-1]["content"] for p in prompts]
    tokenizer = AutoTokenizer.from_pretrained(policies[reference], trust_remote_code=trust_remote_code)
    models = {name: load_policy(path, trust_remote_code) for name, path in policies.items()}
    responses = {
        name: generate_responses(m, tokenizer, prompts, max_new_tokens, seed=seed)
        for name, m in models.items()
    }
    scores = {name: judge_batch(user_texts, r) for name, r in responses.items()}
    repeated = [p for p in prompts for _ in range(samples_per_prompt)]
    sampled_ids = {
        name: generate_response_ids(m, tokenizer, repeated, max_new_tokens, do_sample=True, seed=seed + 1)
        for name, m in (models.items() if samples_per_prompt else ())
    }
    repeated_texts = [t for t in user_texts for _ in range(samples_per_prompt)]
    sampled_scores = {
        name: judge_batch(repeated_texts, decode_responses(tokenizer, ids))
        for name, ids in sampled_ids.items()
    }
    win_rate = load_metric("gold_win_rate")
    kl_metric = load_metric("kl_divergence")
    results: dict[str, dict[str, Any]] = {}
    for name, model in models.items():
        entry: dict[str, Any] = {"gold_score": sum(scores[name]) / len(scores[name]), "n": len(prompts)}
        if sampled_scores:
            entry["sampled_gold_score"] = sum(sampled_scores[name]) / len(sampled_scores[name])
        if name != reference:
            versus = win_rate.compute(scores_a=scores[name], scores_b=scores[reference])
            entry[f"win_rate_vs_{reference}"] = versus["win_rate"]
            if sampled_scores:
                versus = win_rate.compute(scores_a=sampled_scores[name], scores_b=sampled_scores[reference])
                entry[f"sampled_win_rate_vs_{reference}"] = versus["win_rate"]
                kl = kl_metric.compute(
                    policy_logprobs=response_logprobs(model, tokenizer, repeated, sampled_ids[name]),
                    reference_logprobs=response_logprobs(
                        models[reference], tokenizer, repeated, sampled_ids[name]
                    ),
                )
                entry[f"kl_to_{reference}"] = kl["kl"]
        results[name] = entry
    results["_responses"] = {name: r for name, r in responses.items()}  # type: ignore[assignment]
    results["_scores"] = scores  # type: ignore[assignment]
    return results
