"""Probe (issue 16): how much of a frame does each toy corruption change? A 3D-consistency reward can
only rank a broken clip below its sound twin by what the broken frames show, so the share of
changed pixels bounds what any reward (even with true geometry) can see at the toy's 32x32.

For the reward-validity suite's seeds (`validity.clips` of params.yaml), it compares each corrupted
twin with its sound clip frame by frame and prints, per corruption, the distribution of the share
of pixels that differ by more than 40/255 in some channel (over the frames after the switch).

    python benchmarks/corruption_visibility.py [--clips 32] [--out FILE]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from worldr1 import config, store
from worldr1.toyworld.corrupt import Corruption
from worldr1.toyworld.suite import SOUND, make_suite

LOCAL = tuple(c.value for c in Corruption)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    params = config.load()
    d = params.toy.data
    shares: dict[str, list[float]] = {k: [] for k in LOCAL}
    for videos in make_suite(
        params.seed, args.clips or params.validity.clips, d.frames, d.height, d.width, d.supersample
    ):
        sound = next(v for v in videos if v.kind == SOUND).frames.astype(int)
        for v in videos:
            if v.kind in shares:
                changed = np.abs(v.frames.astype(int) - sound).max(-1) > 40
                after = [f for f in range(len(changed)) if changed[f].any()]
                shares[v.kind].append(float(changed[after].mean()) if after else 0.0)
    report = {}
    for kind, xs in shares.items():
        a = np.array(xs)
        report[kind] = {
            "clips": len(a),
            "median": round(float(np.median(a)), 4),
            "under_1pct": round(float((a < 0.01).mean()), 3),
            "under_3pct": round(float((a < 0.03).mean()), 3),
            "quartiles": [round(float(q), 4) for q in np.quantile(a, [0.25, 0.75])],
        }
        print(kind, report[kind])
    if args.out:
        store.write_json(str(args.out), report)


if __name__ == "__main__":
    main()
