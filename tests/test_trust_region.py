"""The trust region per latent dimension (Flow-GRPO, World-R1): the clip and the KL mean the same
at the toy's 2,560 dimensions and at Wan's ~2.1M, the ratio is exactly 1 on-policy, and the
update's minibatches hold whole prompt groups."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import torch

from worldr1 import config
from worldr1.config import EmaConfig, GrpoConfig, SdeConfig
from worldr1.distributed import World
from worldr1.grpo.loss import gaussian_kl, importance_ratio, step_loss
from worldr1.grpo.sampler import Schedule
from worldr1.grpo.sde import StepDistribution
from worldr1.grpo.trainer import StoredSample, Trainer, UpdateMetrics, group_minibatches

D_TOY = 2_560  # 8 x 5 x 8 x 8: the toy latent of one step
D_WAN = 2_100_000  # ~16 x 21 x 60 x 104 (Wan 2.1 at 81 x 480 x 832)
STD = 0.3
CLIP = 1e-3  # World-R1's clip_range on Wan
# Per-dimension shifts of the mean, in units of the step's std: the per-dimension log-ratio is
# -+u^2/2 with noise u/sqrt(D) from the sample, so the small ones stay inside 1e-3 and the large
# ones outside it by 6 standard deviations or more even at D = 2,560.
INSIDE = (0.002, 0.005, 0.008)
OUTSIDE = (0.25, 0.3, 0.4)


def perturbed_step(dims: int, u: float, from_new: bool, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p_new, log p_old) of one step's sample, float64 sums of per-element log-densities: every
    element's mean moved by u std (random signs); the sample drawn from the new policy (ratio > 1)
    or the old one (ratio < 1)."""
    g = torch.Generator().manual_seed(seed)
    old_mean = torch.randn(1, dims, generator=g, dtype=torch.float64)
    signs = torch.randint(0, 2, (1, dims), generator=g).double() * 2 - 1
    std = torch.full((1, 1), STD, dtype=torch.float64)
    old, new = StepDistribution(old_mean, std), StepDistribution(old_mean + u * STD * signs, std)
    x = (new if from_new else old).mean + STD * torch.randn(1, dims, generator=g, dtype=torch.float64)
    return new.log_prob(x), old.log_prob(x)


def clip_fraction(dims: int, per_dimension: bool = True) -> tuple[float, list[float]]:
    """The share of the terms whose clipped branch the loss picks (advantage of the sign that the
    clip bounds), and each term's |log r| as the ratio sees it."""
    clipped, log_ratios = [], []
    for n, (u, from_new) in enumerate((u, f) for u in INSIDE + OUTSIDE for f in (False, True)):
        new, old = perturbed_step(dims, u, from_new, seed=n)
        advantage = torch.tensor([1.0 if from_new else -1.0], dtype=torch.float64)
        out = step_loss(new, old, advantage, CLIP, None, 0.0, dims if per_dimension else 1)
        clipped.append(float(out.clipped))
        log_ratios.append(abs(float(torch.log(out.ratio))))
    return float(np.mean(clipped)), log_ratios


def test_the_same_per_dimension_change_clips_the_same_share_at_any_latent_size() -> None:
    toy, _ = clip_fraction(D_TOY)
    wan, log_ratios = clip_fraction(D_WAN)
    assert toy == wan == 0.5  # exactly the OUTSIDE terms
    # The per-dimension log-ratio is u^2 / 2, whatever D (only the sample's noise in it shrinks with D).
    assert log_ratios[2 * len(INSIDE) :] == pytest.approx([u**2 / 2 for u in OUTSIDE for _ in range(2)], rel=0.05)
    # A clip on the summed log-ratio, as before: at Wan's size every term, even u = 0.002, is outside it.
    _, summed = clip_fraction(D_WAN, per_dimension=False)
    assert min(summed) > CLIP


