"""mp4 files: `uint8 [F, H, W, 3]` frames in and out (H.264 through imageio's ffmpeg)."""

from __future__ import annotations

import os
from pathlib import Path

import imageio.v2 as imageio
import numpy as np

from worldr1.store import sweep_dead_temps_of, temp_sibling

# One encoder thread: x264's output is then the same bytes on every run and machine size,
# which DVC's cache and our byte-identical rerun test rely on.
FFMPEG_PARAMS = ["-crf", "17", "-preset", "fast", "-threads", "1", "-map_metadata", "-1", "-fflags", "+bitexact"]


def write_mp4(path: str | Path, frames: np.ndarray, fps: int) -> None:
    """Write frames atomically (a temp file beside the target, then a rename)."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 [F, H, W, 3], got {frames.dtype} {list(frames.shape)}")
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise ValueError(f"H.264 in 4:2:0 needs an even frame height and width, got {frames.shape[1]}x{frames.shape[2]}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_dead_temps_of(path)
    tmp = temp_sibling(path, ext=".mp4")  # ffmpeg picks the container by the extension
    try:
        with imageio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264", pixelformat="yuv420p",
                                macro_block_size=1, ffmpeg_log_level="error", ffmpeg_params=FFMPEG_PARAMS) as writer:
            for frame in frames:
                writer.append_data(frame)
        # ffmpeg can fail after the writer opened and still exit quietly, leaving an empty file.
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise RuntimeError(f"ffmpeg wrote nothing for {path} ({len(frames)} frames of {frames.shape[2]}x{frames.shape[1]})")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def frame_indices(total: int, keep: int) -> list[int]:
    """`keep` frame indices spread evenly over `total` (first and last included), or all of them."""
    if total <= keep:
        return list(range(total))
    return sorted({int(i) for i in np.linspace(0, total - 1, keep).round()})


def read_mp4(path: str | Path) -> np.ndarray:
    with imageio.get_reader(str(path), format="FFMPEG") as reader:
        return np.stack([np.asarray(f) for f in reader])
