"""Stage `report`: reports/rounds/ -> reports/rewards.csv, one row per round (the reward curve of `dvc plots`),
and reports/probe.csv, one row per policy on the fixed probe set (base, then each round's)."""

from __future__ import annotations

from pathlib import Path

from worldr1 import config, store
from worldr1.audit.curve import probe_curve, reward_curve, to_csv
from worldr1.stagekit import err, stage

PARAMS = ["rounds"]


def main() -> None:
    params = config.load()
    paths = store.Paths()
    reports = Path(paths.round_report("r000")).parent
    table = reward_curve({name: item.phase for name, item in params.rounds.items()}, reports)
    probe = probe_curve(list(params.rounds), reports)
    store.write_text(paths.rewards_csv, to_csv(table))
    store.write_text(paths.probe_csv, to_csv(probe))
    err.print(
        f"report: {table.num_rows} rounds -> {paths.rewards_csv}, {probe.num_rows} policies on the probe set "
        f"-> {paths.probe_csv}",
        highlight=False,
    )


if __name__ == "__main__":
    stage(main)
