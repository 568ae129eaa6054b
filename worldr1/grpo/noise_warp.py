"""Camera-aware latent initialisation (World-R1's noise warping, after Go-with-the-Flow), simplified.

The initial noise of each latent frame borrows the first frame's noise along the motion the
prompt asks for: pixels are mapped by the homography of a fronto-parallel plane in front of the
first camera as it moves along the target path, and the borrowed noise is mixed with the frame's
own fresh noise so every element stays N(0, 1). Where the path reveals pixels the first frame
never saw, the frame keeps its own noise. The result is the same Gaussian marginal with a
temporal correlation that already "moves" the way the camera should.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from worldr1.prompts.camera import Primitive
from worldr1.prompts.camera_path import MotionScale, target_path

#: Share of a warped element that comes from the first frame (the rest is fresh noise).
WARP_WEIGHT = 0.7
#: Horizontal field of view assumed for the latent grid.
FOV_DEG = 60.0
#: Wan's VAE: latent frame k starts at video frame 4k.
TEMPORAL_STRIDE = 4


def plane_depth(scale: MotionScale) -> float:
    """Depth of the assumed scene plane: far enough that a full push-in stops halfway to it."""
    return 2.0 * max(scale.push, scale.orbit_radius)


def homographies(
    moves: Sequence[Primitive], latent_frames: int, height: int, width: int, scale: MotionScale
) -> np.ndarray:
    """`[T, 3, 3]` maps from latent-frame-0 pixels to latent-frame-k pixels (float64)."""
    video_frames = (latent_frames - 1) * TEMPORAL_STRIDE + 1
    w2c = target_path(moves, video_frames, scale)[::TEMPORAL_STRIDE]
    f = width / (2 * math.tan(math.radians(FOV_DEG) / 2))
    k = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])
    k_inv = np.linalg.inv(k)
    normal = np.array([0.0, 0.0, 1.0])
    depth = plane_depth(scale)
    return np.stack([k @ (m[:3, :3] + np.outer(m[:3, 3], normal) / depth) @ k_inv for m in w2c])


def warp_noise(
    noise: torch.Tensor, moves: Sequence[Primitive], scale: MotionScale, weight: float = WARP_WEIGHT
) -> torch.Tensor:
    """Camera-aware version of i.i.d. noise `[..., C, T, H, W]` (same shape, N(0, 1) elements); leading
    dimensions (a prompt's group) share the one warp of the prompt's path."""
    shape = noise.shape
    noise = noise.reshape(-1, *shape[-3:])
    _, t, h, w = noise.shape
    hs = homographies(moves, t, h, w, scale)
    v, u = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    pixels = np.stack([u.ravel(), v.ravel(), np.ones(u.size)])
    out = noise.clone()
    first = noise[:, 0].reshape(noise.shape[0], -1)
    mix = math.sqrt(1 - weight**2)
    for k in range(1, t):
        src = np.linalg.inv(hs[k]) @ pixels
        in_front = src[2] > 1e-9
        su = np.floor(src[0] / np.where(in_front, src[2], 1.0)).astype(np.int64)
        sv = np.floor(src[1] / np.where(in_front, src[2], 1.0)).astype(np.int64)
        valid = in_front & (su >= 0) & (su < w) & (sv >= 0) & (sv < h)
        idx = torch.from_numpy(np.flatnonzero(valid))
        gathered = first[:, torch.from_numpy(sv[valid] * w + su[valid])]
        frame = out[:, k].reshape(noise.shape[0], -1)
        frame[:, idx] = weight * gathered + mix * frame[:, idx]
        out[:, k] = frame.reshape(noise.shape[0], h, w)
    return out.reshape(shape)
