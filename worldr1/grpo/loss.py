"""Flow-GRPO's objective for one stochastic step: the clipped importance-ratio loss and the KL
to the reference policy (the same model with its adapter disabled).

Both are per latent dimension, as in Flow-GRPO and World-R1: the ratio is exp of the *mean*
per-dimension log-ratio and the KL the mean per-dimension KL, so `clip` bounds the change of one
dimension's density and `beta` weighs a per-dimension KL, whatever the latent's size (2,560 for
the toy, ~2.1M for Wan at 81x480x832). The stored log-probs stay float64 sums (sde.py): their
difference is taken in float64 before it is divided by the number of dimensions D.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class StepLoss:
    """Per-sample terms of one step, shape [B]; `loss` carries the gradient, the rest are detached."""

    loss: torch.Tensor
    policy_loss: torch.Tensor
    kl: torch.Tensor  # per dimension
    ratio: torch.Tensor  # per dimension: exp(mean log-ratio)
    clipped: torch.Tensor  # bool: the clipped branch is the one the max picks (no gradient)
    approx_kl: torch.Tensor  # 0.5 * (per-dimension log r)^2, the usual estimate of KL(old || new)


#: |per-dimension log r| beyond which a term gives no gradient: exp would overflow float64 at 709
#: (and 0 * inf is NaN in the clipped branch). Far beyond any clip (1e-4..0.2): a bound on the
#: numbers, not on the policy, which the clip bounds.
MAX_LOG_RATIO = 20.0


def log_ratio_per_dim(log_prob: torch.Tensor, old_log_prob: torch.Tensor, dims: int) -> torch.Tensor:
    """`(log_prob - old_log_prob) / D` in float64. The log-probs are float64 sums over D terms; the
    per-dimension log-ratios a 1e-3 clip is about are far below what their float32 means resolve."""
    if dims < 1:
        raise ValueError(f"a step needs at least one latent dimension, got {dims}")
    return (log_prob.double() - old_log_prob.double()) / dims


def importance_ratio(log_prob: torch.Tensor, old_log_prob: torch.Tensor, dims: int) -> torch.Tensor:
    """Flow-GRPO's ratio `exp(mean over dimensions of log p - log p_old)` from log-probs summed over
    the D dimensions, with the per-dimension log-ratio clamped to +-MAX_LOG_RATIO so far off-policy
    terms stay finite."""
    return torch.exp(torch.clamp(log_ratio_per_dim(log_prob, old_log_prob, dims), -MAX_LOG_RATIO, MAX_LOG_RATIO))


def clipped_policy_loss(ratio: torch.Tensor, advantage: torch.Tensor, clip: float) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's pessimistic bound `max(-A r, -A clip(r, 1-e, 1+e))` and where the clip decided it."""
    advantage = advantage.to(ratio.dtype)
    unclipped = -advantage * ratio
    clipped = -advantage * torch.clamp(ratio, 1 - clip, 1 + clip)
    return torch.maximum(unclipped, clipped), (clipped > unclipped).detach()


def gaussian_kl(mean: torch.Tensor, ref_mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """KL between the step's Gaussians under the policy and the reference (same std), per
    dimension as Flow-GRPO takes it: `mean((mu - mu_ref)^2) / (2 std^2)` -> [B], float64 (the
    squared differences are tiny next to their count)."""
    diff = (mean.double() - ref_mean.double()).flatten(1)
    return diff.pow(2).mean(1) / (2 * std.double().flatten() ** 2)


def step_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantage: torch.Tensor,
    clip: float,
    kl: torch.Tensor | None,
    beta: float,
    dims: int,
) -> StepLoss:
    """The loss of one step from log-probs summed over its `dims` latent dimensions and a
    per-dimension KL (gaussian_kl)."""
    ratio = importance_ratio(log_prob, old_log_prob, dims)
    policy_loss, clipped = clipped_policy_loss(ratio, advantage, clip)
    kl = torch.zeros_like(policy_loss) if kl is None else kl.to(policy_loss.dtype)
    log_ratio = log_ratio_per_dim(log_prob, old_log_prob, dims).detach()
    return StepLoss(
        loss=policy_loss + beta * kl,
        policy_loss=policy_loss.detach(),
        kl=kl.detach(),
        ratio=ratio.detach(),
        clipped=clipped,
        approx_kl=0.5 * log_ratio**2,
    )
