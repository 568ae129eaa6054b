"""Probe (issue 16): how much of evaluate's numbers can a policy buy without any 3D consistency, by
softening its videos or slowing its camera?

Every run of the toy default so far that gained held-out PSNR also softened and slowed its videos
(README "Toy world"). This probe takes toy clips of seeds of their own (sound and broken, labelled)
and changes only that, then scores every variant through evaluate's path (`VideoScorer`, the
trained toy reconstructor, the scene from the even frames) and the toy classifier:
- `soft96`, `soft91`: the clip low-passed to 96% / 91% of its sharpness (`evaluate.softened_to`;
  96% is what the default run's policy kept, 91% about the probe's at seed 1);
- `slow94`, `slow85`: the same scene filmed along the camera path shortened to 94% / 85% (every
  camera moved toward the first one: its rotation slerped, its centre interpolated).

Prints, per label and variant, the mean held-out PSNR and its paired change against the clip as
made, with sharpness (`r_gen`), motion and P(consistent) as shares of / changes from the original.
Run from the project root after `dvc repro toy-classifier`:
    python benchmarks/softness_gain.py --clips 48
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from worldr1 import config, store
from worldr1.evaluate import softened_to
from worldr1.geometry.cameras import Cameras
from worldr1.ids import derive_seed
from worldr1.reconstruct import load_reconstructor
from worldr1.rewards.quality import Sharpness
from worldr1.score_video import Video, VideoScorer
from worldr1.toyworld.classifier import load_toy_classifier
from worldr1.toyworld.corrupt import plan_clip
from worldr1.toyworld.render import render_scenes


def slowed(cameras: Cameras, speed: float) -> Cameras:
    """The camera path shortened to `speed` of itself: frame f's camera moved toward frame 0's."""
    c2w = cameras.c2w
    out = []
    for f in range(len(c2w)):
        rot = Slerp([0.0, 1.0], Rotation.from_matrix(np.stack([c2w[0, :3, :3], c2w[f, :3, :3]])))([speed])
        m = np.eye(4)
        m[:3, :3] = rot.as_matrix()[0]
        m[:3, 3] = c2w[0, :3, 3] + speed * (c2w[f, :3, 3] - c2w[0, :3, 3])
        out.append(np.linalg.inv(m))
    return dataclasses.replace(cameras, w2c=np.stack(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=48)
    args = ap.parse_args()
    params = config.load()
    d, rc = params.toy.data, params.reconstruct
    scorer = VideoScorer(params, load_reconstructor(rc.backend, rc.model, rc.process_res))
    classifier = load_toy_classifier(Path(store.Paths().toy_classifier))
    sharp = Sharpness()
    rows: dict[tuple[str, str], list[tuple[float, ...]]] = {}
    with tempfile.TemporaryDirectory(prefix="worldr1-softness-") as tmp:
        for i in range(args.clips):
            plan = plan_clip(derive_seed(params.seed, "softness-gain", i) % 2**31, d.frames, d.height, d.width, 0.5)
            made = render_scenes(plan.scenes, plan.cameras, d.supersample).frames
            variants = {"as made": made}
            for share in (0.96, 0.91):
                variants[f"soft{round(share * 100)}"] = softened_to(made, share * sharp.score(made, ""))[0]
            for speed in (0.94, 0.85):
                variants[f"slow{round(speed * 100)}"] = render_scenes(
                    plan.scenes, slowed(plan.cameras, speed), d.supersample
                ).frames
            label = "sound" if plan.corruption is None else "broken"
            for name, frames in variants.items():
                video = Video(Path(f"{i}-{name}.mp4"), frames, float(params.rollout.fps), params.rollout.frames)
                row = scorer.score([video], plan.prompt, Path(tmp) / f"{i}-{name}").rewards.to_pylist()[0]
                psnr = row["psnr"] if row["status"] == "ok" and row["psnr"] is not None else np.nan
                rows.setdefault((label, name), []).append(
                    (psnr, sharp.score(frames, ""), row["motion"], classifier.p_consistent(frames))
                )
    print(
        f"{'clips':>7} {'variant':>8} {'n':>3} {'held-out PSNR':>13} {'change':>14} {'sharpness':>9} {'motion':>7} {'P(cons.)':>9}"
    )
    for label in ("sound", "broken"):
        if (label, "as made") not in rows:
            continue
        base = np.array(rows[(label, "as made")], dtype=np.float64)
        for name in ("as made", "soft96", "soft91", "slow94", "slow85"):
            x = np.array(rows[(label, name)], dtype=np.float64)
            diff = x[:, 0] - base[:, 0]
            diff = diff[np.isfinite(diff)]
            sem = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else np.nan
            print(
                f"{label:>7} {name:>8} {len(x):>3} {np.nanmean(x[:, 0]):13.2f} {diff.mean():+8.2f} +- {sem:4.2f}"
                f" {x[:, 1].mean() / base[:, 1].mean():9.1%} {x[:, 2].mean() / base[:, 2].mean():7.1%}"
                f" {x[:, 3].mean() - base[:, 3].mean():+9.3f}"
            )


if __name__ == "__main__":
    main()
