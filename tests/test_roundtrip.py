"""The ground the 3D reward stands on: a consistent video reconstructs into a scene that renders its
held-out views back closely, and an inconsistent one (shuffled frames, per-frame noise) does not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from worldr1.geometry.cameras import Cameras
from worldr1.geometry.gaussians import Gaussians, depth_edges, pixel_gaussians
from worldr1.geometry.raster import render
from worldr1.geometry.synthetic import card_scene, orbit_cameras

SIZE = 128
ANGLES = np.linspace(-10.0, 10.0, 8)


def shoot(g: Gaussians, cams: Cameras):  # noqa: ANN201
    return render(g, torch.from_numpy(cams.w2c).float(), torch.from_numpy(cams.K).float(), SIZE, SIZE, "torch")


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(-10 * torch.log10(((a - b) ** 2).mean()))


@pytest.fixture(scope="module")
def filmed() -> dict:
    scene = card_scene(seed=0)
    train = orbit_cameras(ANGLES, SIZE, SIZE)
    held_out = orbit_cameras((ANGLES[:-1] + ANGLES[1:])[::2] / 2, SIZE, SIZE)  # between the input cameras
    frames = shoot(scene, train)
    return {"train": train, "held_out": held_out, "frames": frames, "truth": shoot(scene, held_out).rgb}


def rebuild(filmed: dict, rgb: torch.Tensor) -> torch.Tensor:
    """Reconstruct from the true depth and cameras with the given frames, render the held-out views."""
    frames, train = filmed["frames"], filmed["train"]
    mask = (frames.alpha > 0.99) & ~depth_edges(frames.depth)
    g = pixel_gaussians(rgb, frames.depth, mask, torch.from_numpy(train.K).float(), torch.from_numpy(train.w2c).float())
    return shoot(g, filmed["held_out"]).rgb


def test_consistent_video_renders_back_at_30_db(filmed: dict) -> None:
    assert float(filmed["frames"].alpha.mean()) > 0.99  # the wall fills the frames
    assert psnr(rebuild(filmed, filmed["frames"].rgb), filmed["truth"]) >= 30.0


def test_inconsistent_videos_render_back_much_worse(filmed: dict) -> None:
    good = psnr(rebuild(filmed, filmed["frames"].rgb), filmed["truth"])
    shuffled = filmed["frames"].rgb[torch.tensor([3, 6, 0, 7, 1, 5, 2, 4])]
    noise = 0.1 * torch.randn(filmed["frames"].rgb.shape, generator=torch.Generator().manual_seed(5))
    noisy = (filmed["frames"].rgb + noise).clamp(0, 1)
    assert psnr(rebuild(filmed, shuffled), filmed["truth"]) < good - 10
    assert psnr(rebuild(filmed, noisy), filmed["truth"]) < good - 4
