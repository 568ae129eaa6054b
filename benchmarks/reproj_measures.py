"""Probe (issue 16): which reprojection measure tells the suite's small corruptions apart with the
trained toy reconstructor's geometry, not only with the true one?

With true geometry `s_reproj` ranks the sound clip above its object-jump / colour / size twins
with AUC 0.88 / 0.79 / 0.75; with the trained reconstructor 0.57 / 0.54 / 0.51
(reports/reward-validity.json). This probe takes the reward-validity suite (its seeds, the trained
reconstructor of data/toy/reconstructor) and scores every video's warp errors with candidate
measures, per geometry:
- `trained`, `true`: the reconstructor's depth and cameras, or the truth;
- `true_depth` / `true_pose`: one of the two from the truth, to see which error dominates;
- `refined` (`--refine N`): the reconstructor's, cameras refined photometrically by N Adam steps
  (`geometry.refine`, as `reward.reproj.refine_steps`);
- `w<width>s<steps>` (`--train width:steps,...`): fresh reconstructors trained as toy-pretrain's,
  of other widths and step counts.

Measures, each over every ordered pair of frames:
- `bad@t`: the share of judged pixels with a channel off by more than t (today's s_reproj);
- `tol1@t`: the same, but a pixel of a matches if *some* pixel of b-seen-from-a within `--radius`
  pixels does (`reward.reproj.radius`): a misregistration of up to a pixel (pose or depth error)
  is no error, a changed object (a colour nothing nearby has, a footprint that moved) still is;
- `p95`, `p99`: a high percentile of the per-pixel error;
- `tol1p95`: the percentile of the tolerant error.

Run from the project root after `dvc repro toy-pretrain`:
    python benchmarks/reproj_measures.py --clips 16 --refine 20 --refine-lr 1e-2
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import numpy as np
import torch

from worldr1 import config, store
from worldr1.geometry.cameras import resize_intrinsics
from worldr1.geometry.refine import refine_poses as batched_refine
from worldr1.reconstruct.toy import ToyReconstructor, load_toy_reconstructor
from worldr1.rewards.reproject import at_depth_size, reprojection_errors
from worldr1.toyworld.suite import KINDS, SOUND, make_suite
from worldr1.validity import auc

SMALL = ("object_jump", "colour_change", "size_change", "scene_swap", "shuffled", "flicker", "frozen")


def pair_errors(
    frames: torch.Tensor, depth: torch.Tensor, w2c: torch.Tensor, K: torch.Tensor, blur: float, radius: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every judged pixel's plain and tolerant (`radius`) error over every ordered pair."""

    def judged(r: int) -> torch.Tensor:
        e = reprojection_errors(frames, depth, w2c, K, blur, radius=r)
        return torch.cat([err[v] for err, v in zip(e.error, e.valid)])

    return judged(0), judged(radius)


def measures(plain: torch.Tensor, tolerant: torch.Tensor) -> dict[str, float]:
    if plain.numel() == 0:
        return {}
    out: dict[str, float] = {}
    for t in (0.08, 0.12, 0.2):
        out[f"bad@{t}"] = -float((plain > t).float().mean())
        out[f"tol1@{t}"] = -float((tolerant > t).float().mean())
    out["p95"] = -float(torch.quantile(plain, 0.95))
    out["p99"] = -float(torch.quantile(plain, 0.99))
    out["tol1p95"] = -float(torch.quantile(tolerant.clamp_max(10.0), 0.95))
    out["tol1p99"] = -float(torch.quantile(tolerant.clamp_max(10.0), 0.99))
    return out


