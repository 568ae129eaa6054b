"""Toy prompts: the camera sentence in the project's grammar, then what the scene holds.

"Camera orbit left. A red cube beside a blue sphere on a grey and white checkered floor under a
blue sky." The camera sentence is written by `camera_sentence_for`, the inverse of `parse_camera`,
so the prompts stage and the target path read back exactly the moves the clip was filmed with.
Objects are named left to right as the first camera sees them, so the words carry the layout.
"""

from __future__ import annotations

from collections.abc import Sequence

from worldr1.prompts.camera import Primitive, camera_sentence_for
from worldr1.toyworld.scene import ToyObject, ToyScene


def with_article(words: str) -> str:
    return f"{'an' if words[0] in 'aeiou' else 'a'} {words}"


def object_phrase(obj: ToyObject) -> str:
    return with_article(f"{obj.colour} {obj.shape.value}")


def description(scene: ToyScene) -> str:
    """One sentence: the objects left to right, the floor and the sky."""
    names = [object_phrase(o) for o in scene.objects]
    where = f"a {scene.floor} checkered floor under {with_article(scene.sky)} sky"
    if not names:
        return f"An empty {where.removeprefix('a ')}."
    if len(names) == 1:
        things = names[0]
    elif len(names) == 2:
        things = f"{names[0]} beside {names[1]}"
    else:
        things = f"{', '.join(names[:-1])} and {names[-1]}"
    return f"{things[0].upper()}{things[1:]} on {where}."


def toy_prompt(scene: ToyScene, primitives: Sequence[Primitive]) -> str:
    return f"{camera_sentence_for(tuple(primitives))} {description(scene)}"
