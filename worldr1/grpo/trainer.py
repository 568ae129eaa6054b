"""The Flow-GRPO update: recompute each stored step's log-prob under the current policy, take the
clipped ratio loss with the sample's advantage plus beta * KL to the reference (both per latent
dimension, worldr1/grpo/loss.py), accumulate over a minibatch of whole prompt groups, clip, AdamW, EMA.

Every (sample, step) term is evaluated exactly as the rollout evaluated it (one sample at a
time, conditional and unconditional together, the same stored float32 state), so before the
first optimizer step every ratio is exactly 1 and the clip is inactive.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from worldr1.config import GrpoConfig, SdeConfig
from worldr1.distributed import World, all_gather, all_reduce_sum
from worldr1.grpo.loss import StepLoss, gaussian_kl, step_loss
from worldr1.grpo.sampler import Schedule, step_distribution
from worldr1.policy.base import Policy


@dataclass(frozen=True)
class StoredSample:
    """One rollout sample as the update sees it: its trained transitions and its advantage."""

    sample_id: str
    prompt: str
    advantage: float
    steps: tuple[int, ...]  # schedule indices of the trained steps
    latents: torch.Tensor  # [S, *latent] state before each step
    next_latents: torch.Tensor  # [S, *latent] state after it
    log_probs: torch.Tensor  # [S] float64, summed over the latent, under the policy that sampled it
    prompt_id: str = ""  # its group; "" where a caller has none: the prompt tells groups apart

    @property
    def group(self) -> tuple[str, str]:
        """The prompt group whose mean reward is this sample's baseline."""
        return self.prompt_id, self.prompt

    @property
    def latent_dims(self) -> int:
        """D: the latent elements of one step, over which its log-probs are summed."""
        return math.prod(self.next_latents.shape[1:])


