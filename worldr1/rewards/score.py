"""A round's rewards: every term of every sample, the combined reward, group statistics, advantages.

Each term is kept as its own column with the raw metrics behind it, so a person can ask offline
why a sample scored what it did. A sample that cannot be scored (failed rollout, failed
reconstruction in a 3D round, a missing render, a non-finite metric) is a `failed` row with its
reason and no advantage: it never gets a reward by accident.

One path for every caller: a `VideoToScore` is a video's ids and loaders of its frames and its
reconstruction; `Scorer.score` computes every term of a list of them (the judge in blocks), and
`Scorer.reward` combines the terms and, for a round, adds group statistics and advantages. The
score stage (`round_videos`, a rank's share of a round), `worldr1 score` and evaluate
(`score_video.VideoScorer`, videos from outside the pipeline) all go through those two, so they
cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import cast

import numpy as np
import pyarrow as pa
import torch
from PIL import Image
from safetensors import safe_open

from worldr1 import store
from worldr1.config import Params, Phase
from worldr1.prompts.camera import Primitive
from worldr1.reconstruct.scene import ReconstructionFailed
from worldr1.rewards import terms as registry
from worldr1.rewards.advantages import group_advantages
from worldr1.rewards.combine import TERMS, combine
from worldr1.rewards.quality import QualityModel, r_gen_columns
from worldr1.rewards.recon import lpips_model, motion, motion_factor, require_lpips, s_recon_columns
from worldr1.rewards.reproject import s_reproj_columns
from worldr1.rewards.terms import REWARD_TERMS, RewardTerm
from worldr1.rewards.traj import s_traj_columns
from worldr1.video import read_mp4

#: s_traj_reason of a sample whose prompt gave no camera moves
NO_CAMERA = "no camera sentence in the prompt"
#: samples per judge batch, and per block of a rank's share of a round
JUDGE_BLOCK = 8
#: what a rewards row takes of its sample
IDS = ("sample_id", "round", "prompt_id", "prompt", "camera", "group_index")


def empty_rewards_row(
    sample: Mapping[str, object], phase: Phase, terms: Sequence[RewardTerm] = REWARD_TERMS
) -> dict[str, object]:
    """A rewards row before scoring: every column of the rewards schema of `terms` (store.REWARDS for
    the registry's), null but for the sample's ids, prompt and camera moves, its phase and status ok."""
    row: dict[str, object] = dict.fromkeys(store.rewards_schema(terms).schema.names)
    row.update({k: sample[k] for k in IDS})
    row.update(phase=phase, status="ok")
    return row


@dataclass(frozen=True)
class ReconViews:
    """What the 3D terms read of one reconstruction."""

    inputs: np.ndarray  # uint8 [F, H, W, 3]: the scene rendered at every input camera
    meta: np.ndarray  # uint8 [H, W, 3]: the render at the meta view, for the judge
    w2c: np.ndarray  # [F, 4, 4]: the reconstructed cameras
    gaussian_frames: list[int]  # the frames that built the scene (the others are held out)
    K: np.ndarray  # [F, 3, 3]: their intrinsics, in pixels of the video
    depth: torch.Tensor  # [F, h, w]: the depth maps, at the reconstructor's working size


def load_views(recon: dict | None, recon_dir: Path | None) -> ReconViews:
    """A recon row's renders and cameras, read from its recon directory (the reconstruct stage's layout).

    A missing or failed reconstruction, or render files that cannot be read, raise
    `ReconstructionFailed` with the reason the rewards row gets.
    """
    if recon is None:
        raise ReconstructionFailed("no reconstruction row for this sample")
    if recon["status"] != "ok":
        raise ReconstructionFailed(f"reconstruction failed: {recon['error']}")
    assert recon_dir is not None
    renders = recon_dir / recon["renders"]
    try:
        inputs = read_mp4(renders / "input.mp4")
        meta = np.asarray(Image.open(renders / "meta.png").convert("RGB"))
        with safe_open(str(recon_dir / recon["geometry"]), "pt") as f:
            w2c = f.get_tensor("extrinsics").numpy()
            K = f.get_tensor("intrinsics").numpy()
            depth = f.get_tensor("depth").float()
    except Exception as exc:  # noqa: BLE001 - a missing or broken render file
        raise ReconstructionFailed(f"render files unreadable: {str(exc).splitlines()[0][:200]}") from None
    return ReconViews(inputs, meta, w2c, list(recon["gaussian_frames"] or []), K, depth)


@dataclass(frozen=True)
class TermInput:
    """What a term's `<name>_columns` function (`COMPUTE`) reads of one video."""

    params: Params
    row: Mapping[str, object]  # the rewards row so far: its prompt, sample_id and camera moves
    video: np.ndarray  # uint8 [F, H, W, 3]
    quality: QualityModel
    lpips: torch.nn.Module | None
    no_camera_reason: str  # what a term that needs camera moves says when the prompt has none
    views: ReconViews | None = None

    @property
    def recon(self) -> ReconViews:
        """The reconstruction: a 3D term's input only (a video term runs before it is loaded, and in dynamic rounds)."""
        if self.views is None:
            raise RuntimeError("a term that is not three_d read the reconstruction: mark it three_d in the registry")
        return self.views


