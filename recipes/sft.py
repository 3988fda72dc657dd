"""Stage 2: supervised fine-tuning on demonstrations, with TRL's SFTTrainer.

Usage:
    accelerate launch --config_file accelerate_configs/cpu.yaml recipes/sft.py \
        --config recipes/tiny/sft.yaml [--model_name_or_path outputs/pretrain] [--use_peft true]

Conversational data (`messages`) is trained on the assistant turns only
(`assistant_only_loss: true`, through the `{% generation %}` markers of our chat template);
prompt/completion data on the completion only. LoRA/QLoRA: `use_peft`, `load_in_4bit`,
`load_in_8bit` (TRL's ModelConfig).
"""

from transformers import set_seed
from trl import ModelConfig, SFTConfig, SFTTrainer

from pipelines.configs import SFTScriptArguments, parse_recipe_args
from pipelines.debug import attach_debug_hooks
from pipelines.loading import check_model_source, get_model, get_peft_config, get_tokenizer, load_splits
from pipelines.stages import finish_stage, log_length_report, prepare_output_dir


def main(script_args: SFTScriptArguments, training_args: SFTConfig, model_args: ModelConfig) -> None:
    set_seed(training_args.seed)
    resume_from = prepare_output_dir(
        training_args.output_dir,
        "sft",
        script_args.overwrite_output_dir,
        (script_args, training_args, model_args),
    )
    push, training_args.push_to_hub = training_args.push_to_hub, False  # we push the finished stage ourselves
    check_model_source(model_args.model_name_or_path, model_args.model_revision)

    train, test = load_splits(script_args, "sft")
    tokenizer = get_tokenizer(
        script_args.tokenizer_name_or_path or model_args.model_name_or_path,
        revision=model_args.model_revision,
        trust_remote_code=training_args.trust_remote_code,
    )
    log_length_report(train, tokenizer, training_args.max_length, "sft", script_args.dataset_name)

    model = get_model(
        model_args.model_name_or_path,
        model_args,
        revision=model_args.model_revision,
        trust_remote_code=training_args.trust_remote_code,
    )
    trainer = SFTTrainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=test,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )
    attach_debug_hooks(trainer)  # fails on unsynchronised replicas; records ranks if PIPELINES_DEBUG_RANK_DIR
    trainer.train(resume_from_checkpoint=resume_from)
    metrics = trainer.evaluate() if test is not None else {}
    finish_stage(trainer, "sft", (script_args, training_args, model_args), metrics, push_to_hub=push)


if __name__ == "__main__":
    main(*parse_recipe_args((SFTScriptArguments, SFTConfig, ModelConfig)))
