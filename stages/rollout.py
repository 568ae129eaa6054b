"""Stage `rollout@rK`: prompts + the policy of round K-1 -> data/rounds/rK/rollout/
(videos, SDE step tensors, samples.parquet)."""

from __future__ import annotations

import sys
from pathlib import Path

from worldr1 import config, store
from worldr1.cli import err, progress_bar, round_item, stage
from worldr1.grpo.rollout import rollout_round, round_batch
from worldr1.policy import load_policy

# What dvc.yaml lists under this stage's params (with the round's own item, rounds.<round>).
PARAMS = ["seed", "prompts.batch_per_round", "camera", "policy", "rollout"]


def main() -> None:
    params = config.load()
    round_name, item = round_item(params, sys.argv[1:])
    paths = store.Paths()
    batch = round_batch(store.read_table(paths.prompts, store.PROMPTS), params, round_name, item.phase)
    policy = load_policy(params.policy)
    policy.attach_adapter(params.policy, params.seed, Path(paths.policy_dir(item.prev)))
    provenance = store.Provenance(config.params_hash(params, [*PARAMS, f"rounds.{round_name}"]),
                                  store.code_version(), {"policy": policy.name, "adapter": item.prev})
    with store.atomic_dir(paths.rollout_dir(round_name)) as out, progress_bar(f"rollout@{round_name}") as tick:
        samples = rollout_round(policy, params, round_name, item.phase, batch, out, tick)
        store.write_table(str(out / "samples.parquet"), samples, store.SAMPLES, provenance)
    failed = sum(1 for s in samples.column("status").to_pylist() if s != "ok")
    err.print(f"rollout@{round_name}: {samples.num_rows} samples ({failed} failed) from policy {item.prev}",
              highlight=False, soft_wrap=True)


if __name__ == "__main__":
    stage(main)