def test_the_ratio_is_exactly_one_on_policy_and_its_gradient_is_the_unclipped_one() -> None:
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(1, D_WAN, generator=g, dtype=torch.float64).requires_grad_(True)
    std = torch.full((1, 1), STD, dtype=torch.float64)
    x = mean.detach() + STD * torch.randn(1, D_WAN, generator=g, dtype=torch.float64)
    advantage = torch.tensor([0.7], dtype=torch.float64)
    grads = []
    for clip in (1e-4, 0.5):
        mean.grad = None
        log_prob = StepDistribution(mean, std).log_prob(x)  # a sum of 2.1M terms, ~ -4.5e5
        out = step_loss(log_prob, log_prob.detach(), advantage, clip, None, 0.0, D_WAN)
        assert float(out.ratio) == 1.0 and not bool(out.clipped) and float(out.approx_kl) == 0.0
        out.loss.sum().backward()
        assert mean.grad is not None
        grads.append(mean.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=0)
    # d(-A r)/d mean = -A / D * d log_prob / d mean = -A / D * (x - mean) / std^2 at r = 1.
    expected = -0.7 / D_WAN * (x - mean.detach()) / STD**2
    torch.testing.assert_close(grads[0], expected, rtol=1e-12, atol=0)


def test_the_ratio_divides_the_float64_difference_by_the_dimensions() -> None:
    # Two sums of 2.1M terms 2.1e-3 apart: 1e-9 per dimension, below float32's resolution of either sum.
    old = torch.tensor([-630_000.123456789], dtype=torch.float64)
    ratio = importance_ratio(old + 2.1e-3, old, D_WAN)
    assert float(torch.log(ratio)) == pytest.approx(1e-9, rel=1e-6)


def test_kl_is_the_per_dimension_mean_of_the_gaussians_kl() -> None:
    g = torch.Generator().manual_seed(1)
    mean, ref = torch.randn(2, 4, 3, 5, 6, generator=g), torch.randn(2, 4, 3, 5, 6, generator=g)
    std = torch.tensor([0.2, 0.9]).reshape(2, 1, 1, 1, 1)
    p = torch.distributions.Normal(mean.double(), std.double())
    q = torch.distributions.Normal(ref.double(), std.double())
    expected = torch.distributions.kl_divergence(p, q).flatten(1).mean(1)
    kl = gaussian_kl(mean, ref, std)
    assert kl.dtype == torch.float64
    torch.testing.assert_close(kl, expected, rtol=1e-12, atol=0)
    # The same per-dimension change of the mean gives the same KL at any latent size.
    per_size = [
        float(gaussian_kl(torch.full((1, d), 0.01), torch.zeros(1, d), torch.full((1, 1), STD))) for d in (D_TOY, D_WAN)
    ]
    assert per_size[0] == pytest.approx(per_size[1], rel=1e-9) and per_size[0] == pytest.approx(0.01**2 / (2 * STD**2))


# -- minibatches of whole prompt groups ----------------------------------------------------------


def stub_samples(group_sizes: Sequence[int], prompt_ids: bool = True) -> list[StoredSample]:
    """Samples of groups of the given sizes, interleaved as a round's rows never are (so a group's
    members are not neighbours in the list)."""
    rows = [(g, k) for k in range(max(group_sizes)) for g, n in enumerate(group_sizes) if k < n]
    z = torch.zeros(1, 2)
    return [
        StoredSample(
            f"p{g}-{k}",
            f"prompt {g}",
            1.0,
            (0,),
            z,
            z,
            torch.zeros(1, dtype=torch.float64),
            prompt_id=f"p{g}" if prompt_ids else "",
        )
        for g, k in rows
    ]


def check_epoch(samples: Sequence[StoredSample], batches: list[list[int]], size: int) -> None:
    assert sorted(i for b in batches for i in b) == list(range(len(samples)))  # each sample exactly once
    groups = {}
    for n, batch in enumerate(batches):
        for i in batch:
            assert groups.setdefault(samples[i].group, n) == n  # a group never spans two minibatches
        assert len(batch) <= size or len({samples[i].group for i in batch}) == 1


