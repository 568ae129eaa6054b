"""Photometric pose refinement (reconstruct/refine.py) and s_reproj with it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from worldr1.geometry.cameras import rotation_matrix
from worldr1.geometry.refine import refine_poses
from worldr1.geometry.warp import warp, warp_pairs
from worldr1.rewards.reproject import reprojection_errors, s_reproj
from worldr1.toyworld.suite import SOUND, twins


@pytest.fixture(scope="module")
def clip() -> dict[str, torch.Tensor]:
    """A sound toy clip (ray cast, true depth and cameras) and the same cameras, each after the
    first turned by ~1.5 degrees and shifted: the size of the trained toy reconstructor's errors."""
    v = next(t for t in twins(1234, 5, 32, 32) if t.kind == SOUND)
    w2c = torch.from_numpy(v.w2c).float()
    gen = torch.Generator().manual_seed(0)
    off = torch.zeros(5, 4, 4)
    off[:, :3, :3] = rotation_matrix(0.026 * torch.randn(5, 3, generator=gen))
    off[:, :3, 3] = 0.05 * torch.randn(5, 3, generator=gen)
    off[:, 3, 3] = 1.0
    off[0] = torch.eye(4)
    return {
        "frames": torch.from_numpy(v.frames).float() / 255,
        "uint8": torch.from_numpy(v.frames),
        "depth": torch.from_numpy(v.depth).float(),
        "K": torch.from_numpy(v.K).float(),
        "w2c": w2c,
        "noisy": off @ w2c,
    }


def bad_share(c: dict[str, torch.Tensor], w2c: torch.Tensor, depth: torch.Tensor | None = None) -> float:
    e = reprojection_errors(c["frames"], c["depth"] if depth is None else depth, w2c, c["K"], blur=0.8)
    judged = torch.cat([err[v] for err, v in zip(e.error, e.valid)])
    return float((judged > 0.12).float().mean())


def test_pairs_warped_at_once_are_each_pair_warped_alone(clip: dict[str, torch.Tensor]) -> None:
    a, b = torch.tensor([0, 3, 4, 1]), torch.tensor([2, 1, 0, 4])
    f, d, K, P = clip["frames"], clip["depth"], clip["K"], clip["noisy"]
    pairs = warp_pairs(f, d, K, P, a, b, 0.05)
    for i in range(len(a)):
        one = warp(f[b[i]], d[a[i]], d[b[i]], K[a[i]], K[b[i]], P[a[i]], P[b[i]], 0.05)
        assert torch.equal(one.valid, pairs.valid[i])
        assert torch.allclose(one.colour, pairs.colour[i], atol=1e-5)


def test_refinement_undoes_a_camera_error(clip: dict[str, torch.Tensor]) -> None:
    sound = bad_share(clip, clip["w2c"])
    noisy = bad_share(clip, clip["noisy"])
    assert noisy > sound + 0.05  # the perturbation is visible to the warp measure
    w2c, depth = refine_poses(clip["frames"], clip["depth"], clip["K"], clip["noisy"], steps=60)
    refined = bad_share(clip, w2c, depth)
    assert refined < sound + 0.3 * (noisy - sound)
    # Frame 0 is the reference: its camera and its depth map stay as they were.
    assert torch.equal(w2c[0], clip["noisy"][0])
    assert torch.equal(depth[0], clip["depth"][0])


def test_refinement_of_true_geometry_stays_put(clip: dict[str, torch.Tensor]) -> None:
    w2c, depth = refine_poses(clip["frames"], clip["depth"], clip["K"], clip["w2c"], steps=30)
    assert float((w2c - clip["w2c"]).abs().max()) < 0.02
    assert float((depth / clip["depth"] - 1).abs().max()) < 0.02


def test_a_depth_grid_undoes_a_tilt_that_one_scale_cannot(clip: dict[str, torch.Tensor]) -> None:
    # Every later map tilted left to right by +-50%: no single scale (nor camera) fits it, a 2x2 lattice can.
    tilt = torch.linspace(0.5, 1.5, 32)[None, None, :].expand(5, 32, 32).clone()
    tilt[0] = 1.0
    bent = clip["depth"] * tilt
    assert bad_share(clip, clip["w2c"], bent) > bad_share(clip, clip["w2c"]) + 0.02
    scale = bad_share(clip, *refine_poses(clip["frames"], bent, clip["K"], clip["w2c"], steps=60))
    w2c, depth = refine_poses(clip["frames"], bent, clip["K"], clip["w2c"], steps=60, grid=2)
    assert bad_share(clip, w2c, depth) < 0.5 * scale
    assert torch.equal(depth[0], bent[0]) and torch.equal(w2c[0], clip["w2c"][0])


def test_no_steps_is_the_identity(clip: dict[str, torch.Tensor]) -> None:
    w2c, depth = refine_poses(clip["frames"], clip["depth"], clip["K"], clip["noisy"], steps=0)
    assert w2c is clip["noisy"] and depth is clip["depth"]


def test_s_reproj_with_refinement_forgives_the_camera_error(clip: dict[str, torch.Tensor]) -> None:
    frames = clip["uint8"].numpy()
    args = (frames, clip["depth"], clip["noisy"].double().numpy(), clip["K"].double().numpy())
    plain = s_reproj(*args, 0.8, 0.12)
    refined = s_reproj(*args, 0.8, 0.12, refine_steps=60)
    truth = s_reproj(frames, clip["depth"], clip["w2c"].double().numpy(), clip["K"].double().numpy(), 0.8, 0.12)
    assert plain.s_reproj < refined.s_reproj
    assert abs(refined.s_reproj - truth.s_reproj) < 0.3 * (truth.s_reproj - plain.s_reproj)
    assert np.isfinite(refined.psnr)
