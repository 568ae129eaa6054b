"""Cameras, Sim(3) alignment, pose interpolation and the novel-view paths."""

from __future__ import annotations

import numpy as np
import pytest

from worldr1.geometry.cameras import Cameras, intrinsics_from_fov, invert, look_at, resize_intrinsics, to_4x4
from worldr1.geometry.paths import (
    dolly_zoom_path,
    interpolate_pose,
    interpolation_path,
    meta_view,
    quat_to_rotation,
    rotation_to_quat,
    wander_path,
)
from worldr1.geometry.sim3 import Sim3, align_passes, umeyama, umeyama_ransac
from worldr1.geometry.synthetic import orbit_cameras


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


@pytest.mark.parametrize("motion", ["orbit", "pan"])
def test_align_passes_recovers_the_sim3_between_two_worlds(motion: str) -> None:
    # The same 4 frames seen by two passes whose worlds differ by a similarity; a pan's centres all
    # coincide, which camera centres alone (umeyama) cannot align.
    rng = np.random.default_rng(1)
    if motion == "orbit":
        dst = orbit_cameras(np.linspace(-10, 10, 4), 16, 16).w2c
    else:
        dst = np.stack(
            [
                invert(
                    np.block(
                        [
                            [look_at(np.zeros(3), np.array([np.sin(a), 0.0, np.cos(a)]))[:3, :3].T, np.zeros((3, 1))],
                            [np.zeros((1, 3)), np.ones((1, 1))],
                        ]
                    )
                )
                for a in np.radians([0.0, 5.0, 10.0, 15.0])
            ]
        )
    truth = Sim3(0.4, random_rotation(rng), rng.normal(size=3))
    src = truth.inverse().apply_to_w2c(dst)  # the same cameras in the other pass's world
    dst_depth = rng.uniform(2.0, 6.0, size=(4, 8, 8))
    fit = align_passes(src, dst_depth / truth.scale, dst, dst_depth)
    assert fit.scale == pytest.approx(truth.scale, rel=1e-9)
    np.testing.assert_allclose(fit.rotation, truth.rotation, atol=1e-9)
    np.testing.assert_allclose(fit.translation, truth.translation, atol=1e-9)
    np.testing.assert_allclose(fit.apply_to_w2c(src), dst, atol=1e-9)
    np.testing.assert_allclose(fit.inverse().apply_to_w2c(dst), src, atol=1e-9)
    with pytest.raises(ValueError, match="no pixel has a valid depth"):
        align_passes(src, np.zeros_like(dst_depth), dst, dst_depth)


def test_umeyama_recovers_a_random_sim3_exactly() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        truth = Sim3(float(rng.uniform(0.1, 10)), random_rotation(rng), rng.normal(size=3) * 5)
        src = rng.normal(size=(30, 3))
        fit = umeyama(src, truth.apply(src))
        assert fit.scale == pytest.approx(truth.scale, rel=1e-10)
        np.testing.assert_allclose(fit.rotation, truth.rotation, atol=1e-10)
        np.testing.assert_allclose(fit.translation, truth.translation, atol=1e-9)


def test_alignment_is_scale_invariant() -> None:
    rng = np.random.default_rng(1)
    src, dst = rng.normal(size=(12, 3)), rng.normal(size=(12, 3))
    residual = np.linalg.norm(umeyama(src, dst).apply(src) - dst)
    for k in (0.01, 3.0, 1000.0):
        assert np.linalg.norm(umeyama(k * src, dst).apply(k * src) - dst) == pytest.approx(residual, rel=1e-9)
        assert np.linalg.norm(umeyama(src, k * dst).apply(src) - k * dst) == pytest.approx(k * residual, rel=1e-9)


def test_umeyama_without_scale_and_degenerate_input() -> None:
    rng = np.random.default_rng(2)
    rot, src = random_rotation(rng), rng.normal(size=(8, 3))
    fit = umeyama(src, src @ rot.T + 1.0, with_scale=False)
    assert fit.scale == 1.0
    np.testing.assert_allclose(fit.rotation, rot, atol=1e-10)
    with pytest.raises(ValueError, match="coincide"):
        umeyama(np.ones((5, 3)), rng.normal(size=(5, 3)))


def test_ransac_ignores_outliers() -> None:
    rng = np.random.default_rng(3)
    truth = Sim3(2.0, random_rotation(rng), np.array([1.0, -2.0, 0.5]))
    src = rng.normal(size=(40, 3))
    dst = truth.apply(src)
    dst[:8] += rng.normal(size=(8, 3)) * 20
    fit, inliers = umeyama_ransac(src, dst, threshold=0.1, rng=np.random.default_rng(0))
    assert inliers[8:].all() and not inliers[:8].any()
    assert fit.scale == pytest.approx(2.0, rel=1e-9)
    assert umeyama(src, dst).scale != pytest.approx(2.0, rel=1e-2)


