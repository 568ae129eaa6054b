"""A round's update as files: the rollout's step tensors joined with the rewards' advantages in,
the trained policy directory out.

Layout of a policy directory (`data/rounds/<round>/policy/`):
    pytorch_lora_weights.safetensors       the adapter, diffusers' format (`WanPipeline.load_lora_weights`)
    ema/pytorch_lora_weights.safetensors   its EMA weights, same format (when grpo.ema.enabled)
    trainer.safetensors                    AdamW moments and steps, EMA weights: what resuming needs
    state.json                             round, optimizer steps so far, seeds, provenance
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from worldr1.errors import UserError
from worldr1.grpo.sampler import Schedule
from worldr1.grpo.trainer import StoredSample, Trainer

TRAINER_STATE = "trainer.safetensors"
STATE = "state.json"


@dataclass(frozen=True)
class RoundData:
    samples: list[StoredSample]
    skipped_samples: int  # failed, or in a group with nothing to compare against (no advantage)
    skipped_groups: int  # prompt groups with no trainable sample at all
    reward_mean: float | None
    reward_std: float | None


def stored_samples(
    rollout_dir: Path, samples: pa.Table, rewards: pa.Table, schedule: Schedule, round_name: str
) -> RoundData:
    """The round's trainable samples: rollout rows with an advantage in the rewards table."""
    fix = f"rerun the round's score stage on this rollout: dvc repro score@{round_name}"
    rollout_ids = samples.column("sample_id").to_pylist()
    reward_rows = {r["sample_id"]: r for r in rewards.to_pylist()}
    if set(rollout_ids) != set(reward_rows) or len(reward_rows) != rewards.num_rows:
        differ = len(set(rollout_ids) ^ set(reward_rows))
        raise UserError(f"the rewards of {round_name} do not match its rollout ({differ} sample ids differ)", fix)
    groups: dict[str, int] = defaultdict(int)
    out: list[StoredSample] = []
    for row in samples.to_pylist():
        reward = reward_rows[row["sample_id"]]
        groups.setdefault(row["prompt_id"], 0)
        advantage = reward["advantage"]
        if row["status"] != "ok" or reward["status"] != "ok" or advantage is None or not np.isfinite(advantage):
            continue
        groups[row["prompt_id"]] += 1
        out.append(_load_sample(rollout_dir, row, float(advantage), schedule, round_name))
    valid = [r["reward"] for r in reward_rows.values() if r["status"] == "ok" and r["reward"] is not None]
    return RoundData(
        samples=out,
        skipped_samples=samples.num_rows - len(out),
        skipped_groups=sum(1 for n in groups.values() if n == 0),
        reward_mean=float(np.mean(valid)) if valid else None,
        reward_std=float(np.std(valid)) if valid else None,
    )


def _load_sample(rollout_dir: Path, row: dict, advantage: float, schedule: Schedule, round_name: str) -> StoredSample:
    path = rollout_dir / row["steps"]
    fix = f"rerun the rollout: dvc repro -f rollout@{round_name}"
    try:
        t = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise UserError(f"the step tensors {path} are unreadable ({exc})", fix) from None
    missing = sorted({"steps", "timesteps", "latents", "next_latents", "log_probs"} - set(t))
    if missing:
        raise UserError(f"the step tensors {path} lack {', '.join(missing)}", fix)
    steps = tuple(int(i) for i in t["steps"].tolist())
    if steps != tuple(row["trained_steps"]) or any(i >= schedule.steps for i in steps):
        raise UserError(f"{path} records steps {list(steps)}, not those of its samples row", fix)
    if any(t[k].shape[:1] != (len(steps),) for k in ("latents", "next_latents", "log_probs")):
        raise UserError(f"{path} holds states or log-probs for another number of steps than {len(steps)}", fix)
    timesteps = [schedule.timesteps[i] for i in steps]
    if not torch.allclose(t["timesteps"], torch.tensor(timesteps, dtype=torch.float32)):
        raise UserError(f"{path} was sampled with another schedule than rollout.steps/shift say", fix)
    # Kept in their storage dtype (bf16 from a GPU rollout) and in their file: safetensors maps it,
    # so a state is read when the trainer casts it, and ranks on one node share the pages.
    return StoredSample(
        row["sample_id"],
        row["prompt"],
        advantage,
        steps,
        t["latents"],
        t["next_latents"],
        t["log_probs"].double(),
        prompt_id=row["prompt_id"],
    )


def load_trainer_state(trainer: Trainer, directory: Path) -> dict:
    """Restore the optimizer and EMA saved beside the previous adapter (none at `base`); its state.json."""
    state_path = directory / STATE
    try:
        state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(
            f"{state_path} is not valid JSON ({exc})", "rerun the stage that wrote it: dvc repro -f"
        ) from None
    path = directory / TRAINER_STATE
    if path.is_file():
        try:
            trainer.load_state_tensors(load_file(str(path)))
        except (SafetensorError, OSError, ValueError) as exc:
            raise UserError(
                f"the trainer state {path} does not fit this adapter ({exc})",
                "use the grpo/lora settings it was trained with, or start again from base",
            ) from None
    return state


def save_trainer_state(trainer: Trainer, directory: Path) -> None:
    tensors = trainer.state_tensors()
    if tensors:
        save_file(tensors, str(directory / TRAINER_STATE))
