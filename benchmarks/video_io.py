"""mp4 write and read time per clip: worldr1.video (PyAV, ffmpeg's libraries in the process) against
an ffmpeg binary started per file (imageio-ffmpeg, what worldr1.video used before), at the toy's
5x32x32 and at Wan 1.3B's 81x480x832.

A toy round writes and reads some 400 clips (rollout, two renders per reconstruction, scoring,
the probe), so the per-file start-up of a binary, not the coding, was its cost.

    python benchmarks/video_io.py [--repeats 20]
    python benchmarks/video_io.py --determinism [--clips 40]   (after `dvc repro toy-data`)

`--determinism` encodes the first toy clips twice in one process, in opposite orders with decodes in
between (as a long stage process does), with worldr1.video's x264 options and with x264's default
macroblock-tree rate control back on, and counts the clips whose bytes differ between the passes.

The imageio column needs imageio and imageio-ffmpeg (installed with moviepy, which depth-anything-3
imports); without them only worldr1.video is timed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from worldr1 import video
from worldr1.video import read_mp4, write_mp4

SIZES = {"toy 5x32x32": (5, 32, 32), "wan 81x480x832": (81, 480, 832)}


def imageio_pair() -> tuple[Callable[[Path, np.ndarray, int], None], Callable[[Path], np.ndarray]] | None:
    try:
        import imageio.v2 as imageio
    except ImportError:
        return None
    params = ["-crf", "17", "-preset", "fast", "-threads", "1"]

    def write(path: Path, frames: np.ndarray, fps: int) -> None:
        with imageio.get_writer(
            path,
            format="FFMPEG",
            mode="I",
            fps=fps,
            codec="libx264",
            pixelformat="yuv420p",
            macro_block_size=1,
            ffmpeg_log_level="error",
            ffmpeg_params=params,
        ) as w:
            for f in frames:
                w.append_data(f)

    def read(path: Path) -> np.ndarray:
        with imageio.get_reader(str(path), format="FFMPEG") as r:
            return np.stack([np.asarray(f) for f in r])

    return write, read


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median ms of `repeats` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def determinism(clips: int) -> None:
    from worldr1.toyworld.data import load_clips

    frames = [np.asarray(c) for c in load_clips(Path("data/toy/clips")).frames[:clips]]
    shipped = dict(video.CODEC_OPTIONS)
    with_mbtree = {k: v for k, v in shipped.items() if k != "x264-params"}
    print("| x264 options | clips | differing between passes | round-trip MAE (of 255) |\n| --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mp4"
        for options in (shipped, with_mbtree, {**with_mbtree, "crf": "17"}):
            video.CODEC_OPTIONS = options
            passes, errors = [], []
            for order in (range(len(frames)), reversed(range(len(frames)))):
                got = {}
                for i in order:
                    write_mp4(path, frames[i], 8)
                    got[i] = path.read_bytes()
                    errors.append(float(np.abs(read_mp4(path).astype(float) - frames[i]).mean()))
                passes.append(got)
            differ = sum(passes[0][i] != passes[1][i] for i in range(len(frames)))
            print(f"| {options} | {len(frames)} | {differ} | {np.mean(errors):.3f} |", flush=True)
    video.CODEC_OPTIONS = shipped


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--determinism", action="store_true")
    ap.add_argument("--clips", type=int, default=40)
    args = ap.parse_args()
    if args.determinism:
        determinism(args.clips)
        return
    rng = np.random.default_rng(0)
    backends = {"pyav": (lambda p, f, fps: write_mp4(p, f, fps), read_mp4)}
    if (pair := imageio_pair()) is not None:
        backends["imageio-ffmpeg"] = pair
    with tempfile.TemporaryDirectory() as tmp:
        print("| clip | backend | write ms | read ms |\n| --- | --- | --- | --- |")
        for label, (f, h, w) in SIZES.items():
            # A smooth moving pattern, not noise: x264's cost on noise says nothing about videos.
            t = np.arange(f)[:, None, None, None]
            y, x = np.mgrid[:h, :w]
            frames = (
                (np.sin((x[None, ..., None] + 2 * t) / 7.0 + np.arange(3)) + np.cos(y[None, ..., None] / 11.0)) * 60
                + 128
            ).clip(0, 255).astype(np.uint8) + rng.integers(0, 4, (f, h, w, 3), dtype=np.uint8)
            repeats = args.repeats if f * h * w < 10**6 else max(1, args.repeats // 10)
            for name, (write, read) in backends.items():
                path = Path(tmp) / f"{name}.mp4"
                w_ms = timed(lambda: write(path, frames, 8), repeats)
                r_ms = timed(lambda: read(path), repeats)
                print(f"| {label} | {name} | {w_ms:.1f} | {r_ms:.1f} |", flush=True)


if __name__ == "__main__":
    main()
