"""Stage `report`: reports/rounds/ -> reports/rewards.csv, one row per round (the reward curve of `dvc plots`)."""

from __future__ import annotations

from pathlib import Path

from worldr1 import config, store
from worldr1.audit.curve import reward_curve, to_csv
from worldr1.cli import err, stage

PARAMS = ["rounds"]


def main() -> None:
    params = config.load()
    paths = store.Paths()
    table = reward_curve({name: item.phase for name, item in params.rounds.items()},
                         Path(paths.round_report("r000")).parent)
    store.write_text(paths.rewards_csv, to_csv(table))
    err.print(f"report: {table.num_rows} rounds -> {paths.rewards_csv}", highlight=False)


if __name__ == "__main__":
    stage(main)
