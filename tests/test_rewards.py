"""The gold judge as the RL stages' reward (`gold_reward`): the learned reward model's ceiling.

PPO gets it behind the reward-model interface (`JudgeRewardModel`), RLOO and GRPO as a reward
function (`gold_reward_function`).
"""

from __future__ import annotations

import pytest
import torch

from pipelines.configs import ConfigError


def _rollouts(tokenizer, prompts: list[str], answers: list[list[int]]) -> tuple[torch.Tensor, int]:
    """(B, context + response) ids as TRL's PPO scores them: prompts left-padded, answers right-padded."""
    from pipelines.preprocessing import chat_token_ids

    pad = tokenizer.pad_token_id
    queries = [
        chat_token_ids(tokenizer, [{"role": "user", "content": p}], add_generation_prompt=True)
        for p in prompts
    ]
    context = max(map(len, queries))
    width = max(map(len, answers))
    rows = [
        [pad] * (context - len(q)) + q + a + [pad] * (width - len(a))
        for q, a in zip(queries, answers, strict=True)
    ]
    return torch.tensor(rows), context


def _train_prompt_texts() -> set[str]:
    """The user texts of the embedded task's PPO/RL training prompts (task seed 0)."""
    from pipelines.data import get_dataset

    return {row[-1]["content"] for row in get_dataset("embedded", "prompts", seed=0)["train"]["prompt"]}


def test_trl_scores_each_rollout_with_scale_times_the_gold_judge(tiny_tokenizer):
    from trl.experimental.utils import get_reward

    from pipelines.data import gold_score
    from pipelines.rewards import JudgeRewardModel

    tok, eos = tiny_tokenizer, tiny_tokenizer.eos_token_id
    prompts = ["List exactly 3 fruits.", "Write horse exactly four times.", "List exactly 2 animals."]
    texts = ["apple, pear, plum", "horse horse horse", "cat, cat"]
    answers = [
        tok(" " + texts[0], add_special_tokens=False)["input_ids"] + [eos],
        tok(" " + texts[1], add_special_tokens=False)["input_ids"] + [eos],
        tok(" " + texts[2], add_special_tokens=False)["input_ids"],  # cut at the length limit: no EOS
    ]
    query_responses, context = _rollouts(tok, prompts, answers)
    _, scores, _ = get_reward(JudgeRewardModel(tok, scale=4.0), query_responses, tok.pad_token_id, context)

    expected = [4.0 * gold_score(p, t) for p, t in zip(prompts, texts, strict=True)]
    assert expected[0] == 4.0 and 0.0 < expected[1] < 4.0 and expected[2] < 4.0  # the cases differ
    assert scores.tolist() == pytest.approx(expected, abs=1e-6)


def test_the_answer_stops_at_its_first_eos(tiny_tokenizer):
    from pipelines.rewards import JudgeRewardModel

    tok, eos = tiny_tokenizer, tiny_tokenizer.eos_token_id
    seen = []
    model = JudgeRewardModel(tok, judge=lambda p, a: seen.append((p, a)) or 0.5, scale=2.0)
    answer = tok(" apple, pear", add_special_tokens=False)["input_ids"] + [eos]
    ids, _ = _rollouts(
        tok, ["List exactly 2 fruits."], [answer + tok(" plum", add_special_tokens=False)["input_ids"]]
    )
    assert model.judge.score_row(ids[0][ids[0] != tok.pad_token_id].tolist()) == 1.0
    assert seen == [("List exactly 2 fruits.", "apple, pear")]


def test_a_tokenizer_without_the_chat_markers_is_refused():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    from pipelines.rewards import JudgeRewardModel

    bare = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, "[UNK]"))
    )
    bare.unk_token = "[UNK]"
    with pytest.raises(ValueError, match=r"<\|assistant\|> token"):
        JudgeRewardModel(bare)


def test_gold_reward_needs_the_embedded_task_and_a_positive_scale(tmp_path, repo_root):
    from recipe_runs import parse_for, write_jsonl

    data = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "Tell me a story."}])
    config = str(repo_root / "recipes" / "tiny" / "ppo.yaml")
    with pytest.raises(ConfigError, match="gold_reward needs the embedded task's prompts"):
        parse_for("ppo", ["--config", config, "--dataset_name", str(data), "--gold_reward", "true"])
    with pytest.raises(ConfigError, match="gold_reward_scale must be > 0"):
        parse_for("ppo", ["--config", config, "--gold_reward", "true", "--gold_reward_scale", "0"])


