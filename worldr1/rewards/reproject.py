"""`s_reproj`: do the frames agree with each other through the reconstructed geometry?

Every frame is pulled into every other frame by the reconstruction's depth and cameras
(`geometry.warp`), with no splatting in between: a re-render of pixel splats at 32x32 loses ~5 dB
even for true geometry (the splats blur and interleave), which buries a changed object's few
percent of pixels, while a warp of true geometry is exact up to occlusions and resampling. Both
frames are low-passed first, so resampling a texture near the pixel pitch is no error either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from worldr1.geometry.cameras import resize_intrinsics
from worldr1.geometry.refine import refine_poses
from worldr1.geometry.warp import gaussian_blur, layer_edges, warp_pairs
from worldr1.video import frame_indices

if TYPE_CHECKING:
    from worldr1.rewards.score import TermInput


@dataclass(frozen=True)
class PairErrors:
    """Per ordered pair (a, b): `error [H, W]` (largest channel difference of a and b-seen-from-a)
    and `valid [H, W]` (pixels that say something: b sees the point, a is no silhouette)."""

    pairs: list[tuple[int, int]]
    error: list[torch.Tensor]
    valid: list[torch.Tensor]


def neighbourhood_error(a: torch.Tensor, seen: torch.Tensor, valid: torch.Tensor, radius: int) -> torch.Tensor:
    """Per pixel of `a [H, W, C]`: the least largest-channel difference to a valid pixel of
    `seen [H, W, C]` within `radius` pixels (a (2r+1)^2 window; inf where none is valid). A geometry
    off by up to `radius` pixels then costs nothing, while a colour that nothing nearby has (a
    changed object, a footprint that moved) still does."""
    if radius == 0:
        err = (a - seen).abs().amax(-1)
        return torch.where(valid, err, torch.full_like(err, math.inf))
    h, w, c = a.shape
    k = 2 * radius + 1
    padded = torch.nn.functional.pad(seen.permute(2, 0, 1)[None], (radius,) * 4, mode="replicate")
    patches = torch.nn.functional.unfold(padded, k).view(c, k * k, h, w)
    ok = torch.nn.functional.pad(valid.float()[None, None], (radius,) * 4)
    ok = torch.nn.functional.unfold(ok, k).view(k * k, h, w) > 0.5
    diff = (a.permute(2, 0, 1)[:, None] - patches).abs().amax(0)
    return torch.where(ok, diff, torch.full_like(diff, math.inf)).amin(0)


def reprojection_errors(
    frames: torch.Tensor,
    depth: torch.Tensor,
    w2c: torch.Tensor,
    K: torch.Tensor,
    blur: float,
    occlusion_tol: float = 0.05,
    edge_rel: float = 0.02,
    radius: int = 0,
) -> PairErrors:
    """`frames [F, H, W, 3]` in [0, 1] and `depth [F, H, W]` at one size, `K [F, 3, 3]` in its pixels,
    `w2c [F, 4, 4]`; every ordered pair of frames; with `radius`, `neighbourhood_error`'s."""
    n = frames.shape[0]
    low = gaussian_blur(frames.float(), blur)
    depth, w2c, K = depth.float(), w2c.float(), K.float()
    edges = layer_edges(depth, edge_rel)
    pairs = [(a, b) for a in range(n) for b in range(n) if a != b]
    if not pairs:
        return PairErrors([], [], [])
    a, b = (torch.tensor(x) for x in zip(*pairs))
    seen = warp_pairs(low, depth, K, w2c, a, b, occlusion_tol)
    errors, valids = [], []
    for i, (ia, _) in enumerate(pairs):
        valid = seen.valid[i] & ~edges[ia]
        errors.append(neighbourhood_error(low[ia], seen.colour[i], seen.valid[i], radius).where(valid, 0.0))
        valids.append(valid)
    return PairErrors(pairs, errors, valids)


def unwarped_errors(frames: torch.Tensor, e: PairErrors, blur: float, radius: int) -> list[torch.Tensor]:
    """Per pair of `e`, the error of its frames compared pixel for pixel with no geometry at all
    (both low-passed by `blur`, `neighbourhood_error` within `radius`), 0 where `e` judges nothing:
    what a video's change between frames costs before its geometry explains any of it."""
    low = gaussian_blur(frames.float(), blur)
    every = torch.ones(frames.shape[1:3], dtype=torch.bool)
    return [
        neighbourhood_error(low[a], low[b], every, radius).where(valid, 0.0) for (a, b), valid in zip(e.pairs, e.valid)
    ]


