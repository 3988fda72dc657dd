"""Online RL with TRL's RLOOTrainer (REINFORCE leave-one-out) against the reward model.

Usage:
    accelerate launch --config_file accelerate_configs/cpu.yaml recipes/rloo.py \
        --config recipes/tiny/variants/rloo.yaml [--model_name_or_path outputs/sft] [--reward_model_path outputs/reward]

RLOO needs no value model and is maintained in TRL (PPOTrainer was removed in 1.13), so it
is the RL stage that outlives PPO. Prompts stay conversational: TRL then scores
`chat_template(prompt + completion)`, which ends with EOS exactly as in reward training
(with plain-string prompts TRL strips EOS before scoring).
"""

from transformers import set_seed
from trl import ModelConfig, RLOOConfig, RLOOTrainer

from pipelines.configs import RLScriptArguments, parse_recipe_args
from pipelines.rl import load_online_rl_inputs
from pipelines.stages import finish_stage, prepare_output_dir


def main(script_args: RLScriptArguments, training_args: RLOOConfig, model_args: ModelConfig) -> None:
    set_seed(training_args.seed)
    resume_from = prepare_output_dir(
        training_args.output_dir,
        "rloo",
        script_args.overwrite_output_dir,
        (script_args, training_args, model_args),
    )
    push, training_args.push_to_hub = training_args.push_to_hub, False  # we push the finished stage ourselves
    inputs = load_online_rl_inputs(script_args, training_args, model_args)
    trainer = RLOOTrainer(
        model=inputs.policy,
        reward_funcs=inputs.reward_model,
        args=training_args,
        train_dataset=inputs.train,
        eval_dataset=inputs.test,
        processing_class=inputs.tokenizer,
        reward_processing_classes=inputs.tokenizer,
        peft_config=inputs.peft_config,
    )
    trainer.train(resume_from_checkpoint=resume_from)
    finish_stage(trainer, "rloo", (script_args, training_args, model_args), {}, push_to_hub=push)


if __name__ == "__main__":
    main(*parse_recipe_args((RLScriptArguments, RLOOConfig, ModelConfig)))
