"""Probe (issue 16): which measure tells the toy world's sound clips from its broken ones?

Scores the first N toy pretraining clips (their labels in clips.parquet) with several candidate
3D-consistency measures and prints, per corruption, the AUC of P(score of a consistent clip >
score of a corrupted one). Geometry comes from `--geometry oracle` (each clip's TRUE depth and
cameras) or `--geometry trained` (the toy reconstructor of data/toy/reconstructor); frames are
the exact clips, or (`--mp4`) an H.264 round trip as the rollout stores them.

Candidates:
- `splat_psnr` / `splat_ssim`: today's s_recon instrument: pixel Gaussians from the even frames,
  rendered at the odd cameras.
- `warp_*`: frame j pulled into frame i by i's depth and the relative pose (all ordered pairs),
  occluded pixels left out, both frames low-passed first (`--blur` px std). `psnr` is over the valid
  pixels, `bad` the share of pixels with a channel off by more than `--tol`, `worst` the worst pair.

Run from the project root after `dvc repro toy-pretrain`:
    python benchmarks/toy_reward_levers.py 160 --geometry oracle
"""

from __future__ import annotations

import argparse
import collections
import math
import tempfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from worldr1.geometry.cameras import Cameras
from worldr1.geometry.gaussians import pixel_gaussians
from worldr1.geometry.raster import render
from worldr1.rewards.recon import psnr, ssim
from worldr1.rewards.reproject import reprojection_errors
from worldr1.toyworld.data import load_clips
from worldr1.validity import auc as validity_auc


def auc(good: list[float], bad: list[float]) -> float:
    """`validity.auc` with non-finite scores left out, NaN when a side is empty."""
    value = validity_auc([x for x in good if math.isfinite(x)], [x for x in bad if math.isfinite(x)])
    return math.nan if value is None else value


def splat_scores(frames: torch.Tensor, depth: torch.Tensor, w2c: torch.Tensor, K: torch.Tensor) -> dict[str, float]:
    n, h, w = depth.shape
    used, held = list(range(0, n, 2)), list(range(1, n, 2))
    g = pixel_gaussians(frames[used], depth[used], torch.ones_like(depth[used], dtype=torch.bool), K[used], w2c[used])
    out = render(g, w2c[held], K[held], w, h, "torch").rgb.clamp(0, 1).permute(0, 3, 1, 2)
    ref = frames[held].permute(0, 3, 1, 2)
    return {"splat_psnr": float(psnr(out, ref).mean()), "splat_ssim": float(ssim(out, ref).mean())}


def warp_scores(
    frames: torch.Tensor, depth: torch.Tensor, w2c: torch.Tensor, K: torch.Tensor, blur: float, tol: float
) -> dict[str, float]:
    e = reprojection_errors(frames, depth, w2c, K, blur)
    pairs_psnr, pairs_bad, pairs_mae = [], [], []
    for err, valid in zip(e.error, e.valid):
        if int(valid.sum()) < 16:
            continue
        v = err[valid]
        pairs_psnr.append(float(-10 * torch.log10((v**2).mean().clamp_min(1e-10))))
        pairs_bad.append(float((v > tol).float().mean()))
        pairs_mae.append(float(v.mean()))
    return {
        "warp_psnr": float(np.mean(pairs_psnr)),
        "warp_bad": -float(np.mean(pairs_bad)),
        "warp_mae": -float(np.mean(pairs_mae)),
        "warp_worst_psnr": float(np.min(pairs_psnr)),
        "warp_worst_bad": -float(np.max(pairs_bad)),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int, nargs="?", default=160)
    ap.add_argument("--geometry", choices=["oracle", "trained"], default="oracle")
    ap.add_argument("--mp4", action="store_true")
    ap.add_argument("--blur", type=float, default=0.8)
    ap.add_argument("--tol", type=float, default=0.12)
    ap.add_argument("--offset", type=int, default=0, help="first clip index")
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = load_clips(Path("data/toy/clips"))
    table = pq.read_table("data/toy/clips/clips.parquet").to_pylist()
    recon = None
    if args.geometry == "trained":
        from worldr1.reconstruct.toy import load_toy_reconstructor

        recon = load_toy_reconstructor(Path("data/toy/reconstructor"), torch.device("cpu"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.offset, min(args.offset + args.n, len(data))):
            clip = np.asarray(data.frames[i])
            if args.mp4:
                from worldr1.video import read_mp4, write_mp4

                write_mp4(Path(tmp) / "c.mp4", clip, 8)
                clip = read_mp4(Path(tmp) / "c.mp4")
            frames = torch.from_numpy(clip).float() / 255
            if recon is None:
                depth = torch.from_numpy(np.asarray(data.depth[i], np.float32))
                w2c = torch.from_numpy(np.asarray(data.w2c[i])).float()
                K = torch.from_numpy(np.asarray(data.K[i])).float()
            else:
                r = recon.reconstruct(clip)
                depth = r.depth.float()
                w2c = torch.from_numpy(r.extrinsics).float()
                K = torch.from_numpy(Cameras(r.extrinsics, r.intrinsics, *r.frame_hw).resized(*r.process_hw).K).float()
            row = {"corruption": table[i]["corruption"] or "consistent"}
            row.update(splat_scores(frames, depth, w2c, K))
            row.update(warp_scores(frames, depth, w2c, K, args.blur, args.tol))
            rows.append(row)
    keys = [k for k in rows[0] if k != "corruption"]
    by: dict[str, list[dict]] = collections.defaultdict(list)
    for r in rows:
        by[r["corruption"]].append(r)
    print(f"geometry {args.geometry}, mp4 {args.mp4}, blur {args.blur}, tol {args.tol}, clips {len(rows)}")
    print(f"{'group':14}{'n':>4} " + " ".join(f"{k:>16}" for k in keys))
    for g, rs in sorted(by.items()):
        print(f"{g:14}{len(rs):4d} " + " ".join(f"{np.nanmean([r[k] for r in rs]):16.4f}" for k in keys))
    cons = by.get("consistent", [])
    for g, rs in sorted(by.items()):
        if g == "consistent":
            continue
        print(f"AUC vs {g:12}" + " ".join(f"{auc([r[k] for r in cons], [r[k] for r in rs]):16.3f}" for k in keys))


if __name__ == "__main__":
    main()
