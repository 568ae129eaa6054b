"""The Flow-GRPO trainer: loss pieces by hand, exact on-policy ratios, learning on a 2-D flow
model, the KL's pull to the reference, non-finite steps dropped, resume from saved state."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from worldr1.config import EmaConfig, GrpoConfig, SdeConfig
from worldr1.grpo.loss import clipped_policy_loss, gaussian_kl, step_loss
from worldr1.grpo.sampler import Schedule, sample, trained_steps
from worldr1.grpo.trainer import StoredSample, Trainer
from worldr1.rewards.advantages import group_advantages


def grpo(**over: object) -> GrpoConfig:
    base: dict[str, object] = {
        "lr": 1e-3,
        "betas": [0.9, 0.999],
        "weight_decay": 0.0,
        "clip": 0.2,
        "beta": 0.0,
        "adv_clip": 5.0,
        "adv_std": "group",
        "inner_epochs": 1,
        "minibatch_samples": 16,
        "grad_clip": 1.0,
        "warmup_steps": 0,
        "ema": EmaConfig(enabled=False, decay=0.9),
    }
    base.update(over)
    return GrpoConfig(**base)  # type: ignore[arg-type]


SDE = SdeConfig(kind="flow_grpo", noise_level=0.7, train_fraction=0.5, window=0)


# -- the loss, by hand ---------------------------------------------------------------------------


def test_clipped_loss_matches_hand_values() -> None:
    ratio = torch.tensor([1.0, 1.5, 0.5, 1.5, 0.5], dtype=torch.float64)
    adv = torch.tensor([2.0, 1.0, 1.0, -1.0, -1.0], dtype=torch.float64)
    loss, clipped = clipped_policy_loss(ratio, adv, 0.2)
    # A>0, r>1+e: the clip caps the gain at 1.2; A>0, r<1-e: the unclipped (worse) value stays;
    # A<0, r>1+e: unclipped -A r = 1.5 is worse and stays; A<0, r<1-e: clipped 0.8.
    assert loss.tolist() == pytest.approx([-2.0, -1.2, -0.5, 1.5, 0.8])
    assert clipped.tolist() == [False, True, False, False, True]


def test_gradient_at_ratio_one_equals_the_unclipped_gradient() -> None:
    log_prob = torch.tensor([-3.0, -7.0], dtype=torch.float64, requires_grad=True)
    adv = torch.tensor([1.5, -0.7], dtype=torch.float64)
    step_loss(log_prob, log_prob.detach(), adv, 1e-3, None, 0.0, 4).loss.sum().backward()
    # r = exp((log_prob - old) / D) over D = 4 dimensions: d(-A r)/d log_prob = -A r / D = -A / 4 at r = 1.
    assert log_prob.grad is not None and log_prob.grad.tolist() == pytest.approx([-1.5 / 4, 0.7 / 4])


def test_gaussian_kl_is_the_kl_of_the_step_gaussians() -> None:
    mean, ref = torch.tensor([[0.0, 1.0, 2.0, 3.0]]), torch.tensor([[0.5, 1.0, 2.0, 2.0]])
    std = torch.tensor([[0.5]])
    p = torch.distributions.Normal(mean.double(), 0.5)
    q = torch.distributions.Normal(ref.double(), 0.5)
    expected = torch.distributions.kl_divergence(p, q).mean()  # per dimension, as Flow-GRPO's beta weighs it
    assert float(gaussian_kl(mean, ref, std)) == pytest.approx(float(expected))


# -- a 2-D flow-matching policy ------------------------------------------------------------------


class FlowMLP(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(3, 64), torch.nn.SiLU(), torch.nn.Linear(64, 64), torch.nn.SiLU(), torch.nn.Linear(64, 2)
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, t[:, None]], 1))


class Points2D:
    """A flow model on 2-D points behind the Policy interface. `reference()` swaps in the frozen
    pretrained copy (the role the disabled LoRA adapter plays for Wan)."""

    name = "points2d"
    device = torch.device("cpu")

    def __init__(self, model: FlowMLP) -> None:
        self.reference_model = model
        self.model = copy.deepcopy(model).requires_grad_(True)
        self.reference_model.requires_grad_(False)
        self._active = self.model

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, ...]:
        return (2,)

    def encode(self, texts: list[str]) -> torch.Tensor:
        return torch.zeros(len(texts), 1, 1)

    def velocity(self, latents: torch.Tensor, timestep: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return self._active(latents, timestep.float() / 1000)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return latents

    @contextlib.contextmanager
    def reference(self) -> Iterator[None]:
        self._active = self.reference_model
        try:
            yield
        finally:
            self._active = self.model

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return list(self.model.parameters())


CENTRES = torch.tensor([[2.0, 2.0], [-2.0, 2.0], [2.0, -2.0], [-2.0, -2.0]])


@pytest.fixture(scope="module")
def pretrained() -> FlowMLP:
    """Flow matching on four blobs: the model starts with a quarter of its mass in each quadrant."""
    torch.manual_seed(0)
    model = FlowMLP()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(600):
        x0 = CENTRES[torch.randint(0, 4, (256,))] + 0.3 * torch.randn(256, 2)
        noise = torch.randn(256, 2)
        sigma = torch.rand(256)
        xt = (1 - sigma[:, None]) * x0 + sigma[:, None] * noise
        loss = (model(xt, sigma) - (noise - x0)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def reward(points: torch.Tensor) -> list[float]:
    """1 in the upper-right quadrant, else 0."""
    return ((points[:, 0] > 0) & (points[:, 1] > 0)).float().tolist()


SCHEDULE = Schedule.flow_match(10, 1.0)


def rollout(policy: Points2D, groups: int, size: int, seed: int) -> tuple[list[StoredSample], float]:
    steps = trained_steps(SCHEDULE, SDE)
    batch = groups * size
    gens = [torch.Generator().manual_seed(seed * 100_000 + i) for i in range(batch)]
    traj = sample(policy, policy.encode([""] * batch), None, gens, (2,), SCHEDULE, 1.0, SDE, steps)
    rewards = reward(traj.final)
    advantages, _ = group_advantages([str(i // size) for i in range(batch)], rewards, 5.0)
    out = [
        StoredSample(
            f"s{i}",
            "",
            float(a),
            tuple(traj.steps),
            traj.latents[i],
            traj.next_latents[i],
            traj.log_probs[i],
            prompt_id=str(i // size),
        )
        for i, a in enumerate(advantages)
        if a is not None
    ]
    return out, float(np.mean(rewards))


def mean_reward(policy: Points2D, seed: int) -> float:
    return rollout(policy, 16, 16, seed)[1]


def reference_distance(policy: Points2D) -> float:
    """Mean squared velocity difference to the reference over points along the reference's paths."""
    g = torch.Generator().manual_seed(7)
    x, t = torch.randn(2000, 2, generator=g), torch.rand(2000, generator=g)
    with torch.no_grad():
        return float((policy.model(x, t) - policy.reference_model(x, t)).pow(2).mean())


