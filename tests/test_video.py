from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from worldr1 import video


def frames(h: int, w: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (3, h, w, 3), dtype=np.uint8)


def test_mp4_round_trips_its_shape(tmp_path: Path) -> None:
    video.write_mp4(tmp_path / "a.mp4", frames(32, 48), fps=8)
    assert video.read_mp4(tmp_path / "a.mp4").shape == (3, 32, 48, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["a.mp4"]


def test_odd_frame_size_is_refused_before_ffmpeg_runs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even frame height and width, got 33x32"):
        video.write_mp4(tmp_path / "a.mp4", frames(33, 32), fps=8)
    assert list(tmp_path.iterdir()) == []


def test_no_frames_is_refused_before_the_encoder_runs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="F >= 1"):
        video.write_mp4(tmp_path / "a.mp4", np.zeros((0, 32, 32, 3), np.uint8), fps=8)
    assert list(tmp_path.iterdir()) == []


def test_the_same_frames_encode_to_the_same_bytes(tmp_path: Path) -> None:
    video.write_mp4(tmp_path / "a.mp4", frames(32, 32), fps=8)
    video.write_mp4(tmp_path / "b.mp4", frames(32, 32), fps=8)
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()


def test_a_failing_encoder_publishes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("encoder broke")

    monkeypatch.setattr(video.av.VideoFrame, "from_ndarray", broken)
    (tmp_path / "a.mp4").write_bytes(b"old")
    with pytest.raises(RuntimeError, match="encoder broke"):
        video.write_mp4(tmp_path / "a.mp4", frames(32, 32), fps=8)
    assert [p.name for p in tmp_path.iterdir()] == ["a.mp4"]
    assert (tmp_path / "a.mp4").read_bytes() == b"old"


def test_frames_survive_the_round_trip_within_h264s_loss(tmp_path: Path) -> None:
    smooth = np.broadcast_to(np.linspace(0, 255, 32, dtype=np.uint8)[None, None, :, None], (3, 32, 32, 3)).copy()
    video.write_mp4(tmp_path / "a.mp4", smooth, fps=8)
    assert np.abs(video.read_mp4(tmp_path / "a.mp4").astype(int) - smooth).mean() < 2.0
