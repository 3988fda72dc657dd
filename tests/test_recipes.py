"""Every YAML recipe parses with its stage's dataclasses, and the chains point where they should."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipelines.configs import parse_recipe_args, recipe_dataclasses
from pipelines.runner import STAGES as RUNNER_STAGES

REPO = Path(__file__).resolve().parents[1]
STAGES = {stage.name for stage in RUNNER_STAGES}
YAMLS = sorted(p for p in (REPO / "recipes").rglob("*.yaml"))


def test_every_recipe_dir_is_covered():
    assert {p.parent.relative_to(REPO / "recipes").as_posix() for p in YAMLS} >= {
        "tiny", "tiny/variants", "tiny/qlora", "ci", "small", "base",
    }  # fmt: skip
    assert all(p.stem in STAGES for p in YAMLS), [p for p in YAMLS if p.stem not in STAGES]


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: p.relative_to(REPO / "recipes").as_posix())
def test_yaml_parses_with_its_stage_dataclasses(path, tmp_path):
    config = yaml.safe_load(path.read_text())
    # The GPU recipes ask for bf16, which transformers refuses on a CPU machine: parse them as fp32.
    extra = ["--bf16", "false"] if config.get("bf16") else []
    script_args, training_args, model_args = parse_recipe_args(
        recipe_dataclasses(path.stem), ["--config", str(path), "--output_dir", str(tmp_path / "out"), *extra]
    )
    assert training_args.seed == config["seed"]
    assert script_args.dataset_name == config.get("dataset_name", "embedded")
    if path.stem != "pretrain":
        assert model_args.model_name_or_path, "every stage after pretraining names its starting model"
    if path.stem in ("ppo", "ppo_ptx", "ppo_gold"):
        assert training_args.reward_model_path == config["reward_model_path"]
        assert training_args.num_sample_generations == 0, "sampling between updates breaks exact PPO resume"
    if path.stem == "ppo_ptx":
        assert script_args.ptx_coef > 0
    if hasattr(script_args, "gold_reward"):  # PPO, RLOO, GRPO
        gold = path.stem.endswith("_gold")
        assert script_args.gold_reward == gold, "only the *_gold variants train against the judge"
        if path.stem in ("rloo", "grpo"):
            assert script_args.reward_model_path == config["reward_model_path"]


@pytest.mark.parametrize("recipe_dir", ["tiny", "ci", "small", "base"])
def test_chain_points_at_the_previous_stage_output(recipe_dir):
    folder = REPO / "recipes" / recipe_dir
    load = {p.stem: yaml.safe_load(p.read_text()) for p in folder.glob("*.yaml")}
    out = {stage: cfg["output_dir"] for stage, cfg in load.items()}
    assert load["sft"]["model_name_or_path"] == out["pretrain"]
    assert load["reward"]["model_name_or_path"] == out["sft"]
    assert load["ppo"]["model_name_or_path"] == out["sft"]
    assert load["ppo"]["reward_model_path"] == out["reward"]


def test_cpu_recipes_do_not_ask_for_bf16():
    for path in YAMLS:
        if path.parent.name in ("tiny", "ci", "variants"):
            assert yaml.safe_load(path.read_text()).get("bf16") is False, path


def test_continued_pretraining_with_lora_saves_a_trained_adapter(tmp_path, tiny_model_dir):
    """`use_peft` in the pretraining recipe trains a LoRA adapter on the given model (not the full model)."""
    from recipe_runs import run_recipe, stage_args
    from safetensors.torch import load_file

    from pipelines.evaluation import load_policy

    out = tmp_path / "out"
    inputs = {"model_name_or_path": tiny_model_dir}
    run_recipe("pretrain", stage_args("pretrain", tmp_path / "configs", out, inputs, use_peft=True, lora_r=4,
                                      lora_alpha=8, max_steps=3, learning_rate=0.01))  # fmt: skip
    assert (out / "adapter_config.json").is_file() and not (out / "model.safetensors").exists()
    lora_b = [w for name, w in load_file(out / "adapter_model.safetensors").items() if "lora_B" in name]
    assert lora_b and any(w.abs().sum() > 0 for w in lora_b), (
        "LoRA B starts at zero: the adapter was not trained"
    )
    assert type(load_policy(out)).__name__ == "PeftModelForCausalLM"


def test_pretraining_from_scratch_uses_the_requested_attention(tmp_path):
    """`attn_implementation` (TRL's ModelConfig) reaches a model built from the YAML's shape, not
    only one loaded with `model_name_or_path`."""
    from recipe_runs import load_recipe, parse_for, stage_args

    module, seen = load_recipe("pretrain"), {}

    class _Stop(Exception):
        pass

    def stop_at_trainer(*, model, **kwargs):
        seen["attn"] = model.config._attn_implementation
        raise _Stop

    module.SFTTrainer = stop_at_trainer
    argv = stage_args("pretrain", tmp_path / "configs", tmp_path / "out", {}, attn_implementation="eager")
    with pytest.raises(_Stop):
        module.main(*parse_for("pretrain", argv))
    assert seen == {"attn": "eager"}


def test_ppo_measures_its_kl_against_ref_model_path(tmp_path_factory, tmp_path):
    """The KL penalty is taken against `ref_model_path` when given, else against the policy's start.

    The policy continues from the tiny chain's PPO output: against itself its first rollout's KL is
    zero; against the SFT model it descends from (an iterated round) it is the drift PPO made.
    """
    from recipe_runs import build_chain, logged_numbers, run_recipe, stage_args

    chain = build_chain(tmp_path_factory.getbasetemp() / "reliability-chain", "chain-a")
    inputs = {"model_name_or_path": chain / "ppo", "reward_model_path": chain / "reward"}
    first_kl = {}
    for name, extra in (("own-start", {}), ("sft", {"ref_model_path": chain / "sft"})):
        out = tmp_path / name
        run_recipe("ppo", stage_args("ppo", tmp_path / "configs", out, inputs, total_episodes=4, **extra))
        first_kl[name] = next(e["objective/kl"] for e in logged_numbers(out) if "objective/kl" in e)
    assert first_kl["own-start"] == pytest.approx(0.0, abs=1e-6)
    assert first_kl["sft"] > 1e-3, first_kl


def test_ppo_value_learning_rate_sets_the_value_models_own_rate(tmp_path_factory, tmp_path):
    """`value_learning_rate` puts the value model in optimizer groups of its own rate: at 0 the value
    model leaves training as the reward model it started from, while the policy moves."""
    import torch
    from recipe_runs import build_chain, load_recipe, run_recipe, stage_args
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    chain = build_chain(tmp_path_factory.getbasetemp() / "reliability-chain", "chain-a")
    module, trainers = load_recipe("ppo"), []

    class Recording(module.PPOTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            trainers.append(self)

    module.PPOTrainer = Recording
    inputs = {"model_name_or_path": chain / "sft", "reward_model_path": chain / "reward"}
    argv = stage_args(
        "ppo", tmp_path / "configs", tmp_path / "out", inputs, total_episodes=8, value_learning_rate=0.0
    )
    run_recipe("ppo", argv, module=module)

    (trainer,) = trainers
    rates = {group["initial_lr"] for group in trainer.optimizer.param_groups}
    assert rates == {trainer.args.learning_rate, 0.0}, rates
    wrapper = trainer.accelerator.unwrap_model(trainer.model)
    start = AutoModelForSequenceClassification.from_pretrained(chain / "reward", trust_remote_code=True)
    for name, value in start.state_dict().items():
        torch.testing.assert_close(wrapper.value_model.state_dict()[name], value, msg=name)
    sft = AutoModelForCausalLM.from_pretrained(chain / "sft", trust_remote_code=True).state_dict()
    policy = wrapper.policy.state_dict()
    assert any(not torch.equal(policy[name], sft[name]) for name in sft), "the policy did not train"


def test_ppo_collections_skip_the_objects_loaded_before_training(tmp_path_factory, tmp_path):
    """TRL collects garbage twice per PPO update. The objects that exist when training starts are
    frozen out of those collections (they were 40% of a tiny CPU run), and the process's collector
    is restored afterwards; a process that froze objects itself keeps them frozen."""
    import gc

    from recipe_runs import build_chain, load_recipe, run_recipe, stage_args

    chain = build_chain(tmp_path_factory.getbasetemp() / "reliability-chain", "chain-a")
    module, frozen = load_recipe("ppo"), []

    class Recording(module.PPOTrainer):
        def log(self, logs, start_time=None):
            frozen.append(gc.get_freeze_count())
            super().log(logs, start_time)

    module.PPOTrainer = Recording
    inputs = {"model_name_or_path": chain / "sft", "reward_model_path": chain / "reward"}

    def train(name):
        frozen.clear()
        argv = stage_args("ppo", tmp_path / "configs", tmp_path / name, inputs, total_episodes=8)
        run_recipe("ppo", argv, module=module)
        return list(frozen)

    during = train("own")
    assert during and min(during) > 10_000, during
    assert gc.get_freeze_count() == 0

    gc.freeze()
    try:
        callers = gc.get_freeze_count()
        assert callers > 10_000
        during = train("callers")
        # Frozen objects can still die (their count only falls); the trainer neither adds to them
        # nor unfreezes them.
        assert during and max(during) <= callers and min(during) > 0.9 * callers, (callers, during)
        assert gc.get_freeze_count() > 0.9 * callers
    finally:
        gc.unfreeze()


def test_ppo_negative_value_learning_rate_is_refused_at_parse_time():
    from pipelines.configs import ConfigError

    config = str(REPO / "recipes" / "tiny" / "ppo.yaml")
    with pytest.raises(ConfigError, match=r"value_learning_rate must be >= 0, got -0\.001\. Leave it unset"):
        parse_recipe_args(recipe_dataclasses("ppo"), ["--config", config, "--value_learning_rate=-1e-3"])
