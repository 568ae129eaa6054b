"""Camera grammar: the prompt's leading camera sentence -> an ordered list of motion primitives.

World-R1 writes the camera motion as the prompt's first sentence ("Camera push in, then orbit
left. A lighthouse ..."). Only that sentence is parsed: the description after it talks about
tides that pull out and birds that move left, which are not camera moves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Primitive(StrEnum):
    PUSH_IN = "push_in"
    PULL_OUT = "pull_out"
    MOVE_LEFT = "move_left"
    MOVE_RIGHT = "move_right"
    ORBIT_LEFT = "orbit_left"
    ORBIT_RIGHT = "orbit_right"
    PAN_LEFT = "pan_left"
    PAN_RIGHT = "pan_right"
    FIXED = "fixed"

    @property
    def phrase(self) -> str:
        """How World-R1's prompts say it: `push_in` -> "push in"."""
        return self.value.replace("_", " ")


# Verb forms and the usual film-set synonyms; a clause must match one of these whole.
_VERBS: dict[Primitive, str] = {
    Primitive.PUSH_IN: r"(?:push(?:es|ing)?|dolly(?:ing)?|dollies|track(?:s|ing)?|mov(?:e|es|ing)) (?:in|forward)",
    Primitive.PULL_OUT: r"(?:pull(?:s|ing)?|dolly(?:ing)?|dollies|track(?:s|ing)?|mov(?:e|es|ing)) (?:out|back|backward)",
    Primitive.MOVE_LEFT: r"(?:mov(?:e|es|ing)|truck(?:s|ing)?|track(?:s|ing)?|slid(?:e|es|ing)) left",
    Primitive.MOVE_RIGHT: r"(?:mov(?:e|es|ing)|truck(?:s|ing)?|track(?:s|ing)?|slid(?:e|es|ing)) right",
    Primitive.ORBIT_LEFT: r"(?:orbit(?:s|ing)?|arc(?:s|ing)?) left",
    Primitive.ORBIT_RIGHT: r"(?:orbit(?:s|ing)?|arc(?:s|ing)?) right",
    Primitive.PAN_LEFT: r"pan(?:s|ning)? left",
    Primitive.PAN_RIGHT: r"pan(?:s|ning)? right",
    Primitive.FIXED: r"fixed|static|still|stationary|(?:stays|remains|holds) (?:fixed|still|static)|locked off",
}
_CLAUSE = [(p, re.compile(rf"(?:{pattern})")) for p, pattern in _VERBS.items()]

# The joiners of compound moves seen in World-R1's prompts (", then", ",", ", transitioning
# into a"), and a few more a person writes the same way.
_JOINER = re.compile(
    r"\s*,?\s*\b(?:and then|then|transitioning into|transitions into|followed by|before|and)\b\s*|\s*[,;]\s*"
)
_ARTICLE = re.compile(r"^(?:a|an|the)\s+")
# Manner words change speed, not the kind of move.
_ADVERB = r"(?:very\s+)?(?:slowly|gently|smoothly|steadily|quickly|rapidly|gradually|slightly|softly|a little|a bit)"
_MANNER = re.compile(rf"^{_ADVERB}\s+|\s+{_ADVERB}$")
_LEAD = re.compile(r"^(?:the\s+)?camera\b\s*", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")


# A move named anywhere in free text (an enhanced prompt's description): the clauses above at word
# boundaries. "Fixed", "still" and "static" are everyday words ("the still water"), so they count
# only said of the camera or the shot.
_MENTION = [
    (p, re.compile(rf"\b(?:{pattern})\b", re.IGNORECASE)) for p, pattern in _VERBS.items() if p != Primitive.FIXED
]
_FIXED_MENTION = re.compile(
    r"\b(?:camera|shot)\b(?:\s+\w+){0,2}?\s+(?:fixed|static|still|stationary|locked off)\b"
    r"|\b(?:fixed|static|stationary|locked-off|locked off)\s+(?:camera|shot)\b",
    re.IGNORECASE,
)


def moves_named_in(text: str) -> list[Primitive]:
    """Every camera move `text` names, in order of appearance (each place once)."""
    found: list[tuple[int, Primitive]] = [(m.start(), p) for p, rx in _MENTION for m in rx.finditer(text)]
    found += [(m.start(), Primitive.FIXED) for m in _FIXED_MENTION.finditer(text)]
    return [p for _, p in sorted(found, key=lambda x: x[0])]


@dataclass(frozen=True)
class CameraParse:
    """The moves of one prompt; `reason` says why `primitives` is empty when it is."""

    primitives: tuple[Primitive, ...]
    sentence: str | None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def camera_sentence(prompt: str) -> str | None:
    """The prompt's first sentence if it is about the camera, else None."""
    text = prompt.strip()
    end = _SENTENCE_END.search(text)
    first = text[: end.start()] if end else text
    return first.strip() if _LEAD.match(first) else None


def parse_camera(prompt: str) -> CameraParse:
    sentence = camera_sentence(prompt)
    if sentence is None:
        return CameraParse((), None, "no camera sentence (the prompt does not start with 'Camera ...')")
    body = _LEAD.sub("", sentence, count=1).lower().strip()
    if not body:
        return CameraParse((), sentence, "camera sentence names no move")
    moves: list[Primitive] = []
    for clause in _JOINER.split(body):
        clause = _MANNER.sub("", _ARTICLE.sub("", clause.strip()))
        if not clause:
            continue
        move = next((p for p, rx in _CLAUSE if rx.fullmatch(clause)), None)
        if move is None:
            known = ", ".join(p.phrase for p in Primitive)
            return CameraParse((), sentence, f"unknown camera move {clause!r} (known: {known})")
        moves.append(move)
    if not moves:
        return CameraParse((), sentence, "camera sentence names no move")
    return CameraParse(tuple(moves), sentence)


def camera_sentence_for(moves: list[Primitive] | tuple[Primitive, ...]) -> str:
    """The inverse of `parse_camera`, in World-R1's wording: "Camera move left, pull out, then pan left."."""
    if not moves:
        raise ValueError("a camera sentence needs at least one move")
    phrases = [m.phrase for m in moves]
    if len(phrases) == 1:
        return f"Camera {phrases[0]}."
    return f"Camera {', '.join(phrases[:-1])}, then {phrases[-1]}."
