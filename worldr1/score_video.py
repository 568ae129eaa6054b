"""`worldr1 score`: the pipeline's 3D-consistency reward for any video (another model's output, a real clip).

Each video goes through exactly what `reconstruct@rK` and `score@rK` do to a rollout sample:
`reconstruct_frames` (worldr1/reconstruct/run.py) writes its geometry and renders, then the
stage's own path, `Scorer.score` and `Scorer.reward` (worldr1/rewards/score.py), reads them back the
same way (`load_views`) and adds the judge's s_meta and the reward, with the settings of params.yaml (`reconstruct`,
`reward`, `camera`). The target camera path comes from the prompt's first sentence, as in the prompts
stage. The phase is `3d`.

What differs from a round, on purpose:
- a long video is subsampled evenly to `max_frames` frames (its fps scaled to match), and an odd
  width or height loses its last pixel column or row (H.264 in 4:2:0 cannot hold odd sizes);
- group statistics and advantages stay null: videos from outside a rollout have no group;
- a prompt without camera moves gets the prompt parser's reason as `s_traj_reason`
  (the stage, which has only the moves, writes "no camera sentence in the prompt").

Bad input (a missing or unreadable file, a video of fewer than 2 frames, an empty prompt) is a
`UserError`; a degenerate video (black, frozen) is a scored row, `failed` or low, as in a round.

Heavy modules (torch, the models) are imported only when scoring starts, so bad input fails fast.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from worldr1 import config, ids, store
from worldr1.config import Phase
from worldr1.errors import UserError
from worldr1.prompts.camera import CameraParse, parse_camera
from worldr1.video import read_sampled

if TYPE_CHECKING:
    from worldr1.reconstruct.base import Reconstructor

#: the `round` of rows scored outside a round
ROUND = "external"
PHASE: Phase = "3d"
#: the params keys the result depends on (its provenance hash)
PARAMS = ["reconstruct", "reward", "camera"]
DEFAULT_MAX_FRAMES = 49
#: when a file states no frame rate (only the renders' playback speed depends on it)
FALLBACK_FPS = 16.0


@dataclass(frozen=True)
class Video:
    path: Path
    frames: np.ndarray  # uint8 [F, H, W, 3], at most max_frames, evenly spaced over the file
    fps: float  # of the kept frames: the file's, times kept / total when subsampled
    total_frames: int  # in the file


def read_video(path: str | Path, max_frames: int = DEFAULT_MAX_FRAMES) -> Video:
    """A video file's frames, subsampled evenly to `max_frames`; a file that is not one is a UserError."""
    path = Path(path)
    if max_frames < 2:
        raise UserError(f"--max-frames {max_frames} is below 2", "a reconstruction needs 2 frames: pass 2 or more")
    if not path.exists():
        raise UserError(f"video {path} not found", "check the path")
    if not path.is_file():
        raise UserError(f"video {path} is not a file", "pass a video file, e.g. clip.mp4")
    try:
        kept, fps, total = read_sampled(path, max_frames)
    except Exception as exc:  # noqa: BLE001 - ffmpeg's many ways of refusing a file
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"cannot read {path} as a video ({reason})", "pass a video file ffmpeg can decode, e.g. an H.264 mp4"
        ) from None
    if len(kept) < 2:
        raise UserError(f"video {path} has {len(kept)} frame(s)", "pass a video of at least 2 frames")
    frames = np.stack(kept)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise UserError(
            f"video {path} decodes to {frames.dtype} {list(frames.shape)}, not RGB frames",
            "pass an ordinary colour video",
        )
    h, w = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2
    if h < 2 or w < 2:
        raise UserError(
            f"video {path} is {frames.shape[2]}x{frames.shape[1]} pixels", "pass a video of at least 2x2 pixels"
        )
    frames = np.ascontiguousarray(frames[:, :h, :w])
    fps = fps if math.isfinite(fps) and fps > 0 else FALLBACK_FPS
    return Video(path, frames, fps * len(kept) / max(total, len(kept)), max(total, len(kept)))


def check_prompt(prompt: str) -> CameraParse:
    """The prompt's camera moves; an empty prompt is a UserError."""
    if not prompt.strip():
        raise UserError(
            "the prompt is empty", 'pass the video\'s prompt, camera sentence first: --prompt "Camera orbit left. ..."'
        )
    return parse_camera(prompt)


def sample_ids(paths: list[Path]) -> list[str]:
    """One id per video, from its file name (made safe for a path); repeated names get their position."""
    stems = [re.sub(r"[^A-Za-z0-9._-]+", "_", p.stem).strip("._") or "video" for p in paths]
    return [s if stems.count(s) == 1 else f"{s}-{i:03d}" for i, s in enumerate(stems)]


@dataclass(frozen=True)
class Scored:
    rewards: pa.Table  # store.REWARDS rows, one per video, in order
    recon: pa.Table  # store.RECON rows


