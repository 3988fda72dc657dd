"""Stage 3: a reward model trained on preference pairs, with TRL's RewardTrainer.

Usage:
    accelerate launch --config_file accelerate_configs/cpu.yaml recipes/reward.py \
        --config recipes/tiny/reward.yaml [--model_name_or_path outputs/sft]

The model is our sequence classifier with a scalar `score` head, initialised from the SFT
checkpoint (only `score` is new). After training, pairwise accuracy on the test split is
reported beside the length baseline (the accuracy of "prefer the longer answer"), with the
number of pairs it was measured on: RewardTrainer drops pairs longer than `max_length`.
With `policy_comparison_prompts > 0` (embedded task), pairs of the SFT model's own samples,
ranked by the gold judge, are added to training (InstructGPT's K-way rankings), and held-out
pairs of the same kind give `eval_policy_accuracy`.
"""

from transformers import set_seed
from trl import ModelConfig, RewardConfig, RewardTrainer

from pipelines.comparisons import add_policy_comparisons
from pipelines.configs import RewardScriptArguments, parse_recipe_args
from pipelines.debug import attach_debug_hooks
from pipelines.evaluation import evaluate_reward_model
from pipelines.loading import check_model_source, get_model, get_peft_config, get_tokenizer, load_splits
from pipelines.stages import finish_stage, log_length_report, prepare_output_dir


def main(script_args: RewardScriptArguments, training_args: RewardConfig, model_args: ModelConfig) -> None:
    set_seed(training_args.seed)
    resume_from = prepare_output_dir(
        training_args.output_dir,
        "reward",
        script_args.overwrite_output_dir,
        (script_args, training_args, model_args),
    )
    push, training_args.push_to_hub = training_args.push_to_hub, False  # we push the finished stage ourselves
    check_model_source(model_args.model_name_or_path, model_args.model_revision)

    train, test = load_splits(script_args, "preference")
    tokenizer = get_tokenizer(
        script_args.tokenizer_name_or_path or model_args.model_name_or_path,
        revision=model_args.model_revision,
        trust_remote_code=training_args.trust_remote_code,
    )
    # InstructGPT's rankings of SFT samples, labelled by the gold judge (policy_comparison_prompts > 0).
    train, policy_test = add_policy_comparisons(
        train,
        test,
        script_args,
        model_args.model_name_or_path,
        tokenizer,
        training_args.output_dir,
        training_args.seed,
        trust_remote_code=training_args.trust_remote_code,
        revision=model_args.model_revision,
    )
    log_length_report(train, tokenizer, training_args.max_length, "preference", script_args.dataset_name)

    model = get_model(
        model_args.model_name_or_path,
        model_args,
        task="reward",
        revision=model_args.model_revision,
        trust_remote_code=training_args.trust_remote_code,
    )
    trainer = RewardTrainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=test,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args, task="reward"),
    )
    attach_debug_hooks(trainer)  # fails on unsynchronised replicas; records ranks if PIPELINES_DEBUG_RANK_DIR
    trainer.train(resume_from_checkpoint=resume_from)
    accuracy = evaluate_reward_model(trainer.model, tokenizer, test, max_length=training_args.max_length)
    metrics = {f"eval_{k}": v for k, v in accuracy.items()}
    if policy_test is not None:  # held-out pairs of the policy's own samples: what PPO will show it
        on_policy = evaluate_reward_model(
            trainer.model, tokenizer, policy_test, max_length=training_args.max_length
        )
        metrics |= {"eval_policy_accuracy": on_policy["accuracy"], "eval_policy_n": on_policy["n"]}
    trainer.log(dict(metrics))  # Trainer.log adds "epoch" to the dict it is given
    finish_stage(trainer, "reward", (script_args, training_args, model_args), metrics, push_to_hub=push)


if __name__ == "__main__":
    main(*parse_recipe_args((RewardScriptArguments, RewardConfig, ModelConfig)))
