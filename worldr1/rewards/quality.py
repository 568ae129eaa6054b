"""`r_gen`: an image-quality score of a video's frames, behind one small interface.

World-R1 uses HPSv2.1 (its code) / HPSv3 (its paper). Neither package nor weights can be had on
every machine, so `sharpness` is the documented stand-in: the mean gradient magnitude of the
frames, squashed to [0, 1]. It knows nothing of prompts or aesthetics; it only keeps a policy
from buying 3D consistency with blur, which is the failure a quality term guards against.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from worldr1.errors import UserError

#: Mean gradient (per pixel, in [0, 1] units) at which the sharpness score reaches tanh(1) = 0.76.
SHARPNESS_SCALE = 0.05


class QualityModel(Protocol):
    name: str

    def score(self, frames: np.ndarray, prompt: str) -> float:
        """uint8 `[F, H, W, 3]` frames -> quality in [0, 1]."""
        ...


class Sharpness:
    name = "sharpness"

    def score(self, frames: np.ndarray, prompt: str) -> float:
        gray = frames.astype(np.float32).mean(-1) / 255.0
        gx = np.abs(np.diff(gray, axis=2)).mean()
        gy = np.abs(np.diff(gray, axis=1)).mean()
        return float(np.tanh(0.5 * (gx + gy) / SHARPNESS_SCALE))


def load_quality(name: str) -> QualityModel:
    if name == "sharpness":
        return Sharpness()
    raise UserError(f"unknown reward.quality {name!r}", "use sharpness (HPSv2.1 is not wired in yet)")
