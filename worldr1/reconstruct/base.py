"""The reconstructor protocol: frames in, cameras + depth (+ Gaussians when the model makes them) out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from worldr1.geometry.cameras import Cameras
from worldr1.geometry.gaussians import Gaussians


@dataclass(frozen=True)
class Reconstruction:
    """One video's reconstruction, in our conventions.

    `depth`/`conf [F, h, w]` at the model's processing size, `images [F, h, w, 3]` (uint8) the
    frames at that size; `extrinsics [F, 4, 4]` world-to-camera and `intrinsics [F, 3, 3]` in
    pixels of the *input* frames (`frame_hw`), float64; `gaussians` only when the model predicts them.
    """

    depth: torch.Tensor
    conf: torch.Tensor
    images: np.ndarray
    extrinsics: np.ndarray
    intrinsics: np.ndarray
    frame_hw: tuple[int, int]
    gaussians: Gaussians | None = None

    @property
    def cameras(self) -> Cameras:
        return Cameras(self.extrinsics, self.intrinsics, *self.frame_hw)

    @property
    def process_hw(self) -> tuple[int, int]:
        return int(self.depth.shape[1]), int(self.depth.shape[2])


class Reconstructor(Protocol):
    #: identifies the model in artifacts' metadata
    name: str

    def reconstruct(self, frames: np.ndarray) -> Reconstruction:
        """`frames uint8 [F, H, W, 3]` -> Reconstruction."""
        ...