def train_fresh(params: config.Params, cand: str) -> ToyReconstructor:
    """A reconstructor trained like toy-pretrain's, of another width and step count."""
    import time

    from worldr1.config import ToyReconstructorPretrainConfig
    from worldr1.toyworld.data import load_clips
    from worldr1.toyworld.pretrain import pretrain_reconstructor, tail_mean

    width, steps = (int(x) for x in cand.split(":"))
    cfg = ToyReconstructorPretrainConfig.model_validate(
        {
            **params.toy.reconstructor.model_dump(),
            "net": {**params.toy.reconstructor.net.model_dump(), "width": width},
            "train": {**params.toy.reconstructor.train.model_dump(), "steps": steps},
        }
    )
    data = load_clips(Path(store.Paths().toy_clips))
    start = time.perf_counter()
    recon = ToyReconstructor.fresh(width, cfg.net.levels, data.K[0, 0], data.frames.shape[2:4], params.seed)
    losses = pretrain_reconstructor(recon, data, cfg, params.seed)
    print(f"trained {cand}: {time.perf_counter() - start:.0f} s, loss {tail_mean(losses):.4f}", flush=True)
    return recon


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=32)
    ap.add_argument("--radius", type=int, default=1)
    ap.add_argument("--blur", type=float, default=None, help="default: reward.reproj.blur")
    ap.add_argument("--refine", type=int, default=0, help="Adam steps of photometric pose refinement (0: none)")
    ap.add_argument("--refine-lr", type=float, default=3e-3)
    ap.add_argument("--train", default="", help="width:steps,... fresh reconstructors to train and compare")
    args = ap.parse_args()
    params = config.load()
    blur = params.reward.reproj.blur if args.blur is None else args.blur
    recon = load_toy_reconstructor(Path(store.Paths().toy_reconstructor))
    fresh = {}
    for cand in filter(None, args.train.split(",")):
        fresh[f"w{cand.replace(':', 's')}"] = train_fresh(params, cand)
    d = params.toy.data
    scores: dict[str, dict[str, dict[str, list[float]]]] = collections.defaultdict(
        lambda: collections.defaultdict(lambda: collections.defaultdict(list))
    )
    for videos in make_suite(params.seed, args.clips, d.frames, d.height, d.width, d.supersample):
        for v in videos:
            if v.depth is None:
                continue
            r = recon.reconstruct(v.frames)
            hw = (int(r.depth.shape[1]), int(r.depth.shape[2]))
            x = at_depth_size(v.frames, hw)
            k_trained = torch.from_numpy(resize_intrinsics(r.intrinsics, r.frame_hw, hw)).float()
            k_true = torch.from_numpy(np.asarray(v.K)).float()
            d_true = torch.from_numpy(np.asarray(v.depth, dtype=np.float32))
            p_true = torch.from_numpy(np.asarray(v.w2c)).float()
            p_trained = torch.from_numpy(r.extrinsics).float()
            geometries = {
                "trained": (r.depth.float(), p_trained, k_trained),
                "true": (d_true, p_true, k_true),
                "true_depth": (d_true, p_trained, k_trained),
                "true_pose": (r.depth.float(), p_true, k_true),
            }
            for name, other in fresh.items():
                o = other.reconstruct(v.frames)
                geometries[name] = (o.depth.float(), torch.from_numpy(o.extrinsics).float(), k_trained)
            if args.refine:
                poses, scaled = batched_refine(x, r.depth.float(), k_trained, p_trained, args.refine, lr=args.refine_lr)
                geometries["refined"] = (scaled, poses, k_trained)
            for g, (depth, w2c, K) in geometries.items():
                plain, tolerant = pair_errors(x, depth, w2c, K, blur, args.radius)
                for m, value in measures(plain, tolerant).items():
                    scores[g][m][v.kind].append(value)
    for g, by_measure in scores.items():
        print(f"\n== geometry: {g} (AUC of sound over kind; blur {blur}, radius {args.radius})")
        kinds = [k for k in SMALL if k in KINDS]
        print(f"{'measure':>10} " + " ".join(f"{k[:11]:>11}" for k in kinds))
        for m, by_kind in by_measure.items():
            row = []
            for k in kinds:
                a = auc(by_kind[SOUND], by_kind[k]) if by_kind.get(k) else None
                row.append(f"{a:11.3f}" if a is not None else f"{'-':>11}")
            print(f"{m:>10} " + " ".join(row))


if __name__ == "__main__":
    main()
