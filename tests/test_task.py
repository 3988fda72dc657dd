"""The embedded task: determinism, sizes, disjoint prompts, label noise and the gold judge."""

from __future__ import annotations

import random

import pytest

from pipelines.data.task import (
    _PHRASES,
    CATEGORIES,
    DEFAULT_KINDS,
    KINDS,
    TaskConfig,
    _items,
    _near_misses,
    _sentence,
    build_task,
    gold_score,
    judge_batch,
    parse_instruction,
)

SMALL = TaskConfig(
    seed=7,
    pretrain_train=20,
    pretrain_test=5,
    sft_train=40,
    sft_test=16,
    preference_train=80,
    preference_test=24,
    ppo_prompts=40,
    eval_prompts=16,
)


@pytest.fixture(scope="module")
def task():
    return build_task()


def _texts(ds, column):
    return {row[column][0]["content"] for row in ds}


def test_default_sizes(task):
    config = TaskConfig()
    sizes = {kind: {split: len(ds) for split, ds in dd.items()} for kind, dd in task.items()}
    assert sizes == {
        "pretrain": {"train": config.pretrain_train, "test": config.pretrain_test},
        "sft": {"train": 300, "test": 100},
        "preference": {"train": 24000, "test": 400},
        "prompts": {"train": 400, "test": 200},
    }
    assert set(task["prompts"]["test"]["kind"]) == set(DEFAULT_KINDS)


def test_every_comparison_is_a_correct_answer_against_a_violation(task):
    for split in ("train", "test"):
        pairs = task["preference"][split]
        for row in pairs:
            scores = sorted([row["chosen_score"], row["rejected_score"]])
            assert scores[1] == 1.0 and scores[0] < 1.0, row


def test_same_seed_same_data_other_seed_other_data():
    a, b = build_task(SMALL), build_task(TaskConfig(**{**SMALL.__dict__}))
    c = build_task(TaskConfig(**{**SMALL.__dict__, "seed": 8}))
    for kind in a:
        assert a[kind]["train"].to_list() == b[kind]["train"].to_list()
        assert a[kind]["train"].to_list() != c[kind]["train"].to_list()


def test_ppo_and_eval_prompts_are_disjoint_from_training(task):
    trained = set()
    for split in ("train", "test"):
        trained |= _texts(task["sft"][split], "messages") | _texts(task["preference"][split], "prompt")
    ppo, evaluation = _texts(task["prompts"]["train"], "prompt"), _texts(task["prompts"]["test"], "prompt")
    assert (
        len(ppo) == TaskConfig().ppo_prompts and len(evaluation) == TaskConfig().eval_prompts
    )  # all distinct
    assert not ppo & trained and not evaluation & trained and not ppo & evaluation


def test_demonstrations_are_correct_and_short(task):
    for row in task["sft"]["train"]:
        user, assistant = row["messages"]
        assert gold_score(user["content"], assistant["content"]) == 1.0
        assert len(assistant["content"].split()) <= 15  # the largest count asked for


def test_preference_labels_and_noise(task):
    train, test = task["preference"]["train"], task["preference"]["test"]
    for row in test:
        assert row["chosen_score"] > row["rejected_score"] and not row["label_flipped"]
    flipped = 0
    for row in train:
        prompt = row["prompt"][0]["content"]
        assert gold_score(prompt, row["chosen"][0]["content"]) == row["chosen_score"]
        assert (row["chosen_score"] < row["rejected_score"]) == row["label_flipped"]
        flipped += row["label_flipped"]
    assert abs(flipped / len(train) - TaskConfig().label_noise) < 0.01  # binomial sd ~0.002


def _list_rejections(config):
    kinds = set()
    for row in build_task(config)["preference"]["train"]:
        if row["kind"] != "list_items":
            continue
        wrong = row["chosen"] if row["label_flipped"] else row["rejected"]
        n = parse_instruction(row["prompt"]).params["n"]
        items = _items(wrong[0]["content"])
        kinds.add("count" if len(items) != n else "duplicate" if len(set(items)) < n else "off-category")
    return kinds


def test_hard_negatives_add_duplicate_and_off_category_list_items():
    # Default: list answers are rejected for their length only (what the tiny reward model can learn).
    lists = TaskConfig(**{**SMALL.__dict__, "kinds": KINDS})
    assert _list_rejections(lists) == {"count"}
    hard = TaskConfig(**{**lists.__dict__, "hard_negatives": True, "preference_train": 400})
    assert _list_rejections(hard) == {"count", "duplicate", "off-category"}