def train(pretrained: FlowMLP, rounds: int, beta: float) -> Points2D:
    policy = Points2D(pretrained)
    trainer = Trainer(policy, grpo(beta=beta, lr=3e-3), SDE, SCHEDULE, 1.0)
    for r in range(rounds):
        samples, _ = rollout(policy, 8, 8, seed=r)
        trainer.train(samples, np.random.default_rng(r))
    return policy


def test_learning_raises_the_reward_and_the_kl_holds_the_policy_near_the_reference(pretrained: FlowMLP) -> None:
    before = mean_reward(Points2D(pretrained), seed=999)
    free = train(pretrained, 10, beta=0.0)
    after = mean_reward(free, seed=999)
    assert 0.15 < before < 0.35  # a quarter of the mass starts in the rewarded quadrant
    assert after > before + 0.5, (before, after)  # measured: 0.26 -> 0.96 (per-dimension ratio over D = 2)
    held = train(pretrained, 10, beta=1.0)
    assert reference_distance(held) < 0.5 * reference_distance(free), (
        reference_distance(held),
        reference_distance(free),
    )


def test_ratio_is_exactly_one_before_the_first_step(pretrained: FlowMLP) -> None:
    policy = Points2D(pretrained)
    samples, _ = rollout(policy, 4, 4, seed=3)
    metrics = Trainer(policy, grpo(minibatch_samples=64), SDE, SCHEDULE, 1.0).train(samples, np.random.default_rng(0))
    assert metrics.on_policy_ratio_deviation == 0.0 and metrics.clip_fraction == 0.0 and metrics.optimizer_steps == 1


def test_first_step_is_the_same_with_and_without_the_clip(pretrained: FlowMLP) -> None:
    samples, _ = rollout(Points2D(pretrained), 4, 4, seed=4)
    adapters = []
    for clip in (1e-3, 0.9):
        policy = Points2D(pretrained)
        Trainer(policy, grpo(clip=clip, minibatch_samples=64), SDE, SCHEDULE, 1.0).train(
            samples, np.random.default_rng(0)
        )
        adapters.append(torch.cat([p.detach().flatten() for p in policy.trainable_parameters()]))
    assert not torch.equal(adapters[0], torch.cat([p.flatten() for p in pretrained.parameters()]))
    torch.testing.assert_close(adapters[0], adapters[1], rtol=0, atol=0)


