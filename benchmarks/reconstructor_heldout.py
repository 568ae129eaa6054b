"""Probe (issue 16): does the toy reconstructor's geometry hold on scenes it never saw?

`s_reproj` tells the small corruptions apart far better with true geometry than with the trained
reconstructor's (reports/reward-validity.json), and longer training lowered the training loss
threefold without helping (README "Reward validity"). A loss measured on the training clips says
nothing of the held-out ones, which are what the reward sees. This compares, on the training
clips (data/toy/clips) and on the reward-validity suite's sound clips (seeds of their own):
- the training loss's terms: L1 of log-depth, of the relative rotation matrices and translations;
- each frame's rotation error in degrees and translation error in scene units;
- the share of pixels the shipped `s_reproj` judges off for a sound clip (cameras refined).

Run from the project root after `dvc repro toy-pretrain`:
    python benchmarks/reconstructor_heldout.py --clips 64
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from worldr1 import config, store
from worldr1.reconstruct.toy import ToyReconstructor, load_toy_reconstructor, relative_poses
from worldr1.rewards.reproject import s_reproj
from worldr1.rewards.traj import geodesic_deg
from worldr1.toyworld.data import load_clips
from worldr1.toyworld.suite import SOUND, make_suite


def errors(
    recon: ToyReconstructor,
    frames: np.ndarray,
    depth: np.ndarray,
    w2c: np.ndarray,
    K: np.ndarray,
    rp: config.ReprojConfig,
) -> dict[str, float]:
    r = recon.reconstruct(frames)
    true_rel = relative_poses(np.asarray(w2c, dtype=np.float64))
    pred = np.asarray(r.extrinsics, dtype=np.float64)
    log_true = np.log(np.clip(np.asarray(depth, dtype=np.float64), 1e-3, None))
    score = s_reproj(frames, r.depth, pred, r.intrinsics, rp.blur, rp.tolerance, rp.refine_steps, rp.radius)
    return {
        "log_depth_l1": float(np.abs(r.depth.double().clamp_min(1e-3).log().numpy() - log_true).mean()),
        "rot_l1": float(np.abs(pred[1:, :3, :3] - true_rel[1:, :3, :3]).mean()),
        "trans_l1": float(np.abs(pred[1:, :3, 3] - true_rel[1:, :3, 3]).mean()),
        "rot_deg": float(np.mean([geodesic_deg(p[:3, :3], t[:3, :3]) for p, t in zip(pred[1:], true_rel[1:])])),
        "trans_err": float(np.linalg.norm(pred[1:, :3, 3] - true_rel[1:, :3, 3], axis=-1).mean()),
        "sound_bad": float(score.bad if score.bad is not None else 1.0),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=64, help="of each set")
    ap.add_argument("--reconstructor", type=Path, default=None, help="default: data/toy/reconstructor")
    args = ap.parse_args()
    params = config.load()
    rp = params.reward.reproj
    recon = load_toy_reconstructor(args.reconstructor or Path(store.Paths().toy_reconstructor))
    data = load_clips(Path(store.Paths().toy_clips))
    train = [i for i in range(len(data)) if data.consistent[i]][: args.clips]
    rows = {"train": [errors(recon, data.frames[i], data.depth[i], data.w2c[i], data.K[i], rp) for i in train]}
    d = params.toy.data
    rows["held-out"] = [
        errors(recon, v.frames, v.depth, v.w2c, v.K, rp)
        for videos in make_suite(params.seed + 1, args.clips, d.frames, d.height, d.width, d.supersample)
        for v in videos
        if v.kind == SOUND
    ]
    keys = list(rows["train"][0])
    print(f"{'set':>9} {'clips':>5} " + " ".join(f"{k:>12}" for k in keys))
    for name, r in rows.items():
        print(f"{name:>9} {len(r):5d} " + " ".join(f"{np.mean([x[k] for x in r]):12.4f}" for k in keys))


if __name__ == "__main__":
    main()