def test_every_judged_rule_has_a_near_miss_that_breaks_it():
    """Word counts: also the right length padded by repeating a phrase; repeats: also a related word."""
    rng = random.Random(0)
    prompt = "Describe the fox in exactly 12 words."
    misses = _near_misses("word_count", {"noun": "fox", "n": 12}, rng)
    padded = misses[-1].split()
    assert len(padded) == 12 and len(set(padded)) / 12 < 0.6
    assert gold_score(prompt, misses[-1]) == 0.5  # the right count, halved for the repetition
    misses = _near_misses("repeat_word", {"word": "desk", "n": 5}, rng)
    other = misses[-1].split()
    assert len(other) == 5 and len(set(other)) == 1 and other[0] in CATEGORIES["pieces of furniture"]
    assert other[0] != "desk" and gold_score("Repeat the word desk 5 times.", misses[-1]) == 0.4


def test_the_topic_near_miss_differs_from_the_correct_answer_only_in_its_noun():
    """A minimal pair: the reward model can only tell them apart by the topic."""
    rng = random.Random(0)
    prompt = "Describe the fox in exactly 10 words."
    answer = "the fox sleeps at night in the garden very well"
    topic = [
        m for m in _near_misses("word_count", {"noun": "fox", "n": 10}, rng, answer=answer) if "fox" not in m
    ]
    assert len(topic) == 1
    diff = [(a, b) for a, b in zip(answer.split(), topic[0].split(), strict=True) if a != b]
    assert len(diff) == 1 and diff[0][0] == "fox"
    assert gold_score(prompt, answer) == 1.0 and gold_score(prompt, topic[0]) < 1.0
    rows = build_task(TaskConfig(**{**SMALL.__dict__, "preference_train": 300}))["preference"]["train"]
    pairs = [(r["chosen"][0]["content"].split(), r["rejected"][0]["content"].split()) for r in rows]
    swaps = [(a, b) for a, b in pairs if len(a) == len(b) and a[1] != b[1]]
    assert len(swaps) > 50  # about a third of the comparisons
    assert all(a[:1] + a[2:] == b[:1] + b[2:] for a, b in swaps)


@pytest.mark.parametrize("n", range(3, 16))
def test_sentences_of_every_length_pass_the_judge(n):
    """Filler phrases never repeat a word but "the": long answers keep the distinct words asked for."""
    rng = random.Random(n)
    for _ in range(200):
        sentence = _sentence(rng, "fox", n)
        assert len(sentence.split()) == n
        assert gold_score(f"Describe the fox in exactly {n} words.", sentence) == 1.0


def test_a_sentence_that_runs_out_of_phrases_starts_over():
    """Eleven 1-word phrases in a row leave a 15-word sentence one word short: draw it again."""

    class FirstChoices(random.Random):
        """Takes the first option for the first `k` draws (the verb, then 1-word phrases), then draws."""

        def __init__(self, k: int):
            super().__init__(0)
            self.k = k

        def choice(self, seq):
            self.k -= 1
            return seq[0] if self.k >= 0 else super().choice(seq)

    one_word = len(_PHRASES[1])
    rng = FirstChoices(1 + 2 * one_word)  # the verb, then (length 1, first fresh phrase) each time
    sentence = _sentence(rng, "fox", one_word + 4)
    assert rng.k < 0 and len(sentence.split()) == one_word + 4
    assert gold_score(f"Describe the fox in exactly {one_word + 4} words.", sentence) == 1.0


def test_pretraining_corpus_teaches_the_world_not_the_format(task):
    corpus = " ".join(task["pretrain"]["train"]["text"])
    words = set(corpus.replace(",", " ").replace(".", " ").split())
    for label, members in CATEGORIES.items():
        assert label in corpus
        assert all(w in words and w.upper() in words for w in members)
    for doc in task["pretrain"]["test"]["text"]:
        with pytest.raises(ValueError, match="not an instruction"):
            parse_instruction(doc)