def test_sim3_moves_cameras_consistently() -> None:
    rng = np.random.default_rng(4)
    cams = orbit_cameras(np.linspace(-10, 10, 5), 32, 32)
    sim = Sim3(3.0, random_rotation(rng), rng.normal(size=3))
    moved = sim.apply_to_w2c(cams.w2c)
    np.testing.assert_allclose(invert(moved)[:, :3, 3], sim.apply(cams.centres), atol=1e-9)
    # A world point seen by a camera lands at the same pixel after both are transformed (scale aside).
    point = np.array([0.3, -0.2, 5.0])
    for a, b in zip(cams.w2c, moved):
        pa = (a @ np.append(point, 1))[:3]
        pb = (b @ np.append(sim.apply(point[None])[0], 1))[:3]
        np.testing.assert_allclose(pa[:2] / pa[2], pb[:2] / pb[2], atol=1e-9)


def test_intrinsics_follow_a_resize() -> None:
    K = intrinsics_from_fov(480, 832, 60.0)
    small = resize_intrinsics(K, (480, 832), (60, 104))
    assert small[0, 0] == pytest.approx(K[0, 0] / 8) and small[1, 2] == pytest.approx(30.0)
    # The same point projects to the same relative position in both images.
    p = np.array([0.4, -0.3, 2.0])
    big, sm = K @ p, small @ p
    assert big[0] / big[2] / 832 == pytest.approx(sm[0] / sm[2] / 104)
    cams = Cameras(np.eye(4)[None], K[None], 480, 832).resized(60, 104)
    np.testing.assert_allclose(cams.K[0], small)


def test_extrinsics_3x4_become_4x4() -> None:
    e = np.arange(12, dtype=float).reshape(3, 4)
    m = to_4x4(e[None])
    assert m.shape == (1, 4, 4) and (m[0, 3] == [0, 0, 0, 1]).all() and (m[0, :3] == e).all()


def test_quaternions_and_slerp() -> None:
    rng = np.random.default_rng(5)
    for _ in range(10):
        r = random_rotation(rng)
        np.testing.assert_allclose(quat_to_rotation(rotation_to_quat(r)), r, atol=1e-10)
    a = look_at(np.array([0.0, 0, 0]), np.array([0.0, 0, 1]))
    b = look_at(np.array([2.0, 0, 0]), np.array([2.0 + np.sin(np.radians(40)), 0, np.cos(np.radians(40))]))
    mid = interpolate_pose(a, b, 0.5)
    np.testing.assert_allclose(invert(mid)[:3, 3], [1.0, 0, 0], atol=1e-12)
    fwd = invert(mid)[:3, 2]
    assert np.degrees(np.arctan2(fwd[0], fwd[2])) == pytest.approx(20.0)
    np.testing.assert_allclose(interpolate_pose(a, b, 0.0), a, atol=1e-12)
    np.testing.assert_allclose(interpolate_pose(a, b, 1.0), b, atol=1e-12)


def test_novel_view_paths() -> None:
    cams = orbit_cameras(np.linspace(-12, 12, 9), 48, 64)
    interp = interpolation_path(cams, 17)
    np.testing.assert_allclose(interp.w2c[::2], cams.w2c, atol=1e-9)  # passes through every input camera
    wander = wander_path(cams, 8, radius=0.3)
    d = np.linalg.norm(wander.centres - cams.centres[4], axis=1)
    assert np.all(d > 0.14) and np.all(d <= 0.3 + 1e-9)
    np.testing.assert_allclose(wander.w2c[:, :3, :3], np.broadcast_to(cams.w2c[4, :3, :3], (8, 3, 3)), atol=1e-12)
    # Dolly zoom: a point on the focus plane keeps its pixel while the camera moves forward.
    dolly = dolly_zoom_path(cams, 5, focus_depth=5.0, travel=2.0)
    c2w = invert(cams.w2c[4])
    point = c2w[:3, 3] + c2w[:3, :3] @ np.array([0.8, -0.4, 5.0])
    pixels = []
    for w2c, K in zip(dolly.w2c, dolly.K):
        p = K @ (w2c @ np.append(point, 1))[:3]
        pixels.append(p[:2] / p[2])
    np.testing.assert_allclose(pixels, np.broadcast_to(pixels[0], (5, 2)), atol=1e-9)
    assert np.linalg.norm(dolly.centres[-1] - dolly.centres[0]) == pytest.approx(2.0)


def test_meta_view_is_the_camera_farthest_from_the_first() -> None:
    def at(x: float) -> np.ndarray:
        return invert(np.block([[np.eye(3), np.array([[x], [0], [0]])], [np.zeros((1, 3)), np.ones((1, 1))]]))

    K = np.repeat(np.eye(3)[None], 4, 0)
    assert meta_view(Cameras(np.stack([at(x) for x in (0.0, 3.0, -5.0, 1.0)]), K, 8, 8)) == 2
    # Where the world's origin lies does not matter (a reconstructor may put it at any view).
    assert meta_view(Cameras(np.stack([at(x) for x in (4.0, 7.0, -0.5, 5.0)]), K, 8, 8)) == 2
