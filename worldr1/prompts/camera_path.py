"""Target camera paths: a primitive list -> per-frame world-to-camera poses (World-R1's segments).

OpenCV convention: x right, y down, z forward; the world frame is the first camera's frame.
Frames are split evenly across the segments; each segment moves relative to the pose it starts
from, so "push in, then pan left" pushes along the first view and then turns in place.
Sizes follow World-R1's release: push/pull 600 units, move 220, pan 14 deg, orbit 24 deg on a
600-unit radius (`camera` in params). The orbit is World-R1's (`TrajectoryGenerator` in its
flow_grpo/diffusers_patch/camera_trajectory_utils.py): at angle a the camera sits at
(R sin a, 0, R (cos a - 1)) on a circle about a point R behind where it started, turned by yaw(-a),
with a = +arc for orbit left and -arc for orbit right. It travels right and slightly back while
turning left (orbit left), so to first order it circles a point R ahead of it: an arc shot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from worldr1.geometry.cameras import invert
from worldr1.prompts.camera import Primitive


@dataclass(frozen=True)
class MotionScale:
    push: float = 600.0
    move: float = 220.0
    pan_deg: float = 14.0
    orbit_deg: float = 24.0
    orbit_radius: float = 600.0

    @classmethod
    def from_params(cls, camera: object) -> MotionScale:
        return cls(**{k: float(getattr(camera, k)) for k in cls.__dataclass_fields__})


def yaw(angle_rad: float) -> np.ndarray:
    """Rotation about the camera's y axis (down): positive turns the view to the right."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def segment_pose(
    move: Primitive, rot0: np.ndarray, centre0: np.ndarray, u: float, scale: MotionScale
) -> tuple[np.ndarray, np.ndarray]:
    """Camera-to-world rotation and centre after fraction `u` in [0, 1] of one primitive."""
    right, forward = rot0[:, 0], rot0[:, 2]
    pan = np.radians(scale.pan_deg) * u
    arc = np.radians(scale.orbit_deg) * u
    match move:
        case Primitive.PUSH_IN:
            return rot0, centre0 + forward * scale.push * u
        case Primitive.PULL_OUT:
            return rot0, centre0 - forward * scale.push * u
        case Primitive.MOVE_LEFT:
            return rot0, centre0 - right * scale.move * u
        case Primitive.MOVE_RIGHT:
            return rot0, centre0 + right * scale.move * u
        case Primitive.PAN_LEFT:
            return rot0 @ yaw(-pan), centre0
        case Primitive.PAN_RIGHT:
            return rot0 @ yaw(pan), centre0
        case Primitive.ORBIT_LEFT | Primitive.ORBIT_RIGHT:
            a = arc if move is Primitive.ORBIT_LEFT else -arc
            r = scale.orbit_radius
            return rot0 @ yaw(-a), centre0 + rot0 @ np.array([r * np.sin(a), 0.0, r * (np.cos(a) - 1.0)])
        case Primitive.FIXED:
            return rot0, centre0
    raise ValueError(f"unknown primitive {move!r}")


def segment_bounds(frames: int, segments: int) -> np.ndarray:
    """Frame index where each segment starts and ends (segments share their boundary frame)."""
    return np.rint(np.linspace(0, frames - 1, segments + 1)).astype(int)


def target_path(moves: Sequence[Primitive], frames: int, scale: MotionScale = MotionScale()) -> np.ndarray:
    """World-to-camera extrinsics `[frames, 4, 4]` (float64) along the moves, in order.

    No moves means a fixed camera: a prompt without a camera sentence has no target motion.
    """
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    moves = list(moves) or [Primitive.FIXED]
    bounds = segment_bounds(frames, len(moves))
    rot, centre = np.eye(3), np.zeros(3)
    c2w = np.tile(np.eye(4), (frames, 1, 1))
    for k, move in enumerate(moves):
        start, end = bounds[k], bounds[k + 1]
        span = max(end - start, 1)
        # A boundary frame ends the earlier segment (the same pose as the next one's start).
        for i in range(start if k == 0 else start + 1, end + 1):
            r, c = segment_pose(move, rot, centre, (i - start) / span, scale)
            c2w[i, :3, :3], c2w[i, :3, 3] = r, c
        rot, centre = segment_pose(move, rot, centre, 1.0, scale)
    return invert(c2w)


def camera_centres(w2c: np.ndarray) -> np.ndarray:
    """World positions `[F, 3]` of the cameras of world-to-camera extrinsics."""
    return invert(w2c)[..., :3, 3]
