"""Reconstruction: DA3 (random small weights) in our conventions, checks that fail bad samples,
and the per-sample runner that writes geometry and renders."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from worldr1 import config
from worldr1.geometry.cameras import Cameras, resize_intrinsics
from worldr1.geometry.gaussians import depth_edges
from worldr1.geometry.raster import render
from worldr1.geometry.synthetic import card_scene, orbit_cameras
from worldr1.reconstruct import (DA3Reconstructor, Reconstruction, ReconstructionFailed, check_cameras, check_frames,
                                 scene_gaussians)
from worldr1.reconstruct.run import reconstruct_sample
from worldr1.video import read_mp4, write_mp4


@pytest.fixture(scope="module")
def da3() -> DA3Reconstructor:
    return DA3Reconstructor("tiny", process_res=112, device=torch.device("cpu"))


def film(n: int = 7, size: int = 64) -> tuple[np.ndarray, Cameras, torch.Tensor]:
    cams = orbit_cameras(np.linspace(-8, 8, n), size, size)
    out = render(card_scene(seed=1, density=24), torch.from_numpy(cams.w2c).float(), torch.from_numpy(cams.K).float(),
                 size, size, "torch")
    return (out.rgb.clamp(0, 1) * 255).round().to(torch.uint8).numpy(), cams, out.depth


def test_da3_returns_our_conventions(da3: DA3Reconstructor) -> None:
    frames = (np.random.default_rng(0).random((4, 72, 96, 3)) * 255).astype(np.uint8)
    rec = da3.reconstruct(frames)
    f, h, w = rec.depth.shape
    assert f == 4 and max(h, w) == 112 and rec.conf.shape == rec.depth.shape
    assert rec.images.shape == (4, h, w, 3) and rec.images.dtype == np.uint8
    assert rec.extrinsics.shape == (4, 4, 4) and rec.extrinsics.dtype == np.float64
    np.testing.assert_allclose(rec.extrinsics[:, 3], np.tile([0, 0, 0, 1.0], (4, 1)))
    r = rec.extrinsics[:, :3, :3]
    np.testing.assert_allclose(r @ np.swapaxes(r, 1, 2), np.broadcast_to(np.eye(3), (4, 3, 3)), atol=1e-4)
    assert rec.frame_hw == (72, 96) and rec.gaussians is None and not da3.has_gaussian_head
    # Intrinsics are DA3's, rescaled from its working size to our frames.
    pred = da3.model.inference(list(frames), process_res=112)
    np.testing.assert_allclose(rec.intrinsics, resize_intrinsics(pred.intrinsics.astype(np.float64), (h, w), (72, 96)),
                               rtol=1e-6)
    assert rec.intrinsics[0, 0, 2] == pytest.approx(pred.intrinsics[0, 0, 2] * 96 / w)


@pytest.mark.parametrize(
    ("frames", "reason"),
    [
        (np.zeros((0, 8, 8, 3), np.uint8), "0 frame(s)"),
        (np.full((1, 8, 8, 3), 90, np.uint8), "1 frame(s)"),
        (np.zeros((5, 8, 8, 3), np.uint8), "all black"),
        (np.zeros((5, 8, 8), np.uint8), "must be [F, H, W, 3]"),
    ],
)
def test_bad_frames_fail(frames: np.ndarray, reason: str) -> None:
    with pytest.raises(ReconstructionFailed, match=re.escape(reason)):
        check_frames(frames)


def test_bad_cameras_fail() -> None:
    cams = orbit_cameras(np.linspace(-5, 5, 4), 32, 32)
    check_cameras(cams)
    same = Cameras(np.repeat(cams.w2c[:1], 4, 0), cams.K, 32, 32)
    with pytest.raises(ReconstructionFailed, match="identical"):
        check_cameras(same)
    broken = cams.w2c.copy()
    broken[1, 0, 0] = np.nan
    with pytest.raises(ReconstructionFailed, match="non-finite"):
        check_cameras(Cameras(broken, cams.K, 32, 32))
    squashed = cams.w2c.copy()
    squashed[2, :3, :3] *= 0.5
    with pytest.raises(ReconstructionFailed, match="not rotations"):
        check_cameras(Cameras(squashed, cams.K, 32, 32))


def truth(frames: np.ndarray, cams: Cameras, depth: torch.Tensor) -> Reconstruction:
    return Reconstruction(depth=depth, conf=torch.ones_like(depth), images=frames, extrinsics=cams.w2c,
                          intrinsics=cams.K, frame_hw=(cams.height, cams.width))


def test_scene_gaussians_from_true_depth() -> None:
    frames, cams, depth = film()
    rec = truth(frames, cams, depth)
    held = scene_gaussians(rec, holdout=True, conf_percentile=0.0, max_gaussians=100_000, edge_rel=0.02)
    assert held.frames_used == [0, 2, 4, 6]
    expected = int((~depth_edges(depth[[0, 2, 4, 6]])).sum())
    assert len(held.gaussians) == expected
    everything = scene_gaussians(rec, holdout=False, conf_percentile=0.0, max_gaussians=100_000, edge_rel=0.02)
    assert everything.frames_used == list(range(7)) and len(everything.gaussians) > len(held.gaussians)
    thinned = scene_gaussians(rec, holdout=False, conf_percentile=0.0, max_gaussians=5_000, edge_rel=0.02)
    assert len(thinned.gaussians) <= 5_000
    confident = scene_gaussians(rec, holdout=False, conf_percentile=50.0,
                                max_gaussians=100_000, edge_rel=0.02)  # conf is flat: a percentile drops nothing
    assert confident.confident_fraction > 0.9
    with pytest.raises(ReconstructionFailed, match="no valid depth"):
        scene_gaussians(replace(rec, depth=torch.zeros_like(depth)), True, 0.0, 1000, 0.02)


class KnownGeometry:
    """A reconstructor that returns the true cameras and depth of the filmed synthetic scene."""

    name = "truth"

    def __init__(self, cams: Cameras, depth: torch.Tensor) -> None:
        self.cams, self.depth = cams, depth

    def reconstruct(self, frames: np.ndarray) -> Reconstruction:
        return truth(frames, self.cams, self.depth)


def params_reconstruct(params_dict: dict[str, Any]) -> config.Reconstruct:
    return config.validate(params_dict).reconstruct


def test_sample_runner_writes_geometry_and_renders(tmp_path: Path, params_dict: dict[str, Any]) -> None:
    frames, cams, depth = film()
    write_mp4(tmp_path / "videos" / "s.mp4", frames, 8)
    sample = {"sample_id": "s", "round": "r000", "status": "ok", "video": "videos/s.mp4", "error": None}
    out = tmp_path / "recon"
    out.mkdir()
    row = reconstruct_sample(KnownGeometry(cams, depth), sample, tmp_path, out, params_reconstruct(params_dict), 8,
                             torch.device("cpu"))
    assert row["status"] == "ok", row["error"]
    assert row["frames"] == 7 and row["gaussian_frames"] == [0, 2, 4, 6] and row["n_gaussians"] > 1000
    assert row["path_length"] == pytest.approx(cams.path_length())
    renders = out / row["renders"]
    inputs = read_mp4(renders / "input.mp4")
    assert inputs.shape == frames.shape
    # Odd cameras are held out, yet the scene renders them about as well as the cameras it was built
    # from (the error of both is mostly two mp4 encodings of a busy 64 px texture).
    held_out = np.abs(inputs[1::2].astype(float) - frames[1::2].astype(float)).mean()
    seen = np.abs(inputs[::2].astype(float) - frames[::2].astype(float)).mean()
    assert held_out < 1.3 * seen and seen < 10, (held_out, seen)
    assert read_mp4(renders / "path.mp4").shape[1:] == frames.shape[1:]
    meta = np.asarray(Image.open(renders / "meta.png"))
    assert meta.shape == frames.shape[1:] and meta.mean() > 20
    from safetensors import safe_open

    with safe_open(str(out / row["geometry"]), "pt") as f:
        assert f.get_tensor("extrinsics").dtype == torch.float64 and f.get_tensor("depth").dtype == torch.float16
        np.testing.assert_allclose(f.get_tensor("intrinsics").numpy(), cams.K)


def test_bad_samples_become_failed_rows(tmp_path: Path, params_dict: dict[str, Any], da3: DA3Reconstructor) -> None:
    cfg = params_reconstruct(params_dict)
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 definitely not a video")
    write_mp4(tmp_path / "videos" / "black.mp4", np.zeros((5, 32, 32, 3), np.uint8), 8)
    write_mp4(tmp_path / "videos" / "one.mp4", np.full((1, 32, 32, 3), 120, np.uint8), 8)
    cases = {
        "corrupt": ({"video": "videos/corrupt.mp4", "status": "ok", "error": None}, "unreadable video"),
        "black": ({"video": "videos/black.mp4", "status": "ok", "error": None}, "all black"),
        "one": ({"video": "videos/one.mp4", "status": "ok", "error": None}, "1 frame(s)"),
        "missing": ({"video": "videos/missing.mp4", "status": "ok", "error": None}, "unreadable video"),
        "diverged": ({"video": None, "status": "failed", "error": "non-finite latents"}, "rollout failed"),
    }
    out = tmp_path / "recon"
    out.mkdir()
    for sid, (fields, reason) in cases.items():
        row = reconstruct_sample(da3, {"sample_id": sid, "round": "r000", **fields}, tmp_path, out, cfg, 8,
                                 torch.device("cpu"))
        assert row["status"] == "failed" and reason in row["error"], (sid, row["error"])
    assert not list(out.iterdir())  # failed samples write nothing


def test_reconstructor_user_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from worldr1.errors import UserError
    from worldr1.reconstruct import load_reconstructor

    monkeypatch.setenv("WORLDR1_MODELS", str(tmp_path))
    with pytest.raises(UserError, match="unknown reconstruct.model 'da4'"):
        load_reconstructor("da3", "da4", 112)
    with pytest.raises(UserError, match="model depth-anything/DA3-SMALL not found locally"):
        load_reconstructor("da3", "da3-small", 112)
    with pytest.raises(UserError, match="unknown reconstruct.backend"):
        load_reconstructor("colmap", "tiny", 112)
