"""`r_gen`: an image-quality score of a video's frames, behind one small interface.

World-R1 uses HPSv2.1 (its code) / HPSv3 (its paper): `hpsv2.1` (worldr1/rewards/hps.py), which
the Wan profiles use. Its weights cannot be had on every machine, and the toy world's 32 px clips
are not what it was trained on, so `sharpness` is the toy profiles' stand-in: the mean gradient
magnitude of the frames, squashed to [0, 1]. It knows nothing of prompts or aesthetics and pays for
grain; it only keeps a policy from buying 3D consistency with blur. `hpsv2.1-tiny` is HPSv2.1's
code with tiny random weights, for tests and CPU runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from worldr1.errors import UserError
from worldr1.ids import derive_seed

if TYPE_CHECKING:
    from worldr1.rewards.score import TermInput

#: Mean gradient (per pixel, in [0, 1] units) at which the sharpness score reaches tanh(1) = 0.76.
SHARPNESS_SCALE = 0.05


class QualityModel(Protocol):
    name: str

    def score(self, frames: np.ndarray, prompt: str, seed: int) -> float:
        """uint8 `[F, H, W, 3]` frames and their prompt -> quality; `seed` (the sample's) draws any
        randomness, such as the frame HPSv2.1 looks at."""
        ...


class Sharpness:
    name = "sharpness"

    def score(self, frames: np.ndarray, prompt: str, seed: int = 0) -> float:
        gray = frames.astype(np.float32).mean(-1) / 255.0
        gx = np.abs(np.diff(gray, axis=2)).mean()
        gy = np.abs(np.diff(gray, axis=1)).mean()
        return float(np.tanh(0.5 * (gx + gy) / SHARPNESS_SCALE))


def load_quality(name: str) -> QualityModel:
    """The r_gen model of params; HPSv2.1's weights missing is one UserError naming the file, never
    a silent fall back to the stand-in."""
    if name == "sharpness":
        return Sharpness()
    if name in ("hpsv2.1", "hpsv2.1-tiny"):
        from worldr1.rewards.hps import HPSv21  # open_clip only when asked for

        return HPSv21.tiny() if name == "hpsv2.1-tiny" else HPSv21.load()
    raise UserError(f"unknown reward.quality {name!r}", "use sharpness, hpsv2.1 or hpsv2.1-tiny")


def r_gen_columns(v: TermInput) -> dict[str, object]:
    """r_gen of the video and its prompt, with randomness (HPSv2.1's frame) seeded by the sample."""
    seed = derive_seed(v.params.seed, str(v.row["sample_id"]), "r_gen")
    return {"r_gen": v.quality.score(v.video, str(v.row["prompt"]), seed)}
