"""Target camera paths move the camera the way each primitive's name says (OpenCV: x right, y down, z forward)."""

from __future__ import annotations

import numpy as np
import pytest

from worldr1.geometry.cameras import invert
from worldr1.prompts.camera import Primitive as P
from worldr1.prompts.camera_path import MotionScale, camera_centres, segment_bounds, target_path

SCALE = MotionScale()


def rotations(w2c: np.ndarray) -> np.ndarray:
    """Camera-to-world rotations [F, 3, 3]."""
    return np.swapaxes(w2c[:, :3, :3], 1, 2)


def forward(w2c: np.ndarray) -> np.ndarray:
    return rotations(w2c)[:, :, 2]


def yaw_deg(w2c: np.ndarray) -> np.ndarray:
    """Signed heading of the view in the first camera's x-z plane; positive is to the right."""
    f = forward(w2c)
    return np.degrees(np.arctan2(f[:, 0], f[:, 2]))


@pytest.mark.parametrize("frames", [1, 2, 17, 81])
def test_shapes_and_rigid(frames: int) -> None:
    w2c = target_path([P.PUSH_IN, P.ORBIT_LEFT, P.PAN_RIGHT], frames)
    assert w2c.shape == (frames, 4, 4) and w2c.dtype == np.float64
    r = w2c[:, :3, :3]
    np.testing.assert_allclose(r @ np.swapaxes(r, 1, 2), np.broadcast_to(np.eye(3), r.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-12)
    np.testing.assert_allclose(w2c[0], np.eye(4), atol=1e-12)  # the world frame is the first camera's


def test_push_in_moves_along_first_view() -> None:
    w2c = target_path([P.PUSH_IN], 81)
    c = camera_centres(w2c)
    np.testing.assert_allclose(c[:, :2], 0.0, atol=1e-9)
    assert np.all(np.diff(c[:, 2]) > 0)
    assert c[-1, 2] == pytest.approx(SCALE.push)
    np.testing.assert_allclose(w2c[:, :3, :3], np.broadcast_to(np.eye(3), (81, 3, 3)), atol=1e-12)


def test_pull_out_moves_back() -> None:
    c = camera_centres(target_path([P.PULL_OUT], 17))
    assert c[-1, 2] == pytest.approx(-SCALE.push)
    np.testing.assert_allclose(c[:, :2], 0.0, atol=1e-9)


@pytest.mark.parametrize(("move", "sign"), [(P.MOVE_LEFT, -1), (P.MOVE_RIGHT, 1)])
def test_move_is_sideways_without_turning(move: P, sign: int) -> None:
    w2c = target_path([move], 33)
    c = camera_centres(w2c)
    assert c[-1, 0] == pytest.approx(sign * SCALE.move)
    np.testing.assert_allclose(c[:, 1:], 0.0, atol=1e-9)
    np.testing.assert_allclose(yaw_deg(w2c), 0.0, atol=1e-9)


@pytest.mark.parametrize(("move", "sign"), [(P.PAN_LEFT, -1), (P.PAN_RIGHT, 1)])
def test_pan_turns_in_place(move: P, sign: int) -> None:
    w2c = target_path([move], 33)
    np.testing.assert_allclose(camera_centres(w2c), 0.0, atol=1e-9)
    heading = yaw_deg(w2c)
    assert np.all(np.diff(sign * heading) > 0)
    assert heading[-1] == pytest.approx(sign * SCALE.pan_deg)
    # A yaw: the camera's down axis stays the world's down axis (no roll, no tilt).
    np.testing.assert_allclose(rotations(w2c)[:, :, 1], np.tile([0.0, 1.0, 0.0], (33, 1)), atol=1e-12)


@pytest.mark.parametrize(("move", "sign"), [(P.ORBIT_LEFT, 1), (P.ORBIT_RIGHT, -1)])
def test_orbit_travels_against_its_turn_around_a_point_ahead(move: P, sign: int) -> None:
    # World-R1's orbit left: the camera slides right (and a little back) while turning left, so it
    # keeps looking at about the point orbit_radius ahead of where it started.
    w2c = target_path([move], 41)
    c = camera_centres(w2c)
    assert np.all(np.diff(sign * c[:, 0]) > 0) and np.all(np.diff(c[:, 2]) < 0)
    np.testing.assert_allclose(c[:, 1], 0.0, atol=1e-9)
    assert np.all(np.diff(-sign * yaw_deg(w2c)) > 0)
    assert yaw_deg(w2c)[-1] == pytest.approx(-sign * SCALE.orbit_deg)
    ahead = np.array([0.0, 0.0, SCALE.orbit_radius])
    to_ahead = (ahead - c) / np.linalg.norm(ahead - c, axis=1, keepdims=True)
    assert np.degrees(np.arccos(np.clip((forward(w2c) * to_ahead).sum(1), -1, 1))).max() < 0.25 * SCALE.orbit_deg


def world_r1_local(move: P, progress: float, s: MotionScale) -> np.ndarray:
    """One frame of World-R1's `TrajectoryGenerator.generate` (camera-to-world, segment-local, start
    at the origin), written out from its formulas with its motion profiles (no pitch or roll)."""

    def rot_y(deg: float) -> np.ndarray:
        c, n = np.cos(np.radians(deg)), np.sin(np.radians(deg))
        return np.array([[c, 0, n, 0], [0, 1, 0, 0], [-n, 0, c, 0], [0, 0, 0, 1]], dtype=float)

    def shift(x: float, y: float, z: float) -> np.ndarray:
        m = np.eye(4)
        m[:3, 3] = [x, y, z]
        return m

    match move:
        case P.PUSH_IN:
            return shift(0, 0, s.push * progress)
        case P.PULL_OUT:
            return shift(0, 0, -s.push * progress)
        case P.MOVE_LEFT:
            return shift(-s.move * progress, 0, 0)
        case P.MOVE_RIGHT:
            return shift(s.move * progress, 0, 0)
        case P.PAN_LEFT:
            return rot_y(-s.pan_deg * progress)
        case P.PAN_RIGHT:
            return rot_y(s.pan_deg * progress)
        case P.ORBIT_LEFT | P.ORBIT_RIGHT:
            angle = s.orbit_deg * progress * (1 if move is P.ORBIT_LEFT else -1)
            m = rot_y(-angle)
            r = s.orbit_radius
            m[:3, 3] = [r * np.sin(np.radians(angle)), 0, -r + r * np.cos(np.radians(angle))]
            return m
    return np.eye(4)


def world_r1_path(moves: list[P], frames: int, s: MotionScale = SCALE) -> np.ndarray:
    """World-to-camera poses of the moves chained as World-R1 chains them: each segment's local
    poses composed onto the pose where the previous segment ended (our frame split)."""
    bounds = segment_bounds(frames, len(moves))
    start, c2w = np.eye(4), np.tile(np.eye(4), (frames, 1, 1))
    for k, move in enumerate(moves):
        lo, hi = bounds[k], bounds[k + 1]
        for i in range(lo, hi + 1):
            c2w[i] = start @ world_r1_local(move, (i - lo) / max(hi - lo, 1), s)
        start = start @ world_r1_local(move, 1.0, s)
    return np.linalg.inv(c2w)


@pytest.mark.parametrize(
    "moves",
    [[m] for m in P if m is not P.FIXED]
    + [
        [P.PUSH_IN, P.ORBIT_LEFT],
        [P.ORBIT_RIGHT, P.PAN_LEFT],
        [P.MOVE_LEFT, P.PULL_OUT, P.PAN_LEFT],
        [P.PAN_RIGHT, P.ORBIT_LEFT, P.MOVE_RIGHT],
    ],
    ids=lambda ms: "+".join(m.value for m in ms),
)
def test_every_primitive_and_compound_matches_world_r1(moves: list[P]) -> None:
    np.testing.assert_allclose(target_path(moves, 21), world_r1_path(moves, 21), atol=1e-9)
    scale = MotionScale(push=1.1, move=1.1, pan_deg=14.0, orbit_deg=24.0, orbit_radius=3.77)
    np.testing.assert_allclose(target_path(moves, 5, scale), world_r1_path(moves, 5, scale), atol=1e-12)


def test_world_r1_orbit_left_ends_right_of_and_behind_the_start() -> None:
    # The numbers of the reference at arc 24 deg, radius 600: (+244.0, 0, -51.9), facing 24 deg left.
    w2c = target_path([P.ORBIT_LEFT], 2)
    np.testing.assert_allclose(camera_centres(w2c)[-1], [244.04, 0.0, -51.87], atol=0.01)
    assert yaw_deg(w2c)[-1] == pytest.approx(-24.0)


def test_fixed_and_empty_stay_put() -> None:
    for moves in ([P.FIXED], []):
        np.testing.assert_allclose(target_path(moves, 9), np.broadcast_to(np.eye(4), (9, 4, 4)), atol=0)


def test_compound_segments_split_frames_evenly_and_chain() -> None:
    frames = 81
    w2c = target_path([P.MOVE_LEFT, P.PULL_OUT, P.PAN_LEFT], frames)
    bounds = segment_bounds(frames, 3)
    assert list(bounds) == [0, 27, 53, 80]
    c = camera_centres(w2c)
    # Segment 1 slides left, segment 2 backs off from there, segment 3 turns where it ended.
    np.testing.assert_allclose(c[27], [-SCALE.move, 0, 0], atol=1e-9)
    np.testing.assert_allclose(c[53], [-SCALE.move, 0, -SCALE.push], atol=1e-9)
    np.testing.assert_allclose(c[53:], np.broadcast_to(c[53], (28, 3)), atol=1e-9)
    assert yaw_deg(w2c)[-1] == pytest.approx(-SCALE.pan_deg)
    # No jumps: consecutive poses are close everywhere.
    steps = np.linalg.norm(np.diff(c, axis=0), axis=1)
    assert steps.max() < 2 * SCALE.push / 26


def test_later_segments_move_in_the_turned_frame() -> None:
    # After panning right 90 degrees, "push in" goes along world +x.
    scale = MotionScale(pan_deg=90.0)
    c = camera_centres(target_path([P.PAN_RIGHT, P.PUSH_IN], 21, scale))
    np.testing.assert_allclose(c[-1], [scale.push, 0, 0], atol=1e-9)


def test_invert_is_the_inverse() -> None:
    w2c = target_path([P.ORBIT_RIGHT, P.MOVE_LEFT], 13)
    np.testing.assert_allclose(invert(w2c) @ w2c, np.broadcast_to(np.eye(4), w2c.shape), atol=1e-9)


def test_scale_from_params(shipped_params: dict) -> None:
    from worldr1 import config

    params = config.validate(shipped_params)
    assert MotionScale.from_params(params.camera) == MotionScale()