def test_ppo_recipe_trains_against_the_judge_not_the_reward_model(tmp_path_factory, tmp_path, monkeypatch):
    """With `gold_reward`, every rollout is scored by the judge on the prompt PPO drew, times the scale."""
    from recipe_runs import build_chain, logged_numbers, run_recipe, stage_args

    import pipelines.data

    calls = []
    monkeypatch.setattr(pipelines.data, "gold_score", lambda p, a: calls.append((p, a)) or 0.25)
    chain = build_chain(tmp_path_factory.getbasetemp() / "reliability-chain", "chain-a")
    inputs = {"model_name_or_path": chain / "sft", "reward_model_path": chain / "reward"}
    out = tmp_path / "ppo-gold"
    argv = stage_args("ppo", tmp_path / "configs", out, inputs, total_episodes=8, max_prompt_length=128)
    argv += ["--dataset_name", "embedded", "--gold_reward", "true", "--gold_reward_scale", "4",
             "--missing_eos_penalty", "0.0"]  # fmt: skip
    run_recipe("ppo", argv)

    scores = [e["objective/scores"] for e in logged_numbers(out) if "objective/scores" in e]
    assert scores == [pytest.approx(1.0)] * 2  # two rollouts of 4, each scored 4 x 0.25
    assert len(calls) == 8 and {p for p, _ in calls} <= _train_prompt_texts()


def test_reward_function_scores_conversational_and_plain_completions():
    from pipelines.data import gold_score
    from pipelines.rewards import gold_reward_function

    reward = gold_reward_function(scale=2.0)
    prompts = [[{"role": "user", "content": "List exactly 3 fruits."}], "Write horse exactly four times."]
    completions = [[{"role": "assistant", "content": " apple, pear, plum\n"}], "horse horse horse"]
    expected = [
        2.0 * gold_score(prompts[0], "apple, pear, plum"),
        2.0 * gold_score(prompts[1], "horse horse horse"),
    ]
    assert reward(prompts=prompts, completions=completions, completion_ids=[[1], [2]]) == expected
    assert expected[0] == 2.0 and 0.0 < expected[1] < 2.0  # a right list, a partial repeat
    assert reward.__name__ == "gold_judge"  # TRL logs rewards/gold_judge/mean


def test_rloo_recipe_trains_against_the_judge_without_a_reward_model(tmp_path_factory, tmp_path, monkeypatch):
    """`gold_reward` in RLOO: no reward stage needed; every completion is scored by the judge."""
    from recipe_runs import build_chain, logged_numbers, parse_for, run_recipe

    import pipelines.data

    calls = []
    monkeypatch.setattr(pipelines.data, "gold_score", lambda p, a: calls.append((p, a)) or 0.25)
    chain = build_chain(tmp_path_factory.getbasetemp() / "reliability-chain", "chain-a")
    out = tmp_path / "rloo-gold"
    argv = ["--config", "recipes/tiny/variants/rloo_gold.yaml", "--model_name_or_path", str(chain / "sft"),
            "--output_dir", str(out), "--max_steps", "2", "--per_device_train_batch_size", "4",
            "--num_generations", "2", "--max_completion_length", "8", "--max_prompt_length", "256",
            "--logging_steps", "1", "--save_strategy", "no"]  # fmt: skip
    script_args = parse_for("rloo", argv)[0]
    assert script_args.gold_reward and script_args.reward_model_path is None
    run_recipe("rloo", argv)

    rewards = [e["rewards/gold_judge/mean"] for e in logged_numbers(out) if "rewards/gold_judge/mean" in e]
    assert rewards == [pytest.approx(1.0)] * 2  # 4 x 0.25 at each of the two steps
    assert len(calls) == 2 * 4  # 2 steps x (2 prompts x 2 completions)
    assert {p[-1]["content"] for p, _ in calls} <= _train_prompt_texts()
