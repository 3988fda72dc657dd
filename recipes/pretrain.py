"""Stage 1: pretrain a PicoGPT causal LM (and its tokenizer) on plain text.

Usage:
    accelerate launch --config_file accelerate_configs/cpu.yaml recipes/pretrain.py \
        --config recipes/tiny/pretrain.yaml [--output_dir outputs/pretrain] [--any_field value]

Trains a byte-level BPE tokenizer on the training texts (unless `tokenizer_name_or_path` is
given), builds a model from the size fields of the YAML (unless `model_name_or_path` is
given, for continued pretraining), and trains it with TRL's SFTTrainer on packed text:
padding-free batches whose `position_ids` restart at each document. LoRA/QLoRA (`use_peft`,
`load_in_4bit`) apply to continued pretraining only: a new model trains every weight.
"""

from accelerate import PartialState
from transformers import set_seed
from trl import ModelConfig, SFTConfig, SFTTrainer

from pipelines import PicoGPTConfig, PicoGPTForCausalLM
from pipelines.configs import PretrainScriptArguments, check_pretrain_model_args, parse_recipe_args
from pipelines.debug import attach_debug_hooks
from pipelines.loading import check_model_source, get_model, get_peft_config, get_tokenizer, load_splits
from pipelines.stages import finish_stage, prepare_output_dir
from pipelines.tokenizer import train_tokenizer


def main(script_args: PretrainScriptArguments, training_args: SFTConfig, model_args: ModelConfig) -> None:
    set_seed(training_args.seed)
    check_pretrain_model_args(model_args)  # LoRA/QLoRA need a model to adapt
    resume_from = prepare_output_dir(
        training_args.output_dir,
        "pretrain",
        script_args.overwrite_output_dir,
        (script_args, training_args, model_args),
    )
    push, training_args.push_to_hub = training_args.push_to_hub, False  # we push the finished stage ourselves
    if model_args.model_name_or_path:
        check_model_source(model_args.model_name_or_path, model_args.model_revision)

    # Data, checked before anything is trained.
    train, test = load_splits(script_args, "pretrain")

    # Tokenizer: trained once, on the main process, saved with the model.
    tokenizer_dir = script_args.tokenizer_name_or_path or model_args.model_name_or_path
    if tokenizer_dir is None:
        tokenizer_dir = f"{training_args.output_dir}/tokenizer"
        with PartialState().main_process_first():
            if PartialState().is_main_process:
                texts = train["text"][: script_args.tokenizer_train_samples]
                train_tokenizer(texts, vocab_size=script_args.vocab_size).save_pretrained(tokenizer_dir)
    tokenizer = get_tokenizer(tokenizer_dir, require_chat_template=False)

    if model_args.model_name_or_path:
        model = get_model(model_args.model_name_or_path, model_args, revision=model_args.model_revision)
    else:
        model = PicoGPTForCausalLM(
            PicoGPTConfig(
                vocab_size=len(tokenizer),
                hidden_size=script_args.hidden_size,
                num_hidden_layers=script_args.num_hidden_layers,
                num_attention_heads=script_args.num_attention_heads,
                num_key_value_heads=script_args.num_key_value_heads,
                intermediate_size=script_args.intermediate_size,
                max_position_embeddings=script_args.max_position_embeddings,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                bos_token_id=tokenizer.eos_token_id,
                attn_implementation=model_args.attn_implementation,  # None: SDPA
            )
        )

    training_args.dataset_text_field = "text"
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
    finish_stage(trainer, "pretrain", (script_args, training_args, model_args), metrics, push_to_hub=push)


if __name__ == "__main__":
    main(*parse_recipe_args((PretrainScriptArguments, SFTConfig, ModelConfig)))
