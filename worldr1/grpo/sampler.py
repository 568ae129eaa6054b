"""The sampling loop: the scheduler's sigmas with shift, CFG, SDE on the trained steps, ODE elsewhere.

Every stochastic step records what the update stage needs to recompute its log-prob exactly:
the state before and after it and the log-prob itself. States are rounded to the storage dtype
*before* the log-prob is taken and the loop continues from the rounded state, so a log-prob
recomputed from the stored tensors by the same policy is the stored one: the ratio is 1 on-policy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from worldr1.config import SdeConfig
from worldr1.grpo.sde import StepDistribution, ode_step, sde_distribution
from worldr1.policy.base import Policy


@dataclass(frozen=True)
class Schedule:
    """Sigmas (steps + 1, ending at 0) and the matching model timesteps, as diffusers makes them."""

    sigmas: tuple[float, ...]
    timesteps: tuple[float, ...]

    @classmethod
    def flow_match(cls, steps: int, shift: float) -> Schedule:
        scheduler = FlowMatchEulerDiscreteScheduler(shift=shift)
        scheduler.set_timesteps(steps)
        return cls(tuple(scheduler.sigmas.tolist()), tuple(scheduler.timesteps.tolist()))

    @property
    def steps(self) -> int:
        return len(self.timesteps)

    @property
    def sigma_max(self) -> float:
        """Stands in for sigma = 1 in the SDE's `1 - sigma` (Flow-GRPO uses the second sigma)."""
        return self.sigmas[1]


def trained_steps(schedule: Schedule, sde: SdeConfig, rng: np.random.Generator | None = None) -> list[int]:
    """Indices of the stochastic (trained) steps: the high-noise `train_fraction` of the steps, or a
    random `sde.window` of consecutive steps inside it (Flow-GRPO-Fast), drawn once per prompt group."""
    high = max(1, math.ceil(round(sde.train_fraction * schedule.steps, 9)))  # 0.55 * 100 is 55.000000000000007
    window = sde.window
    if not window:
        return list(range(high))
    if rng is None:
        raise ValueError("a random window needs an rng")
    window = min(window, high)
    start = int(rng.integers(0, high - window + 1))
    return list(range(start, start + window))


def guided_velocity(
    policy: Policy, x: torch.Tensor, timestep: float, cond: torch.Tensor, uncond: torch.Tensor | None, cfg: float
) -> torch.Tensor:
    """CFG velocity `v_u + cfg * (v_c - v_u)` (off at cfg <= 1, like WanPipeline).

    One sample at a time, conditional and unconditional together: a matmul's result depends on
    the batch it runs in, so the rollout and the update (which batches differently) would get
    velocities a few ulps apart and log-prob ratios that are not exactly 1 on-policy. At Wan's
    sizes one sample fills a GPU, so this costs little.
    """
    return torch.cat(
        [
            _guided_one(
                policy, x[i : i + 1], timestep, cond[i : i + 1], None if uncond is None else uncond[i : i + 1], cfg
            )
            for i in range(x.shape[0])
        ]
    )


def _guided_one(
    policy: Policy, x: torch.Tensor, timestep: float, cond: torch.Tensor, uncond: torch.Tensor | None, cfg: float
) -> torch.Tensor:
    t = torch.full((x.shape[0],), timestep, device=x.device)
    if cfg <= 1 or uncond is None:
        return policy.velocity(x, t, cond)
    both = policy.velocity(torch.cat([x, x]), torch.cat([t, t]), torch.cat([cond, uncond]))
    v_cond, v_uncond = both.chunk(2)
    return v_uncond + cfg * (v_cond - v_uncond)


@dataclass
class LatentTrajectory:
    """One batch's sampling run; tensors have the batch first, then the trained steps."""

    final: torch.Tensor  # [B, *latent]
    steps: list[int]  # indices into the schedule of the trained steps
    latents: torch.Tensor  # [B, S, *latent] state before each trained step
    next_latents: torch.Tensor  # [B, S, *latent] state after it
    log_probs: torch.Tensor  # [B, S] summed over dimensions, float64
    log_prob_means: torch.Tensor  # [B, S] per-dimension mean, for logs


