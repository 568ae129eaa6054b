"""`s_traj`: how well the reconstructed camera path follows the prompt's target path (World-R1's formulas).

Both paths are made relative to their first camera. A moving target first gets the predicted
cameras aligned onto it by a Sim(3) (scale included: a reconstruction's units are arbitrary). Then

    translation = 0.4 * path + 0.3 * extent + 0.3 * exp(-mean |c_pred - c_tgt| / (2 * max(T / (n - 1), 1)))
        path = (cos(pred centres, target centres) + 1) / 2, extent = exp(-|log((P + e) / (T + e))|),
        P and T the path lengths; a static target scores exp(-P / 3) instead;
    rotation (degrees) = 0.5 * exp(-mean / 6) + 0.3 * exp(-final / 6) + 0.2 * extent(total turns);
        a static target scores exp(-R / 5);
    s_traj = (translation + rotation) / 2, or 0.2 / 0.8 toward the moving part when one is static,
        or their product when both are.

One departure from World-R1's code: the alignment uses each camera's centre *and* a point ahead
of it on its optical axis. Centres alone leave the rotation about a straight path (push in, move
left) undetermined, which makes the rotation term arbitrary exactly on the most common prompts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np

from worldr1.geometry.cameras import invert
from worldr1.geometry.sim3 import umeyama
from worldr1.prompts.camera import Primitive
from worldr1.prompts.camera_path import MotionScale, target_path

if TYPE_CHECKING:
    from worldr1.rewards.score import TermInput

TRANS_EPS = 1e-4
ROT_EPS_DEG = 1e-3
EPS = 1e-6


@dataclass(frozen=True)
class TrajScore:
    s_traj: float
    translation: float
    rotation: float
    pred_length: float
    target_length: float
    pred_turn_deg: float
    target_turn_deg: float


def relative_to_first(c2w: np.ndarray) -> np.ndarray:
    return np.linalg.inv(c2w[0]) @ c2w


def geodesic_deg(a: np.ndarray, b: np.ndarray) -> float:
    cos = np.clip((np.trace(a.T @ b) - 1.0) / 2.0, -1.0, 1.0)
    return float(np.degrees(np.arccos(cos)))


def path_length(centres: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(centres, axis=0), axis=1).sum()) if len(centres) > 1 else 0.0


def total_turn_deg(c2w: np.ndarray) -> float:
    return float(sum(geodesic_deg(c2w[i - 1, :3, :3], c2w[i, :3, :3]) for i in range(1, len(c2w))))


def cos_score(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na < EPS and nb < EPS:
        return 1.0
    if na < EPS or nb < EPS:
        return 0.0
    return 0.5 * (float(np.clip(np.dot(a.ravel(), b.ravel()) / (na * nb), -1.0, 1.0)) + 1.0)


def ratio_score(p: float, t: float) -> float:
    return float(np.exp(-abs(np.log((p + EPS) / (t + EPS)))))


def resample(w2c: np.ndarray, count: int) -> np.ndarray:
    """`count` poses picked evenly in time (the target path has as many poses as frames)."""
    index = np.rint(np.linspace(0, len(w2c) - 1, count)).astype(int)
    return w2c[index]


def align_poses(pred_c2w: np.ndarray, target_c2w: np.ndarray) -> np.ndarray:
    """Predicted cameras moved by the Sim(3) that best maps them onto the target: camera centres,
    plus a point one step length ahead of each camera (each path's own step length, so the two
    point clouds differ by exactly the similarity sought when the paths agree)."""

    def anchors(c2w: np.ndarray) -> np.ndarray:
        step = path_length(c2w[:, :3, 3]) / max(len(c2w) - 1, 1)
        if step < 1e-12:
            raise ValueError("the cameras do not move")
        return np.concatenate([c2w[:, :3, 3], c2w[:, :3, 3] + step * c2w[:, :3, 2]])

    sim = umeyama(anchors(pred_c2w), anchors(target_c2w))
    out = pred_c2w.copy()
    out[:, :3, :3] = sim.rotation @ pred_c2w[:, :3, :3]
    out[:, :3, 3] = sim.apply(pred_c2w[:, :3, 3])
    return out


def s_traj(pred_w2c: np.ndarray, target_w2c: np.ndarray) -> TrajScore:
    """Score predicted world-to-camera poses `[F, 4, 4]` against the target path (any length >= 2)."""
    n = min(len(pred_w2c), len(target_w2c))
    if n < 2:
        raise ValueError("s_traj needs at least 2 cameras")
    pred = relative_to_first(invert(resample(np.asarray(pred_w2c, np.float64), n)))
    target = relative_to_first(invert(resample(np.asarray(target_w2c, np.float64), n)))
    t_len = path_length(target[:, :3, 3])
    if t_len >= TRANS_EPS:
        try:
            pred = relative_to_first(align_poses(pred, target))
        except ValueError:
            pass  # the prediction does not move: nothing to align, the extent term says so
    p_len = path_length(pred[:, :3, 3])
    p_turn, t_turn = total_turn_deg(pred), total_turn_deg(target)

    if t_len < TRANS_EPS:
        translation = float(np.exp(-p_len / 3.0))
    else:
        scale = max(t_len / (n - 1), 1.0)
        mean_err = float(np.linalg.norm(pred[:, :3, 3] - target[:, :3, 3], axis=1).mean())
        translation = (
            0.4 * cos_score(pred[:, :3, 3], target[:, :3, 3])
            + 0.3 * ratio_score(p_len, t_len)
            + 0.3 * float(np.exp(-mean_err / (2.0 * scale)))
        )
    errors = [geodesic_deg(t[:3, :3], p[:3, :3]) for p, t in zip(pred, target)]
    if t_turn < ROT_EPS_DEG:
        rotation = float(np.exp(-p_turn / 5.0))
    else:
        rotation = (
            0.5 * float(np.exp(-np.mean(errors) / 6.0))
            + 0.3 * float(np.exp(-errors[-1] / 6.0))
            + 0.2 * ratio_score(p_turn, t_turn)
        )

    static_t, static_r = t_len < TRANS_EPS, t_turn < ROT_EPS_DEG
    if static_t and static_r:
        total = translation * rotation
    elif static_t:
        total = 0.2 * translation + 0.8 * rotation
    elif static_r:
        total = 0.8 * translation + 0.2 * rotation
    else:
        total = 0.5 * (translation + rotation)
    return TrajScore(float(np.clip(total, 0.0, 1.0)), translation, rotation, p_len, t_len, p_turn, t_turn)


def s_traj_columns(v: TermInput) -> dict[str, object]:
    """s_traj against the target path of the prompt's camera moves; a prompt without moves has no
    target, so a null s_traj and the reason."""
    moves = [Primitive(m) for m in cast("list[str]", v.row["camera"])]
    if not moves:
        return {"s_traj_reason": v.no_camera_reason}
    target = target_path(moves, len(v.recon.w2c), MotionScale.from_params(v.params.camera))
    traj = s_traj(v.recon.w2c, target)
    return {"s_traj": traj.s_traj, "traj_translation": traj.translation, "traj_rotation": traj.rotation}
