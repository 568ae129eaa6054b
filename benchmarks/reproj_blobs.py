"""Probe (issue 16): does a changed object show as a *blob* of warp error where a sound clip's error
is thin, so that counting only blobs tells the small corruptions apart across scenes?

`s_reproj` counts every judged pixel off by more than `reward.reproj.tolerance`, over every ordered
pair of frames. With the trained reconstructor's geometry a sound clip still has such pixels (depth
edges, a camera a little off), and how many varies from scene to scene more than a changed object
adds, so the reward-validity AUC across seeds stays low for the object jump, colour and size
changes. A changed object is a compact region; misregistration is thin. This probe scores the
reward-validity suite's videos (seeds of their own, the trained reconstructor, cameras refined as
the reward refines them) with candidate measures over the same per-pair error maps:
- `bad`: the shipped measure (share of judged pixels over the tolerance);
- `open<k>`: the share left after a morphological opening of the over-tolerance mask by a k x k
  square (erode, then dilate): runs thinner than k pixels vanish, blobs stay;
- `pairmax`: the worst pair's share (a corruption spoils the pairs across its switch only);
- `open3max`: the worst pair's opened share.

Prints the AUC of sound over each kind, across seeds, and `twin`: how often the sound clip beats its
own twin. Run from the project root after `dvc repro toy-pretrain`:
    python benchmarks/reproj_blobs.py --clips 32
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import numpy as np
import torch

from worldr1 import config, store
from worldr1.geometry.cameras import resize_intrinsics
from worldr1.geometry.refine import refine_poses
from worldr1.reconstruct.toy import load_toy_reconstructor
from worldr1.rewards.report import auc
from worldr1.rewards.reproject import at_depth_size, reprojection_errors
from worldr1.toyworld.suite import SOUND, make_suite

KINDS = ("object_jump", "colour_change", "size_change", "scene_swap", "shuffled", "flicker", "frozen")


def opened(mask: torch.Tensor, k: int) -> torch.Tensor:
    """Morphological opening of a boolean `[H, W]` mask by a k x k square (outside the frame is
    not over the tolerance)."""
    lo, hi = (k - 1) // 2, k // 2
    x = torch.nn.functional.pad(mask.float()[None, None], (lo, hi, lo, hi))
    eroded = -torch.nn.functional.max_pool2d(-x, k, stride=1)
    dilated = torch.nn.functional.max_pool2d(torch.nn.functional.pad(eroded, (hi, lo, hi, lo)), k, stride=1)
    return dilated[0, 0] > 0.5


def measures(errors: list[torch.Tensor], valids: list[torch.Tensor], tol: float) -> dict[str, float]:
    """Each measure as a score (higher is more consistent)."""
    judged = sum(int(v.sum()) for v in valids)
    if judged == 0:
        return {}
    bad = [(e > tol) & v for e, v in zip(errors, valids)]
    share = [float(b.sum()) / max(int(v.sum()), 1) for b, v in zip(bad, valids)]
    out = {"bad": -sum(int(b.sum()) for b in bad) / judged, "pairmax": -max(share)}
    for k in (2, 3):
        o = [opened(b, k) & v for b, v in zip(bad, valids)]
        out[f"open{k}"] = -sum(int(x.sum()) for x in o) / judged
        if k == 3:
            out["open3max"] = -max(float(x.sum()) / max(int(v.sum()), 1) for x, v in zip(o, valids))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=32)
    args = ap.parse_args()
    params = config.load()
    rp, d = params.reward.reproj, params.toy.data
    recon = load_toy_reconstructor(Path(store.Paths().toy_reconstructor))
    # scores[geometry][measure][kind][seed]
    scores: dict[str, dict[str, dict[str, dict[int, float]]]] = collections.defaultdict(
        lambda: collections.defaultdict(lambda: collections.defaultdict(dict))
    )
    for videos in make_suite(params.seed, args.clips, d.frames, d.height, d.width, d.supersample):
        for v in videos:
            r = recon.reconstruct(v.frames)
            hw = (int(r.depth.shape[1]), int(r.depth.shape[2]))
            x = at_depth_size(v.frames, hw)
            k = torch.from_numpy(resize_intrinsics(r.intrinsics, r.frame_hw, hw)).float()
            cams, depth = refine_poses(x, r.depth.float(), k, torch.from_numpy(r.extrinsics).float(), rp.refine_steps)
            geometries = {"trained": (depth, cams, k)}
            if v.depth is not None:
                geometries["true"] = (
                    torch.from_numpy(np.asarray(v.depth, dtype=np.float32)),
                    torch.from_numpy(np.asarray(v.w2c)).float(),
                    torch.from_numpy(np.asarray(v.K)).float(),
                )
            for g, (dep, w2c, K) in geometries.items():
                e = reprojection_errors(x, dep, w2c, K, rp.blur, radius=rp.radius)
                for m, value in measures(e.error, e.valid, rp.tolerance).items():
                    scores[g][m][v.kind][v.seed] = value
    for g, by_measure in scores.items():
        print(f"\n== geometry {g}: AUC of sound over kind across seeds / twin wins (tolerance {rp.tolerance})")
        print(f"{'measure':>9} " + " ".join(f"{k[:13]:>13}" for k in KINDS))
        for m, by_kind in by_measure.items():
            row = []
            for kind in KINDS:
                sound, other = by_kind[SOUND], by_kind.get(kind, {})
                if not other:
                    row.append(f"{'-':>13}")
                    continue
                a = auc(list(sound.values()), list(other.values()))
                twin = np.mean([sound[s] > other[s] for s in other if s in sound])
                row.append(f"{a:6.3f} /{twin:5.2f}")
            print(f"{m:>9} " + " ".join(row))


if __name__ == "__main__":
    main()
