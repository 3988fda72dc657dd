"""The embedded default task: short instructions with verifiable constraints (IFEval-style).

Everything is generated from a seed by this module; nothing is downloaded. Eight kinds of
instruction (``KINDS``), each with several phrasings, over a vocabulary of 11 categories:

- ``uppercase``   "Write the word apple in capital letters."      -> "APPLE"
- ``list_items``  "List exactly 3 fruits."                         -> "pear, plum, fig"
- ``word_count``  "Describe the cat in exactly 5 words."           -> "the cat sleeps every day"...
- ``arithmetic``  "What is 7 plus 5?"                              -> "12"
- ``end_word``    "Write a sentence about the cat that ends with the word moon." -> "the cat sees the moon"
- ``repeat_word`` "Repeat the word drum 3 times."                  -> "drum drum drum"
- ``spell``       "Spell the word cat letter by letter."           -> "c a t"
- ``reverse``     "Write the word cat backwards."                  -> "tac"

`gold_score` judges a response from the prompt text alone (regexes per phrasing), independent of
every model. `build_task` builds the four datasets of the InstructGPT recipe (pretrain, sft,
preference, prompts); PPO and evaluation prompts are disjoint from every training prompt.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import random
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

from datasets import Dataset, DatasetDict

__all__ = [
    "CATEGORIES",
    "DEFAULT_KINDS",
    "KINDS",
    "RECIPE_TASK_SEED",
    "Instruction",
    "TaskConfig",
    "build_task",
    "gold_score",
    "judge_batch",
    "parse_instruction",
    "task_space",
]

KINDS: tuple[str, ...] = (
    "uppercase",
    "list_items",
    "word_count",
    "arithmetic",
    "end_word",
    "repeat_word",
    "spell",
    "reverse",
)

# The default: exact word counts ("Use exactly 12 words to talk about the fox."), the kind where a
# ~1M-parameter SFT policy leaves the most room that RLHF with a ~1M-parameter reward model can take
# (measured on the tiny recipe, README "Results"). SFT's greedy answer is often a word off although
# its samples hit the count: greedy decoding takes the likeliest next token, and "stop" is one token
# while "go on" is spread over every phrase that could come next. The reward model counts well, and
# PPO fixes most of those answers but also breaks some right ones (seed 42: 45 of 64 one word off
# fixed, 25 of 115 perfect answers broken).
# The other kinds stay available (`TaskConfig(kinds=KINDS)`), but at this scale they add ties or noise:
# - repeat_word: most of SFT's wrong answers copy the wrong word, for words no demonstration asked
#   to repeat; its samples never get those right either, so PPO can only tie them (6 better, 6 worse
#   of 100 beside word counts);
# - list_items: SFT's greedy lists repeat items ("lime, lemon, lemon, lemon"); the reward model
#   cannot tell duplicates (0.815 accuracy with hard negatives) and PPO leaves them as they are;
# - end_word: SFT answers 49 of 50 held-out prompts perfectly, so PPO can only tie;
# - capitals, spelling, reversal and arithmetic need far more pretraining: both policies score ~0.
DEFAULT_KINDS: tuple[str, ...] = ("word_count",)

# The task seed every recipe trains on (`ScriptArguments.task_seed`, `instructgpt data --seed`);
# `TaskConfig`'s own default seed, 42, is for code that builds the task directly.
RECIPE_TASK_SEED = 0

# label (plural, as written in prompts) -> (singular used in the pretraining corpus, words)
_CATEGORY_TABLE: dict[str, tuple[str, tuple[str, ...]]] = {
    "fruits": ("fruit", ("apple", "banana", "cherry", "grape", "lemon", "mango", "peach", "pear",
                         "plum", "orange", "melon", "kiwi", "lime", "fig", "papaya", "apricot")),
    "animals": ("animal", ("cat", "dog", "horse", "cow", "sheep", "goat", "tiger", "lion", "zebra",
                           "rabbit", "mouse", "bear", "wolf", "fox", "deer", "camel")),
    "colors": ("color", ("red", "blue", "green", "yellow", "purple", "pink", "brown", "black", "white",
                         "gray", "gold", "silver", "violet", "beige")),
    "tools": ("tool", ("hammer", "saw", "drill", "wrench", "chisel", "shovel", "rake", "axe", "pliers",
                       "ladder", "knife", "scissors", "trowel")),
    "vegetables": ("vegetable", ("carrot", "potato", "onion", "cabbage", "pepper", "celery", "garlic",
                                 "spinach", "pea", "bean", "corn", "turnip", "radish", "leek", "lettuce")),
    "drinks": ("drink", ("water", "milk", "tea", "coffee", "juice", "soda", "cocoa", "lemonade", "cider",
                         "smoothie", "punch")),
    "clothes": ("piece of clothing", ("shirt", "hat", "coat", "sock", "shoe", "scarf", "glove", "dress",
                                      "skirt", "jacket", "boot", "belt", "sweater", "vest")),
    "musical instruments": ("musical instrument", ("piano", "guitar", "violin", "drum", "flute", "harp",
                                                   "trumpet", "cello", "banjo", "organ", "tuba", "oboe")),
    "vehicles": ("vehicle", ("car", "bus", "truck", "train", "bicycle", "boat", "plane", "ship", "tram",
                             "taxi", "van", "scooter", "tractor", "canoe")),
    "pieces of furniture": ("piece of furniture", ("chair", "table", "bed", "sofa", "desk", "shelf", "lamp",
                                                   "stool", "bench", "cabinet", "couch", "dresser", "crib")),
    "birds": ("bird", ("eagle", "owl", "robin", "crow", "duck", "goose", "swan", "parrot", "sparrow",
                       "hawk", "pigeon", "penguin", "finch", "raven")),
}  # fmt: skip

#: Category label (as written in prompts) -> its words.
CATEGORIES: dict[str, tuple[str, ...]] = {label: words for label, (_, words) in _CATEGORY_TABLE.items()}
_WORD_CATEGORY = {w: label for label, words in CATEGORIES.items() for w in words}
_VOCAB: tuple[str, ...] = tuple(_WORD_CATEGORY)
_SHORT_VOCAB: tuple[str, ...] = tuple(w for w in _VOCAB if len(w) <= 8)  # spell / reverse
assert len(_VOCAB) == len(set(_VOCAB)), "a word belongs to two categories"

_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                 "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
                 "nineteen", "twenty")  # fmt: skip
_NUMBER_VALUE = {w: i for i, w in enumerate(_NUMBER_WORDS)}

_LIST_N = range(2, 7)
# Counts up to 15: below 9, SFT counts almost every answer right and leaves RLHF nothing to fix.
_REPEAT_N = range(2, 16)
_WORD_COUNT_N = range(3, 16)
_MAX_OPERAND = 20
_MAX_SENTENCE_WORDS = 15  # longer answers to "write a sentence" lose half their score

_TEMPLATES: dict[str, tuple[str, ...]] = {
    "uppercase": (
        "Write the word {word} in capital letters.",
        "Write {word} in uppercase.",
        "Give me the word {word} in all caps.",
        "Type {word} using only capital letters.",
    ),
    "list_items": (
        "List exactly {n} {category}.",
        "Name {nw} {category}, separated by commas.",
        "Give me a list of {n} {category}.",
        "Write exactly {nw} {category}, no more and no less.",
        "Which {category} do you know? Name exactly {n}.",
        "Tell me {nw} {category}.",
    ),
    "word_count": (
        "Describe the {noun} in exactly {n} words.",
        "Write a sentence of exactly {nw} words about the {noun}.",
        "Use exactly {n} words to talk about the {noun}.",
    ),
    "arithmetic": (
        "What is {a} plus {b}?",
        "Add {a} and {b}.",
        "Compute {a} + {b}.",
        "What is {a} minus {b}?",
        "Subtract {b} from {a}.",
        "Compute {a} - {b}.",
    ),
    "end_word": (
        "Write a sentence about the {noun} that ends with the word {end}.",
        "Say something about the {noun} and finish with the word {end}.",
        "Make a short sentence about the {noun}; the last word must be {end}.",
    ),
    "repeat_word": (
        "Repeat the word {word} {n} times.",
        "Write {word} exactly {nw} times.",
        "Say the word {word} {n} times, separated by spaces.",
    ),
    "spell": (
        "Spell the word {word} letter by letter.",
        "Spell {word} with a space between the letters.",
        "How do you spell {word}? Give the letters one by one.",
    ),
    "reverse": (
        "Write the word {word} backwards.",
        "Reverse the letters of {word}.",
        "What is {word} spelled backwards?",
    ),
}
_SUBTRACTION_TEMPLATES = frozenset(
    t for t in _TEMPLATES["arithmetic"] if "minus" in t or "-" in t or "Subtract" in t
)

_CATEGORY_RE = "|".join(sorted((re.escape(c) for c in CATEGORIES), key=len, reverse=True))
_PLACEHOLDER_RE = {
    "word": r"(?P<word>[A-Za-z]+)",
    "noun": r"(?P<noun>[A-Za-z]+)",
    "end": r"(?P<end>[A-Za-z]+)",
    "n": r"(?P<n>\d+)",
    "nw": r"(?P<nw>" + "|".join(_NUMBER_WORDS) + r")",
    "category": r"(?P<category>" + _CATEGORY_RE + r")",
    "a": r"(?P<a>\d+)",
    "b": r"(?P<b>\d+)",
}


def _compile(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[a-z]+\})", template)
    body = "".join(_PLACEHOLDER_RE[p[1:-1]] if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(body, re.IGNORECASE)


_PATTERNS: list[tuple[str, str, re.Pattern[str]]] = [
    (kind, t, _compile(t)) for kind, templates in _TEMPLATES.items() for t in templates
]


@dataclasses.dataclass(frozen=True)
class Instruction:
    """A parsed instruction: its kind and parameters (``word``, ``n``, ``category``, ``a``/``b``/``op``...)."""

    kind: str
    params: dict[str, Any]
    template: str


def _to_params(kind: str, template: str, groups: dict[str, str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in groups.items():
        if key == "nw":
            params["n"] = _NUMBER_VALUE[value.lower()]
        elif key in ("n", "a", "b"):
            params[key] = int(value)
        else:
            params[key] = value.lower()
    if kind == "arithmetic":
        params["op"] = "-" if template in _SUBTRACTION_TEMPLATES else "+"
    return params


def parse_instruction(prompt: str | Sequence[dict[str, Any]]) -> Instruction:
    """Parse a task prompt (its text, or a conversation whose last user turn is the instruction).

    Raises ValueError when the text is none of the task's instructions.
    """
    cached = _parse_text(" ".join(_prompt_text(prompt).split()))
    return dataclasses.replace(cached, params=dict(cached.params))  # callers may edit their copy


@functools.lru_cache(maxsize=65536)  # building the task judges ~50k answers to a few thousand prompts
def _parse_text(stripped: str) -> Instruction:
    for kind, template, pattern in _PATTERNS:
        match = pattern.fullmatch(stripped)
        if match:
            return Instruction(kind, _to_params(kind, template, match.groupdict()), template)
    # Fall back to a search (e.g. a chat-templated string): the longest match wins.
    found = [(m, kind, t) for kind, t, p in _PATTERNS if (m := p.search(stripped))]
    if found:
        match, kind, template = max(found, key=lambda f: f[0].end() - f[0].start())
        return Instruction(kind, _to_params(kind, template, match.groupdict()), template)
    raise ValueError(
        f"not an instruction of the embedded task: {stripped[:120]!r}. Expected one of the phrasings in "
        "pipelines.data.task._TEMPLATES (e.g. 'List exactly 3 fruits.'); gold_score only judges the "
        "embedded task's prompts."
    )


def _prompt_text(prompt: str | Sequence[dict[str, Any]]) -> str:
    if isinstance(prompt, str):
        return prompt
    users = [m.get("content", "") for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
    if not users or not isinstance(users[-1], str):
        raise ValueError(
            f"a conversational prompt needs a user message with string content, got {prompt!r:.120}"
        )
    return users[-1]


# --------------------------------------------------------------------------------------- judging


def _clean(text: str) -> str:
    """NFKC, collapsed whitespace, surrounding whitespace and trailing sentence punctuation removed."""
    text = " ".join(unicodedata.normalize("NFKC", text).split())
    return text.strip().rstrip(".!?;:").strip()


def _tokens(text: str) -> list[str]:
    return re.findall(r"[A-Za-z]+|\d+", unicodedata.normalize("NFKC", text))


def _items(text: str) -> list[str]:
    """Split a list answer on commas, semicolons, newlines and 'and'; strip bullets and numbering."""
    parts = re.split(r"[,;\n]+|\band\b", unicodedata.normalize("NFKC", text), flags=re.IGNORECASE)
    items = []
    for part in parts:
        part = re.sub(r"^\s*(?:[-*\u2022]|\d+[.)])\s*", "", part).strip().strip(".!?:").strip().lower()
        if part:
            items.append(part)
    return items


def _count_match_score(tokens_ok: int, k: int, n: int) -> float:
    """60% for the share of right tokens among max(k, n), 40% for exactly n of them."""
    return 0.6 * tokens_ok / max(k, n) + 0.4 * (k == n)


def _score_uppercase(p: dict[str, Any], response: str) -> float:
    target = p["word"].upper()
    if _clean(response) == target:
        return 1.0
    tokens = _tokens(response)
    if target in tokens and len(tokens) <= 3:
        return 0.5
    if any(t.lower() == p["word"] for t in tokens) and len(tokens) <= 3:
        return 0.2  # the right word in the wrong case
    return 0.0


def _score_list(p: dict[str, Any], response: str) -> float:
    items = _items(response)
    if not items:
        return 0.0
    valid = {it for it in items if it in CATEGORIES[p["category"]]}
    return _count_match_score(len(valid), len(items), p["n"])


def _score_word_count(p: dict[str, Any], response: str) -> float:
    words = [w.lower() for w in re.findall(r"[A-Za-z0-9']+", unicodedata.normalize("NFKC", response))]
    if not words:
        return 0.0
    k, n = len(words), p["n"]
    count = 1.0 if k == n else 0.5 if abs(k - n) == 1 else 0.0
    score = 0.7 * count + 0.3 * (p["noun"] in words)
    if len(set(words)) / k < 0.6:
        score *= 0.5  # "cat cat cat cat" is not a description
    return score


def _score_arithmetic(p: dict[str, Any], response: str) -> float:
    answer = p["a"] + p["b"] if p["op"] == "+" else p["a"] - p["b"]
    if _clean(response) == str(answer):
        return 1.0
    numbers = re.findall(r"-?\d+", response)
    words = [t.lower() for t in _tokens(response)]
    spelled = answer < len(_NUMBER_WORDS) and _NUMBER_WORDS[answer] in words
    if len(words) <= 6 and len(numbers) <= 1 and (str(answer) in numbers or spelled):
        return 0.5  # right number, but not the bare number asked for
    return 0.0


def _score_end_word(p: dict[str, Any], response: str) -> float:
    words = [t.lower() for t in _tokens(response)]
    if not words:
        return 0.0
    ending = 0.7 if words[-1] == p["end"] else 0.2 if p["end"] in words else 0.0
    score = ending + 0.3 * (p["noun"] in words)
    if len(words) > _MAX_SENTENCE_WORDS:
        score *= 0.5
    return score


def _score_repeat(p: dict[str, Any], response: str) -> float:
    tokens = [t.lower() for t in _tokens(response)]
    if not tokens:
        return 0.0
    return _count_match_score(sum(t == p["word"] for t in tokens), len(tokens), p["n"])


def _score_spell(p: dict[str, Any], response: str) -> float:
    tokens = [t.lower() for t in re.findall(r"[A-Za-z]+", response)]
    target = list(p["word"])
    if tokens == target:
        return 1.0
    if tokens == [p["word"]]:
        return 0.2  # the word itself, not spelled out
    letters = [t for t in tokens if len(t) == 1]
    if not letters or len(letters) < len(tokens):
        return 0.0
    return 0.5 * difflib.SequenceMatcher(a=letters, b=target, autojunk=False).ratio()


def _score_reverse(p: dict[str, Any], response: str) -> float:
    tokens = [t.lower() for t in re.findall(r"[A-Za-z]+", response)]
    target = p["word"][::-1]
    if tokens == [target]:
        return 1.0
    if len(tokens) != 1:
        return 0.4 if target in tokens and len(tokens) <= 3 else 0.0
    if tokens[0] == p["word"]:
        return 0.1  # not reversed at all
    return 0.5 * difflib.SequenceMatcher(a=tokens[0], b=target, autojunk=False).ratio()


_SCORERS: dict[str, Callable[[dict[str, Any], str], float]] = {
    "uppercase": _score_uppercase,
    "list_items": _score_list,
    "word_count": _score_word_count,
    "arithmetic": _score_arithmetic,
    "end_word": _score_end_word,
    "repeat_word": _score_repeat,
    "spell": _score_spell,
    "reverse": _score_reverse,
}


def gold_score(prompt: str | Sequence[dict[str, Any]], response: str) -> float:
    """Gold judge: how well `response` follows the instruction in `prompt`, in [0, 1].

    The instruction is parsed from the prompt text alone; raises ValueError for a prompt that is
    not one of the task's instructions and TypeError for a non-string response.
    """
    if not isinstance(response, str):
        raise TypeError(f"response must be a string, got {type(response).__name__}")
    instruction = parse_instruction(prompt)
    return float(min(1.0, max(0.0, _SCORERS[instruction.kind](instruction.params, response))))


def judge_batch(prompts: Sequence[str | Sequence[dict[str, Any]]], responses: Sequence[str]) -> list[float]:
    """`gold_score` over aligned lists of prompts and responses."""
    if len(prompts) != len(responses):
        raise ValueError(f"got {len(prompts)} prompts but {len(responses)} responses")
    return [gold_score(p, r) for p, r in zip(prompts, responses, strict=True)]


# ------------------------------------------------------------------------------ answers and misses

_VERBS = ("sleeps", "waits", "rests", "moves", "sits", "stays", "shines", "turns")
_TRANSITIVE = ("sees", "likes", "finds", "needs", "follows", "watches", "wants", "meets")
# Filler phrases of 1-4 words for sentences of an exact length: the more ways a length can be made
# up, the harder the count is to get right while writing, which is the room RLHF has on word counts.
_PHRASES: dict[int, tuple[str, ...]] = {
    1: ("today", "here", "again", "slowly", "quietly", "outside", "now", "often", "alone", "softly", "later"),
    2: (
        "every day",
        "at night",
        "very well",
        "in silence",
        "right here",
        "all morning",
        "all day",
        "with joy",
    ),
    3: (
        "in the sun",
        "by the door",
        "on the hill",
        "near the river",
        "under the tree",
        "at the farm",
        "after the rain",
        "in the garden",
    ),
    4: ("in the warm sun", "by the old door", "under the big tree", "near the cold river", "on a quiet day"),
}


def _sentence(rng: random.Random, noun: str, n: int) -> str:
    """A sentence of exactly `n` (>= 3) words about `noun`: 'the <noun> <verb> <phrases...>'."""
    while True:
        words = ["the", noun, rng.choice(_VERBS)]
        remaining = n - 3
        while remaining > 0:
            # A phrase repeats no word of the sentence but "the", so that an answer of any length
            # keeps the distinct words the judge asks of a description (`_score_word_count`).
            taken = set(words) - {"the"}
            fresh = {
                k: [ph for ph in phrases if not taken & set(ph.split())]
                for k, phrases in _PHRASES.items()
                if k <= remaining
            }
            lengths = [k for k, phrases in fresh.items() if phrases]
            if not lengths:
                # A dead end: every phrase short enough is used (eleven 1-word phrases in a row
                # leave a 15-word sentence one word short; under one draw in a million). Start over.
                break
            length = rng.choice(lengths)
            words.extend(rng.choice(fresh[length]).split())
            remaining -= length
        if remaining == 0:
            return " ".join(words)


def _other_word(rng: random.Random, word: str, pool: Sequence[str] = _VOCAB) -> str:
    return rng.choice([w for w in pool if w != word])


def _swap_adjacent(rng: random.Random, seq: list[str]) -> list[str]:
    candidates = [i for i in range(len(seq) - 1) if seq[i] != seq[i + 1]]
    out = list(seq)
    if candidates:
        i = rng.choice(candidates)
        out[i], out[i + 1] = out[i + 1], out[i]
    return out


def _drop_one(rng: random.Random, seq: list[str]) -> list[str]:
    i = rng.randrange(len(seq))
    return seq[:i] + seq[i + 1 :]


def _answer(kind: str, p: dict[str, Any], rng: random.Random) -> str:
    """A correct demonstration for instruction parameters `p`."""
    if kind == "uppercase":
        return p["word"].upper()
    if kind == "list_items":
        return ", ".join(rng.sample(CATEGORIES[p["category"]], p["n"]))
    if kind == "word_count":
        return _sentence(rng, p["noun"], p["n"])
    if kind == "arithmetic":
        return str(p["a"] + p["b"] if p["op"] == "+" else p["a"] - p["b"])
    if kind == "end_word":
        return f"the {p['noun']} {rng.choice(_TRANSITIVE)} the {p['end']}"
    if kind == "repeat_word":
        return " ".join([p["word"]] * p["n"])
    if kind == "spell":
        return " ".join(p["word"])
    if kind == "reverse":
        return p["word"][::-1]
    raise ValueError(f"unknown kind {kind!r}")


def _near_misses(
    kind: str, p: dict[str, Any], rng: random.Random, hard: bool = False, answer: str | None = None
) -> list[str]:
    """Plausible answers that violate the instruction in one small way (``answer``: the correct
    answer they are compared with, where a near-miss is made from it).

    Each rule of the gold judge has a near-miss that breaks it, so that the reward model is shown
    every way to lose score: for word counts also a sentence of the right length padded by
    repeating one phrase (the judge halves the score of a sentence under 60% distinct words), and
    for repeats also the right count of a related word. Without those two, PPO on the tiny recipe
    found them as holes in the reward model ("... very well very well very well",
    "Repeat the word desk" -> "shelf shelf shelf").

    ``hard`` adds the list answers of the right length with one duplicated or one off-category
    item. The tiny recipe's ~1M-parameter reward model learns those when it trains on lists alone
    (measured from seed 42's SFT model: ~0.9 pairwise accuracy on both after 750 list-only steps;
    with 10% of the labels flipped, duplicates 0.82-0.91 and off-category items 0.56 after 1,000).
    Mixed with the other kinds' pairs, as the reward stage trains, it does not learn them
    (0.47-0.57 after 1,250 steps with lists as 57% of the pairs); see docs/experiments.md.
    """
    w = p.get("word", "")
    if kind == "uppercase":
        other = _other_word(rng, w, CATEGORIES[_WORD_CATEGORY.get(w, "fruits")])
        return [w.lower(), w.capitalize(), other.upper(), "".join(_drop_one(rng, list(w.upper())))]
    if kind == "list_items":
        words = CATEGORIES[p["category"]]
        n = p["n"]
        items = rng.sample(words, n + 1)
        # Drawn even when `hard` is off: the default data (and the README's measured runs) depend on
        # this draw's place in the random stream.
        foreign = rng.choice([x for x in _VOCAB if _WORD_CATEGORY[x] != p["category"]])
        misses = [", ".join(items[: n - 1]), ", ".join(items)]
        if hard:
            misses += [", ".join(items[: n - 1] + [foreign]), ", ".join(items[: n - 1] + [items[0]])]
        return misses
    if kind == "word_count":
        # One near-miss per rule of the judge, so each rule is drawn equally often: the count (a word
        # more or, above 3, a word fewer), the topic and, from 7 words, distinct words (the right
        # length padded by one phrase: "... very well very well"). The topic miss is the correct
        # answer with its noun swapped, a minimal pair: the noun is all the reward model can tell
        # them apart by. As two unrelated sentences, the pair differed in every word, and from some
        # SFT models the reward model never learned the topic (0.40-0.55 on held-out topic pairs,
        # reward accuracy 0.76-0.83; docs/experiments.md).
        n, noun = p["n"], p["noun"]
        miscount = n + 1 if n <= 3 or rng.random() < 0.5 else n - 1
        words = (answer or _sentence(rng, noun, n)).split()
        words[words.index(noun)] = _other_word(rng, noun)
        misses = [_sentence(rng, noun, miscount), " ".join(words)]
        if n >= 7:
            start = _sentence(rng, noun, rng.randint(3, n // 2)).split()
            filler = rng.choice(_PHRASES[rng.choice((1, 2, 3))]).split()
            padding = (filler * n)[: n - len(start)]
            misses.append(" ".join(start + padding))
        return misses
    if kind == "arithmetic":
        answer = p["a"] + p["b"] if p["op"] == "+" else p["a"] - p["b"]
        wrong_op = p["a"] - p["b"] if p["op"] == "+" else p["a"] + p["b"]
        misses = [str(answer + 1), f"the answer is {answer}"]
        if answer > 0:
            misses.append(str(answer - 1))
        if wrong_op != answer and wrong_op >= 0:
            misses.append(str(wrong_op))
        return misses
    if kind == "end_word":
        noun, end = p["noun"], p["end"]
        verb = rng.choice(_TRANSITIVE)
        return [
            f"the {noun} {verb} the {_other_word(rng, end, CATEGORIES[_WORD_CATEGORY.get(end, 'fruits')])}",
            f"the {end} {verb} the {noun}",
            f"the {_other_word(rng, noun)} {verb} the {end}",
        ]
    if kind == "repeat_word":
        n = p["n"]
        replaced = [w] * n
        replaced[rng.randrange(n)] = _other_word(rng, w)
        other = _other_word(rng, w, CATEGORIES[_WORD_CATEGORY[w]])  # the right count of a related word
        return [" ".join([w] * (n + 1)), " ".join([w] * (n - 1)), " ".join(replaced), " ".join([other] * n)]
    if kind == "spell":
        letters = list(w)
        misses = [" ".join(_drop_one(rng, letters)), w]
        if _swap_adjacent(rng, letters) != letters:
            misses.append(" ".join(_swap_adjacent(rng, letters)))
        if letters[::-1] != letters:
            misses.append(" ".join(letters[::-1]))
        return misses
    if kind == "reverse":
        rev = list(w[::-1])
        misses = ["".join(_drop_one(rng, rev))]
        if w != w[::-1]:
            misses.append(w)
        if _swap_adjacent(rng, rev) != rev:
            misses.append("".join(_swap_adjacent(rng, rev)))
        return misses
    raise ValueError(f"unknown kind {kind!r}")


# ------------------------------------------------------------------------------------ prompt space


def _render(template: str, p: dict[str, Any]) -> str:
    values = dict(p)
    if "n" in p:
        values["nw"] = _NUMBER_WORDS[p["n"]]
    return template.format(**values)


def _prompt_space(kind: str) -> list[tuple[str, dict[str, Any]]]:
    """Every (prompt, params) of one kind, in a fixed order."""
    if kind == "uppercase":
        grid = [{"word": w} for w in _VOCAB]
    elif kind == "list_items":
        grid = [{"category": c, "n": n} for c in CATEGORIES for n in _LIST_N]
    elif kind == "word_count":
        grid = [{"noun": w, "n": n} for w in _VOCAB for n in _WORD_COUNT_N]
    elif kind == "arithmetic":
        pairs = [(a, b) for a in range(_MAX_OPERAND + 1) for b in range(_MAX_OPERAND + 1)]
        space = []
        for template in _TEMPLATES[kind]:
            op = "-" if template in _SUBTRACTION_TEMPLATES else "+"
            space += [(_render(template, {"a": a, "b": b}), {"a": a, "b": b, "op": op})
                      for a, b in pairs if op == "+" or a >= b]  # fmt: skip
        return space
    elif kind == "end_word":
        grid = [{"noun": x, "end": y} for x in _VOCAB for y in _VOCAB if x != y]
    elif kind == "repeat_word":
        grid = [{"word": w, "n": n} for w in _VOCAB for n in _REPEAT_N]
    elif kind in ("spell", "reverse"):
        grid = [{"word": w} for w in _SHORT_VOCAB]
    else:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    return [(_render(t, p), p) for p in grid for t in _TEMPLATES[kind]]


def task_space() -> dict[str, Any]:
    """The generator's vocabulary and ranges, as the data cards quote them (one source of truth)."""
    counts = (*_LIST_N, *_REPEAT_N, *_WORD_COUNT_N)
    phrasings = [len(_TEMPLATES[k]) for k in KINDS]
    sizes = [len(words) for words in CATEGORIES.values()]
    return {
        "kinds": KINDS,
        "phrasings": (min(phrasings), max(phrasings)),
        "categories": len(CATEGORIES),
        "category_words": (min(sizes), max(sizes)),
        "numbers": (0, _MAX_OPERAND),
        "counts": (min(counts), max(counts)),
        # The longest reference answer: a repeat or a description of the largest count.
        "max_answer_words": max(*_REPEAT_N, *_WORD_COUNT_N),
    }


