"""Flow-GRPO's objective for one stochastic step: the clipped importance-ratio loss and the KL
to the reference policy (the same model with its adapter disabled)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class StepLoss:
    """Per-sample terms of one step, shape [B]; `loss` carries the gradient, the rest are detached."""

    loss: torch.Tensor
    policy_loss: torch.Tensor
    kl: torch.Tensor
    ratio: torch.Tensor
    clipped: torch.Tensor        # bool: the clipped branch is the one the max picks (no gradient)
    approx_kl: torch.Tensor      # 0.5 * (log r)^2, the usual estimate of KL(old || new)


#: |log r| beyond which a term gives no gradient: exp would overflow float64 at 709 (and 0 * inf is
#: NaN in the clipped branch), and a ratio of e^20 is a sample the policy has long left behind.
MAX_LOG_RATIO = 20.0


def importance_ratio(log_prob: torch.Tensor, old_log_prob: torch.Tensor) -> torch.Tensor:
    """`exp(log_prob - old_log_prob)` in float64 (the log-probs are sums over millions of
    dimensions; the clip, 1e-3, is finer than float32's rounding of their difference), with the
    log-ratio clamped to +-MAX_LOG_RATIO so far off-policy terms stay finite."""
    return torch.exp(torch.clamp(log_prob.double() - old_log_prob.double(), -MAX_LOG_RATIO, MAX_LOG_RATIO))


def clipped_policy_loss(ratio: torch.Tensor, advantage: torch.Tensor, clip: float) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's pessimistic bound `max(-A r, -A clip(r, 1-e, 1+e))` and where the clip decided it."""
    advantage = advantage.to(ratio.dtype)
    unclipped = -advantage * ratio
    clipped = -advantage * torch.clamp(ratio, 1 - clip, 1 + clip)
    return torch.maximum(unclipped, clipped), (clipped > unclipped).detach()


def gaussian_kl(mean: torch.Tensor, ref_mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """KL between the step's Gaussians under the policy and the reference (same std), summed
    over dimensions like the log-probs: `sum((mu - mu_ref)^2) / (2 std^2)` -> [B]. Flow-GRPO
    averages both; averaging only the KL would shrink beta by the latent size next to a ratio
    of summed log-probs (2.1M times at Wan's 81x480x832)."""
    diff = (mean.double() - ref_mean.double()).flatten(1)
    return torch.stack([row.pow(2).sum() for row in diff]) / (2 * std.double().flatten() ** 2)


def step_loss(log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantage: torch.Tensor, clip: float,
              kl: torch.Tensor | None, beta: float) -> StepLoss:
    ratio = importance_ratio(log_prob, old_log_prob)
    policy_loss, clipped = clipped_policy_loss(ratio, advantage, clip)
    kl = torch.zeros_like(policy_loss) if kl is None else kl.to(policy_loss.dtype)
    log_ratio = (log_prob.double() - old_log_prob.double()).detach()
    return StepLoss(loss=policy_loss + beta * kl, policy_loss=policy_loss.detach(), kl=kl.detach(),
                    ratio=ratio.detach(), clipped=clipped, approx_kl=0.5 * log_ratio**2)
