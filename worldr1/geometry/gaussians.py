"""3D Gaussians, and pixel-aligned Gaussians unprojected from depth maps."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch


@dataclass(frozen=True)
class Gaussians:
    """`N` Gaussians in world space (float32 tensors on one device).

    `scales` are standard deviations along the local axes, `quats` are (w, x, y, z), `opacities`
    in [0, 1]. Colour is either `colors [N, 3]` in [0, 1] or spherical harmonics `sh [N, K, 3]`
    (K = (degree + 1)^2, gsplat's layout).
    """

    means: torch.Tensor
    scales: torch.Tensor
    quats: torch.Tensor
    opacities: torch.Tensor
    colors: torch.Tensor | None = None
    sh: torch.Tensor | None = None

    def __post_init__(self) -> None:
        n = self.means.shape[0]
        if (self.colors is None) == (self.sh is None):
            raise ValueError("give exactly one of colors or sh")
        shapes = {"means": (n, 3), "scales": (n, 3), "quats": (n, 4), "opacities": (n,)}
        for name, shape in shapes.items():
            if tuple(getattr(self, name).shape) != shape:
                raise ValueError(f"{name} must be {list(shape)}, got {list(getattr(self, name).shape)}")

    def __len__(self) -> int:
        return int(self.means.shape[0])

    @property
    def sh_degree(self) -> int | None:
        return None if self.sh is None else int(round(self.sh.shape[1] ** 0.5)) - 1

    def to(self, device: torch.device | str) -> Gaussians:
        return replace(self, **{k: None if v is None else v.to(device) for k, v in self._tensors().items()})  # type: ignore[arg-type]

    def _tensors(self) -> dict[str, torch.Tensor | None]:
        return {k: getattr(self, k) for k in ("means", "scales", "quats", "opacities", "colors", "sh")}

    @staticmethod
    def concat(parts: list[Gaussians]) -> Gaussians:
        if not parts:
            raise ValueError("nothing to concatenate")
        fields = parts[0]._tensors()
        return Gaussians(
            **{k: None if fields[k] is None else torch.cat([getattr(p, k) for p in parts]) for k in fields}  # type: ignore[arg-type]
        )


def depth_edges(depth: torch.Tensor, rel: float = 0.02) -> torch.Tensor:
    """Pixels of `depth [F, H, W]` that sit between two depth layers of their 3x3 neighbourhood.

    Such pixels blend a foreground and a background; unprojected, they become "flying pixels" in
    mid-air that smear silhouettes in every other view. On a slope both differences are about the
    per-pixel change in depth, so only slopes steeper than `rel` per pixel are flagged.
    """
    d = depth[:, None]
    hi = torch.nn.functional.max_pool2d(d, 3, 1, 1)[:, 0]
    lo = -torch.nn.functional.max_pool2d(-d, 3, 1, 1)[:, 0]
    return ((depth - lo) > rel * depth) & ((hi - depth) > rel * depth)


def unproject_depth(depth: torch.Tensor, K: torch.Tensor, w2c: torch.Tensor) -> torch.Tensor:
    """World points `[H, W, 3]` of a depth map (z along the optical axis) seen by one camera."""
    h, w = depth.shape
    v, u = torch.meshgrid(
        torch.arange(h, dtype=depth.dtype) + 0.5, torch.arange(w, dtype=depth.dtype) + 0.5, indexing="ij"
    )
    x = (u - K[0, 2]) / K[0, 0] * depth
    y = (v - K[1, 2]) / K[1, 1] * depth
    cam = torch.stack([x, y, depth], -1)
    c2w = torch.linalg.inv(w2c)
    return cam @ c2w[:3, :3].T + c2w[:3, 3]


def pixel_gaussians(
    frames: torch.Tensor,
    depth: torch.Tensor,
    mask: torch.Tensor,
    K: torch.Tensor,
    w2c: torch.Tensor,
    size: float = 0.3,
    opacity: float = 0.99,
) -> Gaussians:
    """One isotropic Gaussian per masked pixel, at its unprojected depth, with the pixel's colour.

    `frames [F, H, W, 3]` in [0, 1], `depth`/`mask [F, H, W]` at the same size, `K [F, 3, 3]`,
    `w2c [F, 4, 4]`. A Gaussian's std is `size` pixels at its depth: with the rasteriser's own
    0.3 px^2 low-pass that is a 0.6 px footprint, enough to close the surface between pixels
    while a foreground edge spills as little as possible over what lies behind it.
    """
    parts = []
    for f in range(frames.shape[0]):
        m = mask[f]
        if not bool(m.any()):
            continue
        pts = unproject_depth(depth[f], K[f], w2c[f])[m]
        focal = 0.5 * (K[f, 0, 0] + K[f, 1, 1])
        sigma = (size * depth[f][m] / focal)[:, None].expand(-1, 3)
        n = pts.shape[0]
        quats = torch.zeros((n, 4), dtype=pts.dtype)
        quats[:, 0] = 1
        parts.append(
            Gaussians(
                pts.float(),
                sigma.float().contiguous(),
                quats.float(),
                torch.full((n,), opacity, dtype=torch.float32),
                colors=frames[f][m].float(),
            )
        )
    if not parts:
        raise ValueError("no confident pixel to build Gaussians from")
    return Gaussians.concat(parts)