# ------------------------------------------------------------------------------------- the corpus


def _fact(rng: random.Random) -> str:
    """One sentence of world knowledge for the pretraining corpus (never an instruction)."""
    label = rng.choice(list(CATEGORIES))
    singular, words = _CATEGORY_TABLE[label]
    w = rng.choice(_VOCAB)
    n = rng.randrange(2, 7)
    kind = rng.randrange(12)
    if kind == 0:
        x = rng.choice(words)
        return f"{x} is a {singular}."
    if kind == 1:
        return f"here are {_NUMBER_WORDS[n]} {label}: {', '.join(rng.sample(words, n))}."
    if kind == 2:
        items = rng.sample(words, n)
        return f"{', '.join(items[:-1])} and {items[-1]} are {label}."
    if kind == 3:
        return rng.choice(
            [f"the word {w} in capital letters is {w.upper()}.", f"{w.upper()} is {w} in capitals."]
        )
    if kind == 4:
        return f"{w} is spelled {' '.join(w)}."
    if kind == 5:
        return rng.choice([f"{w} backwards is {w[::-1]}.", f"{w[::-1]} is {w} written backwards."])
    if kind == 6:
        k = rng.randrange(0, 21)
        return rng.choice([f"{_NUMBER_WORDS[k]} is {k}.", " ".join(_NUMBER_WORDS[1 : n + 2]) + "."])
    if kind == 7:
        return f"{' '.join([w] * n)} is the word {w} {_NUMBER_WORDS[n]} times."
    if kind in (8, 9):
        a, b = rng.randrange(_MAX_OPERAND + 1), rng.randrange(_MAX_OPERAND + 1)
        if kind == 8:
            return rng.choice([f"{a} plus {b} is {a + b}.", f"{a} + {b} = {a + b}."])
        a, b = max(a, b), min(a, b)
        return rng.choice([f"{a} minus {b} is {a - b}.", f"{a} - {b} = {a - b}."])
    if kind == 10:
        k = rng.randrange(3, 9)
        sentence = _sentence(rng, w, k)
        return f"{sentence}. the sentence {sentence} has {_NUMBER_WORDS[k]} words."
    end = _other_word(rng, w)
    return f"the {w} {rng.choice(_TRANSITIVE)} the {end}. that sentence ends with the word {end}."


