"""A round's rewards: every term of every sample, the combined reward, group statistics, advantages.

Each term is kept as its own column with the raw metrics behind it, so a person can ask offline
why a sample scored what it did. A sample that cannot be scored (failed rollout, failed
reconstruction in a 3D round, a missing render, a non-finite metric) is a `failed` row with its
reason and no advantage: it never gets a reward by accident.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image
from safetensors import safe_open

from worldr1.config import Params, Phase
from worldr1.prompts.camera import Primitive
from worldr1.prompts.trajectory import MotionScale, target_path
from worldr1.reconstruct.scene import ReconstructionFailed
from worldr1.rewards.advantages import group_advantages
from worldr1.rewards.combine import TERMS, combine
from worldr1.rewards.quality import QualityModel
from worldr1.rewards.recon import lpips_model, motion, motion_factor, require_lpips, s_recon
from worldr1.rewards.traj import s_traj
from worldr1.video import read_mp4

def _empty_row(sample: dict, phase: Phase) -> dict[str, object]:
    row: dict[str, object] = {k: sample[k] for k in ("sample_id", "round", "prompt_id", "prompt", "camera",
                                                     "group_index")}
    row["phase"] = phase
    for k in (*TERMS, "s_traj_reason", "psnr", "ssim", "lpips", "traj_translation", "traj_rotation", "motion",
              "motion_factor", "reward", "group_mean", "group_std", "advantage", "error"):
        row[k] = None
    for k in TERMS:
        row[f"w_{k}"] = None
    row["group_valid"] = None
    row["status"] = "ok"
    return row


class Scorer:
    """Scores one round; the judge (`rate(images)`) and the quality model are loaded once by the caller."""

    def __init__(self, params: Params, judge, quality: QualityModel) -> None:  # noqa: ANN001
        self.params = params
        self.judge = judge
        self.quality = quality
        cfg = params.reward
        self.lpips = require_lpips() if cfg.recon_metric == "lpips" else lpips_model()

    def score_round(self, samples: pa.Table, recon: pa.Table | None, phase: Phase, rollout_dir: Path,
                    recon_dir: Path | None, progress: Callable[[int, int], None] | None = None) -> pa.Table:
        recon_rows = {r["sample_id"]: r for r in recon.to_pylist()} if recon is not None else {}
        rows, metas = [], []
        listed = samples.to_pylist()
        for n, sample in enumerate(listed):
            row, meta = self.score_sample(sample, recon_rows.get(sample["sample_id"]), phase, rollout_dir, recon_dir)
            rows.append(row)
            metas.append(meta)
            if progress:
                progress(n + 1, len(listed))
        self._judge(rows, metas, phase)
        self._reward(rows, phase)
        return pa.Table.from_pylist(rows)

    def score_sample(self, sample: dict, recon: dict | None, phase: Phase, rollout_dir: Path,
                     recon_dir: Path | None) -> tuple[dict[str, object], np.ndarray | None]:
        row = _empty_row(sample, phase)
        try:
            if sample["status"] != "ok":
                raise ReconstructionFailed(f"rollout failed: {sample['error']}")
            frames = read_mp4(rollout_dir / sample["video"])
            row["r_gen"] = self.quality.score(frames, sample["prompt"])
            amount = motion(frames)
            moves = list(sample["camera"])
            row["motion"] = amount
            row["motion_factor"] = motion_factor(amount, self.params.reward.motion_floor,
                                                 wants_motion=any(m != Primitive.FIXED for m in moves))
            if phase == "dynamic":
                return row, None  # quality only: the 3D terms are off in dynamic rounds
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
            except Exception as exc:  # noqa: BLE001 - a missing or broken render file
                raise ReconstructionFailed(f"render files unreadable: {str(exc).splitlines()[0][:200]}") from None
            used = set(recon["gaussian_frames"] or [])
            compare = [i for i in range(len(frames)) if i not in used] or list(range(len(frames)))
            rec = s_recon(inputs, frames, compare, self.params.reward.recon_metric, self.lpips)
            row.update(s_recon=rec.s_recon, psnr=rec.psnr, ssim=rec.ssim, lpips=rec.lpips)
            if moves:
                target = target_path([Primitive(m) for m in moves], len(w2c), MotionScale.from_params(self.params.camera))
                traj = s_traj(w2c, target)
                row.update(s_traj=traj.s_traj, traj_translation=traj.translation, traj_rotation=traj.rotation)
            else:
                row["s_traj_reason"] = "no camera sentence in the prompt"
            bad = [k for k in (*TERMS, "psnr", "ssim") if isinstance(row[k], float) and not math.isfinite(row[k])]
            if bad:
                raise ReconstructionFailed(f"non-finite {', '.join(bad)}")
            return row, meta
        except (ReconstructionFailed, OSError, ValueError) as exc:
            row.update(status="failed", error=str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__)
            return row, None

    def _judge(self, rows: list[dict], metas: list[np.ndarray | None], phase: Phase) -> None:
        if phase == "dynamic" or self.judge is None:
            return
        todo = [i for i, m in enumerate(metas) if m is not None and rows[i]["status"] == "ok"]
        for i, score in zip(todo, self.judge.rate([metas[i] for i in todo])):
            rows[i]["s_meta"] = float(score)

    def _reward(self, rows: list[dict], phase: Phase) -> None:
        weights = self.params.reward.weights
        for row in rows:
            if row["status"] != "ok":
                continue
            combined = combine({k: row[k] for k in TERMS}, weights, phase, row["motion_factor"] or 0.0)
            row["reward"] = combined.reward
            row.update({f"w_{k}": v for k, v in combined.weights.items()})
            if combined.reward is None:
                row.update(status="failed", error="no valid reward term")
        advantages, stats = group_advantages([r["prompt_id"] for r in rows],
                                             [r["reward"] if r["status"] == "ok" else None for r in rows],
                                             self.params.grpo.adv_clip)
        for row, adv in zip(rows, advantages):
            s = stats[row["prompt_id"]]
            row.update(advantage=adv, group_mean=s.mean, group_std=s.std, group_valid=s.valid)
