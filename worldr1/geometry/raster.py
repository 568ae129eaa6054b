"""Rendering Gaussians: gsplat's CUDA rasteriser when it can run, else a pure-torch tiled one.

The torch path projects with gsplat's own torch reference code (`gsplat.cuda._torch_impl`) and
composites front to back per tile of pixels with the CUDA kernel's rules: alpha = min(0.999,
opacity * exp(-sigma)), contributions under 1/255 skipped, a pixel stops once its transmittance
would fall to 1e-4. Dense compositing (every Gaussian against every pixel) needs gigabytes at
128 px, so only the Gaussians whose 3-sigma box touches a tile are composited for that tile,
tiles batched with padding up to a memory budget. Everything is differentiable.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from typing import Literal

import torch

from worldr1.geometry.gaussians import Gaussians

log = logging.getLogger("worldr1.raster")

Backend = Literal["auto", "gsplat", "torch"]
ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.999
T_MIN = 1e-4
EPS2D = 0.3
NEAR, FAR = 0.01, 1e10
# Elements (pixels x Gaussians) composited at once by the torch path.
BUDGET = 4_000_000


@dataclass(frozen=True)
class Render:
    rgb: torch.Tensor  # [C, H, W, 3]
    depth: torch.Tensor  # [C, H, W] expected depth (0 where nothing was hit)
    alpha: torch.Tensor  # [C, H, W]


@cache
def gsplat_cuda_available() -> bool:
    if not torch.cuda.is_available():
        return False
    try:
        from gsplat.cuda._backend import _C  # compiled (or JIT-built) kernels

        return _C is not None
    except Exception:  # noqa: BLE001 - any import or build failure means "no kernels"
        return False


def choose_backend(requested: Backend, device: torch.device) -> Literal["gsplat", "torch"]:
    if requested == "torch":
        return "torch"
    if requested == "gsplat":
        if device.type != "cuda" or not gsplat_cuda_available():
            raise RuntimeError("reconstruct.renderer is gsplat but gsplat's CUDA kernels are not available here")
        return "gsplat"
    choice: Literal["gsplat", "torch"] = "gsplat" if device.type == "cuda" and gsplat_cuda_available() else "torch"
    _log_choice(choice)
    return choice


@cache
def _log_choice(choice: str) -> None:
    log.info(
        "rasteriser: %s", "gsplat (CUDA)" if choice == "gsplat" else "pure-torch tiled (gsplat kernels unavailable)"
    )


def auto_tile(width: int, height: int) -> int:
    """The torch rasteriser's tile: small images have few pixels per Gaussian, so small tiles keep
    each tile's Gaussian list short (5x faster at 32 px than 16-pixel tiles; the same pixels)."""
    side = max(width, height)
    return 4 if side <= 48 else 8 if side <= 128 else 16


def render(
    g: Gaussians,
    w2c: torch.Tensor,
    K: torch.Tensor,
    width: int,
    height: int,
    backend: Backend = "auto",
    tile_size: int | None = None,
    background: torch.Tensor | None = None,
) -> Render:
    """Render `g` from `C` cameras (`w2c [C, 4, 4]`, `K [C, 3, 3]`, float32 on g's device)."""
    w2c, K = w2c.to(g.means), K.to(g.means)
    tile_size = tile_size or auto_tile(width, height)
    if choose_backend(backend, g.means.device) == "gsplat":
        return _render_gsplat(g, w2c, K, width, height, background)
    return _render_torch(g, w2c, K, width, height, tile_size, background)


def _render_gsplat(
    g: Gaussians, w2c: torch.Tensor, K: torch.Tensor, width: int, height: int, background: torch.Tensor | None
) -> Render:
    from gsplat import rasterization

    colors = g.colors if g.sh is None else g.sh
    bg = None if background is None else torch.cat([background, background.new_zeros(1)]).expand(len(w2c), 4)
    out, alpha, _ = rasterization(
        g.means,
        g.quats,
        g.scales,
        g.opacities,
        colors,
        w2c,
        K,
        width,
        height,
        near_plane=NEAR,
        far_plane=FAR,
        eps2d=EPS2D,
        sh_degree=g.sh_degree,
        render_mode="RGB+ED",
        backgrounds=bg,
        packed=False,
    )
    return Render(out[..., :3], out[..., 3], alpha[..., 0])


