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
from worldr1.geometry.gaussians import depth_edges, pixel_gaussians
from worldr1.geometry.raster import render
from worldr1.geometry.sim3 import Sim3
from worldr1.geometry.synthetic import card_scene, orbit_cameras
from worldr1.reconstruct import (
    DA3Reconstructor,
    Reconstruction,
    ReconstructionFailed,
    check_cameras,
    check_frames,
    reconstruction_gaussians,
)
from worldr1.reconstruct.run import reconstruct_frames, reconstruct_sample
from worldr1.video import read_mp4, write_mp4


@pytest.fixture(scope="module")
def da3() -> DA3Reconstructor:
    return DA3Reconstructor("tiny", process_res=112, device=torch.device("cpu"))


def film(n: int = 7, size: int = 64) -> tuple[np.ndarray, Cameras, torch.Tensor]:
    cams = orbit_cameras(np.linspace(-8, 8, n), size, size)
    out = render(
        card_scene(seed=1, density=24),
        torch.from_numpy(cams.w2c).float(),
        torch.from_numpy(cams.K).float(),
        size,
        size,
        "torch",
    )
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
    np.testing.assert_allclose(
        rec.intrinsics, resize_intrinsics(pred.intrinsics.astype(np.float64), (h, w), (72, 96)), rtol=1e-6
    )
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
    return Reconstruction(
        depth=depth,
        conf=torch.ones_like(depth),
        images=frames,
        extrinsics=cams.w2c,
        intrinsics=cams.K,
        frame_hw=(cams.height, cams.width),
    )


def test_reconstruction_gaussians_from_true_depth() -> None:
    frames, cams, depth = film()
    rec = truth(frames, cams, depth)
    held = reconstruction_gaussians(rec, holdout=True, conf_percentile=0.0, max_gaussians=100_000, edge_rel=0.02)
    assert held.frames_used == [0, 2, 4, 6]
    expected = int((~depth_edges(depth[[0, 2, 4, 6]])).sum())
    assert len(held.gaussians) == expected
    everything = reconstruction_gaussians(rec, holdout=False, conf_percentile=0.0, max_gaussians=100_000, edge_rel=0.02)
    assert everything.frames_used == list(range(7)) and len(everything.gaussians) > len(held.gaussians)
    thinned = reconstruction_gaussians(rec, holdout=False, conf_percentile=0.0, max_gaussians=5_000, edge_rel=0.02)
    assert len(thinned.gaussians) <= 5_000
    confident = reconstruction_gaussians(
        rec, holdout=False, conf_percentile=50.0, max_gaussians=100_000, edge_rel=0.02
    )  # conf is flat: a percentile drops nothing
    assert confident.confident_fraction > 0.9
    with pytest.raises(ReconstructionFailed, match="no valid depth"):
        reconstruction_gaussians(replace(rec, depth=torch.zeros_like(depth)), True, 0.0, 1000, 0.02)


class KnownGeometry:
    """A reconstructor that returns the true cameras and depth of the filmed synthetic scene."""

    name = "truth"

    def __init__(self, cams: Cameras, depth: torch.Tensor) -> None:
        self.cams, self.depth = cams, depth

    def reconstruct(self, frames: np.ndarray) -> Reconstruction:
        return truth(frames, self.cams, self.depth)


def params_reconstruct(params_dict: dict[str, Any]) -> config.ReconstructConfig:
    return config.validate(params_dict).reconstruct


def test_sample_runner_writes_geometry_and_renders(tmp_path: Path, params_dict: dict[str, Any]) -> None:
    frames, cams, depth = film()
    write_mp4(tmp_path / "videos" / "s.mp4", frames, 8)
    sample = {"sample_id": "s", "round": "r000", "status": "ok", "video": "videos/s.mp4", "error": None}
    out = tmp_path / "recon"
    out.mkdir()
    row = reconstruct_sample(
        KnownGeometry(cams, depth), sample, tmp_path, out, params_reconstruct(params_dict), 8, torch.device("cpu")
    )
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


def test_without_the_novel_path_only_path_mp4_is_missing(tmp_path: Path, params_dict: dict[str, Any]) -> None:
    # Scoring nobody keeps (evaluate, the probes, reward validity) skips the novel-path renders: the
    # same row, geometry and input/meta renders, which are all the reward terms read.
    frames, cams, depth = film()
    cfg, cpu = params_reconstruct(params_dict), torch.device("cpu")
    outs = {with_path: tmp_path / str(with_path) for with_path in (True, False)}
    rows = {}
    for with_path, out in outs.items():
        out.mkdir()
        rows[with_path] = reconstruct_frames(
            KnownGeometry(cams, depth), frames, "s", "r000", out, cfg, 8, cpu, with_path
        )
    assert rows[True] == rows[False] and rows[True]["status"] == "ok"
    files = {k: sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()) for k, out in outs.items()}
    assert [f for f in files[True] if f.name != "path.mp4"] == files[False]
    assert len(files[True]) == len(files[False]) + 1 and Path("renders/s/path.mp4") in files[True]
    for f in files[False]:
        assert (outs[True] / f).read_bytes() == (outs[False] / f).read_bytes(), f


