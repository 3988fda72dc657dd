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
from pipelines.debug import attach_debug_hooks
from pipelines.ppo import PPOConfig, PPOTrainer
from pipelines.rl import load_ppo_inputs
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
    inputs = load_ppo_inputs(script_args, training_args, model_args)  # checks every source before loading

    trainer = PPOTrainer(
        args=training_args,
        processing_class=inputs.tokenizer,
        model=inputs.policy,
        ref_model=inputs.ref_model,
        reward_model=inputs.reward_model,
        value_model=inputs.value_model,
        train_dataset=inputs.train,
        eval_dataset=inputs.test,
        peft_config=inputs.peft_config,
        ptx_dataset=inputs.ptx,
        ptx_coef=script_args.ptx_coef,
        value_learning_rate=script_args.value_learning_rate,
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
        push_to_hub=push, datasets=[prompts_source] + ([ptx_source] if inputs.ptx is not None else []),
    )  # fmt: skip


if __name__ == "__main__":
    main(*parse_recipe_args((PPOScriptArguments, PPOConfig, ModelConfig)))
