from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def test_an_encoder_that_writes_nothing_publishes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Silent:
        def append_data(self, frame: np.ndarray) -> None:
            pass

    @contextlib.contextmanager
    def silent_writer(*args: Any, **kwargs: Any) -> Iterator[Silent]:
        yield Silent()

    monkeypatch.setattr(video.imageio, "get_writer", silent_writer)
    with pytest.raises(RuntimeError, match="ffmpeg wrote nothing"):
        video.write_mp4(tmp_path / "a.mp4", frames(32, 32), fps=8)
    assert list(tmp_path.iterdir()) == []
