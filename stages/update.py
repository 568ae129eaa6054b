"""Stage `update@rK`: rollout step tensors + rewards + the policy of round K-1 ->
data/rounds/rK/policy/ (adapter, optimizer state, state.json) and reports/rounds/rK.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from worldr1 import config, store
from worldr1.distributed import joined, world_from_env
from worldr1.grpo.sampler import Schedule
from worldr1.grpo.trainer import Trainer
from worldr1.grpo.update import STATE, load_trainer_state, save_trainer_state, stored_samples
from worldr1.ids import derive_seed
from worldr1.policy import load_policy
from worldr1.stagekit import err, progress_bar, round_item, stage

# What dvc.yaml lists under this stage's params.
PARAMS = ["seed", "policy", "rollout", "grpo"]


def main() -> None:
    params = config.load()
    round_name, item = round_item(params, sys.argv[1:])
    paths = store.Paths()
    ro = params.rollout
    schedule = Schedule.flow_match(ro.steps, ro.shift)
    data = stored_samples(
        Path(paths.rollout_dir(round_name)),
        store.read_table(paths.samples(round_name), store.SAMPLES),
        store.read_table(paths.rewards(round_name), store.REWARDS),
        schedule,
        round_name,
    )
    with joined(world_from_env()) as world:
        policy = load_policy(params.policy)
        prev = Path(paths.policy_dir(item.prev))
        policy.attach_adapter(params.policy, params.seed, prev)
        policy.prepare_training()
        if params.fsdp:
            policy.shard(world)
        # Over several ranks: the same minibatches everywhere, each rank's share of their samples,
        # gradients all-reduced (worldr1/grpo/trainer.py), so every rank holds the same adapter.
        trainer = Trainer(policy, params.grpo, ro.sde, schedule, ro.cfg, ro.negative_prompt, world)
        before = load_trainer_state(trainer, prev)
        with progress_bar(f"update@{round_name}", world) as tick:
            metrics = trainer.train(
                data.samples, np.random.default_rng(derive_seed(params.seed, round_name, "update")), tick
            )
    if not world.main:
        return
    report = {
        "round": round_name,
        "phase": item.phase,
        **metrics.as_dict(),
        "attention": policy.attention,
        "samples": len(data.samples),
        "skipped_samples": data.skipped_samples,
        "skipped_groups": data.skipped_groups,
        "reward_mean": data.reward_mean,
        "reward_std": data.reward_std,
        "total_optimizer_steps": int(before.get("optimizer_steps", 0)) + metrics.optimizer_steps,
    }
    with store.atomic_dir(paths.policy_dir(round_name)) as out:
        policy.save_adapter(out, params.policy)
        if trainer.ema is not None:
            with trainer.ema.applied():
                policy.save_adapter(out / "ema", params.policy)
        save_trainer_state(trainer, out)
        state = {
            "round": round_name,
            "prev": item.prev,
            "optimizer_steps": report["total_optimizer_steps"],
            "policy": policy.name,
            "seed": params.seed,
            "params_hash": config.params_hash(params, PARAMS),
            "code_version": store.code_version(),
        }
        (out / STATE).write_text(json.dumps(state, indent=2) + "\n")
    store.write_json(paths.round_report(round_name), report)
    if not data.samples:
        err.print(
            f"[yellow]warning:[/] update@{round_name}: no sample has an advantage (all failed, or every group "
            f"scored alike); the policy of {item.prev} is carried over unchanged",
            highlight=False,
            soft_wrap=True,
        )
    loss = "-" if metrics.loss is None else f"{metrics.loss:.4g}"
    clip = "-" if metrics.clip_fraction is None else f"{metrics.clip_fraction:.3f}"
    err.print(
        f"update@{round_name}: {metrics.optimizer_steps} optimizer steps on {len(data.samples)} samples "
        f"({data.skipped_samples} skipped, {metrics.skipped_nonfinite} non-finite steps dropped), "
        f"loss {loss}, clip fraction {clip}",
        highlight=False,
        soft_wrap=True,
    )


if __name__ == "__main__":
    stage(main)
