"""What the LLM is told: the rules, the plain prompt with its camera sentence, and on a retry why the
last answer was refused. The text is part of every cache key (`instructions_id`), so changing it
asks again rather than reusing answers written to other rules."""

from __future__ import annotations

import hashlib

from worldr1.enhance.check import Bounds

Message = dict[str, str]

SYSTEM = """You write prompts for a text-to-video model. You get a short scene description and a camera sentence.
Write one paragraph that:
- starts with the camera sentence, copied exactly as given;
- then describes the scene in specific, concrete detail: the subject, its materials and colours, the setting around it, the light, the weather and the mood;
- keeps the meaning, subject, action and any style of the description, adding only details that fit it;
- after the camera sentence, never mentions the camera or a camera move (push in, pull out, move, orbit, pan, fixed or static shot);
- is between {min_chars} and {max_chars} characters long.
Answer with the paragraph only: one line of plain text, no quotes, no lists, no notes."""

USER = "Camera sentence: {camera}\nScene: {plain}"

RETRY = "That answer was refused: {reason}. Write the paragraph again, following every rule."


def system_prompt(bounds: Bounds) -> str:
    return SYSTEM.format(min_chars=bounds.min_chars, max_chars=bounds.max_chars)


def conversation(plain: str, camera: str, bounds: Bounds) -> list[Message]:
    """The first request for one plain prompt and its camera sentence ("Camera orbit left.")."""
    return [
        {"role": "system", "content": system_prompt(bounds)},
        {"role": "user", "content": USER.format(camera=camera, plain=plain)},
    ]


def retry(messages: list[Message], answer: str, reason: str) -> list[Message]:
    """The conversation with the refused answer and the reason appended."""
    return [
        *messages,
        {"role": "assistant", "content": answer},
        {"role": "user", "content": RETRY.format(reason=reason)},
    ]


def instructions_id(bounds: Bounds) -> str:
    blob = "\x1f".join([system_prompt(bounds), USER, RETRY]).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]
