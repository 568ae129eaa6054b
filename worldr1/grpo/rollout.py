"""A round's rollout: its prompt batch, G samples per prompt, and the files the update stage reads.

Layout of the rollout directory:
    samples.parquet                  one row per sample (store.SAMPLES)
    videos/<sample_id>.mp4           the decoded video
    steps/<sample_id>.safetensors    the trained steps: latents, next_latents, log_probs, timesteps, sigmas
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from safetensors.torch import save_file

from worldr1.config import Params, Phase
from worldr1.errors import UserError
from worldr1.grpo.noise_warp import warp_noise
from worldr1.grpo.sampler import LatentTrajectory, Schedule, sample, trained_steps
from worldr1.ids import derive_seed, sample_id
from worldr1.policy.base import Policy
from worldr1.prompts.camera import Primitive
from worldr1.prompts.camera_path import MotionScale
from worldr1.video import write_mp4

SPLIT_OF_PHASE: dict[Phase, str] = {"3d": "train", "dynamic": "dynamic"}


@dataclass(frozen=True)
class PromptRow:
    prompt_id: str
    text: str
    camera: tuple[str, ...]
    split: str


def draw_batch(prompts: pa.Table, split: str, count: int, seed: int, round_name: str) -> list[PromptRow]:
    """The round's prompts: `count` distinct prompts of `split`, drawn from (seed, round)."""
    rows = [r for r in prompts.to_pylist() if r["split"] == split]
    if len(rows) < count:
        raise UserError(
            f"round {round_name} needs {count} {split} prompts but the prompts table has {len(rows)}",
            f"lower prompts.batch_per_round or add {split} prompts to prompts.sources",
        )
    rng = np.random.default_rng(derive_seed(seed, round_name, "batch"))
    chosen = rng.choice(len(rows), size=count, replace=False)
    return [PromptRow(rows[i]["prompt_id"], rows[i]["text"], tuple(rows[i]["camera"]), split) for i in chosen]


def storage_dtype(policy: Policy) -> torch.dtype:
    """bf16 step tensors on GPU (half the disk; the sampler rounds to it before taking log-probs)."""
    return torch.bfloat16 if policy.device.type == "cuda" else torch.float32


def round_batch(prompts: pa.Table, params: Params, round_name: str, phase: Phase) -> list[PromptRow]:
    return draw_batch(prompts, SPLIT_OF_PHASE[phase], params.prompts.batch_per_round, params.seed, round_name)


def group_ids(batch: list[PromptRow], round_name: str, group_size: int) -> list[str]:
    """The round's sample ids in their canonical order: prompt by prompt, then within the group."""
    return [sample_id(round_name, p.prompt_id, j) for p in batch for j in range(group_size)]


