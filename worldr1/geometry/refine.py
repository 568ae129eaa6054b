"""Photometric pose refinement: a feed-forward reconstructor's cameras, nudged until its frames agree.

A feed-forward model predicts each frame's camera on its own. At the toy world's 32x32 a degree of
rotation is half a pixel, and the trained toy reconstructor's cameras are off by about that much:
enough that warping one frame into another by its geometry misplaces every edge, and a changed
object's few percent of pixels drown in it (benchmarks/reproj_measures.py: the warp measure tells
an object jump from a sound clip with AUC 0.63 under the predicted cameras, 0.88 under the true
ones). So, as SfM pipelines do after their initialisation, every frame's camera after the first
(and its depth map's scale) is refined to minimise a robust photometric error of all ordered
pairs of frames warped into each other by the predicted depth. The loss is robust (Cauchy), so
pixels that cannot agree, a changed object, pull little and stay errors for the reward to see.
"""

from __future__ import annotations

import torch

from worldr1.geometry.cameras import rotation_matrix
from worldr1.geometry.warp import gaussian_blur, layer_edges, warp_pairs


def refine_poses(
    frames: torch.Tensor,
    depth: torch.Tensor,
    K: torch.Tensor,
    w2c: torch.Tensor,
    steps: int,
    blur: float = 1.2,
    lr: float = 1e-2,
    scale: float = 0.1,
    grid: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`frames [F, H, W, 3]` in [0, 1], `depth [F, H, W]`, `K [F, 3, 3]` (pixels of that size),
    `w2c [F, 4, 4]` -> refined `w2c` and `depth` (each frame's map times its refined scale).
    Frame 0 is the reference: its camera and depth stay, and fix the scene's scale.
    `grid` > 1 refines each later map's log-scale on a `grid` x `grid` lattice instead (bilinear,
    so a map can tilt and bend smoothly but no edge moves): on the reward-validity suite it won
    little over one scale a map (benchmarks/reproj_depth_refine.py), so the reward keeps 1."""
    n = frames.shape[0]
    if steps <= 0 or n < 2:
        return w2c, depth
    low = gaussian_blur(frames.float(), blur)
    depth, K, w2c = depth.float(), K.float(), w2c.float()
    keep = ~layer_edges(depth, 0.02)
    a, b = (torch.tensor(x) for x in zip(*[(i, j) for i in range(n) for j in range(n) if i != j]))
    rot = torch.zeros(n - 1, 3, requires_grad=True)
    trans = torch.zeros(n - 1, 3, requires_grad=True)
    log_scale = torch.zeros(n - 1, 1, grid, grid, requires_grad=True)
    opt = torch.optim.Adam([rot, trans, log_scale], lr=lr)

    def current() -> tuple[torch.Tensor, torch.Tensor]:
        delta = torch.zeros(n - 1, 4, 4)
        delta[:, :3, :3] = rotation_matrix(rot)
        delta[:, :3, 3] = trans
        delta[:, 3, 3] = 1.0
        poses = torch.cat([w2c[:1], delta @ w2c[1:]], 0)
        field = (
            log_scale
            if grid == 1
            else torch.nn.functional.interpolate(log_scale, depth.shape[1:], mode="bilinear", align_corners=True)
        )
        scaled = torch.cat([depth[:1], depth[1:] * field[:, 0].exp()], 0)
        return poses, scaled

    with torch.enable_grad():
        for _ in range(steps):
            poses, scaled = current()
            seen = warp_pairs(low, scaled, K, poses, a, b, 0.05)
            mask = (seen.valid & keep[a]).float()
            err = (low[a] - seen.colour).abs().sum(-1)
            loss = (torch.log1p((err / scale) ** 2) * mask).sum((1, 2)) / mask.sum((1, 2)).clamp_min(1.0)
            opt.zero_grad()
            loss.sum().backward()
            opt.step()
    poses, scaled = current()
    return poses.detach(), scaled.detach()
