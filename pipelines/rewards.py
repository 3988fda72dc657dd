"""A program as the reward: the gold judge in the shapes TRL's RL trainers call a reward.

TRL's PPO takes a reward *model* only: `JudgeRewardModel` wraps a judge `(prompt_text,
answer_text) -> float` so that PPO can train against it. RLOO and GRPO also take functions:
`gold_reward_function` is the judge as one. The recipes' `gold_reward: true` uses the embedded
task's gold judge. That is the ceiling of the learned reward model, as in Gao et al.'s reward
over-optimisation study: the result against the judge itself is what a perfect reward model would
give, on the same budget.

How TRL scores a rollout (`trl.experimental.utils.get_reward`):

    hidden = getattr(model, model.base_model_prefix)(input_ids, attention_mask, ...).hidden_states[-1]
    score  = model.score(hidden)[row, last real token of the answer]

So the "backbone" here decodes every row, judges it and returns (B, T, 1) filled with the row's
score, and `score` is the identity. PPO's own handling of the answer (truncation after the stop
token, `missing_eos_penalty`) applies unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase
from transformers.modeling_outputs import BaseModelOutput

from pipelines.evaluation import decode_responses

__all__ = ["JudgeRewardModel", "gold_reward_function"]


class _Judge(nn.Module):
    def __init__(self, tokenizer: PreTrainedTokenizerBase, judge: Callable[[str, str], float], scale: float):
        super().__init__()
        self.tokenizer, self.judge, self.scale = tokenizer, judge, scale
        marker = tokenizer.convert_tokens_to_ids("<|assistant|>")
        if marker is None or marker == tokenizer.unk_token_id:
            raise ValueError(
                "JudgeRewardModel splits prompt from answer at the chat template's <|assistant|> token, "
                "which this tokenizer does not have (use the tokenizer of pipelines.tokenizer.train_tokenizer)."
            )
        self.marker = marker

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **_: object
    ) -> BaseModelOutput:
        mask = (
            torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
        )
        scores = [self.score_row(row[keep].tolist()) for row, keep in zip(input_ids, mask, strict=True)]
        # (B,) -> (B, T, 1): the same score at every position, so whichever one TRL reads is the score.
        hidden = torch.tensor(scores, dtype=torch.float32, device=input_ids.device)
        hidden = hidden[:, None, None].expand(-1, input_ids.shape[1], 1)
        return BaseModelOutput(last_hidden_state=hidden, hidden_states=(hidden,))

    def score_row(self, ids: list[int]) -> float:
        """`scale * judge(prompt, answer)` for one conversation's real (unpadded) token ids."""
        if self.marker not in ids:
            raise ValueError(
                "a scored sequence has no <|assistant|> token: it is not a chat-templated prompt."
            )
        start = len(ids) - ids[::-1].index(self.marker)  # the answer follows the last assistant marker
        answer = ids[start:]
        eos = self.tokenizer.eos_token_id
        if eos in answer:
            answer = answer[: answer.index(eos)]
        prompt, answer_text = decode_responses(self.tokenizer, [ids[: start - 1], answer])
        return self.scale * self.judge(prompt, answer_text)


class JudgeRewardModel(nn.Module):
    """A judge function behind the reward-model interface of TRL's PPOTrainer; it has no weights.

    `judge(prompt, answer)` gets the last user turn's text and the answer's text (up to its first
    EOS, decoded by `pipelines.evaluation.decode_responses` as the evaluation decodes answers), and
    PPO's reward is `scale * judge(...)`. The default scale (4.0) puts the gold judge's [0, 1] in
    the range of the tiny reward model's scores, so PPO's KL coefficient weighs about the same
    against either: on held-out pairs that model scores a right answer a median 2.2 above its
    near-miss, which the judge scores 0.4 lower (seed 42).
    """

    base_model_prefix = "judge"

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        judge: Callable[[str, str], float] | None = None,
        scale: float = 4.0,
    ) -> None:
        super().__init__()
        if judge is None:
            from pipelines.data import gold_score as judge
        self.judge = _Judge(tokenizer, judge, scale)
        self.score = nn.Identity()


def gold_reward_function(
    scale: float = 4.0, judge: Callable[..., float] | None = None
) -> Callable[..., list[float]]:
    """The gold judge as a reward function of TRL's RLOO and GRPO trainers (`reward_funcs=`).

    TRL calls it with the batch's `prompts` and `completions`, conversational (lists of messages)
    or plain strings, and logs its mean as `rewards/gold_judge/mean`. Each completion is scored as
    the evaluation scores an answer: its text, stripped (TRL decodes without special tokens, so
    the EOS that ends it is not in the text), times `scale`.
    """
    if judge is None:
        from pipelines.data import gold_score as judge

    def gold_judge(prompts: list, completions: list, **_: object) -> list[float]:
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
        return [scale * judge(prompt, text.strip()) for prompt, text in zip(prompts, texts, strict=True)]

    return gold_judge
