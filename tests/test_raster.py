"""The pure-torch rasteriser: where and how big a Gaussian lands, tiling, gradients, gsplat parity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from worldr1.geometry.gaussians import Gaussians
from worldr1.geometry.raster import EPS2D, choose_backend, gsplat_cuda_available, project, render
from worldr1.geometry.synthetic import card_scene, orbit_cameras


def one_gaussian(mean: list[float], scale: float, opacity: float = 0.8, color: list[float] | None = None) -> Gaussians:
    return Gaussians(
        torch.tensor([mean]),
        torch.full((1, 3), scale),
        torch.tensor([[1.0, 0, 0, 0]]),
        torch.tensor([opacity]),
        colors=torch.tensor([color or [1.0, 0.5, 0.25]]),
    )


def camera(f: float = 50.0, w: int = 64, h: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.eye(4)[None], torch.tensor([[[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]]])


def random_gaussians(n: int, seed: int, sh_degree: int | None = None) -> Gaussians:
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g) * torch.tensor([1.0, 0.8, 0.5]) + torch.tensor([0.0, 0.0, 4.0])
    common = dict(
        means=means,
        scales=torch.rand(n, 3, generator=g) * 0.15 + 0.02,
        quats=torch.randn(n, 4, generator=g),
        opacities=torch.rand(n, generator=g) * 0.9 + 0.05,
    )
    if sh_degree is None:
        return Gaussians(**common, colors=torch.rand(n, 3, generator=g))
    return Gaussians(**common, sh=torch.randn(n, (sh_degree + 1) ** 2, 3, generator=g) * 0.3)


def test_a_gaussian_lands_where_projection_says() -> None:
    w2c, K = camera()
    g = one_gaussian([0.4, -0.2, 5.0], scale=0.1)
    out = render(g, w2c, K, 64, 48, backend="torch")
    u, v = 50 * 0.4 / 5 + 32, 50 * -0.2 / 5 + 24  # pinhole projection: (36, 22)
    _, means2d, _, _ = project(g, w2c, K, 64, 48)
    np.testing.assert_allclose(means2d[0, 0].numpy(), [u, v], atol=1e-5)
    iy, ix = divmod(int(out.alpha[0].argmax()), 64)
    assert (ix, iy) in {(35, 21), (35, 22), (36, 21), (36, 22)}  # a pixel whose centre is nearest
    assert float(out.depth[0, iy, ix]) == pytest.approx(5.0)
    assert float(out.alpha[0, 0, 0]) == 0.0  # far away: nothing


def test_a_gaussian_has_the_right_footprint() -> None:
    # On the optical axis the 2D std is exactly f * scale / z = 1 px; the rasteriser adds its
    # 0.3 px^2 low-pass and drops contributions under 1/255.
    w2c, K = camera()
    out = render(one_gaussian([0.0, 0.0, 5.0], scale=0.1), w2c, K, 64, 48, backend="torch")
    var = (50 * 0.1 / 5.0) ** 2 + EPS2D
    for dx in range(0, 6):
        px, py = 32 + dx, 24
        expected = 0.8 * math.exp(-0.5 * ((px + 0.5 - 32) ** 2 + (py + 0.5 - 24) ** 2) / var)
        got = float(out.alpha[0, py, px])
        assert got == pytest.approx(expected if expected >= 1 / 255 else 0.0, rel=1e-5, abs=1e-7), dx
    assert float(out.alpha[0, 24, 37]) == 0.0  # 4.5 px out: under 1/255
    torch.testing.assert_close(out.rgb[0, 24, 32], torch.tensor([1.0, 0.5, 0.25]) * out.alpha[0, 24, 32])


def test_front_gaussian_occludes_the_back_one() -> None:
    w2c, K = camera()
    front = one_gaussian([0.0, 0.0, 3.0], 0.3, 0.999, [1.0, 0.0, 0.0])
    back = one_gaussian([0.0, 0.0, 6.0], 0.6, 0.999, [0.0, 0.0, 1.0])
    for g in (Gaussians.concat([front, back]), Gaussians.concat([back, front])):
        out = render(g, w2c, K, 64, 48, backend="torch")
        centre = out.rgb[0, 24, 32]
        assert float(centre[0]) > 0.98 and float(centre[2]) < 0.02
        assert float(out.depth[0, 24, 32]) == pytest.approx(3.0, abs=0.05)


@pytest.mark.parametrize(("sh_degree", "tile"), [(None, 8), (2, 8), (None, 4)])
def test_tiled_equals_dense(sh_degree: int | None, tile: int) -> None:
    g = random_gaussians(400, seed=1, sh_degree=sh_degree)
    w2c = torch.from_numpy(orbit_cameras(np.array([-8.0, 0.0, 11.0]), 40, 56, radius=4.0, target=(0, 0, 4)).w2c).float()
    K = torch.from_numpy(orbit_cameras(np.array([0.0]), 40, 56).K).float().expand(3, 3, 3)
    tiled = render(g, w2c, K, 56, 40, backend="torch", tile_size=tile)
    dense = render(g, w2c, K, 56, 40, backend="torch", tile_size=64)
    assert float(tiled.alpha.mean()) > 0.2
    torch.testing.assert_close(tiled.rgb, dense.rgb, rtol=0, atol=1e-5)
    torch.testing.assert_close(tiled.alpha, dense.alpha, rtol=0, atol=1e-5)
    torch.testing.assert_close(tiled.depth, dense.depth, rtol=0, atol=1e-4)


@pytest.mark.parametrize("sh_degree", [None, 1])
def test_gradients_are_finite_for_every_parameter(sh_degree: int | None) -> None:
    base = random_gaussians(150, seed=2, sh_degree=sh_degree)
    names = ["means", "scales", "quats", "opacities", "colors" if sh_degree is None else "sh"]
    params = {k: getattr(base, k).clone().requires_grad_(True) for k in names}
    w2c, K = camera(f=40.0, w=48, h=32)
    out = render(Gaussians(**params), w2c, K, 48, 32, backend="torch", tile_size=16)
    target = torch.rand_like(out.rgb)
    ((out.rgb - target) ** 2).mean().add(out.depth.mean() * 1e-2).backward()
    for name, p in params.items():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert float(p.grad.abs().sum()) > 0, name


def test_background_fills_what_nothing_covers() -> None:
    w2c, K = camera()
    out = render(
        one_gaussian([0.0, 0.0, 5.0], 0.05), w2c, K, 64, 48, backend="torch", background=torch.tensor([0.0, 1.0, 0.0])
    )
    torch.testing.assert_close(out.rgb[0, 0, 0], torch.tensor([0.0, 1.0, 0.0]))


def test_backend_choice() -> None:
    assert choose_backend("torch", torch.device("cpu")) == "torch"
    assert choose_backend("auto", torch.device("cpu")) == "torch"
    if not gsplat_cuda_available():
        with pytest.raises(RuntimeError, match="gsplat's CUDA kernels"):
            choose_backend("gsplat", torch.device("cpu"))


@pytest.mark.skipif(not gsplat_cuda_available(), reason="needs CUDA and gsplat's kernels")
def test_torch_rasteriser_matches_gsplat_on_gpu() -> None:
    g = card_scene(seed=3).to("cuda")
    cams = orbit_cameras(np.array([-6.0, 0.0, 6.0]), 96, 128)
    w2c, K = torch.from_numpy(cams.w2c).float().cuda(), torch.from_numpy(cams.K).float().cuda()
    ours = render(g, w2c, K, 128, 96, backend="torch")
    theirs = render(g, w2c, K, 128, 96, backend="gsplat")
    assert float((ours.rgb - theirs.rgb).abs().mean()) < 1e-3
    assert float((ours.alpha - theirs.alpha).abs().mean()) < 1e-3