@pytest.mark.parametrize(
    ("prompt", "response", "expected"),
    [
        ("List exactly 3 fruits.", "apple, pear, plum", 1.0),
        ("List exactly 3 fruits.", "Apple, pear and plum.", 1.0),
        ("List exactly 3 fruits.", "apple, pear, plum, fig", 0.6),  # 0.6 * 4/4, count wrong
        ("List exactly 3 fruits.", "apple, pear, dog", 0.8),  # 0.6 * 2/3 + 0.4
        ("List exactly 3 fruits.", "apple, pear", 0.4),  # 0.6 * 2/3
        ("List exactly 3 fruits.", "apple, apple, apple", 0.6),  # 0.6 * 1/3 + 0.4
        ("Tell me two birds.", "owl, crow", 1.0),
        ("Write the word apple in capital letters.", "APPLE", 1.0),
        ("Write the word apple in capital letters.", "  APPLE. ", 1.0),
        ("Write the word apple in capital letters.", "apple", 0.2),
        ("Write the word apple in capital letters.", "Sure: APPLE", 0.5),
        ("Write the word apple in capital letters.", "APPLE " * 500, 0.0),
        ("What is 7 plus 5?", "12", 1.0),
        ("What is 7 plus 5?", "13", 0.0),
        ("What is 7 plus 5?", "the answer is 12", 0.5),
        ("Subtract 4 from 9.", "5", 1.0),
        ("Compute 9 - 4.", "13", 0.0),
        ("Describe the cat in exactly 5 words.", "the cat sleeps every day", 1.0),
        ("Describe the cat in exactly 5 words.", "the cat sleeps today", 0.65),  # 0.7 * 0.5 + 0.3
        ("Describe the cat in exactly 5 words.", "the dog sleeps every day", 0.7),
        ("Describe the cat in exactly 5 words.", "cat cat cat cat cat", 0.5),  # repetition halves it
        ("Write a sentence about the cat that ends with the word moon.", "the cat sees the moon", 1.0),
        ("Write a sentence about the cat that ends with the word moon.", "the moon sees the cat", 0.5),
        ("Write a sentence about the cat that ends with the word moon.", "the dog sees the moon", 0.7),
        ("Repeat the word drum 3 times.", "drum drum drum", 1.0),
        ("Repeat the word drum 3 times.", "DRUM drum Drum", 1.0),
        ("Repeat the word drum 3 times.", "drum drum drum drum", 0.6),  # 0.6 * 4/4, count wrong
        ("Write drum exactly four times.", "drum drum cat drum", 0.85),  # 0.6 * 3/4 + 0.4
        ("Spell the word cat letter by letter.", "c a t", 1.0),
        ("Spell the word cat letter by letter.", "C-A-T", 1.0),
        ("Spell the word cat letter by letter.", "cat", 0.2),
        ("Spell the word cat letter by letter.", "c a", 0.4),  # 0.5 * ratio 0.8
        ("Write the word cat backwards.", "tac", 1.0),
        ("Write the word cat backwards.", "cat", 0.1),
        ("Write the word cat backwards.", "tca", 0.5 * 2 / 3),
        ("Reverse the letters of cat.", "", 0.0),
    ],
)
def test_gold_score_hand_computed(prompt, response, expected):
    assert gold_score(prompt, response) == pytest.approx(expected)


def test_gold_score_reads_conversations_and_templated_text():
    messages = [{"role": "user", "content": "List exactly 2 colors."}]
    assert gold_score(messages, "red, blue") == 1.0
    assert gold_score("<|user|> List exactly 2 colors. <|assistant|>", "red, blue") == 1.0
    assert judge_batch(["Write tea in uppercase.", "What is 2 plus 2?"], ["TEA", "5"]) == [1.0, 0.0]


def test_gold_score_rejects_foreign_prompts_and_bad_inputs():
    with pytest.raises(ValueError, match="not an instruction of the embedded task"):
        gold_score("Tell me a joke about cats.", "no")
    with pytest.raises(ValueError, match="not an instruction"):
        gold_score("List exactly 3 planets.", "mars, venus, earth")  # unknown category
    with pytest.raises(TypeError, match="response must be a string"):
        gold_score("Write tea in uppercase.", None)
    with pytest.raises(ValueError, match="2 prompts but 1 responses"):
        judge_batch(["Write tea in uppercase.", "Write tea in uppercase."], ["TEA"])


def test_task_config_is_checked():
    with pytest.raises(ValueError, match="unknown or empty"):
        TaskConfig(kinds=("haiku",))
    with pytest.raises(ValueError, match="label_noise"):
        TaskConfig(label_noise=0.7)
    with pytest.raises(ValueError, match="'list_items' has 330 distinct prompts"):
        build_task(TaskConfig(kinds=("list_items",), eval_prompts=400))