@dataclass(frozen=True)
class ReprojScore:
    s_reproj: float  # in [0, 1]: 1 - the share of judged pixels off by more than the tolerance (or `relative`'s)
    psnr: float | None  # of the judged pixels, over every pair (dB); None when none was judged
    bad: float | None  # the share itself
    judged: float  # the share of pixels that said something (not occluded, inside, no silhouette)
    unwarped_bad: float | None = None  # the share off with no geometry (`unwarped_errors`), when asked for


def relative_score(bad: float, unwarped_bad: float, relative: float) -> float:
    """`s_reproj` with `reward.reproj.relative`: `1 - bad / max(bad, unwarped_bad + relative)`, the
    errors the geometry leaves against those of no geometry on the same pixels. Geometry that leaves
    more off than none explains nothing and scores 0, as when nothing is judged."""
    return 1.0 - bad / max(bad, unwarped_bad + relative)


def at_depth_size(frames: np.ndarray, depth_hw: tuple[int, int]) -> torch.Tensor:
    """uint8 `[F, H, W, 3]` -> float `[F, h, w, 3]` in [0, 1] at the depth maps' size (area-averaged)."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).float().div(255.0)
    if tuple(x.shape[1:3]) == depth_hw:
        return x
    return torch.nn.functional.interpolate(x.permute(0, 3, 1, 2), size=depth_hw, mode="area").permute(0, 2, 3, 1)


@torch.no_grad()
def s_reproj(
    frames: np.ndarray,
    depth: torch.Tensor,
    w2c: np.ndarray,
    K: np.ndarray,
    blur: float = 0.8,
    tol: float = 0.12,
    refine_steps: int = 0,
    radius: int = 0,
    relative: float | None = None,
) -> ReprojScore:
    """`frames uint8 [F, H, W, 3]`, `depth [F, h, w]` (the reconstruction's processing size), `w2c`,
    `K` in pixels of the frames; the cameras first refined photometrically by `refine_steps`, a
    pixel's error its `neighbourhood_error` within `radius`.
    Geometry under which no frame sees any pixel of another scores 0: a video of one scene that
    its own reconstruction cannot relate earns nothing.

    With `relative` the score is `1 - bad / max(bad, unwarped_bad + relative)`: the errors the
    geometry leaves, against those of comparing the frames with no geometry (`unwarped_errors`) on
    the same pixels, 0 where the geometry does no better than none. The absolute share pays a video for changing little between its frames, whatever its
    geometry explains (benchmarks/reproj_explained.py); `relative` (a share of the judged pixels)
    keeps a near-still video from dividing by about 0."""
    h, w = int(depth.shape[1]), int(depth.shape[2])
    x = at_depth_size(frames, (h, w))
    k = torch.from_numpy(resize_intrinsics(K, (frames.shape[1], frames.shape[2]), (h, w))).float()
    cams = torch.from_numpy(np.asarray(w2c)).float()
    depth = depth.float()
    if refine_steps:
        cams, depth = refine_poses(x, depth, k, cams, refine_steps)
    e = reprojection_errors(x, depth, cams, k, blur, radius=radius)
    judged = torch.cat([err[v] for err, v in zip(e.error, e.valid)])
    if judged.numel() == 0:
        return ReprojScore(0.0, None, None, 0.0)
    bad = float((judged > tol).float().mean())
    mse = float((judged.double() ** 2).mean())
    psnr = 100.0 if mse <= 1e-10 else -10 * math.log10(mse)
    total = sum(v.numel() for v in e.valid)
    if relative is None:
        return ReprojScore(1.0 - bad, psnr, bad, judged.numel() / total)
    still = torch.cat([err[v] for err, v in zip(unwarped_errors(x, e, blur, radius), e.valid)])
    unwarped_bad = float((still > tol).float().mean())
    return ReprojScore(relative_score(bad, unwarped_bad, relative), psnr, bad, judged.numel() / total, unwarped_bad)


def s_reproj_columns(v: TermInput) -> dict[str, object]:
    """s_reproj and its metrics over `reward.reproj.max_frames` evenly spaced frames (pairs grow with their square)."""
    rp, recon = v.params.reward.reproj, v.recon
    keep = frame_indices(len(v.video), rp.max_frames)
    warp = s_reproj(
        v.video[keep],
        recon.depth[keep],
        recon.w2c[keep],
        recon.K[keep],
        rp.blur,
        rp.tolerance,
        rp.refine_steps,
        rp.radius,
        rp.relative,
    )
    return {"s_reproj": warp.s_reproj, "reproj_psnr": warp.psnr, "reproj_bad": warp.bad}
