"""Probe (issue 16): does the held-out render error tell a broken clip from its sound twin better once
the video's own input-view error is taken off it?

s_recon compares the scene's renders with the video at the frames that did not build it (held out).
That error mixes two things: how well the scene reproduces *any* frame (blur, texture, how far the
camera moves: nuisance that differs from sample to sample of one prompt) and whether the held-out
frames agree with the others in 3D (what the reward is for). The renders at the input frames carry
the first alone. This probe scores the reward-validity suite (held-out seeds, a sound clip and its
broken twins for one prompt) with the shipped params and the trained toy reconstructor, reads each
video's renders back, and ranks sound against broken by:

- `heldout_*`: today's s_recon metrics (PSNR and SSIM at the held-out frames);
- `input_*`: the same at the frames that built the scene;
- `all_*`: over every frame (World-R1 renders its scene back at the input views);
- `gap_*`: held-out minus input (less negative = the held-out frames agree as well as the inputs).

Per corruption: the unpaired AUC (sound clips against all broken ones, as reward-validity.json) and
`twin`: the share of seeds where the sound clip beats its own twin (what a GRPO group sees: same
prompt, same scene, different samples).

Run from the project root after `dvc repro toy-pretrain`:
    python benchmarks/heldout_gap.py [--clips 32]
"""

from __future__ import annotations

import argparse
import collections
import math
import tempfile
from pathlib import Path

import numpy as np

from worldr1 import config
from worldr1.rewards.recon import s_recon
from worldr1.rewards.report import auc
from worldr1.score_video import Video, VideoScorer
from worldr1.toyworld.suite import DEGENERATE, KINDS, SOUND, make_suite
from worldr1.video import read_mp4

MEASURES = ("heldout_psnr", "heldout_ssim", "input_psnr", "input_ssim", "all_psnr", "all_ssim", "gap_psnr", "gap_ssim")


def measures(frames: np.ndarray, renders: np.ndarray, used: list[int]) -> dict[str, float]:
    held = [i for i in range(len(frames)) if i not in used]
    h = s_recon(renders, frames, held, "ssim", None)
    i = s_recon(renders, frames, used, "ssim", None)
    a = s_recon(renders, frames, list(range(len(frames))), "ssim", None)
    return {
        "all_psnr": a.psnr,
        "all_ssim": a.ssim,
        "heldout_psnr": h.psnr,
        "heldout_ssim": h.ssim,
        "input_psnr": i.psnr,
        "input_ssim": i.ssim,
        "gap_psnr": h.psnr - i.psnr,
        "gap_ssim": h.ssim - i.ssim,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=32)
    args = ap.parse_args()
    params = config.load()
    d = params.toy.data
    scorer = VideoScorer(params)
    # seed + 1: seeds of their own, not the reward-validity stage's
    suite = make_suite(params.seed + 1, args.clips, d.frames, d.height, d.width, d.supersample)
    scores: dict[int, dict[str, dict[str, float]]] = collections.defaultdict(dict)
    with tempfile.TemporaryDirectory() as tmp:
        for n, videos in enumerate(suite):
            clips = [Video(Path(f"{v.kind}.mp4"), v.frames, float(params.rollout.fps), len(v.frames)) for v in videos]
            scored = scorer.score(clips, videos[0].prompt, Path(tmp) / f"{n:04d}")
            for v, clip, row, recon in zip(videos, clips, scored.rewards.to_pylist(), scored.recon.to_pylist()):
                if row["status"] != "ok":
                    continue
                renders = read_mp4(Path(tmp) / f"{n:04d}" / "recon" / recon["renders"] / "input.mp4")
                scores[n][v.kind] = measures(clip.frames, renders, list(recon["gaussian_frames"]))
    kinds = [k for k in KINDS[1:] if k not in DEGENERATE]
    print(f"{len(scores)} seeds; unpaired AUC / twin wins (sound above broken)\n")
    print("| measure | " + " | ".join(kinds) + " |\n| --- |" + " --- |" * len(kinds))
    for m in MEASURES:
        cells = []
        for k in kinds:
            sound = [s[SOUND][m] for s in scores.values() if SOUND in s]
            broken = [s[k][m] for s in scores.values() if k in s]
            pairs = [(s[SOUND][m], s[k][m]) for s in scores.values() if SOUND in s and k in s]
            twin = float(np.mean([a > b for a, b in pairs])) if pairs else math.nan
            cells.append(f"{auc(sound, broken):.2f} / {twin:.2f}")
        print(f"| {m} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
