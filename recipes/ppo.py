"""Stage 4: PPO (or InstructGPT's PPO-ptx) against the reward model, with TRL's PPOTrainer.

Usage:
    accelerate launch --config_file accelerate_configs/cpu.yaml recipes/ppo.py \
        --config recipes/tiny/ppo.yaml [--model_name_or_path outputs/sft] \
        [--reward_model_path outputs/reward] [--ptx_coef 0.5]

Policy and reference start from the SFT model (`model_name_or_path`; `ref_model_path` sets the
reference apart, e.g. SFT for a policy continued from an earlier PPO run); reward and value
models from the reward stage (`reward_model_path`, `value_model_path`; `gold_reward` scores with
the embedded task's gold judge instead, the learned reward model's ceiling). With `use_peft` the
reference is the policy with its adapter switched off. `ptx_coef > 0` mixes the language-
modelling loss on pretraining text into every update (PPO-ptx). A killed run started again
with the same command resumes from its last checkpoint, exactly.
"""

from transformers import set_seed
from trl import ModelConfig

from pipelines.configs import PPOScriptArguments, parse_recipe_args
from pipelines.data import get_dataset
from pipelines.debug import attach_debug_hooks
from pipelines.loading import (
    check_model_source,
    check_reward_head,
    check_same_tokenizer,
    get_model,
    get_peft_config,
    get_tokenizer,
    load_splits,
    reference_source,
)
from pipelines.ppo import PPOConfig, PPOTrainer
from pipelines.preprocessing import pack_pretraining_text, tokenize_prompts
from pipelines.rewards import JudgeRewardModel
from pipelines.stages import finish_stage, prepare_output_dir


def main(script_args: PPOScriptArguments, training_args: PPOConfig, model_args: ModelConfig) -> None:
    set_seed(training_args.seed)
    resume_from = prepare_output_dir(
        training_args.output_dir,
        "ppo",
        script_args.overwrite_output_dir,
        (script_args, training_args, model_args),
    )
    push, training_args.push_to_hub = training_args.push_to_hub, False  # we push the finished stage ourselves
    policy_path, reward_path = model_args.model_name_or_path, training_args.reward_model_path
    value_path = script_args.value_model_path or reward_path
    ref_path, ref_revision = reference_source(
        script_args.ref_model_path, script_args.ref_model_revision, model_args
    )
    checked = set()  # by default ref = policy and value = reward: each source is looked up once
    for field, path, revision in (
        ("model_name_or_path", policy_path, model_args.model_revision),
        ("ref_model_path", ref_path, ref_revision),
        ("reward_model_path", reward_path, script_args.reward_model_revision),
        ("value_model_path", value_path, script_args.value_model_revision),
    ):
        if (path, revision) not in checked:
            checked.add((path, revision))
            check_model_source(path, revision, field)
    remote = script_args.trust_remote_code
    # The value model starts from the reward model unless told otherwise: check each head once.
    heads = {(reward_path, script_args.reward_model_revision): "reward_model_path"}
    heads.setdefault((value_path, script_args.value_model_revision), "value_model_path")
    for (path, revision), field in heads.items():
        check_reward_head(path, revision, remote, field)

    # PPO generates on the right of the prompt: left padding is required.
    tokenizer = get_tokenizer(
        script_args.tokenizer_name_or_path or policy_path,
        revision=model_args.model_revision,
        trust_remote_code=remote,
        padding_side="left",
    )
    check_same_tokenizer(
        tokenizer,
        get_tokenizer(reward_path, revision=script_args.reward_model_revision, trust_remote_code=remote),
        policy_path,
        reward_path,
    )
    if ref_path != policy_path:  # the KL penalty compares the two models' log-probs of the same ids
        check_same_tokenizer(
            tokenizer,
            get_tokenizer(ref_path, revision=ref_revision, trust_remote_code=remote),
            policy_path,
            ref_path,
            role="reference model",
            fix="point ref_model_path at the SFT model the policy descends from",
        )
    train, test = (tokenize_prompts(split, tokenizer, script_args.max_prompt_length)
                   for split in load_splits(script_args, "prompts"))  # fmt: skip
    ptx = None
    if script_args.ptx_coef > 0:
        text = get_dataset(script_args.ptx_dataset_name, "pretrain", seed=script_args.task_seed)["train"]
        ptx = pack_pretraining_text(text, tokenizer, script_args.ptx_max_length)

    peft_config = get_peft_config(model_args)
    policy = get_model(policy_path, model_args, revision=model_args.model_revision, trust_remote_code=remote)
    ref_model = (
        None
        if peft_config
        else get_model(ref_path, model_args, revision=ref_revision, trust_remote_code=remote)
    )
    reward_model = (
        JudgeRewardModel(tokenizer, scale=script_args.gold_reward_scale)  # the ceiling: a perfect reward model
        if script_args.gold_reward
        else get_model(reward_path, model_args, task="reward", revision=script_args.reward_model_revision,
                       trust_remote_code=remote)
    )  # fmt: skip
    value_model = get_model(
        value_path,
        model_args,
        task="reward",
        revision=script_args.value_model_revision,
        trust_remote_code=remote,
    )

    trainer = PPOTrainer(
        args=training_args,
        processing_class=tokenizer,
        model=policy,
        ref_model=ref_model,
        reward_model=reward_model,
        value_model=value_model,
        train_dataset=train,
        eval_dataset=test,
        peft_config=peft_config,
        ptx_dataset=ptx,
        ptx_coef=script_args.ptx_coef,
        ptx_batch_size=script_args.ptx_batch_size,
    )
    attach_debug_hooks(trainer)  # fails on unsynchronised replicas; records ranks if PIPELINES_DEBUG_RANK_DIR
    trainer.train(resume_from_checkpoint=resume_from)
    prompts_source = {
        "name": script_args.dataset_name,
        "kind": "prompts",
        "revision": script_args.dataset_revision,
    }
    ptx_source = {"name": script_args.ptx_dataset_name, "kind": "pretrain", "revision": None}
    finish_stage(
        trainer, "ppo", (script_args, training_args, model_args),
        {k: v for k, v in (trainer.state.log_history or [{}])[-1].items() if k.startswith("objective/")},
        push_to_hub=push, datasets=[prompts_source] + ([ptx_source] if ptx else []),
    )  # fmt: skip


if __name__ == "__main__":
    main(*parse_recipe_args((PPOScriptArguments, PPOConfig, ModelConfig)))
