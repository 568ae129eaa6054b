"""Deliberately 3D-inconsistent toy clips, and `make_clip`, which draws a whole labelled clip from a seed.

Real video models often break geometry: objects drift or pop, colours and sizes wander, the scene
turns into another one. A share of the toy training videos does the same on purpose, so the toy
policy pretrained on them breaks geometry too and the 3D reward has something to fix. Each
corruption takes the clip's scene, cameras and generator and returns one scene per frame (the
change starts at a frame drawn from the middle of the clip and touches an object the frames around
it see), or None where it cannot apply.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np

from worldr1.geometry.cameras import Cameras
from worldr1.ids import derive_seed
from worldr1.prompts.camera import Primitive
from worldr1.toyworld.prompt import toy_prompt
from worldr1.toyworld.render import SUPERSAMPLE, ToyVideo, render_scenes, toy_cameras
from worldr1.toyworld.scene import PALETTE, ToyObject, ToyScene, fits, make_scene

# Moved or resized objects may use a little more floor than make_scene gives them.
ROOM = 1.2
# A point counts as in view when it projects this far (share of the frame) inside the border.
VIEW_MARGIN = 0.1


class Corruption(StrEnum):
    OBJECT_JUMP = "object_jump"
    COLOUR_CHANGE = "colour_change"
    SIZE_CHANGE = "size_change"
    SCENE_SWAP = "scene_swap"


def switch_frame(frames: int, rng: np.random.Generator) -> int:
    """The first changed frame, from the middle half of the clip (at least one frame on each side)."""
    lo, hi = max(1, frames // 4), min(frames - 1, frames - frames // 4)
    return int(rng.integers(lo, max(lo, hi) + 1))


def in_view(point: np.ndarray, cameras: Cameras, frames: range) -> bool:
    """`point` projects inside every frame of `frames`, VIEW_MARGIN from the border."""
    for f in frames:
        cam = cameras.w2c[f, :3, :3] @ point + cameras.w2c[f, :3, 3]
        if cam[2] <= 0:
            return False
        u, v = (cameras.K[f] @ (cam / cam[2]))[:2]
        if not (
            VIEW_MARGIN * cameras.width <= u <= (1 - VIEW_MARGIN) * cameras.width
            and VIEW_MARGIN * cameras.height <= v <= (1 - VIEW_MARGIN) * cameras.height
        ):
            return False
    return True


def with_object(scene: ToyScene, index: int, obj: ToyObject) -> ToyScene:
    return replace(scene, objects=scene.objects[:index] + (obj,) + scene.objects[index + 1 :])


def from_frame(scene: ToyScene, changed: ToyScene, start: int, frames: int) -> list[ToyScene]:
    return [scene] * start + [changed] * (frames - start)


def seen_objects(scene: ToyScene, cameras: Cameras, frames: range) -> list[int]:
    """Indices of the objects whose centre every frame of `frames` sees: a change to one of them shows."""
    return [k for k, o in enumerate(scene.objects) if in_view(o.centre, cameras, frames)]


def pick_seen_object(scene: ToyScene, cameras: Cameras, rng: np.random.Generator) -> tuple[int, int] | None:
    """The switch frame and an object seen on both sides of it (a change nobody sees teaches nothing)."""
    start = switch_frame(len(cameras), rng)
    seen = seen_objects(scene, cameras, range(start - 1, start + 1))
    return (start, int(rng.choice(seen))) if seen else None


def object_jump(scene: ToyScene, cameras: Cameras, rng: np.random.Generator) -> list[ToyScene] | None:
    """A seen object teleports, clear of where it stood, to a free spot that the later frames see."""
    picked = pick_seen_object(scene, cameras, rng)
    if picked is None:
        return None
    start, index = picked
    obj = scene.objects[index]
    others = scene.objects[:index] + scene.objects[index + 1 :]
    reach = ROOM * scene.radius - obj.footprint
    for _ in range(300):
        r, a = reach * math.sqrt(float(rng.random())), 2 * math.pi * float(rng.random())
        moved = replace(obj, position=(r * math.cos(a), r * math.sin(a)))
        # Old and new footprints must not overlap: the jump leaves floor where the object was.
        apart = math.dist(moved.position, obj.position) >= 2 * obj.footprint + 0.1
        if (
            apart
            and fits(moved, others, ROOM * scene.radius)
            and in_view(moved.centre, cameras, range(start, len(cameras)))
        ):
            return from_frame(scene, with_object(scene, index, moved), start, len(cameras))
    return None


def colour_change(scene: ToyScene, cameras: Cameras, rng: np.random.Generator) -> list[ToyScene] | None:
    """A seen object takes a colour no object of the scene has."""
    picked = pick_seen_object(scene, cameras, rng)
    if picked is None:
        return None
    start, index = picked
    unused = sorted(set(PALETTE) - {o.colour for o in scene.objects})
    colour = str(rng.choice(unused))
    changed = replace(scene.objects[index], colour=colour, rgb=PALETTE[colour])
    return from_frame(scene, with_object(scene, index, changed), start, len(cameras))


def size_change(scene: ToyScene, cameras: Cameras, rng: np.random.Generator) -> list[ToyScene] | None:
    """A seen object grows by half or more where there is room, else shrinks to about half its size."""
    picked = pick_seen_object(scene, cameras, rng)
    if picked is None:
        return None
    start, index = picked
    obj = scene.objects[index]
    others = scene.objects[:index] + scene.objects[index + 1 :]
    grown = replace(obj, size=obj.size * float(rng.uniform(1.5, 1.8)))
    shrunk = replace(obj, size=obj.size * float(rng.uniform(0.45, 0.6)))
    grow = bool(rng.random() < 0.5) and fits(grown, others, ROOM * scene.radius)
    return from_frame(scene, with_object(scene, index, grown if grow else shrunk), start, len(cameras))


def scene_swap(scene: ToyScene, cameras: Cameras, rng: np.random.Generator) -> list[ToyScene]:
    """From a frame in the middle on, the clip shows another seed's scene."""
    start = switch_frame(len(cameras), rng)
    other = scene
    while other == scene:
        other = make_scene(int(rng.integers(2**62)))
    return from_frame(scene, other, start, len(cameras))


