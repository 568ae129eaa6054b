"""Reconstructors (Depth Anything 3, the toy reconstructor) and what the reconstruct stage makes of their output.

The backends load lazily: a stage that only reads reconstructions (score) must not pay for
importing Depth Anything 3 and diffusers at every process start.
"""

from typing import Any

from worldr1.reconstruct.base import Reconstruction, Reconstructor
from worldr1.reconstruct.load import load_reconstructor
from worldr1.reconstruct.scene import (
    ReconstructionFailed,
    check_cameras,
    check_frames,
    reconstruction_gaussians,
    render_views,
)

__all__ = [
    "DA3Reconstructor",
    "Reconstruction",
    "ReconstructionFailed",
    "Reconstructor",
    "check_cameras",
    "check_frames",
    "load_reconstructor",
    "reconstruction_gaussians",
    "render_views",
]


def __getattr__(name: str) -> Any:
    if name == "DA3Reconstructor":
        from worldr1.reconstruct.da3 import DA3Reconstructor

        return DA3Reconstructor
    raise AttributeError(name)