def gaussian_colors(g: Gaussians, w2c: torch.Tensor) -> torch.Tensor:
    """Per-camera colours `[C, N, 3]` (spherical harmonics evaluated toward each camera)."""
    if g.sh is None:
        return g.colors.expand(len(w2c), -1, -1)  # type: ignore[union-attr]
    from gsplat.cuda._torch_impl import _spherical_harmonics

    centres = torch.linalg.inv(w2c)[:, :3, 3]
    dirs = g.means[None] - centres[:, None]
    sh = g.sh.expand(len(w2c), -1, -1, -1)
    return torch.clamp_min(_spherical_harmonics(g.sh_degree, dirs, sh) + 0.5, 0.0)


def project(g: Gaussians, w2c: torch.Tensor, K: torch.Tensor, width: int, height: int):  # noqa: ANN201
    """gsplat's torch projection: radii [C, N, 2], means2d [C, N, 2], depths [C, N], conics [C, N, 3]."""
    from gsplat.cuda._torch_impl import _fully_fused_projection, _quat_scale_to_covar_preci

    covars, _ = _quat_scale_to_covar_preci(g.quats, g.scales, compute_covar=True, compute_preci=False, triu=False)
    radii, means2d, depths, conics, _ = _fully_fused_projection(
        g.means, covars, w2c, K, width, height, eps2d=EPS2D, near_plane=NEAR, far_plane=FAR
    )
    return radii, means2d, depths, conics


def _render_torch(
    g: Gaussians,
    w2c: torch.Tensor,
    K: torch.Tensor,
    width: int,
    height: int,
    tile_size: int,
    background: torch.Tensor | None,
) -> Render:
    radii, means2d, depths, conics = project(g, w2c, K, width, height)
    colors = gaussian_colors(g, w2c)
    rgbs, ds, alphas = [], [], []
    for c in range(len(w2c)):
        rgb, d, a = composite(
            means2d[c], conics[c], depths[c], radii[c], g.opacities, colors[c], width, height, tile_size
        )
        if background is not None:
            rgb = rgb + (1 - a)[..., None] * background.to(rgb)
        rgbs.append(rgb)
        ds.append(torch.where(a > 0, d / a.clamp_min(1e-10), torch.zeros_like(d)))
        alphas.append(a)
    return Render(torch.stack(rgbs), torch.stack(ds), torch.stack(alphas))