CORRUPTIONS: dict[Corruption, Callable[[ToyScene, Cameras, np.random.Generator], list[ToyScene] | None]] = {
    Corruption.OBJECT_JUMP: object_jump,
    Corruption.COLOUR_CHANGE: colour_change,
    Corruption.SIZE_CHANGE: size_change,
    Corruption.SCENE_SWAP: scene_swap,
}


def draw_primitives(rng: np.random.Generator) -> tuple[Primitive, ...]:
    """Half single moves (any of the grammar's, fixed included), half two different moving ones."""
    moving = [p for p in Primitive if p is not Primitive.FIXED]
    if rng.random() < 0.5:
        return (Primitive(rng.choice(list(Primitive))),)
    first, second = rng.choice(len(moving), size=2, replace=False)
    return moving[first], moving[second]


@dataclass(frozen=True)
class ClipPlan:
    """Everything about a clip but its pixels: cheap to draw, so datasets can be listed and balanced."""

    seed: int
    primitives: tuple[Primitive, ...]
    scene: ToyScene
    cameras: Cameras
    scenes: tuple[ToyScene, ...]  # what each frame shows
    corruption: Corruption | None

    @property
    def prompt(self) -> str:
        return toy_prompt(self.scene, self.primitives)

    @property
    def corruption_frame(self) -> int | None:
        """The first frame that shows something else than frame 0's scene."""
        return next((f for f, s in enumerate(self.scenes) if s != self.scene), None)


@dataclass(frozen=True)
class ToyClip:
    """One training clip: its prompt and moves, the scene of frame 0, the render, and its label."""

    seed: int
    prompt: str
    primitives: tuple[Primitive, ...]
    scene: ToyScene
    video: ToyVideo
    corruption: Corruption | None = None
    corruption_frame: int | None = None  # the first frame that differs

    @property
    def consistent(self) -> bool:
        return self.corruption is None


def corrupt(scene: ToyScene, cameras: Cameras, rng: np.random.Generator) -> tuple[Corruption, list[ToyScene]]:
    """A corruption drawn uniformly; one that cannot apply here (no object in view at the switch, no
    free spot to jump to) gives way to the next in a drawn order (a scene swap always applies)."""
    for kind in rng.permutation(list(Corruption)):
        scenes = CORRUPTIONS[Corruption(kind)](scene, cameras, rng)
        if scenes is not None:
            return Corruption(kind), scenes
    raise AssertionError("scene_swap always applies")


def clip_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, "toyworld", "clip"))


def clip_prompt(seed: int) -> str:
    """The prompt of the clip `seed` (what `plan_clip(seed, ...).prompt` is), without planning it."""
    return toy_prompt(make_scene(seed), draw_primitives(clip_rng(seed)))


def plan_clip(seed: int, frames: int, height: int, width: int, inconsistent_share: float) -> ClipPlan:
    """Moves, scene, cameras and maybe a corruption, deterministically from `seed`."""
    if not 0.0 <= inconsistent_share <= 1.0:
        raise ValueError(f"inconsistent_share must be in [0, 1], got {inconsistent_share}")
    rng = clip_rng(seed)
    primitives = draw_primitives(rng)
    scene = make_scene(seed)
    cameras = toy_cameras(primitives, frames, scene, height, width)
    # The draw comes first, so a seed is corrupted or not whatever the clip's length.
    if rng.random() < inconsistent_share and frames >= 2:
        kind, scenes = corrupt(scene, cameras, rng)
        return ClipPlan(seed, primitives, scene, cameras, tuple(scenes), kind)
    return ClipPlan(seed, primitives, scene, cameras, (scene,) * frames, None)


def render_clip(plan: ClipPlan, supersample: int = SUPERSAMPLE) -> ToyClip:
    video = render_scenes(plan.scenes, plan.cameras, supersample)
    return ToyClip(plan.seed, plan.prompt, plan.primitives, plan.scene, video, plan.corruption, plan.corruption_frame)


def make_clip(
    seed: int, frames: int, height: int, width: int, inconsistent_share: float, supersample: int = SUPERSAMPLE
) -> ToyClip:
    """A labelled, rendered toy clip, deterministically from `seed`."""
    return render_clip(plan_clip(seed, frames, height, width, inconsistent_share), supersample)
