"""Stage `probe@rK`: the policy of round K on the fixed probe set -> reports/rounds/rK-probe.json.

A round's own reward mean comes from that round's prompt batch, drawn afresh, so the curve of
reports/rewards.csv moves with the prompts as much as with the policy. The probe set is the same
every round (`probe.prompts` train prompts x `probe.seeds` fixed noises, worldr1/evaluate.py's
`probe_prompts`), sampled and scored by the evaluate protocol: ODE, held-out frames, the toy
classifier's P(consistent). The round that starts from base measures base too, the curve's start.
"""

from __future__ import annotations

import sys
from pathlib import Path

from worldr1 import config, store
from worldr1.distributed import joined, scratch, world_from_env
from worldr1.evaluate import Adapter, evaluate_rank, probe_prompts, summary
from worldr1.stagekit import err, progress_bar, round_item, stage

PARAMS = ["seed", "policy", "rollout", "reconstruct", "reward", "camera", "probe"]


def main() -> None:
    params = config.load()
    round_name, item = round_item(params, sys.argv[1:])
    paths = store.Paths()
    prompts = probe_prompts(store.read_table(paths.prompts, store.PROMPTS), params.probe.prompts, params.probe.seeds)
    labels = (["base"] if item.prev == "base" else []) + [round_name]
    report = paths.probe_report(round_name)
    with (
        joined(world_from_env()) as world,
        scratch(world, report) as parts,
        progress_bar(f"probe@{round_name}", world) as tick,
    ):
        adapters = [Adapter(label, Path(paths.policy_dir(label))) for label in labels]
        _, rows = evaluate_rank(params, adapters, prompts, world, parts, "probe", tick)
    if rows is None:
        return
    numbers = summary(rows, labels, labels[0], round_name)
    if len(labels) == 1:  # no second policy to compare with
        numbers = {"means": numbers["means"]}
    result = {
        "protocol": "worldr1/evaluate.py",
        "round": round_name,
        "prompts": params.probe.prompts,
        "seeds": params.probe.seeds,
        **numbers,
        "videos": rows,
    }
    store.write_json(report, result)
    means = result["means"][round_name]
    err.print(
        f"probe@{round_name}: reward {means['reward']}, held-out PSNR {means['psnr_heldout']}, "
        f"P(consistent) {means['p_consistent']} on {len(prompts)} probe videos",
        highlight=False,
        soft_wrap=True,
    )


if __name__ == "__main__":
    stage(main)
