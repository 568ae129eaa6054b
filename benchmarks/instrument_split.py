"""Probe (issue 16): does a reconstructor tell the policy's broken videos from its sound ones?

Evaluate's held-out PSNR and the reward re-render a video through the reconstructor, so a new
reconstructor moves their absolute levels. A lower base PSNR is a weaker evaluation only if the
sound videos lose it too; an instrument that loses it on the broken ones alone got stronger. This
scores one round's rollout videos (`--round`, default r000: the base policy's SDE samples) with
each reconstructor given (toy-pretrain's layout: a directory with config.json) and splits them by
the toy classifier's P(consistent) > 0.5, printing the mean held-out PSNR and `s_reproj` of each
side and the gap between them.

Run from the project root once the round's rollout and `toy-classifier` exist:
    python benchmarks/instrument_split.py data/toy/reconstructor /tmp/other-reconstructor
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from worldr1 import config, store
from worldr1.reconstruct.toy import load_toy_reconstructor
from worldr1.score_video import VideoScorer, read_video
from worldr1.toyworld.classifier import load_toy_classifier


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reconstructors", nargs="+", type=Path)
    ap.add_argument("--round", default="r000")
    args = ap.parse_args()
    params = config.load()
    paths = store.Paths()
    samples = store.read_table(paths.samples(args.round), store.SAMPLES).to_pylist()
    videos = [read_video(Path(paths.rollout_dir(args.round)) / s["video"]) for s in samples]
    classifier = load_toy_classifier(Path(paths.toy_classifier))
    sound = np.array([classifier.p_consistent(v.frames) > 0.5 for v in videos])
    print(f"{args.round}: {len(videos)} videos, {sound.sum()} sound by the classifier")
    print(f"{'reconstructor':>40} {'PSNR sound':>10} {'broken':>7} {'gap':>6} {'s_reproj sound':>14} {'broken':>7}")
    for directory in args.reconstructors:
        scorer = VideoScorer(params, load_toy_reconstructor(directory))
        psnr, reproj = [], []
        for s, v in zip(samples, videos):
            with tempfile.TemporaryDirectory() as work:
                row = scorer.score([v], s["prompt"], Path(work), novel_path=False).rewards.to_pylist()[0]
            psnr.append(np.nan if row["psnr"] is None else row["psnr"])
            reproj.append(np.nan if row["s_reproj"] is None else row["s_reproj"])
        p, r = np.array(psnr), np.array(reproj)
        a, b = np.nanmean(p[sound]), np.nanmean(p[~sound])
        print(
            f"{str(directory)[-40:]:>40} {a:10.2f} {b:7.2f} {a - b:6.2f} "
            f"{np.nanmean(r[sound]):14.4f} {np.nanmean(r[~sound]):7.4f}"
        )


if __name__ == "__main__":
    main()
