"""Stage `rollout@rK`: prompts + the policy of round K-1 -> data/rounds/rK/rollout/
(videos, SDE step tensors, samples.parquet)."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa

from worldr1 import config, store
from worldr1.distributed import atomic_dir, gather_rows, joined, world_from_env
from worldr1.grpo.rollout import group_ids, rollout_round, round_batch
from worldr1.policy import load_policy
from worldr1.stagekit import err, progress_bar, round_item, stage

# What dvc.yaml lists under this stage's params (with the round's own item, rounds.<round>).
PARAMS = ["seed", "prompts.batch_per_round", "camera", "policy", "rollout"]


def main() -> None:
    params = config.load()
    round_name, item = round_item(params, sys.argv[1:])
    paths = store.Paths()
    batch = round_batch(store.read_table(paths.prompts, store.PROMPTS), params, round_name, item.phase)
    with joined(world_from_env()) as world:
        policy = load_policy(params.policy)
        policy.attach_adapter(params.policy, params.seed, Path(paths.policy_dir(item.prev)))
        provenance = store.Provenance(
            config.params_hash(params, [*PARAMS, f"rounds.{round_name}"]),
            store.code_version(),
            {"policy": policy.name, "adapter": item.prev},
        )
        # Whole prompt groups per rank: a group is sampled as one batch, the same on any rank.
        with (
            atomic_dir(world, paths.rollout_dir(round_name)) as out,
            progress_bar(f"rollout@{round_name}", world) as tick,
        ):
            mine = rollout_round(policy, params, round_name, item.phase, world.mine(batch), out, tick)
            rows = gather_rows(
                world,
                out,
                "samples",
                mine.to_pylist(),
                lambda r: r["sample_id"],
                group_ids(batch, round_name, params.rollout.group_size),
                store.SAMPLES,
            )
            if rows is not None:
                store.write_table(str(out / "samples.parquet"), pa.Table.from_pylist(rows), store.SAMPLES, provenance)
    if rows is not None:
        failed = sum(1 for r in rows if r["status"] != "ok")
        err.print(
            f"rollout@{round_name}: {len(rows)} samples ({failed} failed) from policy {item.prev}"
            + (f" on {world.size} ranks" if world.size > 1 else ""),
            highlight=False,
            soft_wrap=True,
        )


if __name__ == "__main__":
    stage(main)
