"""PicoGPT, the project's GPT-style model (see `modeling_picogpt.py`)."""

from .configuration_picogpt import PicoGPTConfig
from .modeling_picogpt import (
    AUTO_MAP,
    PicoGPTForCausalLM,
    PicoGPTForSequenceClassification,
    PicoGPTModel,
    PicoGPTPreTrainedModel,
)

__all__ = [
    "AUTO_MAP",
    "PicoGPTConfig",
    "PicoGPTForCausalLM",
    "PicoGPTForSequenceClassification",
    "PicoGPTModel",
    "PicoGPTPreTrainedModel",
]