def rollout_round(
    policy: Policy,
    params: Params,
    round_name: str,
    phase: Phase,
    batch: list[PromptRow],
    out: Path,
    progress: Callable[[int, int], None] | None = None,
) -> pa.Table:
    """Sample every group of the round's batch into `out`; return the samples table (not yet written)."""
    ro = params.rollout
    # Both are DVC outputs of their own: they exist even when every sample fails.
    for folder in ("videos", "steps"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    schedule = Schedule.flow_match(ro.steps, ro.shift)
    shape = policy.latent_shape(ro.frames, ro.height, ro.width)
    uncond = policy.encode([ro.negative_prompt]).expand(ro.group_size, -1, -1) if ro.cfg > 1 else None
    dtype = storage_dtype(policy)
    scale = MotionScale.from_params(params.camera)
    rows: list[dict[str, object]] = []
    for n, prompt in enumerate(batch):
        seeds = [derive_seed(params.seed, round_name, prompt.prompt_id, j) for j in range(ro.group_size)]
        window_rng = np.random.default_rng(derive_seed(params.seed, round_name, prompt.prompt_id, "window"))
        steps = trained_steps(schedule, ro.sde, window_rng)
        cond = policy.encode([prompt.text]).expand(ro.group_size, -1, -1)
        generators = [torch.Generator().manual_seed(s) for s in seeds]
        # Each generator draws its sample's initial noise first, shared or not, so its step noises
        # are the same draws either way.
        initial = torch.stack([torch.randn(shape, generator=g) for g in generators])
        if ro.shared_noise:
            initial = initial[:1].expand_as(initial).clone()
        if ro.camera_init:
            initial = warp_noise(initial, [Primitive(m) for m in prompt.camera], scale)
        traj = sample(policy, cond, uncond, generators, shape, schedule, ro.cfg, ro.sde, steps, dtype, initial)
        for j, seed in enumerate(seeds):
            rows.append(_write_sample(policy, traj, j, schedule, params, round_name, phase, prompt, seed, out))
        if progress:
            progress(n + 1, len(batch))
    return pa.Table.from_pylist(rows)


def _write_sample(
    policy: Policy,
    traj: LatentTrajectory,
    j: int,
    schedule: Schedule,
    params: Params,
    round_name: str,
    phase: Phase,
    prompt: PromptRow,
    seed: int,
    out: Path,
) -> dict[str, object]:
    ro = params.rollout
    sid = sample_id(round_name, prompt.prompt_id, j)
    row: dict[str, object] = {
        "sample_id": sid,
        "round": round_name,
        "phase": phase,
        "split": prompt.split,
        "prompt_id": prompt.prompt_id,
        "prompt": prompt.text,
        "camera": list(prompt.camera),
        "group_index": j,
        "seed": seed,
        "video": None,
        "steps": None,
        "frames": ro.frames,
        "height": ro.height,
        "width": ro.width,
        "fps": ro.fps,
        "trained_steps": traj.steps,
        "log_prob_sum": None,
        "log_prob_mean": None,
        "status": "ok",
        "error": None,
    }
    log_probs = traj.log_probs[j]
    if not (torch.isfinite(traj.final[j]).all() and torch.isfinite(log_probs).all()):
        # A failed sample stays a row with its reason; the score stage gives it no reward.
        row.update(status="failed", error="non-finite latents or log-probs (diverged sampling)")
        return row
    idx = torch.tensor(traj.steps, dtype=torch.int64)
    tensors = {
        "steps": idx,
        "timesteps": torch.tensor([schedule.timesteps[i] for i in traj.steps], dtype=torch.float32),
        "sigmas": torch.tensor([schedule.sigmas[i] for i in traj.steps], dtype=torch.float32),
        "sigmas_next": torch.tensor([schedule.sigmas[i + 1] for i in traj.steps], dtype=torch.float32),
        "latents": traj.latents[j].to(storage_dtype(policy)).cpu().contiguous(),
        "next_latents": traj.next_latents[j].to(storage_dtype(policy)).cpu().contiguous(),
        "log_probs": log_probs.double().cpu().contiguous(),
        "log_prob_means": traj.log_prob_means[j].double().cpu().contiguous(),
    }
    steps_rel = f"steps/{sid}.safetensors"
    meta = {
        "sample_id": sid,
        "policy": policy.name,
        "sde": ro.sde.kind,
        "noise_level": ro.sde.noise_level,
        "cfg": ro.cfg,
        "shift": ro.shift,
        "steps_total": schedule.steps,
    }
    # One key: safetensors keeps metadata in a hash map, so several keys come out in random order
    # and the file's bytes (and DVC's cache key) would change from run to run.
    save_file(tensors, str(out / steps_rel), metadata={"worldr1": json.dumps(meta, sort_keys=True)})
    video_rel = f"videos/{sid}.mp4"
    frames = policy.decode(traj.final[j : j + 1])[0].cpu().numpy()
    write_mp4(out / video_rel, frames, ro.fps)
    row.update(
        video=video_rel,
        steps=steps_rel,
        log_prob_sum=float(log_probs.double().sum()),
        log_prob_mean=float(traj.log_prob_means[j].double().mean()) if traj.steps else None,
    )
    return row
