"""s_traj: 1 for the target path up to a similarity, falling as the prediction drifts from it."""

from __future__ import annotations

import numpy as np
import pytest

from worldr1.geometry.cameras import invert
from worldr1.geometry.sim3 import Sim3
from worldr1.prompts.camera import Primitive as P
from worldr1.prompts.camera_path import target_path
from worldr1.rewards.traj import s_traj


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def rotvec(w: np.ndarray) -> np.ndarray:
    """Rotation matrix of an axis-angle vector (Rodrigues)."""
    angle = np.linalg.norm(w)
    if angle < 1e-12:
        return np.eye(3)
    k = np.array([[0, -w[2], w[1]], [w[2], 0, -w[0]], [-w[1], w[0], 0]]) / angle
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def moved(w2c: np.ndarray, sim: Sim3) -> np.ndarray:
    return sim.apply_to_w2c(w2c)


PATHS = [
    [P.PUSH_IN],
    [P.ORBIT_LEFT],
    [P.MOVE_RIGHT, P.PULL_OUT, P.PAN_RIGHT],
    [P.PAN_LEFT],
    [P.FIXED],
    [P.PUSH_IN, P.ORBIT_RIGHT],
]


@pytest.mark.parametrize("moves", PATHS)
def test_target_up_to_a_similarity_scores_one(moves: list[P]) -> None:
    rng = np.random.default_rng(0)
    target = target_path(moves, 33)
    sim = Sim3(float(rng.uniform(0.001, 0.01)), random_rotation(rng), rng.normal(size=3))
    score = s_traj(moved(target, sim), target)
    assert score.s_traj == pytest.approx(1.0, abs=1e-6), score


@pytest.mark.parametrize("moves", [[P.PUSH_IN], [P.ORBIT_LEFT], [P.MOVE_LEFT, P.PULL_OUT, P.PAN_LEFT]])
def test_score_falls_monotonically_with_noise(moves: list[P]) -> None:
    target = target_path(moves, 33)
    rng = np.random.default_rng(1)
    jitter_t = rng.normal(size=(33, 3))
    jitter_r = rng.normal(size=(33, 3))
    scores = []
    for level in (0.0, 0.05, 0.1, 0.2, 0.4, 0.8):
        c2w = invert(target).copy()
        step = 600.0 / 32
        c2w[:, :3, 3] += level * step * 4 * jitter_t
        for i in range(33):
            c2w[i, :3, :3] = c2w[i, :3, :3] @ rotvec(np.radians(level * 5) * jitter_r[i])
        scores.append(s_traj(invert(c2w), target).s_traj)
    assert scores[0] == pytest.approx(1.0, abs=1e-6)
    assert all(a > b for a, b in zip(scores, scores[1:])), scores


def test_wrong_direction_and_frozen_camera_score_low() -> None:
    target = target_path([P.ORBIT_LEFT], 33)
    assert s_traj(target_path([P.ORBIT_RIGHT], 33), target).s_traj < 0.5
    assert s_traj(target_path([P.MOVE_LEFT], 33), target).s_traj < s_traj(target, target).s_traj
    frozen = np.repeat(np.eye(4)[None], 33, 0)
    score = s_traj(frozen, target)
    assert score.s_traj < 0.45 and score.pred_length == 0.0


def test_static_targets_use_the_static_formulas() -> None:
    fixed = target_path([P.FIXED], 17)
    pan = target_path([P.PAN_LEFT], 17)
    assert s_traj(fixed, fixed).s_traj == pytest.approx(1.0)
    # A pan target has no translation: moving the camera costs exp(-P / 3) on 20% of the score.
    s = s_traj(pan, pan)
    assert s.translation == pytest.approx(1.0) and s.rotation == pytest.approx(1.0)
    panning_the_wrong_way = s_traj(target_path([P.PAN_RIGHT], 17), pan)
    assert panning_the_wrong_way.s_traj < 0.5
    # Rotating when the target is fixed: exp(-R / 5) on the product.
    assert s_traj(pan, fixed).s_traj == pytest.approx(np.exp(-14.0 / 5.0), rel=1e-6)


def test_needs_two_cameras() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        s_traj(np.eye(4)[None], np.eye(4)[None])