def step_distribution(
    policy: Policy,
    x: torch.Tensor,
    index: int,
    schedule: Schedule,
    cond: torch.Tensor,
    uncond: torch.Tensor | None,
    cfg: float,
    sde: SdeConfig,
) -> StepDistribution:
    """The distribution of the state after step `index`, from the state `x` before it."""
    v = guided_velocity(policy, x, schedule.timesteps[index], cond, uncond, cfg)
    return sde_distribution(
        x, v, schedule.sigmas[index], schedule.sigmas[index + 1], sde.noise_level, sde.kind, schedule.sigma_max
    )


@torch.no_grad()
def sample(
    policy: Policy,
    cond: torch.Tensor,
    uncond: torch.Tensor | None,
    generators: Sequence[torch.Generator],
    latent_shape: tuple[int, ...],
    schedule: Schedule,
    cfg: float,
    sde: SdeConfig,
    steps: Sequence[int],
    storage_dtype: torch.dtype = torch.float32,
    initial: torch.Tensor | None = None,
) -> LatentTrajectory:
    """Sample a batch: one CPU generator per sample gives its initial noise and then its step noises,
    so a sample is the same whatever batch it is in and whatever device runs the model."""
    batch = cond.shape[0]
    if len(generators) != batch:
        raise ValueError(f"{len(generators)} generators for a batch of {batch}")
    if initial is None:
        initial = torch.stack([torch.randn(latent_shape, generator=g) for g in generators])
    x = initial.to(policy.device, torch.float32)
    trained = set(steps)
    before, after, log_probs, log_prob_means = [], [], [], []
    for i in range(schedule.steps):
        if i not in trained:
            v = guided_velocity(policy, x, schedule.timesteps[i], cond, uncond, cfg)
            x = ode_step(x, v, schedule.sigmas[i], schedule.sigmas[i + 1])
            continue
        x = x.to(storage_dtype).float()
        dist = step_distribution(policy, x, i, schedule, cond, uncond, cfg, sde)
        eps = torch.stack([torch.randn(latent_shape, generator=g) for g in generators]).to(x.device)
        x_next = (dist.mean + dist.std * eps).to(storage_dtype).float()
        before.append(x)
        after.append(x_next)
        log_probs.append(dist.log_prob(x_next))
        log_prob_means.append(dist.log_prob_mean(x_next))
        x = x_next
    empty = torch.zeros((batch, 0, *latent_shape))
    return LatentTrajectory(
        final=x,
        steps=sorted(trained),
        latents=torch.stack(before, 1) if before else empty,
        next_latents=torch.stack(after, 1) if after else empty,
        log_probs=torch.stack(log_probs, 1) if log_probs else torch.zeros((batch, 0), dtype=torch.float64),
        log_prob_means=torch.stack(log_prob_means, 1)
        if log_prob_means
        else torch.zeros((batch, 0), dtype=torch.float64),
    )


def recompute_log_probs(
    policy: Policy,
    latents: torch.Tensor,
    next_latents: torch.Tensor,
    steps: Sequence[int],
    schedule: Schedule,
    cond: torch.Tensor,
    uncond: torch.Tensor | None,
    cfg: float,
    sde: SdeConfig,
) -> torch.Tensor:
    """Log-probs `[B, S]` of stored transitions under the policy as it is now (with gradients)."""
    out = []
    for k, index in enumerate(steps):
        x = latents[:, k].to(policy.device, torch.float32)
        dist = step_distribution(policy, x, index, schedule, cond, uncond, cfg, sde)
        out.append(dist.log_prob(next_latents[:, k].to(policy.device, torch.float32)))
    return torch.stack(out, 1)