class GaussianHead:
    """A model with a Gaussian head (as DA3-GIANT), stubbed from the true geometry: it records the
    frames it is given. Its Gaussians come from the frames of the call; the pass on all 7 frames
    paints them green, so a scene taken from that pass shows in the renders. Its pass on fewer
    frames answers in a world of its own (another scale, rotation and origin), as a model does."""

    name = "gaussian-head stub"
    other_world = Sim3(2.5, orbit_cameras(np.array([30.0]), 8, 8).w2c[0, :3, :3], np.array([0.3, -1.0, 2.0]))

    def __init__(self, frames: np.ndarray, cams: Cameras, depth: torch.Tensor) -> None:
        self.frames, self.cams, self.depth = frames, cams, depth
        self.calls: list[np.ndarray] = []

    def reconstruct(self, frames: np.ndarray) -> Reconstruction:
        self.calls.append(frames.copy())
        idx = [i for i in range(len(self.frames)) if any(np.array_equal(self.frames[i], f) for f in frames)]
        w2c, depth = self.cams.w2c[idx], self.depth[idx]
        if len(idx) < len(self.frames):
            w2c, depth = self.other_world.apply_to_w2c(w2c), depth * self.other_world.scale
        colours = torch.from_numpy(frames).float() / 255.0
        if len(idx) == len(self.frames):
            colours = torch.zeros_like(colours) + torch.tensor([0.0, 1.0, 0.0])
        g = pixel_gaussians(
            colours,
            depth.float(),
            ~depth_edges(depth, 0.02),
            torch.from_numpy(self.cams.K[idx]).float(),
            torch.from_numpy(w2c).float(),
            size=0.3,
        )
        return Reconstruction(
            depth=depth,
            conf=torch.ones_like(depth),
            images=frames,
            extrinsics=w2c,
            intrinsics=self.cams.K[idx],
            frame_hw=(self.cams.height, self.cams.width),
            gaussians=g,
        )


def test_held_out_scene_of_a_gaussian_head_sees_only_the_even_frames(
    tmp_path: Path, params_dict: dict[str, Any]
) -> None:
    frames, cams, depth = film()
    write_mp4(tmp_path / "videos" / "s.mp4", frames, 8)
    sample = {"sample_id": "s", "round": "r000", "status": "ok", "video": "videos/s.mp4", "error": None}
    video = read_mp4(tmp_path / "videos" / "s.mp4")
    model = GaussianHead(video, cams, depth)
    out = tmp_path / "recon"
    out.mkdir()
    row = reconstruct_sample(model, sample, tmp_path, out, params_reconstruct(params_dict), 8, torch.device("cpu"))
    assert row["status"] == "ok", row["error"]
    # One pass on every frame (the cameras), one on the even frames alone (the scene).
    assert [len(c) for c in model.calls] == [7, 4]
    np.testing.assert_array_equal(model.calls[1], video[::2])
    assert row["gaussian_frames"] == [0, 2, 4, 6]
    # The scene is the even pass's, placed in the first pass's world: it renders the odd (held-out)
    # cameras about as well as the ones it saw, and none of the first pass's green shows.
    inputs = read_mp4(out / row["renders"] / "input.mp4").astype(float)
    held_out = np.abs(inputs[1::2] - frames[1::2]).mean()
    seen = np.abs(inputs[::2] - frames[::2]).mean()
    assert held_out < 1.3 * seen and seen < 10, (held_out, seen)
    # Without holdout the model's own Gaussians from all frames are the scene: one pass, all green.
    model.calls.clear()
    raw = dict(params_dict, reconstruct=dict(params_dict["reconstruct"], holdout=False))
    row = reconstruct_sample(
        model, dict(sample, sample_id="t"), tmp_path, out, params_reconstruct(raw), 8, torch.device("cpu")
    )
    assert row["status"] == "ok" and [len(c) for c in model.calls] == [7]
    green = read_mp4(out / row["renders"] / "input.mp4").astype(float).mean((0, 1, 2))
    assert green[1] > 150 and green[0] < 60 and green[2] < 60, green


def test_a_held_out_scene_of_a_gaussian_head_needs_three_frames(tmp_path: Path, params_dict: dict[str, Any]) -> None:
    frames, cams, depth = film(n=2)
    write_mp4(tmp_path / "videos" / "s.mp4", frames, 8)
    sample = {"sample_id": "s", "round": "r000", "status": "ok", "video": "videos/s.mp4", "error": None}
    model = GaussianHead(read_mp4(tmp_path / "videos" / "s.mp4"), cams, depth)
    row = reconstruct_sample(model, sample, tmp_path, tmp_path, params_reconstruct(params_dict), 8, torch.device("cpu"))
    assert row["status"] == "failed" and "needs 2 even frames (3 frames in all)" in row["error"]


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
        row = reconstruct_sample(
            da3, {"sample_id": sid, "round": "r000", **fields}, tmp_path, out, cfg, 8, torch.device("cpu")
        )
        assert row["status"] == "failed" and reason in row["error"], (sid, row["error"])
    assert not list(out.iterdir())  # failed samples write nothing


def test_reconstructor_user_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from worldr1.errors import UserError
    from worldr1.reconstruct import load_reconstructor

    monkeypatch.setenv("WORLDR1_MODELS", str(tmp_path))
    with pytest.raises(UserError, match="unknown reconstruct.model 'da4'"):
        load_reconstructor("da3", "da4", 112)
    with pytest.raises(UserError, match=r"model depth-anything/DA3-SMALL \(config.json\) not found locally"):
        load_reconstructor("da3", "da3-small", 112)
    with pytest.raises(UserError, match="unknown reconstruct.backend"):
        load_reconstructor("colmap", "tiny", 112)
