"""Probe (issue 16): does `s_reproj` pay for slow videos, and does a measure relative to the change
between frames stop it?

Inside a round's prompt groups the shipped reward ranks slower samples higher (pooled correlation of
the advantages with the group-centred motion about -0.4 over the default run's four rounds,
`benchmarks/advantage_weighting.py`), and `s_reproj` and `s_recon` with it: the less the camera
moves, the less any warp can get wrong. `s_reproj` counts the pixels that the reconstructed geometry
fails to carry from one frame into another; a slow video has few pixels to carry. The candidate
here, `explained`, counts the same errors relative to those of no geometry at all: every pair's
frames compared pixel for pixel, unwarped, on the same judged pixels with the same tolerance,
radius and low-pass:

    explained = 1 - bad(warped) / (bad(unwarped) + c)

so a video earns it by what its geometry explains of the change between its frames, not by having
little change (`c`, a share of the judged pixels, keeps a near-still video from dividing by ~0):
`s_reproj` with `reward.reproj.relative` c.

Printed: on the reward-validity suite (`--clips` seeds, the trained reconstructor with the shipped
camera refinement) each measure's AUC of sound over each broken kind; on finished rounds
(`--rounds`, their videos and reconstructions) each measure's pooled correlation, within prompt
groups, with motion and with the toy classifier's P(consistent).

    python benchmarks/reproj_explained.py [--clips 32] [--rounds r000,r001,r002,r003]
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import numpy as np
import torch
from advantage_weighting import centred, pooled_corr  # a sibling script: run from the project root

from worldr1 import config, store
from worldr1.reconstruct.toy import load_toy_reconstructor
from worldr1.rewards.recon import motion
from worldr1.rewards.reproject import relative_score, s_reproj
from worldr1.rewards.score import load_views
from worldr1.toyworld.classifier import load_toy_classifier
from worldr1.toyworld.suite import KINDS, SOUND, make_suite
from worldr1.validity import auc
from worldr1.video import frame_indices, read_mp4

CS = (0.01, 0.03)


def measures(
    frames: np.ndarray, depth: torch.Tensor, w2c: np.ndarray, K: np.ndarray, rp: config.ReprojConfig
) -> dict[str, float]:
    """`s_reproj` absolute (`relative` None) and `explained@c` (`relative` c) of one video, from one
    call: the shares it reports give the term for every c (the cameras are refined once)."""
    keep = frame_indices(len(frames), rp.max_frames)
    args = (frames[keep], depth[keep], w2c[keep], K[keep], rp.blur, rp.tolerance, rp.refine_steps, rp.radius)
    score = s_reproj(*args, relative=CS[0])
    if score.bad is None or score.unwarped_bad is None:  # nothing judged: every form scores 0
        return {"s_reproj": score.s_reproj, **{f"explained@{c}": score.s_reproj for c in CS}}
    bad, still = score.bad, score.unwarped_bad
    return {"s_reproj": 1.0 - bad, **{f"explained@{c}": relative_score(bad, still, c) for c in CS}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=32)
    ap.add_argument("--rounds", default="r000,r001,r002,r003")
    args = ap.parse_args()
    params = config.load()
    rp = params.reward.reproj
    paths = store.Paths()
    recon = load_toy_reconstructor(Path(paths.toy_reconstructor))
    d = params.toy.data
    by_kind: dict[str, dict[str, list[float]]] = collections.defaultdict(lambda: collections.defaultdict(list))
    for videos in make_suite(params.seed, args.clips, d.frames, d.height, d.width, d.supersample):
        for v in videos:
            r = recon.reconstruct(v.frames)
            for m, value in measures(v.frames, r.depth, r.extrinsics, r.intrinsics, rp).items():
                by_kind[m][v.kind].append(value)
    kinds = [k for k in KINDS if k != SOUND]
    print(f"AUC of sound over kind, {args.clips} seeds, trained geometry refined {rp.refine_steps} steps")
    print(f"{'measure':>16} " + " ".join(f"{k[:11]:>11}" for k in kinds))
    for m, values in by_kind.items():
        print(f"{m:>16} " + " ".join(f"{auc(values[SOUND], values[k]):11.3f}" for k in kinds))

    classifier = load_toy_classifier(Path(paths.toy_classifier))
    for name in filter(None, args.rounds.split(",")):
        samples = store.read_table(paths.samples(name), store.SAMPLES).to_pylist()
        rows = {
            r["sample_id"]: r
            for r in store.read_table(f"{paths.recon_dir(name)}/recon.parquet", store.RECON).to_pylist()
        }
        cols: dict[str, list[float]] = collections.defaultdict(list)
        groups = []
        for s in samples:
            if s["status"] != "ok" or rows[s["sample_id"]]["status"] != "ok":
                continue
            video = read_mp4(Path(paths.rollout_dir(name)) / s["video"])
            views = load_views(rows[s["sample_id"]], Path(paths.recon_dir(name)))
            for m, value in measures(video, views.depth, views.w2c, views.K, rp).items():
                cols[m].append(value)
            cols["motion"].append(motion(video))
            cols["p_consistent"].append(classifier.p_consistent(video))
            groups.append(s["prompt_id"])
        g = np.array(groups)
        c = {k: centred(np.array(v), g) for k, v in cols.items()}
        print(
            name,
            {m: {k: round(pooled_corr(c[m], c[k]), 3) for k in ("motion", "p_consistent")} for m in by_kind},
            flush=True,
        )


if __name__ == "__main__":
    main()
