"""Reward validity: the labelled suite of sound clips and broken twins, its true geometry, and the report."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import ROOT

from worldr1 import config
from worldr1.reconstruct.scene import ReconstructionFailed
from worldr1.reconstruct.toy import ToyReconstructor
from worldr1.score_video import VideoScorer
from worldr1.toyworld.data import clip_seed
from worldr1.toyworld.suite import KINDS, SOUND, suite_seed, twins
from worldr1.validity import TrueGeometry, auc, score_suite, summary

F, H, W = 5, 32, 32


@pytest.fixture(scope="module")
def suite() -> list:
    return twins(suite_seed(0, 0), F, H, W)


def test_the_suite_holds_a_sound_clip_and_its_twins(suite: list) -> None:
    kinds = [v.kind for v in suite]
    assert kinds[0] == SOUND and kinds == [k for k in KINDS if k in kinds]  # KINDS order, sound first
    assert {"frozen", "noise", "shuffled", "flicker", "scene_swap"} <= set(kinds)
    assert len({v.prompt for v in suite}) == 1 and len({v.seed for v in suite}) == 1
    sound = suite[0]
    assert sound.frames.shape == (F, H, W, 3) and sound.frames.dtype == np.uint8
    for v in suite[1:]:
        assert v.frames.shape == sound.frames.shape and not np.array_equal(v.frames, sound.frames), v.kind
    by = {v.kind: v for v in suite}
    # A corruption changes the clip from some frame on, never frame 0; the cameras stay the sound clip's.
    swap = by["scene_swap"]
    assert np.array_equal(swap.frames[0], sound.frames[0]) and np.array_equal(swap.w2c, sound.w2c)
    assert (by["frozen"].frames == sound.frames[0]).all()
    assert by["noise"].depth is None
    order = [next(i for i in range(F) if np.array_equal(f, sound.frames[i])) for f in by["shuffled"].frames]
    assert sorted(order) == list(range(F)) and order != list(range(F))
    assert np.array_equal(by["shuffled"].w2c, sound.w2c[order])


def test_suite_seeds_are_no_training_clip_seeds() -> None:
    train = {clip_seed(0, i) for i in range(5000)}
    assert not train & {suite_seed(0, i) for i in range(5000)}


def test_true_geometry_finds_each_video_by_its_frames(suite: list) -> None:
    oracle = TrueGeometry(suite)
    sound = suite[0]
    r = oracle.reconstruct(sound.frames.copy())
    assert np.array_equal(r.extrinsics, sound.w2c) and r.frame_hw == (H, W)
    with pytest.raises(ReconstructionFailed, match="no true geometry"):
        oracle.reconstruct(next(v for v in suite if v.kind == "noise").frames)
    with pytest.raises(ReconstructionFailed):
        oracle.reconstruct(np.zeros_like(sound.frames))


def test_auc_by_hand() -> None:
    assert auc([3.0, 2.0], [1.0, 2.0]) == pytest.approx((1 + 1 + 1 + 0.5) / 4)
    assert auc([], [1.0]) is None
    assert auc([1.0], [-math.inf]) == 1.0


def _row(seed: int, kind: str, reward: float | None, geometry: str = "trained") -> dict:
    return {
        "seed": seed,
        "kind": kind,
        "geometry": geometry,
        "status": "ok" if reward is not None else "failed",
        "reward": reward,
        "s_recon": reward,
        "s_reproj": None,
        "s_traj": None,
        "s_meta": None,
        "r_gen": None,
    }


def test_summary_counts_wins_over_twins_and_failed_rows_lose() -> None:
    rows = [
        _row(0, SOUND, 1.0),
        _row(0, "scene_swap", 0.5),
        _row(0, "frozen", 2.0),
        _row(0, "noise", None),
        _row(0, "shuffled", 0.2),
        _row(1, SOUND, 0.6),
        _row(1, "scene_swap", 0.8),
        _row(1, "frozen", 0.1),
        _row(1, "noise", None),
        _row(1, "shuffled", 0.3),
        _row(1, SOUND, 0.9, "true"),
        _row(1, "scene_swap", 0.1, "true"),
    ]
    s = summary(rows)
    assert s["seeds"] == 2 and s["videos"] == 10
    assert s["auc"]["scene_swap"]["reward"] == pytest.approx(0.75)  # 1.0 > both, 0.6 > 0.5 only
    assert "s_reproj" not in s["auc"]["scene_swap"]  # a term no sound row has is not ranked
    assert s["reward_auc_min"] == pytest.approx(0.75)
    assert s["twin_wins"]["scene_swap"] == 0.5 and s["twin_wins"]["noise"] == 1.0  # a failed twin loses
    assert s["twin_wins"]["frozen"] == 0.5
    assert s["sound_first"] == 0.5  # seed 0's frozen twin wins
    assert s["failed"]["noise"] == 2
    assert s["true_geometry_auc"]["scene_swap"]["reward"] == 1.0


def test_scoring_the_suite_with_true_geometry_tells_a_swapped_scene(suite: list) -> None:
    params = config.load(ROOT / "params.yaml")
    d = params.toy.data
    fresh = ToyReconstructor.fresh(
        8, 2, suite[0].K[0], (H, W), seed=0
    )  # random weights: the trained pass runs, no more
    rows = score_suite([suite], VideoScorer(params, fresh), float(params.rollout.fps), oracle=True)
    assert len(rows) == 2 * len(suite) and {r["geometry"] for r in rows} == {"trained", "true"}
    true = {r["kind"]: r for r in rows if r["geometry"] == "true"}
    assert true["noise"]["status"] == "failed" and true["frozen"]["status"] == "failed"  # no parallax to score
    assert true[SOUND]["status"] == "ok" and true[SOUND]["s_reproj"] > 0.9
    assert true[SOUND]["s_reproj"] > true["scene_swap"]["s_reproj"]
    assert d.frames == F