#: A term's columns of one rewards row (its value, metrics and reason; `RewardTerm.columns`).
TermFn = Callable[[TermInput], dict[str, object]]

#: The term the judge rates: over all rows in batches, after every video is scored (`_judge`).
JUDGED = "s_meta"
#: How every other term of the registry is computed from one video. Here, not in the registry: the
#: registry stays free of models so config and store can import it, and these imports are what puts
#: each term's module into the score stage's DVC deps.
COMPUTE: dict[str, TermFn] = {
    "s_recon": s_recon_columns,
    "s_reproj": s_reproj_columns,
    "s_traj": s_traj_columns,
    "r_gen": r_gen_columns,
}


def compute_terms(
    row: dict[str, object], given: TermInput, three_d: bool, terms: Sequence[RewardTerm] = REWARD_TERMS
) -> None:
    """The registry's video terms (`three_d` False) or 3D terms into `row`, in registry order: a term
    that raises leaves the ones before it in the row."""
    for term in terms:
        if term.three_d == three_d and term.name != JUDGED:
            columns = COMPUTE[term.name](given)
            assert columns.keys() <= set(term.columns), f"{term.name} wrote {sorted(columns)}, not its columns"
            row.update(columns)


@dataclass(frozen=True)
class VideoToScore:
    """One video to score: its ids (`IDS`: sample_id, round, prompt_id, prompt, camera moves,
    group_index) and loaders of its frames and its reconstruction (`Scorer.score_one` calls each
    once, `views` only in a 3D phase; whatever they raise for a video that cannot be scored fails
    its row with the reason)."""

    ids: Mapping[str, object]
    frames: Callable[[], np.ndarray]
    views: Callable[[], ReconViews]
    no_camera_reason: str = NO_CAMERA


def round_videos(
    samples: Sequence[dict], recon: pa.Table | None, rollout_dir: Path, recon_dir: Path | None
) -> list[VideoToScore]:
    """A round's samples (rows of store.SAMPLES) as `VideoToScore`s: frames from the rollout directory,
    renders and cameras from the recon directory (`load_views`)."""
    recon_rows = {r["sample_id"]: r for r in recon.to_pylist()} if recon is not None else {}

    def video(sample: dict) -> VideoToScore:
        def frames() -> np.ndarray:
            if sample["status"] != "ok":
                raise ReconstructionFailed(f"rollout failed: {sample['error']}")
            return read_mp4(rollout_dir / sample["video"])

        return VideoToScore(sample, frames, partial(load_views, recon_rows.get(sample["sample_id"]), recon_dir))

    return [video(s) for s in samples]