def _document(rng: random.Random) -> str:
    return " ".join(_fact(rng) for _ in range(rng.randint(4, 8)))


# ----------------------------------------------------------------------------------- the datasets


@dataclasses.dataclass(frozen=True)
class TaskConfig:
    """Seed and sizes of the embedded task (defaults follow InstructGPT's proportions, scaled down).

    Pretraining sizes count documents (4-8 sentences each). ``label_noise`` is the probability a
    training preference is flipped; the test split is clean. InstructGPT's labelers agreed ~73% of
    the time, but at 0.25 the tiny reward model needs about four times the steps it gets on CPU to
    reach the same accuracy (0.6 instead of 0.9), and with fewer, reused pairs it memorises the flips:
    hence 10% noise over 24k comparisons. ``hard_negatives`` adds duplicate and off-category list
    items to the rejected answers (see `_near_misses`).

    300 demonstrations against 24k comparisons and 400 PPO prompts: InstructGPT too had fewer
    demonstrations (13k) than comparison prompts (33k) and PPO prompts (31k), because a judgement is
    cheaper than a written answer. With 600 demonstrations of word counts the ~1M-parameter SFT
    policy already answers most held-out prompts perfectly (greedy gold 0.927), which leaves PPO
    about 15 of 200 prompts to win (docs/experiments.md).
    """

    seed: int = 42
    pretrain_train: int = 4000
    pretrain_test: int = 200
    sft_train: int = 300
    sft_test: int = 100
    preference_train: int = 24000
    preference_test: int = 400
    ppo_prompts: int = 400
    eval_prompts: int = 200
    label_noise: float = 0.1
    hard_negatives: bool = False
    kinds: tuple[str, ...] = DEFAULT_KINDS

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown or not self.kinds:
            raise ValueError(
                f"TaskConfig.kinds: unknown or empty {unknown or self.kinds}; expected a subset of {KINDS}"
            )
        if not 0.0 <= self.label_noise < 0.5:
            raise ValueError(f"TaskConfig.label_noise must be in [0, 0.5), got {self.label_noise}")
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type == "int" and field.name != "seed" and value < 0:
                raise ValueError(f"TaskConfig.{field.name} must be >= 0, got {value}")


