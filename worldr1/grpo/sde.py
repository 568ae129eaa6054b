"""One denoising step of a flow-matching sampler, as an ODE (Euler) or as an SDE with its log-prob.

Convention: sigma runs from 1 (noise) to 0 (data), `x = (1 - sigma) * x0 + sigma * noise`, the
model predicts the velocity `v = noise - x0`, and `dt = sigma_next - sigma < 0`.

Flow-GRPO's SDE has the ODE's marginals: with `s = a * sqrt(sigma / (1 - sigma))`,
    mu = x * (1 + s^2 dt / (2 sigma)) + v * (1 + s^2 (1 - sigma) / (2 sigma)) * dt,
    x' = mu + s * sqrt(-dt) * eps.
The coefficients-preserving variant (CPS) instead keeps x' a convex mix of the predicted data and
noise with the right total noise: std = sigma_next * sin(a pi / 2),
    mu = (1 - sigma_next) * x0_hat + sqrt(sigma_next^2 - std^2) * x1_hat.
Log-probs are of the Gaussian N(mu, std^2) at x', summed over every dimension of a sample: the
policy's probability of the whole step. The update divides the difference of two sums by the
dimension count, so its ratio is Flow-GRPO's per-dimension one (worldr1/grpo/loss.py). The mean
and the sum are float64: a Wan latent has 2.1M elements, and a float32 sum near -2e6 resolves only
~0.1, far coarser than the per-dimension log-ratios (times 2.1M) that a 1e-3 clip range is about.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

SdeKind = Literal["flow_grpo", "cps"]
LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


@dataclass(frozen=True)
class StepDistribution:
    """The Gaussian a stochastic step samples from: per-element mean, per-sample std."""

    mean: torch.Tensor
    std: torch.Tensor  # shape [B, 1, ..., 1]

    def log_prob(self, x_next: torch.Tensor) -> torch.Tensor:
        """log N(x_next; mean, std^2), summed over all but the batch dimension -> [B] (float64).

        Row by row: a GPU splits a reduction over [B, D] differently for each B, and the rollout
        (a group) and the update (one sample) must add the same numbers in the same order."""
        return torch.stack([row.sum() for row in per_element_log_prob(x_next, self.mean, self.std).flatten(1)])

    def log_prob_mean(self, x_next: torch.Tensor) -> torch.Tensor:
        """The same averaged per dimension, for logs (the update divides the sums' difference by the
        dimension count itself, in float64: worldr1/grpo/loss.py)."""
        return per_element_log_prob(x_next, self.mean, self.std).flatten(1).mean(1)


def per_element_log_prob(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    x, mean, std = x.double(), mean.double(), std.double()
    return -((x - mean) ** 2) / (2 * std**2) - torch.log(std) - LOG_SQRT_2PI


def _per_sample(value: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float64, device=like.device)
    return t.reshape(-1, *([1] * (like.ndim - 1))) if t.ndim else t.reshape(*([1] * like.ndim))


def sde_distribution(
    x: torch.Tensor,
    v: torch.Tensor,
    sigma: float,
    sigma_next: float,
    noise_level: float,
    kind: SdeKind = "flow_grpo",
    sigma_max: float | None = None,
) -> StepDistribution:
    """The distribution of x' given x and the velocity v, in float64 (bf16 overflows here, and
    float32 rounds the mean more coarsely than the policy changes it).

    `sigma_max` replaces sigma = 1 in `1 - sigma` (where the SDE's noise scale is infinite); Flow-GRPO
    uses the schedule's second sigma, and so does `Schedule.sigma_max`.
    """
    x, v = x.double(), v.double()
    if not 0 <= sigma_next < sigma <= 1:
        raise ValueError(f"need 0 <= sigma_next < sigma <= 1, got sigma={sigma}, sigma_next={sigma_next}")
    dt = sigma_next - sigma
    if kind == "flow_grpo":
        if sigma >= 1 and sigma_max is None:
            raise ValueError("sigma = 1 needs sigma_max (the next sigma of the schedule)")
        denom = 1 - (sigma_max if sigma >= 1 and sigma_max is not None else sigma)
        s = noise_level * math.sqrt(sigma / denom)
        mean = x * (1 + s**2 / (2 * sigma) * dt) + v * (1 + s**2 * (1 - sigma) / (2 * sigma)) * dt
        std = s * math.sqrt(-dt)
    elif kind == "cps":
        if not 0 < noise_level <= 1:
            raise ValueError(f"CPS needs 0 < noise_level <= 1, got {noise_level}")
        std = sigma_next * math.sin(noise_level * math.pi / 2)
        x0_hat = x - sigma * v
        x1_hat = x + (1 - sigma) * v
        mean = x0_hat * (1 - sigma_next) + x1_hat * math.sqrt(max(sigma_next**2 - std**2, 0.0))
    else:
        raise ValueError(f"unknown SDE kind {kind!r}")
    if std <= 0:
        raise ValueError(f"the step from sigma={sigma} to {sigma_next} has no noise: make it an ODE step")
    return StepDistribution(mean, _per_sample(std, x))


def ode_step(x: torch.Tensor, v: torch.Tensor, sigma: float, sigma_next: float) -> torch.Tensor:
    """Euler step of the probability-flow ODE, as diffusers' FlowMatchEulerDiscreteScheduler does it."""
    return (x.float() + (sigma_next - sigma) * v.float()).to(x.dtype)
