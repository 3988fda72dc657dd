"""Train a byte-level BPE tokenizer and wrap it as a standard fast tokenizer.

The chat format is deliberately minimal and ends an assistant turn with EOS and nothing
after it:

    <|system|>{system}<|user|>{question}<|assistant|>{answer}<|endoftext|><|user|>...

so that the text a reward model is trained on (the chat template applied to a whole
conversation) ends with exactly the tokens PPO produces (the prompt with the generation
prompt, then the sampled response up to and including EOS). A trailing newline after EOS
would make the reward model read its score at a token PPO never generates.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

__all__ = [
    "ASSISTANT_TOKEN",
    "CHAT_TEMPLATE",
    "EOS_TOKEN",
    "PAD_TOKEN",
    "SPECIAL_TOKENS",
    "SYSTEM_TOKEN",
    "USER_TOKEN",
    "train_tokenizer",
]

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"  # distinct from EOS: PPO and the reward model must tell padding from the end
SYSTEM_TOKEN = "<|system|>"
USER_TOKEN = "<|user|>"
ASSISTANT_TOKEN = "<|assistant|>"
SPECIAL_TOKENS = [PAD_TOKEN, EOS_TOKEN, SYSTEM_TOKEN, USER_TOKEN, ASSISTANT_TOKEN]

# `{% generation %}` marks the tokens TRL's `assistant_only_loss=True` trains on: the answer
# and its EOS (the model must learn to stop).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|assistant|>' }}{% generation %}{{ message['content'] }}{{ '<|endoftext|>' }}{% endgeneration %}"
    "{% else %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 8192,
    min_frequency: int = 2,
    model_max_length: int = 1024,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on `texts` and return it as a fast tokenizer.

    Byte-level BPE (GPT-2's scheme) never needs an unknown token: any UTF-8 text is encoded.
    The result has a pad token distinct from EOS, the chat template above, and saves and
    loads with `save_pretrained` / `AutoTokenizer.from_pretrained` like any tokenizer.

    Args:
        texts: the training corpus; any iterable of strings (consumed once).
        vocab_size: size of the vocabulary, the 5 special tokens and 256 bytes included.
        min_frequency: a pair must occur this often to be merged.
        model_max_length: the longest input the tokenizer will report as valid.
    """
    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(
            f"vocab_size={vocab_size} is too small: a byte-level tokenizer needs at least "
            f"{256 + len(SPECIAL_TOKENS)} entries (256 bytes + {len(SPECIAL_TOKENS)} special tokens)."
        )
    tokenizer = Tokenizer(models.BPE())
    # add_prefix_space=True: every text segment (a document, a message between special tokens)
    # starts as if after a space, so an answer's first word is the same token as everywhere else
    # ("<|assistant|>horse" -> "<|assistant|>", "Ġhorse"). Without it the first word is a rare
    # unspaced spelling ("h", "orse"): measured on the tiny recipe, SFT then garbles it ("Write
    # horse six times" -> "belt horse horse..."), and neither PPO nor the reward model fix it.
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tokenizer.decoder = decoders.ByteLevel()
    # trim_offsets=False keeps character offsets exact (assistant masks rely on offsets).
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_non_empty(texts), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        additional_special_tokens=[SYSTEM_TOKEN, USER_TOKEN, ASSISTANT_TOKEN],
        chat_template=CHAT_TEMPLATE,
        model_max_length=model_max_length,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )


def _non_empty(texts: Iterable[str]) -> Iterator[str]:
    for text in texts:
        if text and not text.isspace():
            yield text