class Scorer:
    """Scores videos; the judge (`rate(images, prompts)`) and the quality model are loaded once by the caller."""

    def __init__(self, params: Params, judge, quality: QualityModel) -> None:  # noqa: ANN001
        self.params = params
        self.judge = judge
        self.quality = quality
        cfg = params.reward
        self.lpips = require_lpips() if cfg.recon_metric == "lpips" else lpips_model()

    def score(
        self, videos: Sequence[VideoToScore], phase: Phase, progress: Callable[[int, int], None] | None = None
    ) -> list[dict[str, object]]:
        """Every video's terms (`score_one`), then the judge's s_meta over them in blocks of
        `JUDGE_BLOCK`; no reward yet (`reward`: a round's needs every group whole)."""
        rows, metas = [], []
        for n, v in enumerate(videos):
            row, meta = self.score_one(empty_rewards_row(v.ids, phase), v.frames, v.views, v.no_camera_reason)
            rows.append(row)
            metas.append(meta)
            if progress:
                progress(n + 1, len(videos))
        self._judge(rows, metas, phase)
        return rows

    def reward(self, rows: list[dict[str, object]], phase: Phase, groups: bool = True) -> pa.Table:
        """The rewards table (store.REWARDS) of scored rows: each row's reward and, with `groups` (a
        round's rollout groups, every one whole), the per-prompt group statistics and advantages."""
        self._reward(rows, phase, groups)
        return store.conform(pa.Table.from_pylist(rows), store.REWARDS)

    def score_one(
        self,
        row: dict[str, object],
        frames: Callable[[], np.ndarray],
        views: Callable[[], ReconViews],
        no_camera_reason: str = NO_CAMERA,
    ) -> tuple[dict[str, object], np.ndarray | None]:
        """Fill one video's terms into `row` (from `empty_rewards_row`, which holds its prompt, camera moves and phase).

        `frames` and `views` load the video and its reconstruction; each is called once, in this order
        (`views` only in a 3D phase), and whatever either raises for a sample that cannot be scored
        makes the row `failed` with the reason, keeping the terms computed before it. Returns the row
        and the meta view for the judge (None when the row failed or has no 3D terms); the judge and
        the reward come after, over all rows at once (`score`, `reward`). A row without camera moves gets a null
        s_traj and `no_camera_reason`.
        """
        try:
            video = frames()
            given = TermInput(self.params, row, video, self.quality, self.lpips, no_camera_reason)
            compute_terms(row, given, three_d=False)
            amount = motion(video)
            moves = list(cast(Sequence[str], row["camera"]))
            row["motion"] = amount
            row["motion_factor"] = motion_factor(
                amount, self.params.reward.motion_floor, wants_motion=any(m != Primitive.FIXED for m in moves)
            )
            if row["phase"] == "dynamic":
                return row, None  # quality only: the 3D terms are off in dynamic rounds
            recon = views()
            compute_terms(row, replace(given, views=recon), three_d=True)
            bad = [k for k in registry.finite_columns() if isinstance(v := row[k], float) and not math.isfinite(v)]
            if bad:
                raise ReconstructionFailed(f"non-finite {', '.join(bad)}")
            return row, recon.meta
        except (ReconstructionFailed, OSError, ValueError) as exc:
            row.update(status="failed", error=str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__)
            return row, None

    def _judge(self, rows: list[dict], metas: list[np.ndarray | None], phase: Phase) -> None:
        if phase == "dynamic" or self.judge is None:
            return
        # One batch per block of samples, failed ones left out: the batches (and so the scores, to
        # the last bit) are the same however the round is split over ranks.
        for start in range(0, len(rows), JUDGE_BLOCK):
            todo = [
                i
                for i in range(start, min(start + JUDGE_BLOCK, len(rows)))
                if metas[i] is not None and rows[i]["status"] == "ok"
            ]
            if todo:
                scores = self.judge.rate(
                    [metas[i] for i in todo], [str(rows[i]["prompt"]) for i in todo], batch=JUDGE_BLOCK
                )
                for i, score in zip(todo, scores):
                    rows[i]["s_meta"] = float(score)

    def _reward(self, rows: list[dict], phase: Phase, groups: bool) -> None:
        weights = self.params.reward.weights
        for row in rows:
            if row["status"] != "ok":
                continue
            combined = combine(
                {k: row[k] for k in TERMS},
                weights,
                phase,
                row["motion_factor"] or 0.0,
                quality_cap=self.params.reward.quality_cap,
            )
            row["reward"] = combined.reward
            row.update({f"w_{k}": v for k, v in combined.weights.items()})
            if combined.reward is None:
                row.update(status="failed", error="no valid reward term")
        if not groups:
            return
        advantages, stats = group_advantages(
            [r["prompt_id"] for r in rows],
            [r["reward"] if r["status"] == "ok" else None for r in rows],
            self.params.grpo.adv_clip,
            self.params.grpo.adv_std,
        )
        for row, adv in zip(rows, advantages):
            s = stats[row["prompt_id"]]
            row.update(advantage=adv, group_mean=s.mean, group_std=s.std, group_valid=s.valid)
