"""Warping by depth and pose (geometry/warp.py) and the reprojection term built on it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from worldr1.geometry.cameras import intrinsics_from_fov, look_at
from worldr1.geometry.warp import gaussian_blur, layer_edges, warp
from worldr1.rewards.reproject import (
    PairErrors,
    neighbourhood_error,
    relative_score,
    reprojection_errors,
    s_reproj,
    unwarped_errors,
)

H = W = 32


def plane_frame(w2c: np.ndarray, K: np.ndarray, texture, wall_z: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A textured wall (the plane y = wall_z... here z = wall_z in world) seen by one camera: rgb [H, W, 3]
    and the exact depth, by casting each pixel centre's ray."""
    c2w = np.linalg.inv(w2c)
    v, u = np.meshgrid(np.arange(H) + 0.5, np.arange(W) + 0.5, indexing="ij")
    rays_cam = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    rays = rays_cam @ c2w[:3, :3].T
    origin = c2w[:3, 3]
    t = (wall_z - origin[2]) / rays[..., 2]
    hit = origin + t[..., None] * rays
    depth = t  # rays_cam has z = 1, so the ray parameter is the depth along the optical axis
    return texture(hit[..., 0], hit[..., 1]), depth


def smooth(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.stack([0.5 + 0.4 * np.sin(3 * x), 0.5 + 0.4 * np.cos(2 * y), 0.5 + 0.3 * np.sin(x + y)], -1)


def two_views(texture=smooth) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    K = intrinsics_from_fov(H, W, 55.0)
    cams = [
        look_at(np.array([dx, 0.3, -3.0]), np.array([0.0, 0.0, 0.0]), up=np.array([0.0, -1.0, 0.0]))
        for dx in (0.0, 0.4)
    ]
    rgb, depth = zip(*(plane_frame(c, K, texture) for c in cams))
    t = lambda a: torch.from_numpy(np.stack(a)).float()  # noqa: E731
    return t(rgb), t(depth), t(cams), t([K, K])


def test_warp_of_true_geometry_reproduces_the_other_frame() -> None:
    rgb, depth, w2c, K = two_views()
    seen = warp(rgb[1], depth[0], depth[1], K[0], K[1], w2c[0], w2c[1])
    assert seen.valid.float().mean() > 0.7  # the sideways move loses a strip at the border
    err = (seen.colour - rgb[0]).abs()[seen.valid]
    assert float(err.max()) < 0.03
    # Depth ratio 1 where b sees the same surface point.
    assert float((seen.depth_ratio[seen.valid] - 1).abs().max()) < 0.02


def test_a_changed_patch_shows_where_it_changed() -> None:
    rgb, depth, w2c, K = two_views()
    broken = rgb.clone()
    broken[1, 10:16, 12:18] = torch.tensor([1.0, 0.0, 0.0])
    e = reprojection_errors(broken, depth, w2c, K, blur=0.0)
    a_from_b = e.error[e.pairs.index((0, 1))]
    assert float(a_from_b[e.valid[0]].max()) > 0.5
    sound = reprojection_errors(rgb, depth, w2c, K, blur=0.0)
    assert float(sound.error[0][sound.valid[0]].max()) < 0.03


def test_occluded_points_are_not_judged() -> None:
    rgb, depth, w2c, K = two_views()
    # Frame b has something close to the camera over its middle: points of a behind it are hidden in b.
    near = depth.clone()
    near[1, 8:24, 8:24] = 0.5
    seen = warp(rgb[1], depth[0], near[1], K[0], K[1], w2c[0], w2c[1])
    assert float((seen.depth_ratio > 1.05).float().mean()) > 0.1
    assert not bool((seen.valid & (seen.depth_ratio > 1.06)).any())


def test_gaussian_blur_keeps_constants_and_mass() -> None:
    flat = torch.full((2, 9, 9, 3), 0.25)
    assert torch.allclose(gaussian_blur(flat, 1.0), flat)
    spike = torch.zeros((1, 15, 15, 1))
    spike[0, 7, 7] = 1.0
    out = gaussian_blur(spike, 1.0)
    assert math.isclose(float(out.sum()), 1.0, rel_tol=1e-5)
    assert float(out[0, 7, 7]) < 0.2
    assert gaussian_blur(spike, 0.0) is spike


def test_layer_edges_marks_silhouettes_not_slopes() -> None:
    _, depth, _, _ = two_views()
    assert not bool(layer_edges(depth).any())  # an oblique wall is no edge
    step = depth.clone()
    step[:, :, 16:] *= 2
    edges = layer_edges(step)
    assert bool(edges[:, :, 15:17].all()) and not bool(edges[:, :, :14].any())


def test_s_reproj_scores_a_sound_pair_above_a_broken_one() -> None:
    rgb, depth, w2c, K = two_views()
    frames = (rgb * 255).round().to(torch.uint8).numpy()
    broken = frames.copy()
    broken[1, 8:20, 8:20] = [255, 0, 0]
    sound_score = s_reproj(frames, depth, w2c.double().numpy(), K.double().numpy())
    broken_score = s_reproj(broken, depth, w2c.double().numpy(), K.double().numpy())
    assert 0.0 <= broken_score.s_reproj < sound_score.s_reproj <= 1.0
    assert sound_score.psnr > broken_score.psnr


def test_geometry_that_relates_no_frames_earns_nothing() -> None:
    rgb, depth, w2c, K = two_views()
    frames = (rgb * 255).round().to(torch.uint8).numpy()
    away = w2c.double().numpy().copy()
    away[1, :3, 3] += [0.0, 0.0, -50.0]  # frame 1's camera far behind the wall's points: nothing lands in view
    away[1, :3, :3] = -away[1, :3, :3] @ np.diag([1.0, 1.0, 1.0]) * np.array([[1.0], [-1.0], [-1.0]])
    score = s_reproj(frames, depth, away, K.double().numpy())
    assert score.s_reproj == 0.0 and score.psnr is None and score.judged == 0.0


def test_neighbourhood_error_forgives_a_pixel_of_misregistration_not_a_new_colour() -> None:
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(16, 16, 3, generator=gen)
    shifted = torch.roll(a, 1, dims=1)  # the same image one pixel to the right
    valid = torch.ones(16, 16, dtype=torch.bool)
    inner = (slice(2, -2), slice(2, -2))
    assert float(neighbourhood_error(a, shifted, valid, 0)[inner].mean()) > 0.1
    assert float(neighbourhood_error(a, shifted, valid, 1)[inner].max()) == 0.0
    changed = shifted.clone()
    changed[6:10, 6:10] = torch.tensor([2.0, -1.0, 2.0])  # a colour nothing in `a` has
    err = neighbourhood_error(a, changed, valid, 1)
    assert float(err[7:9, 7:9].min()) > 0.5  # windows wholly inside the changed patch
    # Invalid neighbours cannot be matched: with none valid, every pixel is infinitely off.
    assert torch.isinf(neighbourhood_error(a, shifted, torch.zeros_like(valid), 1)).all()


def test_s_reproj_with_a_radius_tells_the_broken_pair_still() -> None:
    rgb, depth, w2c, K = two_views()
    frames = (rgb * 255).round().to(torch.uint8).numpy()
    broken = frames.copy()
    broken[1, 8:20, 8:20] = [255, 0, 0]
    args = (w2c.double().numpy(), K.double().numpy(), 0.8, 0.12, 0)
    sound, bad = (s_reproj(f, depth, *args, radius=1) for f in (frames, broken))
    assert bad.s_reproj < sound.s_reproj - 0.05
    assert sound.s_reproj >= s_reproj(frames, depth, *args, radius=0).s_reproj


def test_relative_s_reproj_counts_errors_against_the_unwarped_change() -> None:
    # Two views of a striped wall: unwarped, the sideways move puts most stripes out of place; the
    # true geometry carries them. A patch that changes in frame 1 stays an error either way.
    stripes = lambda x, y: np.stack([0.5 + 0.45 * np.sin(6 * x)] * 3, -1)  # noqa: E731
    rgb, depth, w2c, K = two_views(stripes)
    frames = (rgb * 255).round().to(torch.uint8).numpy()
    broken = frames.copy()
    broken[1, 8:20, 8:20] = [255, 0, 0]
    cams, k = w2c.double().numpy(), K.double().numpy()
    for video in (frames, broken):
        plain = s_reproj(video, depth, cams, k, blur=0.8)
        rel = s_reproj(video, depth, cams, k, blur=0.8, relative=0.01)
        assert plain.unwarped_bad is None and rel.bad == plain.bad
        e = reprojection_errors(torch.from_numpy(video).float() / 255, depth, w2c, K, blur=0.8)
        still = torch.cat(
            [u[v] for u, v in zip(unwarped_errors(torch.from_numpy(video).float() / 255, e, 0.8, 0), e.valid)]
        )
        assert rel.unwarped_bad == float((still > 0.12).float().mean()) > 0.1
        assert rel.s_reproj == 1 - plain.bad / max(plain.bad, rel.unwarped_bad + 0.01)
    sound = s_reproj(frames, depth, cams, k, blur=0.8, relative=0.01)
    hurt = s_reproj(broken, depth, cams, k, blur=0.8, relative=0.01)
    assert sound.s_reproj > 0.95 > hurt.s_reproj
    # A still video has nothing to explain: no error, and the floor keeps it finite.
    frozen = np.repeat(frames[:1], 2, 0)
    still_score = s_reproj(frozen, depth[:1].repeat(2, 1, 1), np.repeat(cams[:1], 2, 0), k, blur=0.8, relative=0.01)
    assert still_score.unwarped_bad == 0.0 and still_score.s_reproj == 1.0
    # Geometry that does worse than none scores 0, not below: one frame twice, warped by a move.
    twice = np.repeat(frames[:1], 2, 0)
    worse = s_reproj(twice, depth, cams, k, blur=0.8, relative=0.01)
    assert worse.unwarped_bad == 0.0 and worse.bad > 0.01 and worse.s_reproj == 0.0


def test_relative_score_is_the_share_of_the_unwarped_change_the_geometry_explains() -> None:
    assert relative_score(0.0, 0.3, 0.01) == 1.0  # every error of no geometry explained
    assert relative_score(0.1, 0.39, 0.01) == pytest.approx(0.75)
    assert relative_score(0.005, 0.0, 0.01) == pytest.approx(0.5)  # a still video: the floor divides
    assert relative_score(0.4, 0.2, 0.01) == 0.0  # worse than no geometry: nothing explained, never below


def test_unwarped_errors_compare_pixel_for_pixel_within_the_radius() -> None:
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(12, 12, 3, generator=gen)
    shifted = torch.roll(a, 1, dims=1)  # b: a one pixel to the right
    frames = torch.stack([a, shifted])
    valid = torch.zeros(12, 12, dtype=torch.bool)
    valid[2:10, 2:10] = True
    e = PairErrors([(0, 1)], [torch.zeros(12, 12)], [valid])
    exact, near = unwarped_errors(frames, e, 0.0, 0)[0], unwarped_errors(frames, e, 0.0, 1)[0]
    assert float(exact[valid].min()) >= 0.0 and float(exact[valid].mean()) > 0.2  # a pixel off, unwarped
    assert float(near[valid].max()) == 0.0  # the one-pixel shift is within the radius
    assert float(exact[~valid].abs().max()) == 0.0  # nothing outside the judged pixels
