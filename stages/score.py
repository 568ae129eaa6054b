"""Stage `score@rK`: rollout + recon -> data/rounds/rK/rewards.parquet and reports/rounds/rK-rewards.json."""

from __future__ import annotations

import sys
from pathlib import Path

from worldr1 import config, store
from worldr1.distributed import gather_rows, joined, scratch, world_from_env
from worldr1.rewards import load_judge
from worldr1.rewards.quality import load_quality
from worldr1.rewards.report import round_summary
from worldr1.rewards.score import JUDGE_BLOCK, Scorer, round_videos
from worldr1.stagekit import err, progress_bar, round_item, stage

PARAMS = ["reward", "camera", "grpo.adv_clip", "grpo.adv_std"]


def main() -> None:
    params = config.load()
    round_name, item = round_item(params, sys.argv[1:])
    paths = store.Paths()
    samples = store.read_table(paths.samples(round_name), store.SAMPLES)
    recon = (
        store.read_table(paths.recon_dir(round_name) + "/recon.parquet", store.RECON) if item.phase == "3d" else None
    )
    with joined(world_from_env()) as world:
        judge = load_judge(params.reward.judge) if item.phase == "3d" else None
        scorer = Scorer(params, judge, load_quality(params.reward.quality))
        models = {
            "judge": getattr(judge, "name", "off"),
            "quality": scorer.quality.name,
            "recon_metric": params.reward.recon_metric,
        }
        provenance = store.Provenance(
            config.params_hash(params, [*PARAMS, f"rounds.{round_name}"]), store.code_version(), models
        )
        with scratch(world, paths.rewards(round_name)) as parts, progress_bar(f"score@{round_name}", world) as tick:
            # Blocks of JUDGE_BLOCK samples: the judge's batches are the same however many ranks share the round.
            listed = world.mine(samples.to_pylist(), block=JUDGE_BLOCK)
            rollout_dir, recon_dir = Path(paths.rollout_dir(round_name)), Path(paths.recon_dir(round_name))
            mine = scorer.score(round_videos(listed, recon, rollout_dir, recon_dir), item.phase, tick)
            # Rewards and advantages need whole groups: rank 0 computes them from every rank's rows.
            rows = gather_rows(
                world,
                parts,
                "rewards",
                mine,
                lambda r: r["sample_id"],
                samples.column("sample_id").to_pylist(),
                store.REWARDS,
            )
    if rows is None:
        return
    table = scorer.reward(rows, item.phase)
    summary = round_summary(table)
    store.write_table(paths.rewards(round_name), table, store.REWARDS, provenance)
    store.write_json(paths.rewards_report(round_name), {**summary, "code": store.git_version()})
    err.print(
        f"score@{round_name}: reward mean {summary['reward_mean']}, {summary['failed']} failed of {summary['samples']}",
        highlight=False,
        soft_wrap=True,
    )


if __name__ == "__main__":
    stage(main)