@pytest.mark.parametrize("prompt_ids", [True, False])
def test_minibatches_hold_whole_groups_once_per_epoch_and_repeat_for_a_seed(prompt_ids: bool) -> None:
    samples = stub_samples([4, 4, 3, 4, 2, 4, 9, 1, 4], prompt_ids)  # partial groups, one larger than a minibatch
    size = 8
    rng = np.random.default_rng(5)
    epochs = [group_minibatches(samples, size, rng) for _ in range(3)]
    for batches in epochs:
        check_epoch(samples, batches, size)
        big = [b for b in batches if any(samples[i].prompt == "prompt 6" for i in b)]
        assert [len(b) for b in big] == [9]  # the group of 9 alone
    assert epochs[0] != epochs[1]  # each epoch draws a new order
    again = np.random.default_rng(5)
    assert [group_minibatches(samples, size, again) for _ in range(3)] == epochs


@pytest.mark.parametrize(
    ("batch_per_round", "group_size", "minibatch", "epochs"),
    [(8, 4, 6, 2), (8, 8, 8, 2), (8, 4, 16, 1), (3, 8, 4, 1), (5, 2, 5, 3)],
)
def test_rounds_count_the_packed_minibatches(
    params_dict: dict[str, Any], batch_per_round: int, group_size: int, minibatch: int, epochs: int
) -> None:
    params_dict["prompts"]["batch_per_round"] = batch_per_round
    params_dict["rollout"]["group_size"] = group_size
    params_dict["grpo"].update(minibatch_samples=minibatch, inner_epochs=epochs)
    samples = stub_samples([group_size] * batch_per_round)
    rng = np.random.default_rng(0)
    taken = sum(len(group_minibatches(samples, minibatch, rng)) for _ in range(epochs))
    assert config.validate(params_dict).steps_per_round == taken


class Frozen:
    """Just enough of a Policy for a Trainer whose optimizer steps are recorded, not run."""

    device = torch.device("cpu")

    def __init__(self) -> None:
        self.weight = torch.nn.Parameter(torch.zeros(2))

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [self.weight]


class Recording(Trainer):
    def __init__(self, world: World, minibatch: int) -> None:
        cfg = GrpoConfig(
            lr=1e-3,
            betas=[0.9, 0.999],
            weight_decay=0.0,
            clip=CLIP,
            beta=0.0,
            adv_clip=5.0,
            adv_std="group",
            inner_epochs=2,
            minibatch_samples=minibatch,
            grad_clip=1.0,
            warmup_steps=0,
            ema=EmaConfig(enabled=False, decay=0.9),
        )
        sde = SdeConfig(kind="flow_grpo", noise_level=0.7, train_fraction=0.5, window=0)
        super().__init__(Frozen(), cfg, sde, Schedule.flow_match(10, 1.0), 1.0, world=world)  # type: ignore[arg-type]
        self.batches: list[list[str]] = []

    def _optimizer_step(self, batch: Sequence[StoredSample], metrics: UpdateMetrics, first: bool) -> None:
        self.batches.append([s.sample_id for s in batch])


def test_the_trainer_steps_on_whole_groups_and_every_rank_draws_the_same() -> None:
    samples = stub_samples([4, 4, 3, 4, 2, 4])
    ranks = [Recording(World(rank, 2), minibatch=6) for rank in range(2)]
    for trainer in ranks:
        trainer.train(samples, np.random.default_rng(3))
    assert ranks[0].batches == ranks[1].batches
    rng = np.random.default_rng(3)
    epochs = [group_minibatches(samples, 6, rng) for _ in range(2)]  # inner_epochs = 2
    for batches in epochs:
        check_epoch(samples, batches, 6)
    assert ranks[0].batches == [[samples[i].sample_id for i in b] for batches in epochs for b in batches]


def test_the_report_names_the_latent_size() -> None:
    z = torch.zeros(3, 8, 5, 8, 8)  # three steps of the toy latent
    sample = StoredSample("s", "p", 1.0, (0, 1, 2), z, z, torch.zeros(3, dtype=torch.float64), prompt_id="p")
    assert sample.latent_dims == D_TOY
    trainer = Recording(World(), minibatch=4)
    assert trainer.train([sample], np.random.default_rng(0)).as_dict()["latent_dims"] == D_TOY