class VideoScorer:
    """The models of params, loaded once (reconstructor, judge, quality); `score` runs videos through them."""

    def __init__(self, params: config.Params, reconstructor: Reconstructor | None = None) -> None:
        """`reconstructor` replaces the one params name (a model already in memory)."""
        from worldr1.device import default_device
        from worldr1.reconstruct import load_reconstructor
        from worldr1.rewards import load_judge
        from worldr1.rewards.quality import load_quality
        from worldr1.rewards.score import Scorer

        self.params = params
        cfg = params.reconstruct
        self.device = default_device()
        self.reconstructor = reconstructor or load_reconstructor(cfg.backend, cfg.model, cfg.process_res)
        judge = load_judge(params.reward.judge)
        self.scorer = Scorer(params, judge, load_quality(params.reward.quality))
        models = {
            "reconstructor": self.reconstructor.name,
            "judge": getattr(judge, "name", "off"),
            "quality": self.scorer.quality.name,
            "recon_metric": params.reward.recon_metric,
        }
        self.provenance = store.Provenance(config.params_hash(params, PARAMS), store.code_version(), models)

    def score(
        self,
        videos: list[Video],
        prompt: str,
        work: Path,
        progress: Callable[[int, int], None] | None = None,
        novel_path: bool = True,
    ) -> Scored:
        """Reconstruct and score `videos` (all for `prompt`); geometry and renders go to `work`/recon
        in the reconstruct stage's layout. `novel_path=False` skips the novel-path renders, which no
        term reads: for work directories nobody keeps (evaluate, the probes, reward validity)."""
        from worldr1.reconstruct.run import reconstruct_frames
        from worldr1.rewards.score import NO_CAMERA, ReconViews, VideoToScore, load_views

        parse = check_prompt(prompt)
        recon_dir = work / "recon"
        recon_dir.mkdir(parents=True, exist_ok=True)
        base = {
            "round": ROUND,
            "prompt_id": ids.prompt_id(prompt),
            "prompt": prompt,
            "camera": [m.value for m in parse.primitives],
        }
        names = sample_ids([v.path for v in videos])
        recon_rows: list[dict] = []

        def frames(n: int) -> np.ndarray:
            # Reconstructed as its frames are loaded: every video gets its recon row, in order, even
            # one whose scoring fails before its reconstruction is read.
            video = videos[n]
            recon_rows.append(
                reconstruct_frames(
                    self.reconstructor,
                    video.frames,
                    names[n],
                    ROUND,
                    recon_dir,
                    self.params.reconstruct,
                    video.fps,
                    self.device,
                    novel_path,
                )
            )
            return video.frames

        def views(n: int) -> ReconViews:
            return load_views(recon_rows[n], recon_dir)

        items = [
            VideoToScore(
                {**base, "sample_id": names[n], "group_index": n},
                partial(frames, n),
                partial(views, n),
                parse.reason or NO_CAMERA,
            )
            for n in range(len(videos))
        ]
        rows = self.scorer.score(items, PHASE, progress)
        recon = store.conform(pa.Table.from_pylist(recon_rows), store.RECON)
        return Scored(self.scorer.reward(rows, PHASE, groups=False), recon)

    def keep(self, scored: Scored, videos: list[Video], work: Path) -> None:
        """Complete `work` into a round directory (what `worldr1 audit --html` finds media in): the frames
        as scored in rollout/videos/ and rollout/samples.parquet (no seed: -1, no SDE steps),
        recon/recon.parquet beside the renders `score` wrote, and rewards.parquet."""
        from worldr1.video import write_mp4

        samples = []
        for r, video in zip(scored.rewards.to_pylist(), videos):
            name = f"videos/{r['sample_id']}.mp4"
            write_mp4(work / "rollout" / name, video.frames, video.fps)
            samples.append(
                {
                    **{
                        k: r[k] for k in ("sample_id", "round", "phase", "prompt_id", "prompt", "camera", "group_index")
                    },
                    "split": ROUND,
                    "seed": -1,
                    "video": name,
                    "steps": None,
                    "frames": len(video.frames),
                    "height": video.frames.shape[1],
                    "width": video.frames.shape[2],
                    "fps": max(1, round(video.fps)),
                    "trained_steps": [],
                    "log_prob_sum": None,
                    "log_prob_mean": None,
                    "status": "ok",
                    "error": None,
                }
            )
        store.write_table(
            str(work / "rollout" / "samples.parquet"), pa.Table.from_pylist(samples), store.SAMPLES, self.provenance
        )
        store.write_table(str(work / "recon" / "recon.parquet"), scored.recon, store.RECON, self.provenance)
        store.write_table(str(work / "rewards.parquet"), scored.rewards, store.REWARDS, self.provenance)
