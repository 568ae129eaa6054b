"""Synthetic Gaussian scenes with known geometry: textured opaque surfaces, and camera arcs to film them.

Surfaces are grids of flat, fully opaque Gaussians, so every pixel sees one depth (what a depth
reconstructor recovers) and a scene re-rendered from its own depth can match its frames closely.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from worldr1.geometry.cameras import Cameras, intrinsics_from_fov, look_at
from worldr1.geometry.gaussians import Gaussians
from worldr1.geometry.paths import rotation_to_quat


def texture(seed: int, frequency: float = 2.0):  # noqa: ANN201
    """A smooth colour field over 3D points: a base colour plus three random sinusoids."""
    g = torch.Generator().manual_seed(seed)
    waves = torch.randn(3, 3, generator=g) * frequency
    phase = torch.rand(3, generator=g) * 2 * math.pi
    base = torch.rand(3, generator=g) * 0.6 + 0.2
    return lambda p: (base + 0.25 * torch.sin(p @ waves.T + phase)).clamp(0, 1)


def surface(origin: torch.Tensor, u: torch.Tensor, v: torch.Tensor, nu: int, nv: int, color) -> Gaussians:  # noqa: ANN001
    """The parallelogram `origin + a u + b v` (a, b in [0, 1]) as `nu x nv` flat opaque Gaussians."""
    i, j = torch.meshgrid(torch.arange(nu) + 0.5, torch.arange(nv) + 0.5, indexing="ij")
    points = origin + (i / nu).reshape(-1, 1) * u + (j / nv).reshape(-1, 1) * v
    n = points.shape[0]
    ex, ey = u / u.norm(), v / v.norm()
    rot = torch.stack([ex, ey, torch.linalg.cross(ex, ey)], 1)
    quat = torch.from_numpy(rotation_to_quat(rot.double().numpy())).float()
    scales = torch.tensor([0.7 * float(u.norm()) / nu, 0.7 * float(v.norm()) / nv, 1e-3])
    return Gaussians(
        points.float(),
        scales.expand(n, 3).contiguous(),
        quat.expand(n, 4).contiguous(),
        torch.ones(n),
        colors=color(points).float(),
    )


def card_scene(seed: int = 0, cards: int = 3, density: float = 40.0) -> Gaussians:
    """A textured back wall at z = 9 and `cards` textured cards floating in front of it (z 4 to 6)."""
    rng = np.random.default_rng(seed)
    t = torch.tensor
    parts = [
        surface(
            t([-6.0, -5.0, 9.0]),
            t([12.0, 0.0, 0.0]),
            t([0.0, 10.0, 0.0]),
            int(13 * density / 4),
            int(10.8 * density / 4),
            texture(seed * 100 + 1),
        )
    ]
    for k in range(cards):
        size = float(rng.uniform(0.9, 1.6))
        x, y, z = rng.uniform(-2.0, 0.8), rng.uniform(-1.2, 0.6), rng.uniform(4.0, 6.0)
        n = max(2, int(size * density))
        parts.append(
            surface(t([x, y, z]), t([size, 0.0, 0.0]), t([0.0, size, 0.0]), n, n, texture(seed * 100 + 10 + k, 3.0))
        )
    return Gaussians.concat(parts)


def orbit_cameras(
    angles_deg: np.ndarray,
    height: int,
    width: int,
    radius: float = 5.0,
    fov_deg: float = 50.0,
    target: tuple[float, float, float] = (0.0, 0.0, 5.0),
) -> Cameras:
    """Cameras on a horizontal arc around `target`, all looking at it (angle 0 is at the origin)."""
    tgt = np.array(target)
    w2c = np.stack(
        [look_at(tgt + radius * np.array([math.sin(a), 0.0, -math.cos(a)]), tgt) for a in np.radians(angles_deg)]
    )
    return Cameras(w2c, np.repeat(intrinsics_from_fov(height, width, fov_deg)[None], len(w2c), 0), height, width)
