"""The SDE and ODE steps: exact Gaussian log-probs, diffusers' Euler step, and the ODE's marginals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from worldr1.config import SdeConfig
from worldr1.grpo.sampler import Schedule, trained_steps
from worldr1.grpo.sde import ode_step, sde_distribution


def make(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    ("kind", "sigma", "sigma_next"),
    [
        ("flow_grpo", 1.0, 0.96),
        ("flow_grpo", 0.7, 0.62),
        ("flow_grpo", 0.2, 0.0),
        ("cps", 1.0, 0.96),
        ("cps", 0.7, 0.62),
    ],
)
def test_log_prob_is_the_summed_gaussian(kind: str, sigma: float, sigma_next: float) -> None:
    x, v = make((3, 4, 5, 6), 0), make((3, 4, 5, 6), 1)
    dist = sde_distribution(x, v, sigma, sigma_next, 0.7, kind, sigma_max=0.96)  # type: ignore[arg-type]
    x_next = dist.mean + dist.std * make(x.shape, 2)
    expected = torch.distributions.Normal(dist.mean, dist.std.expand_as(dist.mean)).log_prob(x_next).flatten(1).sum(1)
    torch.testing.assert_close(dist.log_prob(x_next), expected, rtol=1e-6, atol=1e-5)
    assert dist.log_prob(x_next).shape == (3,)
    torch.testing.assert_close(dist.log_prob_mean(x_next) * x[0].numel(), dist.log_prob(x_next), rtol=1e-5, atol=1e-4)


def test_flow_grpo_mean_and_std_follow_the_formula() -> None:
    x, v = make((2, 8), 3).double(), make((2, 8), 4).double()
    sigma, sigma_next, a = 0.6, 0.55, 0.7
    dt = sigma_next - sigma
    s = a * math.sqrt(sigma / (1 - sigma))
    dist = sde_distribution(x, v, sigma, sigma_next, a)
    mu = x * (1 + s**2 * dt / (2 * sigma)) + v * (1 + s**2 * (1 - sigma) / (2 * sigma)) * dt
    assert dist.mean.dtype == torch.float64
    torch.testing.assert_close(dist.mean, mu)
    assert float(dist.std.flatten()[0]) == pytest.approx(s * math.sqrt(-dt))


def test_summed_log_prob_resolves_small_changes_at_wan_size() -> None:
    # A Wan 2.1 latent at 81 x 480 x 832: 2.1M elements. Nudging the velocity by 1e-3 must move the
    # summed log-prob by the same amount as a float64 reference does; a float32 sum near -2e6
    # would be off by more than the change itself.
    g = torch.Generator().manual_seed(13)
    x, v = torch.randn((1, 16, 21, 60, 104), generator=g), torch.randn((1, 16, 21, 60, 104), generator=g)
    dist = sde_distribution(x, v, 0.9, 0.88, 0.7)
    x_next = (dist.mean + dist.std * torch.randn(x.shape, generator=g, dtype=torch.float64)).float()
    nudged = sde_distribution(x, v + 1e-3, 0.9, 0.88, 0.7)
    ours = float(nudged.log_prob(x_next) - dist.log_prob(x_next))
    reference = (
        torch.distributions.Normal(nudged.mean, nudged.std).log_prob(x_next.double()).sum()
        - torch.distributions.Normal(dist.mean, dist.std).log_prob(x_next.double()).sum()
    )
    assert ours == pytest.approx(float(reference), abs=1e-3)
    assert abs(float(reference)) > 1e-2


def test_sigma_one_uses_sigma_max() -> None:
    x, v = make((1, 4), 5), make((1, 4), 6)
    with pytest.raises(ValueError, match="sigma_max"):
        sde_distribution(x, v, 1.0, 0.9, 0.7)
    dist = sde_distribution(x, v, 1.0, 0.9, 0.7, sigma_max=0.9)
    assert float(dist.std.flatten()[0]) == pytest.approx(0.7 * math.sqrt(1 / 0.1) * math.sqrt(0.1))


def test_cps_keeps_coefficients() -> None:
    # x = (1 - s) x0 + s x1 exactly: the mean is (1 - s') x0 + sqrt(s'^2 - std^2) x1.
    x0, x1 = make((1, 16), 7), make((1, 16), 8)
    sigma, sigma_next, eta = 0.8, 0.6, 0.5
    x, v = (1 - sigma) * x0 + sigma * x1, x1 - x0
    dist = sde_distribution(x, v, sigma, sigma_next, eta, "cps")
    std = sigma_next * math.sin(eta * math.pi / 2)
    torch.testing.assert_close(dist.mean, ((1 - sigma_next) * x0 + math.sqrt(sigma_next**2 - std**2) * x1).double())
    with pytest.raises(ValueError, match="CPS needs"):
        sde_distribution(x, v, sigma, sigma_next, 1.5, "cps")


def test_ode_step_is_diffusers_euler_step() -> None:
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    scheduler.set_timesteps(10)
    x, v = make((2, 16, 3, 4, 4), 9), make((2, 16, 3, 4, 4), 10)
    for i in (0, 4, 9):
        scheduler._step_index = i
        expected = scheduler.step(v, scheduler.timesteps[i], x, return_dict=False)[0]
        got = ode_step(x, v, float(scheduler.sigmas[i]), float(scheduler.sigmas[i + 1]))
        assert torch.equal(got, expected)


def test_schedule_matches_diffusers() -> None:
    schedule = Schedule.flow_match(20, 5.0)
    assert schedule.steps == 20 and len(schedule.sigmas) == 21
    assert schedule.sigmas[0] == 1.0 and schedule.sigmas[-1] == 0.0
    assert schedule.timesteps[5] == pytest.approx(1000 * schedule.sigmas[5])
    assert all(a > b for a, b in zip(schedule.sigmas, schedule.sigmas[1:]))


def sde_cfg(**kw: object) -> SdeConfig:
    base = {"kind": "flow_grpo", "noise_level": 0.7, "train_fraction": 0.5, "window": 0}
    return SdeConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_trained_steps_fraction_and_window() -> None:
    schedule = Schedule.flow_match(20, 5.0)
    assert trained_steps(schedule, sde_cfg()) == list(range(10))
    assert trained_steps(schedule, sde_cfg(train_fraction=0.01)) == [0]
    windows = {tuple(trained_steps(schedule, sde_cfg(window=3), np.random.default_rng(s))) for s in range(50)}
    assert all(len(w) == 3 and w[0] >= 0 and w[-1] <= 9 and list(w) == list(range(w[0], w[0] + 3)) for w in windows)
    assert len(windows) > 3
    with pytest.raises(ValueError, match="rng"):
        trained_steps(schedule, sde_cfg(window=2))


class GaussianFlow:
    """The exact velocity of the flow from N(m, s^2) data to N(0, 1) noise: x_t = (1 - t) x0 + t eps,
    v(x, t) = E[eps - x0 | x_t], so the ODE maps noise to the data distribution exactly."""

    device = torch.device("cpu")
    name = "gaussian"

    def __init__(self, m: float, s: float) -> None:
        self.m, self.s = m, s

    def velocity(self, x: torch.Tensor, timestep: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        t = (timestep / 1000).reshape(-1, *([1] * (x.ndim - 1)))
        var = (1 - t) ** 2 * self.s**2 + t**2
        return -self.m + (t - (1 - t) * self.s**2) / var * (x - (1 - t) * self.m)


def integrate(
    flow: GaussianFlow, start: torch.Tensor, schedule: Schedule, sde: SdeConfig, stochastic: bool
) -> torch.Tensor:
    """Sampling by the step functions alone: SDE on the trained steps (when stochastic), ODE elsewhere."""
    g = torch.Generator().manual_seed(12)
    sde_steps = set(trained_steps(schedule, sde)) if stochastic else set()
    x = start.clone()
    for i in range(schedule.steps):
        t = torch.full((x.shape[0],), schedule.timesteps[i])
        v = flow.velocity(x, t, x)
        if i in sde_steps:
            dist = sde_distribution(
                x, v, schedule.sigmas[i], schedule.sigmas[i + 1], sde.noise_level, sde.kind, schedule.sigma_max
            )
            x = dist.mean + dist.std * torch.randn(x.shape, generator=g)
        else:
            x = ode_step(x, v, schedule.sigmas[i], schedule.sigmas[i + 1])
    return x


def test_sde_and_ode_share_marginals() -> None:
    flow = GaussianFlow(m=1.5, s=0.5)
    schedule = Schedule.flow_match(100, 1.0)
    start = make((20000, 1), 11)
    sde = sde_cfg(noise_level=0.7, train_fraction=0.9)
    ode, noisy = integrate(flow, start, schedule, sde, False), integrate(flow, start, schedule, sde, True)
    for x in (ode, noisy):
        assert float(x.mean()) == pytest.approx(1.5, abs=0.02)
        assert float(x.std()) == pytest.approx(0.5, abs=0.02)
    assert float((noisy - ode).abs().mean()) > 0.05  # the SDE really is stochastic


def test_cps_keeps_the_mean_but_not_exactly_the_variance() -> None:
    # CPS's noise (sigma_next * sin(a pi / 2)) is not the posterior variance that would preserve the
    # marginals exactly: with the exact posterior mean it keeps the mean and narrows the spread a
    # little. Recorded here so that nobody mistakes it for a marginal-preserving sampler.
    flow = GaussianFlow(m=1.5, s=0.5)
    schedule = Schedule.flow_match(20, 1.0)
    x = integrate(flow, make((20000, 1), 11), schedule, sde_cfg(kind="cps", noise_level=0.7), True)
    assert float(x.mean()) == pytest.approx(1.5, abs=0.02)
    assert 0.4 < float(x.std()) < 0.5