class Ema:
    """Exponential moving average of the adapter weights (kept in fp32, beside the live ones)."""

    def __init__(self, params: Sequence[torch.nn.Parameter], decay: float, shadow: list[torch.Tensor] | None = None):
        self.params = list(params)
        self.decay = decay
        self.shadow = [p.detach().float().clone() for p in self.params] if shadow is None else shadow
        if len(self.shadow) != len(self.params) or any(s.shape != p.shape for s, p in zip(self.shadow, self.params)):
            raise ValueError("EMA state does not match the adapter's parameters")

    @torch.no_grad()
    def update(self) -> None:
        for s, p in zip(self.shadow, self.params):
            s.mul_(self.decay).add_(p.detach().float(), alpha=1 - self.decay)

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Inside: the model carries the EMA weights (to save or evaluate them)."""
        live = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for s, p in zip(self.shadow, self.params):
                p.copy_(s)
        try:
            yield
        finally:
            with torch.no_grad():
                for v, p in zip(live, self.params):
                    p.copy_(v)


@dataclass(frozen=True)
class TermStats:
    loss: float
    policy_loss: float
    kl: float
    clipped: bool
    ratio: float
    approx_kl: float


@dataclass
class UpdateMetrics:
    """What `reports/rounds/rK.json` shows of an update: means over the (sample, step) terms of the
    optimizer steps taken (a dropped step's terms are not counted)."""

    terms: list[TermStats] = field(default_factory=list)
    on_policy_ratio_deviation: float | None = None  # max |ratio - 1| before the round's first step: 0 when exact
    grad_norms: list[float] = field(default_factory=list)
    optimizer_steps: int = 0
    skipped_nonfinite: int = 0
    latent_dims: int | None = None  # D: ratio, KL and approx_kl are per dimension of it

    def _mean(self, values: list[float]) -> float | None:
        return float(np.mean(values)) if values else None

    @property
    def loss(self) -> float | None:
        return self._mean([t.loss for t in self.terms])

    @property
    def clip_fraction(self) -> float | None:
        return self._mean([float(t.clipped) for t in self.terms])

    def as_dict(self) -> dict[str, float | int | None]:
        t = self.terms
        return {
            "loss": self.loss,
            "policy_loss": self._mean([x.policy_loss for x in t]),
            "kl": self._mean([x.kl for x in t]),
            "clip_fraction": self.clip_fraction,
            "ratio_deviation": self._mean([abs(x.ratio - 1) for x in t]),
            "approx_kl": self._mean([x.approx_kl for x in t]),
            "on_policy_ratio_deviation": self.on_policy_ratio_deviation,
            "grad_norm": self._mean(self.grad_norms),
            "optimizer_steps": self.optimizer_steps,
            "skipped_nonfinite": self.skipped_nonfinite,
            "terms": len(t),
            "latent_dims": self.latent_dims,
        }


def group_minibatches(samples: Sequence[StoredSample], size: int, rng: np.random.Generator) -> list[list[int]]:
    """One epoch's minibatches, as indices into `samples`: the prompt groups in an order drawn from
    `rng`, packed whole and in that order into minibatches of at most `size` samples (a group
    larger than `size` is a minibatch of its own). A group's advantages are relative to its own
    mean: split over optimizer steps, its baseline would no longer cancel within a step.

    With groups of g <= size samples each minibatch but the last holds floor(size / g) of them
    or more, so an epoch takes at most ceil(groups / floor(size / g)) steps (rounds.py)."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, s in enumerate(samples):
        groups.setdefault(s.group, []).append(i)
    members = list(groups.values())
    batches: list[list[int]] = []
    for g in rng.permutation(len(members)):
        if not batches or len(batches[-1]) + len(members[g]) > size:
            batches.append([])
        batches[-1] += members[g]
    return batches


class Trainer:
    """Holds the optimizer (and EMA) across rounds; `train` runs one round's update."""

    def __init__(
        self,
        policy: Policy,
        grpo: GrpoConfig,
        sde: SdeConfig,
        schedule: Schedule,
        cfg: float,
        negative_prompt: str = "",
        world: World | None = None,
    ) -> None:
        self.policy = policy
        self.world = world or World()
        # A policy sharded with FSDP gathers weights from every rank at each model call: every rank
        # must then call it equally often in each optimizer step.
        self.lockstep = bool(getattr(policy, "sharded", False)) and self.world.size > 1
        self.grpo = grpo
        self.sde = sde
        self.schedule = schedule
        self.cfg = cfg
        self.params = policy.trainable_parameters()
        if not self.params:
            raise ValueError("the policy has no trainable parameters (attach an adapter first)")
        self.optimizer = torch.optim.AdamW(
            self.params,
            lr=grpo.lr,
            betas=tuple(grpo.betas),  # type: ignore[arg-type]
            weight_decay=grpo.weight_decay,
        )
        self.ema = Ema(self.params, grpo.ema.decay) if grpo.ema.enabled else None
        self.uncond = policy.encode([negative_prompt]) if cfg > 1 else None
        self._cond: dict[str, torch.Tensor] = {}

    def train(
        self,
        samples: Sequence[StoredSample],
        rng: np.random.Generator,
        progress: Callable[[int, int], None] | None = None,
    ) -> UpdateMetrics:
        """`inner_epochs` passes over the samples in minibatches of whole prompt groups
        (`group_minibatches`). Every rank draws the same minibatches from the same rng."""
        metrics = UpdateMetrics(latent_dims=samples[0].latent_dims if samples else None)
        batches = []
        for _ in range(self.grpo.inner_epochs):
            batches += [
                [samples[i] for i in batch] for batch in group_minibatches(samples, self.grpo.minibatch_samples, rng)
            ]
        for n, batch in enumerate(batches):
            self._optimizer_step(batch, metrics, first=n == 0)
            if progress:
                progress(n + 1, len(batches))
        return metrics

    def _optimizer_step(self, batch: Sequence[StoredSample], metrics: UpdateMetrics, first: bool) -> None:
        """One AdamW step on a minibatch. Over several ranks each takes its share of the samples and
        the summed gradients are all-reduced before the clip, so every rank takes the same step the
        one-process run takes (up to the order of the float sums)."""
        self.optimizer.zero_grad(set_to_none=True)
        count = sum(len(s.steps) for s in batch)
        stats: dict[int, list[TermStats]] = {}
        finite = True
        for i, k, padding in self._share(batch):
            out = self._term(batch[i], k)
            value = float(out.loss.detach().sum())
            if not padding and not math.isfinite(value):
                finite = False
                if not self.lockstep:
                    break  # the step is lost: no need to compute the rest of it
            # Backward per term: gradient accumulation at the memory of one model call. A padding
            # term (lockstep) runs the model like any other and adds nothing; were it non-finite,
            # the rank that owns the same term drops the step anyway.
            (out.loss.sum() * 0.0 if padding else out.loss.sum() / count).backward()
            if padding:
                continue
            stats.setdefault(i, []).append(
                TermStats(
                    value,
                    float(out.policy_loss.sum()),
                    float(out.kl.sum()),
                    bool(out.clipped.any()),
                    float(out.ratio.sum()),
                    float(out.approx_kl.sum()),
                )
            )
        mine = [stats.get(i, []) for i in self.world.mine(range(len(batch)))]
        if self.world.size > 1:
            finite = self._all_reduce_grads(finite)
            shares = all_gather(self.world, mine, "gathering the update's metrics")
            # Back to the minibatch's order (sample i was on rank i % size), as one process has them.
            mine = [shares[i % self.world.size][i // self.world.size] for i in range(len(batch))] if finite else []
        terms = [t for per_sample in mine for t in per_sample]
        norm = float(torch.nn.utils.clip_grad_norm_(self.params, self.grpo.grad_clip)) if finite else math.nan
        if not math.isfinite(norm):
            # A non-finite loss or gradient must never reach the adapter: drop the whole step.
            self.optimizer.zero_grad(set_to_none=True)
            metrics.skipped_nonfinite += 1
            return
        if first:
            metrics.on_policy_ratio_deviation = max(abs(t.ratio - 1) for t in terms) if terms else None
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_now()
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update()
        metrics.terms += terms
        metrics.grad_norms.append(norm)
        metrics.optimizer_steps += 1

    def steps_taken(self) -> int:
        """Optimizer steps of the whole run so far: AdamW's own count, which resuming restores."""
        state = self.optimizer.state.get(self.params[0], {})
        return int(state["step"]) if "step" in state else 0

    def lr_now(self) -> float:
        """The lr of the next optimizer step: `grpo.lr`, after a linear warm-up of `grpo.warmup_steps`."""
        warmup = self.grpo.warmup_steps
        return self.grpo.lr * min(1.0, (self.steps_taken() + 1) / warmup) if warmup else self.grpo.lr

    def _share(self, batch: Sequence[StoredSample]) -> list[tuple[int, int, bool]]:
        """This rank's (sample index, step, padding) terms of a minibatch. In lockstep every rank runs
        as many terms as the busiest one, topped up with padding: a real term that weighs nothing."""

        def terms(world: World) -> list[tuple[int, int, bool]]:
            return [(i, k, False) for i in world.mine(range(len(batch))) for k in range(len(batch[i].steps))]

        own = terms(self.world)
        if not self.lockstep:
            return own
        busiest = max(len(terms(World(r, self.world.size))) for r in range(self.world.size))
        first = next((i for i, s in enumerate(batch) if s.steps), 0)  # busiest > 0 means one has steps
        return own + [(first, 0, True)] * (busiest - len(own))

    def _all_reduce_grads(self, finite: bool) -> bool:
        """Sum the adapter's gradients over the ranks (one flat buffer, one collective); True when
        every rank's loss was finite."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        flat = torch.cat(
            [g.reshape(-1).float() for g in grads] + [torch.tensor([0.0 if finite else 1.0], device=grads[0].device)]
        )
        all_reduce_sum(self.world, flat, "summing the update's gradients")
        offset = 0
        for p, g in zip(self.params, grads):
            p.grad = flat[offset : offset + g.numel()].view_as(g).to(g.dtype)
            offset += g.numel()
        return bool(flat[-1] == 0)

    def _term(self, sample: StoredSample, k: int) -> StepLoss:
        device = self.policy.device
        cond = self._encode(sample.prompt)
        x = sample.latents[k : k + 1].to(device, torch.float32)
        x_next = sample.next_latents[k : k + 1].to(device, torch.float32)
        index = sample.steps[k]
        dist = step_distribution(self.policy, x, index, self.schedule, cond, self.uncond, self.cfg, self.sde)
        kl = None
        if self.grpo.beta > 0:
            with torch.no_grad(), self.policy.reference():
                ref = step_distribution(self.policy, x, index, self.schedule, cond, self.uncond, self.cfg, self.sde)
            kl = gaussian_kl(dist.mean, ref.mean, dist.std)
        advantage = torch.tensor([sample.advantage], dtype=torch.float64, device=device)
        old = sample.log_probs[k : k + 1].to(device, torch.float64)
        return step_loss(dist.log_prob(x_next), old, advantage, self.grpo.clip, kl, self.grpo.beta, x_next[0].numel())

    def _encode(self, prompt: str) -> torch.Tensor:
        if prompt not in self._cond:
            self._cond[prompt] = self.policy.encode([prompt])
        return self._cond[prompt]

    # -- state across rounds -----------------------------------------------------------------

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """AdamW's moments and step per parameter, and the EMA weights, keyed by parameter index."""
        out: dict[str, torch.Tensor] = {}
        for i, p in enumerate(self.params):
            for key, value in self.optimizer.state.get(p, {}).items():
                out[f"adamw.{i:05d}.{key}"] = value.detach().cpu().contiguous()
            if self.ema is not None:
                out[f"ema.{i:05d}"] = self.ema.shadow[i].cpu().contiguous()
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what `state_tensors` saved; raises ValueError when it does not fit this adapter."""
        shadow: list[torch.Tensor] = []
        for i, p in enumerate(self.params):
            state = {key.rsplit(".", 1)[1]: t for key, t in tensors.items() if key.startswith(f"adamw.{i:05d}.")}
            if state:
                if {"step", "exp_avg", "exp_avg_sq"} - set(state) or state["exp_avg"].shape != p.shape:
                    raise ValueError(f"optimizer state of parameter {i} does not fit the adapter")
                self.optimizer.state[p] = {k: (v if k == "step" else v.to(p.device)) for k, v in state.items()}
            if self.ema is not None and f"ema.{i:05d}" in tensors:
                shadow.append(tensors[f"ema.{i:05d}"].to(p.device).float())
        known = {f"adamw.{i:05d}" for i in range(len(self.params))} | {f"ema.{i:05d}" for i in range(len(self.params))}
        extra = sorted(k for k in tensors if k.rsplit(".", 1)[0] not in known and k not in known)
        if extra:
            raise ValueError(f"trainer state has tensors for {len(extra)} parameters this adapter lacks")
        if self.ema is not None and shadow:
            self.ema = Ema(self.params, self.grpo.ema.decay, shadow)
