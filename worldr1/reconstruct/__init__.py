"""Reconstructors (Depth Anything 3) and what the reconstruct stage makes of their output."""

from worldr1.reconstruct.base import Reconstruction, Reconstructor
from worldr1.reconstruct.da3 import DA3Reconstructor, load_reconstructor
from worldr1.reconstruct.scene import ReconstructionFailed, check_cameras, check_frames, render_views, scene_gaussians

__all__ = [
    "DA3Reconstructor",
    "Reconstruction",
    "ReconstructionFailed",
    "Reconstructor",
    "check_cameras",
    "check_frames",
    "load_reconstructor",
    "render_views",
    "scene_gaussians",
]
