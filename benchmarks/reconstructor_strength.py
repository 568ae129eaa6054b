"""Probe (issue 16): how much of the reward's validity does the toy reconstructor's strength buy?

With true geometry the reward's instrument tells the small corruptions far better than with the
trained toy reconstructor (reports/reward-validity.json: `true_geometry_auc` against `auc`). This
trains fresh reconstructors of several sizes and step counts on the toy clips (data/toy/clips, the
toy-pretrain stage's code and seed) and scores the reward-validity suite with each (the
reward-validity stage's code, trained geometry only), printing per candidate the training time,
the final loss and the AUC of the reward and of s_reproj / s_recon per corruption kind.

Run from the project root after `dvc repro toy-data`:
    python benchmarks/reconstructor_strength.py --candidates 16:600,16:2000,32:2000 --clips 16
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from worldr1 import config, store
from worldr1.config import ToyReconstructorPretrainConfig
from worldr1.reconstruct.toy import ToyReconstructor
from worldr1.score_video import VideoScorer
from worldr1.toyworld.data import load_clips
from worldr1.toyworld.pretrain import pretrain_reconstructor, tail_mean
from worldr1.toyworld.suite import make_suite
from worldr1.validity import score_suite, summary

SMALL = ("object_jump", "colour_change", "size_change", "scene_swap")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--candidates",
        default="16:600,16:2000,32:2000",
        help="width:steps[:levels[:batch[:lr]]], comma separated (the rest from params)",
    )
    ap.add_argument("--save", type=Path, default=None, help="write each candidate's reconstructor under here")
    ap.add_argument("--clips", type=int, default=16, help="validity seeds to score")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    params = config.load()
    paths = store.Paths()
    data = load_clips(Path(paths.toy_clips))
    d = params.toy.data
    suite = list(make_suite(params.seed, args.clips, d.frames, d.height, d.width, d.supersample))
    results = []
    for cand in args.candidates.split(","):
        shipped = params.toy.reconstructor
        fields = cand.split(":")
        width, steps = int(fields[0]), int(fields[1])
        levels = int(fields[2]) if len(fields) > 2 else shipped.net.levels
        batch = int(fields[3]) if len(fields) > 3 else shipped.train.batch
        lr = float(fields[4]) if len(fields) > 4 else shipped.train.lr
        cfg = ToyReconstructorPretrainConfig.model_validate(
            {
                "net": {"width": width, "levels": levels},
                "train": {**shipped.train.model_dump(), "steps": steps, "batch": batch, "lr": lr},
            }
        )
        start = time.perf_counter()
        recon = ToyReconstructor.fresh(width, levels, data.K[0, 0], data.frames.shape[2:4], params.seed)
        losses = pretrain_reconstructor(recon, data, cfg, params.seed)
        train_s = time.perf_counter() - start
        if args.save:
            (args.save / cand.replace(":", "_")).mkdir(parents=True, exist_ok=True)
            recon.save(args.save / cand.replace(":", "_"))
        scorer = VideoScorer(params, recon)
        report = summary(score_suite(suite, scorer, float(params.rollout.fps), oracle=False))
        row = {
            "candidate": cand,
            "train_s": round(train_s, 1),
            "loss_last": tail_mean(losses),
            "auc": {
                k: {t: report["auc"][k].get(t) for t in ("reward", "s_reproj", "s_recon")}
                for k in SMALL
                if k in report["auc"]
            },
            "reward_auc_min": report["reward_auc_min"],
            "sound_first": report["sound_first"],
        }
        results.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        store.write_json(str(args.out), {"clips": args.clips, "results": results})


if __name__ == "__main__":
    main()
