"""Is an LLM's answer an enhanced prompt we can use? Checked with our own camera grammar.

The first sentence must parse to exactly the moves that were assigned, the description after it
must name no camera move (the policy would read it as one), and the length must be in bounds.
A failed check returns the reason, which the next attempt is told.
"""

from __future__ import annotations

from dataclasses import dataclass

from worldr1.ids import normalize_text
from worldr1.prompts.camera import Primitive, camera_sentence, moves_named_in, parse_camera

# Chat models like to wrap an answer in quotes or a code fence.
_WRAPPERS = ('"', "'", "`", "\u201c", "\u201d")


@dataclass(frozen=True)
class Bounds:
    min_chars: int
    max_chars: int


def clean(answer: str) -> str:
    """One line, whitespace collapsed, wrapping quotes and fences removed."""
    text = normalize_text(answer)
    while len(text) > 1 and text[0] in _WRAPPERS and text[-1] in _WRAPPERS:
        text = text[1:-1].strip()
    return text


def phrases(moves: tuple[Primitive, ...] | list[Primitive]) -> str:
    return ", ".join(m.phrase for m in moves) if moves else "none"


def check(text: str, moves: tuple[Primitive, ...], bounds: Bounds) -> str | None:
    """None when `text` is usable, else why not (one sentence, said to the model on a retry)."""
    if not text:
        return "the answer was empty"
    parsed = parse_camera(text)
    if not parsed.ok:
        return f"the first sentence must be the camera sentence, but {parsed.reason}"
    if parsed.primitives != moves:
        return f"the camera sentence names {phrases(parsed.primitives)}, but the moves must be exactly {phrases(moves)}"
    sentence = camera_sentence(text) or ""
    body = text[len(sentence) :].lstrip(".!? ")
    named = moves_named_in(body)
    if named:
        return (
            f"the description after the camera sentence names a camera move ({phrases(named)}); describe only the scene"
        )
    if len(body) < 20:
        return "there is no scene description after the camera sentence"
    if len(text) < bounds.min_chars:
        return f"it is {len(text)} characters long, under the {bounds.min_chars} asked for"
    if len(text) > bounds.max_chars:
        return f"it is {len(text)} characters long, over the {bounds.max_chars} allowed"
    return None