@pytest.mark.parametrize("advantage", [1.0, -1.0])
def test_a_non_finite_loss_skips_the_step_and_is_counted(pretrained: FlowMLP, advantage: float) -> None:
    policy = Points2D(pretrained)
    samples, _ = rollout(policy, 4, 4, seed=5)
    broken = samples[0]
    # A corrupt stored log-prob (NaN) makes the loss NaN: that minibatch must not move the weights.
    samples[0] = dataclasses.replace(broken, advantage=advantage, log_probs=torch.full_like(broken.log_probs, math.nan))
    start = [p.detach().clone() for p in policy.trainable_parameters()]
    trainer = Trainer(policy, grpo(minibatch_samples=64), SDE, SCHEDULE, 1.0)
    metrics = trainer.train(samples, np.random.default_rng(0))
    assert metrics.skipped_nonfinite == 1 and metrics.optimizer_steps == 0
    assert all(torch.equal(a, b) for a, b in zip(start, policy.trainable_parameters()))
    assert not trainer.optimizer.state  # nothing stepped, no moments
    report = metrics.as_dict()
    assert report["terms"] == 0 and report["loss"] is None and report["on_policy_ratio_deviation"] is None


@pytest.mark.parametrize("advantage", [1.0, -1.0])
def test_a_far_off_policy_term_stays_finite(pretrained: FlowMLP, advantage: float) -> None:
    """exp(log r) overflows float64 past 709 (here the per-dimension log r is 1e4 / 2), and 0 * inf
    in the clipped branch is NaN: the log-ratio is clamped, so such a term gives no gradient
    instead of killing the minibatch."""
    policy = Points2D(pretrained)
    samples, _ = rollout(policy, 4, 4, seed=5)
    broken = samples[0]
    samples[0] = dataclasses.replace(broken, advantage=advantage, log_probs=broken.log_probs - 1e4)
    metrics = Trainer(policy, grpo(minibatch_samples=64), SDE, SCHEDULE, 1.0).train(samples, np.random.default_rng(0))
    assert metrics.skipped_nonfinite == 0 and metrics.optimizer_steps == 1
    assert all(math.isfinite(v) for v in metrics.as_dict().values() if isinstance(v, float))
    assert all(torch.isfinite(p).all() for p in policy.trainable_parameters())


@pytest.mark.parametrize("warmup", [0, 5])
def test_resume_from_saved_state_equals_one_run(pretrained: FlowMLP, warmup: int) -> None:
    """With a warm-up longer than the first round, the second process must go on where the first
    left off in the lr schedule as well (AdamW's saved step count)."""
    cfg = grpo(minibatch_samples=8, ema=EmaConfig(enabled=True, decay=0.8), weight_decay=0.01, warmup_steps=warmup)
    rounds = [rollout(Points2D(pretrained), 4, 4, seed=s)[0] for s in (10, 11)]
    one = Points2D(pretrained)
    trainer = Trainer(one, cfg, SDE, SCHEDULE, 1.0)
    for r, samples in enumerate(rounds):
        trainer.train(samples, np.random.default_rng(r))
    # Two "processes": the second starts from the saved weights and trainer state only.
    first = Points2D(pretrained)
    t1 = Trainer(first, cfg, SDE, SCHEDULE, 1.0)
    t1.train(rounds[0], np.random.default_rng(0))
    weights, state = copy.deepcopy(first.model.state_dict()), {k: v.clone() for k, v in t1.state_tensors().items()}
    second = Points2D(pretrained)
    second.model.load_state_dict(weights)
    t2 = Trainer(second, cfg, SDE, SCHEDULE, 1.0)
    t2.load_state_tensors(state)
    t2.train(rounds[1], np.random.default_rng(1))
    for a, b in zip(one.trainable_parameters(), second.trainable_parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert trainer.ema is not None and t2.ema is not None
    for a, b in zip(trainer.ema.shadow, t2.ema.shadow):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_warmup_raises_the_lr_linearly_over_the_run_then_holds(pretrained: FlowMLP) -> None:
    trainer = Trainer(Points2D(pretrained), grpo(lr=1e-3, warmup_steps=4, minibatch_samples=4), SDE, SCHEDULE, 1.0)
    samples, _ = rollout(Points2D(pretrained), 2, 4, seed=12)  # two groups of 4: two steps an epoch
    seen = []
    for r in range(3):
        assert trainer.lr_now() == pytest.approx(1e-3 * min(1.0, (2 * r + 1) / 4))
        trainer.train(samples, np.random.default_rng(r))
        seen.append(trainer.optimizer.param_groups[0]["lr"])
    assert trainer.steps_taken() == 6
    assert seen == pytest.approx([0.5e-3, 1e-3, 1e-3])  # the lr of each round's last step
    assert Trainer(Points2D(pretrained), grpo(lr=1e-3), SDE, SCHEDULE, 1.0).lr_now() == 1e-3  # 0: no warm-up


def test_state_that_does_not_fit_is_refused(pretrained: FlowMLP) -> None:
    trainer = Trainer(Points2D(pretrained), grpo(), SDE, SCHEDULE, 1.0)
    with pytest.raises(ValueError, match="does not fit"):
        trainer.load_state_tensors(
            {
                "adamw.00000.exp_avg": torch.zeros(3),
                "adamw.00000.exp_avg_sq": torch.zeros(3),
                "adamw.00000.step": torch.tensor(1.0),
            }
        )
    with pytest.raises(ValueError, match="lacks"):
        trainer.load_state_tensors({"adamw.00099.exp_avg": torch.zeros(3)})
