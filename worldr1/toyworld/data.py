"""Toy training data: rendered, labelled clips in one safetensors file and one Parquet table.

`clips.safetensors` holds the pixels and the ground truth the toy models learn from (frames, true
depth, cameras); `clips.parquet` holds what a person audits (seed, prompt, moves, corruption).
Clips render in worker processes with one torch thread each: the rasteriser is many small ops,
so two processes on two cores go twice as fast as one process with two threads.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from safetensors.numpy import load_file, save_file

from worldr1.errors import UserError
from worldr1.ids import derive_seed
from worldr1.toyworld.corrupt import ToyClip, make_clip

CLIPS = "clips.safetensors"
TABLE = "clips.parquet"


@dataclass(frozen=True)
class ClipSpec:
    """What every clip of a data set shares."""

    frames: int
    height: int
    width: int
    inconsistent_share: float
    supersample: int


@dataclass(frozen=True)
class ToyData:
    """`frames uint8 [N, F, H, W, 3]`, `depth float32 [N, F, H, W]`, `w2c [N, F, 4, 4]` and
    `K [N, F, 3, 3]` (float64, pixels of the frames), `consistent bool [N]`, and the prompts."""

    frames: np.ndarray
    depth: np.ndarray
    w2c: np.ndarray
    K: np.ndarray
    consistent: np.ndarray
    prompts: list[str]

    def __len__(self) -> int:
        return len(self.prompts)


def clip_seed(seed: int, index: int) -> int:
    """Training clips draw their scenes from seeds of their own, apart from the prompt stage's."""
    return derive_seed(seed, "toy-data", index) % 2**31


def _one_thread() -> None:
    """A pool worker's torch threads: `workers` processes already share the cores. Never called in the
    caller's own process, whose thread count is its own business (scores computed there after a
    one-worker render must match those of a fresh process)."""
    torch.set_num_threads(1)


def _render(args: tuple[int, ClipSpec]) -> ToyClip:
    seed, spec = args
    return make_clip(seed, spec.frames, spec.height, spec.width, spec.inconsistent_share, spec.supersample)


def render_clips(
    seeds: list[int], spec: ClipSpec, workers: int, progress: Callable[[int, int], None] | None = None
) -> list[ToyClip]:
    """Render the clips of `seeds` (in order) on `workers` processes."""
    jobs = [(s, spec) for s in seeds]
    with contextlib.ExitStack() as stack:
        if workers > 1:
            pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(workers, initializer=_one_thread))
            made: Iterable[ToyClip] = pool.imap(_render, jobs, chunksize=4)
        else:
            made = map(_render, jobs)
        out: list[ToyClip] = []
        for clip in made:
            out.append(clip)
            if progress:
                progress(len(out), len(jobs))
    return out


def clips_table(clips: list[ToyClip]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "index": i,
                "seed": c.seed,
                "prompt": c.prompt,
                "camera": [p.value for p in c.primitives],
                "consistent": c.consistent,
                "corruption": None if c.corruption is None else c.corruption.value,
                "corruption_frame": c.corruption_frame,
            }
            for i, c in enumerate(clips)
        ]
    )


def save_clips(clips: list[ToyClip], directory: Path) -> None:
    """Write the clips' tensors and table into `directory` (inside the stage's atomic output)."""
    save_file(
        {
            "frames": np.stack([c.video.frames for c in clips]),
            "depth": np.stack([c.video.depth for c in clips]).astype(np.float32),
            "w2c": np.stack([c.video.w2c for c in clips]),
            "K": np.stack([c.video.K for c in clips]),
            "consistent": np.array([c.consistent for c in clips]),
        },
        str(directory / CLIPS),
    )
    pq.write_table(clips_table(clips), directory / TABLE)


def load_clips(directory: Path) -> ToyData:
    try:
        t = load_file(str(directory / CLIPS))
        prompts = pq.read_table(directory / TABLE, columns=["prompt"]).column("prompt").to_pylist()
    except (OSError, ValueError) as exc:
        raise UserError(
            f"toy clips in {directory} are missing or unreadable ({str(exc).splitlines()[0][:160]})",
            "run `dvc repro toy-data` first",
        ) from None
    return ToyData(t["frames"], t["depth"], t["w2c"], t["K"], t["consistent"], prompts)
