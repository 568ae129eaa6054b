"""Warping one frame into another by depth and relative pose: the splat-free way to ask whether two
frames show the same 3D scene.

Pixel i of frame a is unprojected with a's depth, projected into frame b, and b is sampled there
(bilinear). Where b sees something *in front of* that point (it is occluded in b) the pixel says
nothing and is left out; everywhere else the two colours must agree if the scene is one rigid scene.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def layer_edges(depth: torch.Tensor, rel: float = 0.02) -> torch.Tensor:
    """Pixels of `depth [F, H, W]` next to a jump between depth layers (both sides of a silhouette).

    On a plane, inverse depth is affine in pixel coordinates, so its second difference along a
    row, a column or a diagonal is zero however steep the plane: a long oblique floor is no edge
    (`geometry.gaussians.depth_edges` would flag most of it at low resolution), while a
    silhouette's jump makes it large on the pixels on either side.
    """
    inv = torch.nn.functional.pad((1 / depth.clamp_min(1e-6))[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
    mid = inv[:, 1:-1, 1:-1]
    bent = torch.zeros_like(mid)
    for (y0, x0), (y1, x1) in [((1, 0), (1, 2)), ((0, 1), (2, 1)), ((0, 0), (2, 2)), ((0, 2), (2, 0))]:
        a = inv[:, y0 : y0 + mid.shape[1], x0 : x0 + mid.shape[2]]
        b = inv[:, y1 : y1 + mid.shape[1], x1 : x1 + mid.shape[2]]
        bent = torch.maximum(bent, (a + b - 2 * mid).abs())
    return bent > rel * mid


def sample(image: torch.Tensor, u: torch.Tensor, v: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """`image [H, W, C]` at pixel coordinates (u, v) (pixel centres at +0.5) -> `[..., C]`."""
    h, w = image.shape[:2]
    grid = torch.stack([2 * u / w - 1, 2 * v / h - 1], -1)[None].to(image.dtype)
    out = torch.nn.functional.grid_sample(
        image.permute(2, 0, 1)[None], grid, mode=mode, align_corners=False, padding_mode="border"
    )
    return out[0].permute(1, 2, 0)


def gaussian_blur(images: torch.Tensor, std: float) -> torch.Tensor:
    """`images [F, H, W, C]` low-passed by a Gaussian of `std` pixels (edges replicated); 0: unchanged."""
    if std <= 0:
        return images
    radius = max(1, int(round(3 * std)))
    x = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    k = torch.exp(-(x**2) / (2 * std**2))
    k = k / k.sum()
    c = images.shape[-1]
    out = images.permute(0, 3, 1, 2)
    out = torch.nn.functional.pad(out, (radius, radius, radius, radius), mode="replicate")
    out = torch.nn.functional.conv2d(out, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    out = torch.nn.functional.conv2d(out, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return out.permute(0, 2, 3, 1)


@dataclass(frozen=True)
class Warp:
    """Frame b seen from frame a (with a leading pair dimension from `warp_pairs`): `colour [H, W, C]` (b's colours at a's pixels), `valid [H, W]` (the
    point lands inside b and b does not see something in front of it), `depth_ratio [H, W]` (the
    point's depth in b over the depth b has there: well below 1 means b sees *behind* the point)."""

    colour: torch.Tensor
    valid: torch.Tensor
    depth_ratio: torch.Tensor


def warp_pairs(
    images: torch.Tensor,
    depth: torch.Tensor,
    K: torch.Tensor,
    w2c: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    occlusion_tol: float = 0.05,
) -> Warp:
    """Frame `b[i]` pulled into frame `a[i]` for every pair i at once: `images [F, H, W, C]`,
    `depth [F, H, W]`, `K [F, 3, 3]` and `w2c [F, 4, 4]` of the frames, `a`, `b` `[P]` frame indices;
    a `Warp` whose tensors have a leading `[P]`. Differentiable in the colours, depths and cameras
    (`geometry.refine` descends through it).

    A point counts as occluded in b when it lies more than `occlusion_tol` (relative) behind b's
    depth there; b's depth is the nearest of the four samples around it, so a silhouette in b
    hides rather than half-hides.
    """
    p, (h, w) = len(a), depth.shape[1:]
    vv, uu = torch.meshgrid(
        torch.arange(h, dtype=depth.dtype) + 0.5, torch.arange(w, dtype=depth.dtype) + 0.5, indexing="ij"
    )
    Ka, Kb, da = K[a], K[b], depth[a]
    x = (uu - Ka[:, 0, 2, None, None]) / Ka[:, 0, 0, None, None] * da
    y = (vv - Ka[:, 1, 2, None, None]) / Ka[:, 1, 1, None, None] * da
    rel = w2c[b] @ torch.linalg.inv(w2c[a])
    cam = torch.stack([x, y, da], -1).view(p, -1, 3) @ rel[:, :3, :3].transpose(1, 2) + rel[:, None, :3, 3]
    cam = cam.view(p, h, w, 3)
    z = cam[..., 2]
    safe_z = z.clamp_min(1e-6)
    u = Kb[:, 0, 0, None, None] * cam[..., 0] / safe_z + Kb[:, 0, 2, None, None]
    v = Kb[:, 1, 1, None, None] * cam[..., 1] / safe_z + Kb[:, 1, 2, None, None]
    inside = (z > 1e-6) & (u >= 0.5) & (u <= w - 0.5) & (v >= 0.5) & (v <= h - 0.5)
    with torch.no_grad():
        # near[y, x]: the nearest depth of b's pixels (y..y+1, x..x+1), the four a bilinear sample
        # at (x + 1, y + 1) in pixel units reads; looked up at the sample's top-left pixel.
        near = -torch.nn.functional.max_pool2d(-depth[b][:, None], 2, 1)[:, 0]
        near = torch.nn.functional.pad(near[:, None], (0, 1, 0, 1), mode="replicate")[:, 0]
        iu = (u - 0.5).floor().long().clamp(0, w - 1)
        iv = (v - 0.5).floor().long().clamp(0, h - 1)
        near = near.reshape(p, -1).gather(1, (iv * w + iu).view(p, -1)).view(p, h, w)
    ratio = z / near.clamp_min(1e-6)
    grid = torch.stack([2 * u / w - 1, 2 * v / h - 1], -1).to(images.dtype)
    colour = torch.nn.functional.grid_sample(
        images[b].permute(0, 3, 1, 2), grid, mode="bilinear", align_corners=False, padding_mode="border"
    ).permute(0, 2, 3, 1)
    return Warp(colour, inside & (ratio <= 1 + occlusion_tol), ratio)


def warp(
    image_b: torch.Tensor,
    depth_a: torch.Tensor,
    depth_b: torch.Tensor,
    K_a: torch.Tensor,
    K_b: torch.Tensor,
    w2c_a: torch.Tensor,
    w2c_b: torch.Tensor,
    occlusion_tol: float = 0.05,
) -> Warp:
    """Pull `image_b [H, W, C]` into frame a by a's depth and both cameras (same image size): one
    pair of `warp_pairs`."""
    pair = warp_pairs(
        torch.stack([image_b, image_b]),
        torch.stack([depth_a, depth_b]),
        torch.stack([K_a, K_b]),
        torch.stack([w2c_a, w2c_b]),
        torch.tensor([0]),
        torch.tensor([1]),
        occlusion_tol,
    )
    return Warp(pair.colour[0], pair.valid[0], pair.depth_ratio[0])
