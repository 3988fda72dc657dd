"""Model registry: the one place where PicoGPT is registered with the transformers Auto classes.

After `import pipelines`, `AutoConfig`, `AutoModel`, `AutoModelForCausalLM` and
`AutoModelForSequenceClassification` resolve `model_type: picogpt` to our classes without
`trust_remote_code`, and `save_pretrained` copies the model's code into the saved folder, so
that anyone can load it with `trust_remote_code=True` without this package.
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
)

from .picogpt import (
    PicoGPTConfig,
    PicoGPTForCausalLM,
    PicoGPTForSequenceClassification,
    PicoGPTModel,
)

__all__ = [
    "PicoGPTConfig",
    "PicoGPTForCausalLM",
    "PicoGPTForSequenceClassification",
    "PicoGPTModel",
]

AutoConfig.register(PicoGPTConfig.model_type, PicoGPTConfig, exist_ok=True)
PicoGPTConfig.register_for_auto_class("AutoConfig")
for _auto, _model in (
    (AutoModel, PicoGPTModel),
    (AutoModelForCausalLM, PicoGPTForCausalLM),
    (AutoModelForSequenceClassification, PicoGPTForSequenceClassification),
):
    _auto.register(PicoGPTConfig, _model, exist_ok=True)
    _model.register_for_auto_class(_auto.__name__)
