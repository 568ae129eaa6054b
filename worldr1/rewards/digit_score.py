"""`s_meta`'s arithmetic: a judge's 0-9 plausibility rating as the expected digit under its logits.

World-R1 asks a vision-language model to rate the meta-view render 0-9 and, instead of parsing
the generated text, reads the logits of the ten digit tokens at the answer position: the score
is the expected digit under their softmax, divided by 9. It is smooth in the model's belief,
which a sampled digit is not.
"""

from __future__ import annotations

import torch


def digit_token_ids(tokenizer) -> list[int]:  # noqa: ANN001
    """The ids of "0".."9" as single tokens; a tokenizer that splits a digit cannot be read this way."""
    ids = []
    for d in "0123456789":
        encoded = tokenizer.encode(d, add_special_tokens=False)
        if len(encoded) != 1:
            raise ValueError(f"the judge's tokenizer encodes {d!r} as {len(encoded)} tokens, not one")
        ids.append(int(encoded[0]))
    if len(set(ids)) != 10:
        raise ValueError("the judge's tokenizer maps two digits to the same token")
    return ids


def expected_digit_score(logits: torch.Tensor, digit_ids: list[int]) -> torch.Tensor:
    """`[B, vocab]` logits at the answer position -> `[B]` scores in [0, 1]."""
    digits = logits[:, digit_ids].float()
    probs = torch.softmax(digits, dim=-1)
    values = torch.arange(10, dtype=probs.dtype, device=probs.device)
    return (probs * values).sum(-1) / 9.0
