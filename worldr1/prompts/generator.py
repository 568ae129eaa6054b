"""Template prompts for users without a prompt set: camera move x subject x setting x light.

Deterministic for a seed. Subjects and settings are grouped by kind of place so a lighthouse
never stands in a library; the scenes are mostly static, which is what a 3D-consistency reward
can judge. Camera sentences follow World-R1's wording, so they parse with `parse_camera`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from worldr1.errors import UserError
from worldr1.prompts.camera import Primitive, camera_sentence_for

_PLACES: dict[str, tuple[list[str], list[str]]] = {
    "nature": (
        [
            "A weathered stone lighthouse",
            "A lone wind-bent cypress tree",
            "A moss-covered granite boulder",
            "A wooden fishing hut on stilts",
            "A ruined Roman aqueduct",
            "A red canoe pulled onto the shore",
            "A tall basalt sea stack",
            "A field of blooming lavender",
            "A small Norwegian stave church",
            "An ancient stone circle",
            "A hollow fallen redwood trunk",
            "A turquoise glacial lake",
        ],
        [
            "on a rocky headland above a grey sea",
            "in a misty pine valley",
            "at the edge of a desert canyon",
            "on a snowy alpine meadow",
            "beside a slow river lined with reeds",
            "in a tropical cove with white sand",
            "on a windswept moor of heather",
            "at the foot of a black volcanic ridge",
        ],
    ),
    "city": (
        [
            "A red telephone box",
            "A cast-iron fountain",
            "A row of pastel townhouses",
            "A vintage tram stopped at its platform",
            "A glass-domed market hall",
            "A bronze equestrian statue",
            "A narrow noodle shop with paper lanterns",
            "A brick clock tower",
            "A parked yellow taxi",
            "A newspaper kiosk covered in posters",
        ],
        [
            "on a cobblestone square in an old European town",
            "on a rain-soaked street in Tokyo",
            "in a quiet Havana plaza",
            "under an elevated railway in Chicago",
            "on a canal-side street in Amsterdam",
            "in a sunlit courtyard in Marrakesh",
            "at a crossroads in a small Italian hill town",
        ],
    ),
    "interior": (
        [
            "A grand piano",
            "A carved oak writing desk",
            "A copper espresso machine",
            "A potter's wheel with a half-made vase",
            "A four-poster bed",
            "A chess table with a game in progress",
            "A workbench covered in clock parts",
            "A velvet armchair beside a stack of books",
            "A long refectory table set for dinner",
        ],
        [
            "in a wood-panelled library",
            "in a bright Scandinavian loft",
            "in a cluttered artist's studio",
            "in the hall of a baroque palace",
            "in a tiled farmhouse kitchen",
            "in a dim candlelit cellar",
            "in a greenhouse full of ferns",
        ],
    ),
}

_LIGHT = [
    "lit by low golden-hour sun",
    "under a flat overcast sky",
    "in cool blue morning light",
    "in warm late-afternoon light with long shadows",
    "under soft diffuse light",
    "at dusk with the first lamps on",
    "in crisp midday light",
    "in hazy light after rain",
]

_DETAIL = [
    "Every surface shows fine texture, with a clear foreground, middle ground and background.",
    "The composition is calm and detailed, with strong depth and stable geometry.",
    "Materials read clearly: stone, wood, metal and glass each catch the light differently.",
    "The scene is still and quiet, photographed in sharp focus with natural colours.",
    "Small details fill the frame, from worn edges to scattered leaves and dust.",
]

_MOVES = [p for p in Primitive if p is not Primitive.FIXED]
# World-R1's three-part compounds: a sidestep that opens up, then turns back toward the scene.
_TRIPLES = [
    (Primitive.MOVE_LEFT, Primitive.PULL_OUT, Primitive.PAN_LEFT),
    (Primitive.MOVE_RIGHT, Primitive.PULL_OUT, Primitive.PAN_RIGHT),
]


@dataclass(frozen=True)
class GeneratedPrompt:
    text: str
    moves: tuple[Primitive, ...]
    index: int


def camera_moves(rng: np.random.Generator) -> tuple[Primitive, ...]:
    """Single moves half the time, World-R1's pairs most of the rest, its triples now and then."""
    kind = rng.random()
    if kind < 0.5:
        return (Primitive(rng.choice([*_MOVES, Primitive.FIXED])),)
    if kind < 0.9:
        first, second = rng.choice(len(_MOVES), size=2, replace=False)
        return (_MOVES[first], _MOVES[second])
    return _TRIPLES[rng.integers(len(_TRIPLES))]


def capacity() -> int:
    scenes = sum(len(s) * len(p) for s, p in _PLACES.values()) * len(_LIGHT) * len(_DETAIL)
    cameras = 1 + len(_MOVES) + len(_MOVES) * (len(_MOVES) - 1) + len(_TRIPLES)
    return scenes * cameras


def generate_prompts(count: int, seed: int) -> list[GeneratedPrompt]:
    """`count` distinct camera-tagged prompts, the same ones for the same seed."""
    if count > capacity() // 4:
        # Past a quarter of the space, rejection sampling slows and near-duplicates crowd in.
        raise UserError(
            f"prompts.generator.count={count} is more than the templates can make distinct ({capacity() // 4})",
            "lower prompts.generator.count or add prompt files under prompts.sources",
        )
    rng = np.random.default_rng(seed)
    kinds = list(_PLACES)
    seen: set[str] = set()
    out: list[GeneratedPrompt] = []
    while len(out) < count:
        subjects, settings = _PLACES[kinds[rng.integers(len(kinds))]]
        moves = camera_moves(rng)
        subject = subjects[rng.integers(len(subjects))]
        setting = settings[rng.integers(len(settings))]
        light = _LIGHT[rng.integers(len(_LIGHT))]
        detail = _DETAIL[rng.integers(len(_DETAIL))]
        text = f"{camera_sentence_for(moves)} {subject} {setting}, {light}. {detail}"
        if text in seen:
            continue
        seen.add(text)
        out.append(GeneratedPrompt(text, moves, len(out)))
    return out