def composite(
    means2d: torch.Tensor,
    conics: torch.Tensor,
    depths: torch.Tensor,
    radii: torch.Tensor,
    opacities: torch.Tensor,
    colors: torch.Tensor,
    width: int,
    height: int,
    tile_size: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Front-to-back compositing of one camera's projected Gaussians: (rgb [H, W, 3], accumulated
    depth [H, W], alpha [H, W])."""
    device, dtype = means2d.device, means2d.dtype
    rgb = torch.zeros((height * width, 3), device=device, dtype=dtype)
    acc_depth = torch.zeros(height * width, device=device, dtype=dtype)
    acc_alpha = torch.zeros(height * width, device=device, dtype=dtype)
    visible = (radii[:, 0] > 0) & (radii[:, 1] > 0)
    ids = torch.nonzero(visible).squeeze(1)
    if ids.numel() == 0:
        return rgb.view(height, width, 3), acc_depth.view(height, width), acc_alpha.view(height, width)
    ids = ids[torch.argsort(depths[ids].detach(), stable=True)]  # front to back

    tiles_x, tiles_y = -(-width // tile_size), -(-height // tile_size)
    m2d, rad = means2d[ids].detach(), radii[ids].to(dtype)
    tx0 = torch.floor((m2d[:, 0] - rad[:, 0]) / tile_size).clamp(0, tiles_x).long()
    tx1 = torch.ceil((m2d[:, 0] + rad[:, 0]) / tile_size).clamp(0, tiles_x).long()
    ty0 = torch.floor((m2d[:, 1] - rad[:, 1]) / tile_size).clamp(0, tiles_y).long()
    ty1 = torch.ceil((m2d[:, 1] + rad[:, 1]) / tile_size).clamp(0, tiles_y).long()
    nx, ny = (tx1 - tx0).clamp_min(0), (ty1 - ty0).clamp_min(0)
    counts = nx * ny
    # (tile, Gaussian) pairs; a stable sort by tile keeps each tile's Gaussians in depth order.
    owner = torch.repeat_interleave(torch.arange(len(ids), device=device), counts)
    start = torch.cumsum(counts, 0) - counts
    k = torch.arange(owner.numel(), device=device) - start[owner]
    tile = (ty0[owner] + k // nx[owner]) * tiles_x + tx0[owner] + k % nx[owner]
    tile, order = torch.sort(tile, stable=True)
    owner = owner[order]
    n_tiles = tiles_x * tiles_y
    per_tile = torch.bincount(tile, minlength=n_tiles)
    tile_start = torch.cumsum(per_tile, 0) - per_tile
    rank = torch.arange(tile.numel(), device=device) - tile_start[tile]

    # Pixel centres of a tile, relative to its corner.
    ly, lx = torch.meshgrid(
        torch.arange(tile_size, device=device), torch.arange(tile_size, device=device), indexing="ij"
    )
    local = torch.stack([lx.flatten(), ly.flatten()], -1)  # [P, 2]
    p = local.shape[0]
    occupied = torch.nonzero(per_tile).squeeze(1)
    a, b, c = conics[ids, 0], conics[ids, 1], conics[ids, 2]
    mean_x, mean_y = means2d[ids, 0], means2d[ids, 1]
    opac, col, dep = opacities[ids], colors[ids], depths[ids]

    i = 0
    while i < occupied.numel():
        # As many tiles as fit the budget at this chunk's widest tile.
        j = i + 1
        kmax = int(per_tile[occupied[i]])
        while j < occupied.numel() and (j - i + 1) * p * max(kmax, int(per_tile[occupied[j]])) <= BUDGET:
            kmax = max(kmax, int(per_tile[occupied[j]]))
            j += 1
        chunk = occupied[i:j]
        i = j
        slot = torch.full((chunk.numel(), kmax), -1, device=device, dtype=torch.long)
        in_chunk = torch.full((n_tiles,), -1, device=device, dtype=torch.long)
        in_chunk[chunk] = torch.arange(chunk.numel(), device=device)
        sel = in_chunk[tile] >= 0
        slot[in_chunk[tile[sel]], rank[sel]] = owner[sel]
        pad = slot < 0
        gid = slot.clamp_min(0)  # [t, k]
        corner = torch.stack([chunk % tiles_x, chunk // tiles_x], -1) * tile_size  # [t, 2]
        pix = (corner[:, None, :] + local[None]).to(dtype) + 0.5  # [t, P, 2]
        dx = pix[:, :, None, 0] - mean_x[gid][:, None, :]  # [t, P, k]
        dy = pix[:, :, None, 1] - mean_y[gid][:, None, :]
        sigma = 0.5 * (a[gid][:, None] * dx * dx + c[gid][:, None] * dy * dy) + b[gid][:, None] * dx * dy
        alpha = torch.clamp_max(opac[gid][:, None] * torch.exp(-sigma), ALPHA_MAX)
        skip = (sigma < 0) | (alpha < ALPHA_MIN) | pad[:, None, :]
        alpha = torch.where(skip, torch.zeros_like(alpha), alpha)
        survive = torch.cumprod(1 - alpha, -1)
        trans = torch.cat([torch.ones_like(survive[..., :1]), survive[..., :-1]], -1)
        weight = alpha * trans * (survive > T_MIN)  # [t, P, k]
        px = corner[:, None, 0] + local[None, :, 0]
        py = corner[:, None, 1] + local[None, :, 1]
        inside = ((px < width) & (py < height)).flatten()
        flat = (py * width + px).flatten()[inside]
        rgb[flat] = torch.einsum("tpk,tkc->tpc", weight, col[gid]).reshape(-1, 3)[inside]
        acc_depth[flat] = torch.einsum("tpk,tk->tp", weight, dep[gid]).flatten()[inside]
        acc_alpha[flat] = weight.sum(-1).flatten()[inside]
    return rgb.view(height, width, 3), acc_depth.view(height, width), acc_alpha.view(height, width)
