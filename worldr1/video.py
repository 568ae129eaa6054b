"""mp4 files: `uint8 [F, H, W, 3]` frames in and out (H.264 through PyAV, in process).

PyAV links ffmpeg's libraries into the process: a 5-frame toy clip is written in ~7 ms and read
in ~5 ms, where starting an ffmpeg binary per file (imageio) cost ~45 ms each way, several hundred
times a round. An 81-frame 480p Wan clip takes ~2.1 s to write (the binary, running beside Python,
took ~1.1 s): small against generating it (benchmarks/video_io.py).
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from worldr1.store import sweep_dead_temps_of, temp_sibling

# Same frames, same bytes, on every run and machine size: DVC's cache and the byte-identical rerun
# tests rely on it. Hence one encoder thread, the muxer's version string left out (bitexact), and
# x264's macroblock-tree rate control off: in a long-lived process it made one clip in a few dozen
# encode differently from run to run (benchmarks/video_io.py --determinism), where a fresh ffmpeg
# process per file had hidden it. CRF 15 without it costs what CRF 17 cost with it (round-trip MAE
# 4.27 vs 4.30 of 255 on 40 toy clips, ~2% more bytes).
CODEC_OPTIONS = {"crf": "15", "preset": "fast", "threads": "1", "x264-params": "mbtree=0"}
CONTAINER_OPTIONS = {"fflags": "+bitexact"}
# RGB to 4:2:0 with the scaler ffmpeg's command line uses by default.
SCALER = "BICUBIC"


def write_mp4(path: str | Path, frames: np.ndarray, fps: float) -> None:
    """Write frames atomically (a temp file beside the target, then a rename)."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"frames must be uint8 [F, H, W, 3] with F >= 1, got {frames.dtype} {list(frames.shape)}")
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise ValueError(
            f"H.264 in 4:2:0 needs an even frame height and width, got {frames.shape[1]}x{frames.shape[2]}"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_dead_temps_of(path)
    tmp = temp_sibling(path, ext=".mp4")
    try:
        with av.open(str(tmp), "w", format="mp4", options=CONTAINER_OPTIONS) as container:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001), options=CODEC_OPTIONS)
            stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
            stream.codec_context.thread_count = 1
            for frame in frames:
                rgb = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
                container.mux(stream.encode(rgb.reformat(format="yuv420p", interpolation=SCALER)))
            container.mux(stream.encode())
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
    """Every frame of a video file's first video stream, as RGB."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def read_sampled(path: str | Path, max_frames: int) -> tuple[list[np.ndarray], float, int]:
    """`max_frames` RGB frames spread evenly over the file's first video stream, its frame rate and its
    frame count. Two passes (packets, then decoding) so a long video never sits in memory whole."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0.0)
        total = sum(1 for packet in container.demux(stream) if packet.size)
    wanted = set(frame_indices(total, max_frames))
    with av.open(str(path)) as container:
        kept = [f.to_ndarray(format="rgb24") for i, f in enumerate(container.decode(video=0)) if i in wanted]
    return kept, fps, total