def _split_counts(total: int, kinds: Sequence[str], rng: random.Random) -> dict[str, int]:
    """`total` spread evenly over `kinds`; the remainder goes to a seeded choice of kinds."""
    counts = {k: total // len(kinds) for k in kinds}
    for k in rng.sample(list(kinds), total % len(kinds)):
        counts[k] += 1
    return counts


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def _preference_row(
    prompt: str, kind: str, p: dict[str, Any], rng: random.Random, noise: float, hard: bool = False
) -> dict[str, Any]:
    """One comparison: the correct answer against a plausible near-miss that violates the instruction.

    Both answers are of similar length and the near-miss breaks one rule; the gold judge prefers the
    correct one. (Pairs of two near-misses would differ by a few hundredths of partial credit: a
    preference no labeler could state, and noise the reward model cannot learn from.)
    """
    for _ in range(20):
        a = _answer(kind, p, rng)
        b = rng.choice(_near_misses(kind, p, rng, hard, answer=a))
        score_a, score_b = gold_score(prompt, a), gold_score(prompt, b)
        if score_a != score_b:
            break
    else:  # pragma: no cover - every kind has a near-miss scoring below the correct answer
        raise RuntimeError(f"no preference pair with distinct gold scores for {prompt!r}")
    if score_a < score_b:
        a, b, score_a, score_b = b, a, score_b, score_a
    flipped = rng.random() < noise
    if flipped:
        a, b, score_a, score_b = b, a, score_b, score_a
    return {
        "prompt": _user(prompt),
        "chosen": _assistant(a),
        "rejected": _assistant(b),
        "kind": kind,
        "chosen_score": score_a,
        "rejected_score": score_b,
        "label_flipped": flipped,
    }


def _draw(
    pool: list[tuple[str, dict[str, Any]]], n: int, rng: random.Random
) -> list[tuple[str, dict[str, Any]]]:
    """`n` items of `pool`: without replacement while it lasts, then cycling through reshuffles."""
    out: list[tuple[str, dict[str, Any]]] = []
    while len(out) < n:
        out += rng.sample(pool, min(len(pool), n - len(out)))
    return out


@functools.lru_cache(maxsize=4)
def _build(config: TaskConfig) -> dict[str, DatasetDict]:
    rng = random.Random(f"pipelines-task-{config.seed}")
    kinds = list(config.kinds)
    n_eval = _split_counts(config.eval_prompts, kinds, rng)
    n_ppo = _split_counts(config.ppo_prompts, kinds, rng)
    n_sft_test = _split_counts(config.sft_test, kinds, rng)
    n_pref_test = _split_counts(config.preference_test, kinds, rng)
    n_sft = _split_counts(config.sft_train, kinds, rng)
    n_pref = _split_counts(config.preference_train, kinds, rng)

    rows: dict[str, list[dict[str, Any]]] = {
        name: [] for name in ("sft_train", "sft_test", "pref_train", "pref_test", "ppo", "eval")
    }
    for kind in kinds:
        space = _prompt_space(kind)
        rng.shuffle(space)
        n_valid = max(n_sft_test[kind], n_pref_test[kind])
        held_out = n_eval[kind] + n_ppo[kind] + n_valid
        if held_out >= len(space):
            raise ValueError(
                f"kind {kind!r} has {len(space)} distinct prompts, too few for {held_out} held-out prompts "
                "(evaluation + PPO + test) and a training pool: lower eval_prompts/ppo_prompts/"
                "preference_test or drop the kind from TaskConfig.kinds"
            )
        eval_pool, rest = space[: n_eval[kind]], space[n_eval[kind] :]
        ppo_pool, rest = rest[: n_ppo[kind]], rest[n_ppo[kind] :]
        valid_pool, train_pool = rest[:n_valid], rest[n_valid:]

        rows["eval"] += [{"prompt": _user(t), "kind": kind} for t, _ in eval_pool]
        rows["ppo"] += [{"prompt": _user(t), "kind": kind} for t, _ in ppo_pool]
        for name, pool, count in (
            ("sft_train", train_pool, n_sft[kind]),
            ("sft_test", valid_pool, n_sft_test[kind]),
        ):
            rows[name] += [
                {"messages": _user(t) + _assistant(_answer(kind, p, rng)), "kind": kind}
                for t, p in _draw(pool, count, rng)
            ]
        rows["pref_train"] += [
            _preference_row(t, kind, p, rng, config.label_noise, config.hard_negatives)
            for t, p in _draw(train_pool, n_pref[kind], rng)
        ]
        rows["pref_test"] += [
            _preference_row(t, kind, p, rng, 0.0, config.hard_negatives)
            for t, p in _draw(valid_pool, n_pref_test[kind], rng)
        ]

    for name in rows:
        rng.shuffle(rows[name])
    _assert_disjoint(rows)

    corpus_rng = random.Random(f"pipelines-corpus-{config.seed}")
    pretrain = {
        "train": [{"text": _document(corpus_rng)} for _ in range(config.pretrain_train)],
        "test": [{"text": _document(corpus_rng)} for _ in range(config.pretrain_test)],
    }
    return {
        "pretrain": DatasetDict({s: Dataset.from_list(r) for s, r in pretrain.items()}),
        "sft": DatasetDict({"train": _from_rows(rows["sft_train"]), "test": _from_rows(rows["sft_test"])}),
        "preference": DatasetDict(
            {"train": _from_rows(rows["pref_train"]), "test": _from_rows(rows["pref_test"])}
        ),
        "prompts": DatasetDict({"train": _from_rows(rows["ppo"]), "test": _from_rows(rows["eval"])}),
    }


def _from_rows(rows: list[dict[str, Any]]) -> Dataset:
    return Dataset.from_list(rows) if rows else Dataset.from_dict({})


def _assert_disjoint(rows: dict[str, list[dict[str, Any]]]) -> None:
    """PPO and evaluation prompts must not appear in any SFT or preference prompt, nor in each other."""

    def texts(name: str) -> set[str]:
        if name.startswith("sft"):
            return {r["messages"][0]["content"] for r in rows[name]}
        return {r["prompt"][0]["content"] for r in rows[name]}

    trained = texts("sft_train") | texts("sft_test") | texts("pref_train") | texts("pref_test")
    ppo, evaluation = texts("ppo"), texts("eval")
    if ppo & trained or evaluation & trained or ppo & evaluation:
        raise AssertionError("PPO/evaluation prompts overlap the SFT/preference prompts")
    if len(ppo) != len(rows["ppo"]) or len(evaluation) != len(rows["eval"]):
        raise AssertionError("duplicate PPO or evaluation prompts")


def build_task(config: TaskConfig | None = None) -> dict[str, DatasetDict]:
    """Build the embedded task's datasets, deterministically from ``config`` (default `TaskConfig()`).

    Returns ``{"pretrain", "sft", "preference", "prompts"}``, each a DatasetDict with ``train`` and
    ``test`` splits:

    - pretrain: ``text`` documents of world knowledge (categories, capitals, spellings, reversals,
      counting, sums, sentence lengths and endings), never in the instruction format;
    - sft: ``messages`` (user instruction, correct assistant answer) + ``kind``;
    - preference: ``prompt``/``chosen``/``rejected`` (explicit-prompt conversational) + metadata
      ``kind``, ``chosen_score``/``rejected_score`` (gold scores of the two answers as placed) and
      ``label_flipped`` (train: flipped with probability ``label_noise``; test: never). TRL's
      RewardTrainer drops the metadata columns (``remove_unused_columns``);
    - prompts: ``prompt`` + ``kind``; train = PPO prompts, test = evaluation prompts, both disjoint
      from every SFT and preference prompt (held-out combinations of kind, words, numbers and phrasing).
    """
    return dict(_build(config or TaskConfig()))
