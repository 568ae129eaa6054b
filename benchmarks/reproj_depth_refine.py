"""Probe (issue 16): is the trained toy reconstructor's *depth* what keeps `s_reproj` from telling
the small corruptions apart, and does refining it at test time (as the cameras are) win it back?

`s_reproj` refines each frame's camera and depth scale photometrically (`geometry.refine`), yet its
AUC on the object jump / colour / size twins stays far under that of the true geometry
(reports/reward-validity.json). A per-frame scale cannot fix a depth map whose *shape* is off (a
floor's slope, an object's extent). This probe scores the reward-validity suite's local
corruptions with the shipped measure (`bad@tolerance` within `radius`) under:
- `refined`: the shipped refinement (cameras and each frame's depth scale);
- `grid<g>x<steps>`: the same, each later frame's depth scale on a g x g grid (`refine_poses`'s
  `grid`: the map can tilt and bend smoothly but no edge moves), by `--steps` Adam steps;
- `true_depth`: the truth's depth with the trained cameras refined (the best any depth refinement
  could do);
- `true`: the truth's depth and cameras.

Prints, per geometry, the AUC of sound over each kind across seeds and the sound clips' mean share
of bad pixels. Run from the project root after `dvc repro toy-pretrain`:
    python benchmarks/reproj_depth_refine.py --clips 32 --grids 2,4 --steps 20,40
"""

from __future__ import annotations

import argparse
import collections
import time
from pathlib import Path

import numpy as np
import torch

from worldr1 import config, store
from worldr1.geometry.cameras import resize_intrinsics
from worldr1.geometry.refine import refine_poses
from worldr1.reconstruct.toy import load_toy_reconstructor
from worldr1.rewards.reproject import at_depth_size, reprojection_errors
from worldr1.toyworld.suite import SOUND, make_suite
from worldr1.validity import auc

KINDS = ("object_jump", "colour_change", "size_change", "scene_swap", "shuffled", "flicker")


def bad_share(
    x: torch.Tensor, depth: torch.Tensor, w2c: torch.Tensor, K: torch.Tensor, blur: float, tol: float, radius: int
) -> float:
    e = reprojection_errors(x, depth, w2c, K, blur, radius=radius)
    judged = torch.cat([err[v] for err, v in zip(e.error, e.valid)])
    return 1.0 if judged.numel() == 0 else float((judged > tol).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=32)
    ap.add_argument("--grids", default="2,4", help="grid sizes of the log-depth offsets")
    ap.add_argument("--steps", default="20", help="Adam steps of the grid refinement, comma separated")
    ap.add_argument("--camera-steps", default="", help="more Adam steps of the shipped refinement, comma separated")
    args = ap.parse_args()
    params = config.load()
    rp = params.reward.reproj
    recon = load_toy_reconstructor(Path(store.Paths().toy_reconstructor))
    d = params.toy.data
    bad: dict[str, dict[str, list[float]]] = collections.defaultdict(lambda: collections.defaultdict(list))
    seconds: dict[str, float] = collections.defaultdict(float)
    grids = [int(g) for g in args.grids.split(",") if g]
    steps = [int(s) for s in args.steps.split(",") if s]
    camera_steps = [int(s) for s in args.camera_steps.split(",") if s]
    for videos in make_suite(params.seed, args.clips, d.frames, d.height, d.width, d.supersample):
        for v in videos:
            if v.kind not in (SOUND, *KINDS) or v.depth is None:
                continue
            r = recon.reconstruct(v.frames)
            hw = (int(r.depth.shape[1]), int(r.depth.shape[2]))
            x = at_depth_size(v.frames, hw)
            k = torch.from_numpy(resize_intrinsics(r.intrinsics, r.frame_hw, hw)).float()
            p = torch.from_numpy(r.extrinsics).float()
            depth = r.depth.float()
            d_true = torch.from_numpy(np.asarray(v.depth, dtype=np.float32))
            geometries = {}
            t = time.perf_counter()
            geometries["refined"] = (*refine_poses(x, depth, k, p, rp.refine_steps)[::-1], k)
            seconds["refined"] += time.perf_counter() - t
            for g in grids:
                for s in steps:
                    t = time.perf_counter()
                    poses, scaled = refine_poses(x, depth, k, p, s, grid=g)
                    seconds[f"grid{g}x{s}"] += time.perf_counter() - t
                    geometries[f"grid{g}x{s}"] = (scaled, poses, k)
            geometries["true_depth"] = (*refine_poses(x, d_true, k, p, rp.refine_steps)[::-1], k)
            for s in camera_steps:
                t = time.perf_counter()
                geometries[f"refined{s}"] = (*refine_poses(x, depth, k, p, s)[::-1], k)
                seconds[f"refined{s}"] += time.perf_counter() - t
                geometries[f"true_depth{s}"] = (*refine_poses(x, d_true, k, p, s)[::-1], k)
            geometries["true"] = (
                d_true,
                torch.from_numpy(np.asarray(v.w2c)).float(),
                torch.from_numpy(np.asarray(v.K)).float(),
            )
            for name, (dep, w2c, kk) in geometries.items():
                bad[name][v.kind].append(bad_share(x, dep, w2c, kk, rp.blur, rp.tolerance, rp.radius))
    print(f"AUC of sound over each kind, {args.clips} seeds (bad@{rp.tolerance}, radius {rp.radius}, blur {rp.blur})")
    print(f"{'geometry':>14} " + " ".join(f"{k[:11]:>11}" for k in KINDS) + "  sound bad   s/video")
    n_videos = max(len(bad["refined"][SOUND]), 1) * (1 + len(KINDS))
    for name, by_kind in bad.items():
        row = [f"{auc([-x for x in by_kind[SOUND]], [-x for x in by_kind[k]]):11.3f}" for k in KINDS]
        per = seconds.get(name, 0.0) / n_videos
        print(f"{name:>14} " + " ".join(row) + f"  {np.mean(by_kind[SOUND]):9.4f}   {per:7.3f}")


if __name__ == "__main__":
    main()
