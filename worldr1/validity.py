"""Reward validity: does the reward rank a sound video above its broken twins?

The suite (`toyworld.suite`) holds, per held-out seed, a sound toy clip and its twins (corrupted
scenes, frozen, noise, shuffled and flickering videos), all for one prompt. Every video goes
through the code of `worldr1 score` (`VideoScorer`: reconstruct, renders, every reward term) with
the round's params and the trained reconstructor, and, where the truth exists, once more with a
perfect one (`TrueGeometry`), which separates what the reconstructor loses from what the
instrument (renders, metrics, terms) cannot see.

Reported (`summary`):
- `auc[kind][term]`: P(term of a sound clip > term of a `kind` clip) over all pairs of the suite,
  ties counted half, a failed row below everything (it earns no reward in a round);
- `twin_wins[kind]`: the share of seeds where the sound clip's reward beats its own `kind` twin;
- `sound_first`: the share of seeds where the sound clip out-rewards its frozen, noise and
  shuffled twins all at once.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch

from worldr1.reconstruct.base import Reconstruction
from worldr1.reconstruct.scene import ReconstructionFailed
from worldr1.rewards.report import auc
from worldr1.rewards.terms import names
from worldr1.score_video import Video, VideoScorer
from worldr1.toyworld.suite import DEGENERATE, KINDS, SOUND, SuiteVideo, frames_key

#: the reward and the terms the report ranks by
SCORES = ("reward", *names())
#: the twins the sound clip must beat all at once (`sound_first`)
CHEATS = ("frozen", "noise", "shuffled")


class TrueGeometry:
    """A perfect reconstructor for suite videos: each video's true depth and cameras, found by its
    frames' bytes. A video without true geometry (noise) fails as a real one would fail to be
    reconstructed."""

    name = "true-geometry"

    def __init__(self, videos: Iterable[SuiteVideo]) -> None:
        self.truth = {frames_key(v.frames): v for v in videos}

    def reconstruct(self, frames: np.ndarray) -> Reconstruction:
        v = self.truth.get(frames_key(frames))
        if v is None or v.depth is None or v.w2c is None or v.K is None:
            raise ReconstructionFailed("no true geometry for this video")
        depth = torch.from_numpy(np.asarray(v.depth, dtype=np.float32))
        return Reconstruction(
            depth=depth,
            conf=torch.ones_like(depth),
            images=np.ascontiguousarray(frames),
            extrinsics=np.asarray(v.w2c, dtype=np.float64),
            intrinsics=np.asarray(v.K, dtype=np.float64),
            frame_hw=(int(frames.shape[1]), int(frames.shape[2])),
        )


def score_suite(
    seeds: Iterable[list[SuiteVideo]],
    scorer: VideoScorer,
    fps: float,
    oracle: bool,
    progress: Callable[[int], None] | None = None,
) -> list[dict[str, object]]:
    """Every suite video's rewards row (with `seed`, `kind` and `geometry`: trained or true)."""
    rows: list[dict[str, object]] = []
    trained = scorer.reconstructor
    with tempfile.TemporaryDirectory(prefix="worldr1-validity-") as tmp:
        for n, videos in enumerate(seeds):
            clips = [Video(Path(f"{v.kind}.mp4"), v.frames, fps, len(v.frames)) for v in videos]
            passes = [("trained", trained)] + ([("true", TrueGeometry(videos))] if oracle else [])
            for geometry, reconstructor in passes:
                scorer.reconstructor = reconstructor
                scored = scorer.score(clips, videos[0].prompt, Path(tmp) / f"{n:04d}-{geometry}", novel_path=False)
                for v, row in zip(videos, scored.rewards.to_pylist()):
                    rows.append(
                        {
                            "seed": v.seed,
                            "kind": v.kind,
                            "geometry": geometry,
                            "status": row["status"],
                            "error": row["error"],
                            **{k: row.get(k) for k in (*SCORES, "psnr", "motion")},
                        }
                    )
            if progress:
                progress(n + 1)
    scorer.reconstructor = trained
    return rows


def _value(row: dict[str, object], key: str) -> float:
    """A row's score for ranking: a failed row, or a missing term, is below everything."""
    v = row.get(key)
    if row["status"] != "ok" or not isinstance(v, (int, float)) or not math.isfinite(v):
        return -math.inf
    return float(v)


def _aucs(rows: list[dict[str, object]]) -> dict[str, dict[str, float | None]]:
    sound = [r for r in rows if r["kind"] == SOUND]
    out: dict[str, dict[str, float | None]] = {}
    for kind in KINDS[1:]:
        other = [r for r in rows if r["kind"] == kind]
        if other:
            out[kind] = {
                k: auc([_value(r, k) for r in sound], [_value(r, k) for r in other])
                for k in SCORES
                if any(_value(r, k) > -math.inf for r in sound)
            }
    return out


def summary(rows: list[dict[str, object]]) -> dict[str, object]:
    """AUCs per kind and term (trained and true geometry), the sound clip's wins over its own twins."""
    trained = [r for r in rows if r["geometry"] == "trained"]
    by_seed: dict[int, dict[str, dict[str, object]]] = {}
    for r in trained:
        by_seed.setdefault(int(r["seed"]), {})[str(r["kind"])] = r  # type: ignore[call-overload]
    wins: dict[str, float | None] = {}
    for kind in KINDS[1:]:
        pairs = [(t[SOUND], t[kind]) for t in by_seed.values() if kind in t and SOUND in t]
        wins[kind] = (
            round(float(np.mean([_value(s, "reward") > _value(o, "reward") for s, o in pairs])), 4) if pairs else None
        )
    first = [
        all(_value(t[SOUND], "reward") > _value(t[k], "reward") for k in CHEATS if k in t)
        for t in by_seed.values()
        if SOUND in t
    ]
    aucs = _aucs(trained)
    scene_kinds = [k for k in KINDS[1:] if k not in DEGENERATE and k in aucs]
    reward_aucs = [aucs[k]["reward"] for k in scene_kinds if aucs[k].get("reward") is not None]
    means = {kind: _mean([r["reward"] for r in trained if r["kind"] == kind and r["status"] == "ok"]) for kind in KINDS}
    true = [r for r in rows if r["geometry"] == "true"]
    return {
        "seeds": len(by_seed),
        "videos": len(trained),
        "reward_auc_min": min(reward_aucs) if reward_aucs else None,  # type: ignore[type-var]
        "auc": aucs,
        "twin_wins": wins,
        "sound_first": round(float(np.mean(first)), 4) if first else None,
        "reward_mean": means,
        "failed": {kind: sum(1 for r in trained if r["kind"] == kind and r["status"] != "ok") for kind in KINDS},
        "true_geometry_auc": _aucs(true) if true else None,
    }


def _mean(values: list[object]) -> float | None:
    xs = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return round(float(np.mean(xs)), 4) if xs else None
