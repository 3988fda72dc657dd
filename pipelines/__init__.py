"""instructgpt-pipelines: the InstructGPT recipe as thin glue on the Hugging Face stack.

Importing `pipelines` registers the PicoGPT model with the transformers Auto classes.
"""

from pipelines.models import (
    PicoGPTConfig,
    PicoGPTForCausalLM,
    PicoGPTForSequenceClassification,
    PicoGPTModel,
)

__version__ = "0.1.0"

__all__ = [
    "PicoGPTConfig",
    "PicoGPTForCausalLM",
    "PicoGPTForSequenceClassification",
    "PicoGPTModel",
    "__version__",
]
