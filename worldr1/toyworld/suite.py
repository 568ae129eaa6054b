"""The reward-validity suite: labelled toy videos from seeds no pretraining clip or prompt uses.

For each seed, the sound clip (a static scene filmed along its prompt's camera path) and its
twins, all for the same prompt:
- each corruption of `corrupt.CORRUPTIONS` that applies to the clip (an object jumps, changes
  colour or size mid-clip, the scene swaps), rendered with the same cameras;
- videos a feed-forward reconstructor is known to be fooled by: `frozen` (frame 0 repeated),
  `noise` (fresh uniform noise every frame), `shuffled` (the sound frames out of order) and
  `flicker` (the sound frames under a per-frame brightness gain).

Each video keeps its true per-frame depth and cameras where they exist, so the same suite also
measures the reward with a perfect reconstructor (`TrueGeometry`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from worldr1.ids import derive_seed
from worldr1.toyworld.corrupt import CORRUPTIONS, Corruption, plan_clip
from worldr1.toyworld.render import SUPERSAMPLE, ToyVideo, render_scenes

SOUND = "consistent"
#: the twins that are not corruptions of the scene, in the order they are made
DEGENERATE = ("frozen", "noise", "shuffled", "flicker")
#: every label a suite video can have, sound first
KINDS = (SOUND, *(c.value for c in Corruption), *DEGENERATE)


@dataclass(frozen=True)
class SuiteVideo:
    """One labelled video: `frames uint8 [F, H, W, 3]`; true `depth [F, H, W]`, `w2c [F, 4, 4]` and
    `K [F, 3, 3]` (None where no true geometry exists: noise)."""

    seed: int
    kind: str
    prompt: str
    frames: np.ndarray
    depth: np.ndarray | None
    w2c: np.ndarray | None
    K: np.ndarray | None


def suite_seed(seed: int, index: int) -> int:
    """Scenes of their own: neither toy-data's nor the prompts stage's seeds."""
    return derive_seed(seed, "reward-validity", index) % 2**31


def _video(seed: int, kind: str, prompt: str, v: ToyVideo) -> SuiteVideo:
    return SuiteVideo(seed, kind, prompt, v.frames, v.depth, v.w2c, v.K)


def twins(seed: int, frames: int, height: int, width: int, supersample: int = SUPERSAMPLE) -> list[SuiteVideo]:
    """The sound clip of `seed` and every twin that applies, sound first, in `KINDS` order."""
    plan = plan_clip(seed, frames, height, width, inconsistent_share=0.0)
    sound = render_scenes(plan.scenes, plan.cameras, supersample)
    out = [_video(seed, SOUND, plan.prompt, sound)]
    rng = np.random.default_rng(derive_seed(seed, "reward-validity", "twins"))
    for kind, corrupt in CORRUPTIONS.items():
        scenes = corrupt(plan.scene, plan.cameras, rng)
        if scenes is not None:
            out.append(_video(seed, kind.value, plan.prompt, render_scenes(scenes, plan.cameras, supersample)))
    n = len(sound.frames)
    frozen = np.repeat(sound.frames[:1], n, 0)
    out.append(
        SuiteVideo(
            seed,
            "frozen",
            plan.prompt,
            frozen,
            np.repeat(sound.depth[:1], n, 0),
            np.repeat(sound.w2c[:1], n, 0),
            np.repeat(sound.K[:1], n, 0),
        )
    )
    out.append(
        SuiteVideo(
            seed, "noise", plan.prompt, rng.integers(0, 256, sound.frames.shape, dtype=np.uint8), None, None, None
        )
    )
    order = np.arange(n)
    while n > 1 and (order == np.arange(n)).all():
        order = rng.permutation(n)
    out.append(
        SuiteVideo(
            seed, "shuffled", plan.prompt, sound.frames[order], sound.depth[order], sound.w2c[order], sound.K[order]
        )
    )
    gain = rng.uniform(0.6, 1.4, size=(n, 1, 1, 1))
    flicker = np.clip(np.round(sound.frames.astype(np.float64) * gain), 0, 255).astype(np.uint8)
    out.append(SuiteVideo(seed, "flicker", plan.prompt, flicker, sound.depth, sound.w2c, sound.K))
    return out


def make_suite(
    seed: int, clips: int, frames: int, height: int, width: int, supersample: int = SUPERSAMPLE
) -> Iterator[list[SuiteVideo]]:
    """`clips` seeds' twin lists, one seed at a time (rendering is the slow part)."""
    for i in range(clips):
        yield twins(suite_seed(seed, i), frames, height, width, supersample)


def frames_key(frames: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(frames).tobytes() + str(frames.shape).encode()).hexdigest()
