"""Stage `evaluate`: test prompts, the base policy and the evaluated round's policy -> reports/eval.json
(3D consistency at input and held-out cameras, trajectory, motion, quality, and with the toy policy
the toy classifier's P(consistent); protocol in worldr1/evaluate.py)."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from worldr1 import config, store
from worldr1.distributed import joined, scratch, world_from_env
from worldr1.evaluate import METRICS, Adapter, evaluate_rank, summary, test_prompts
from worldr1.stagekit import err, out, progress_bar, stage

PARAMS = ["seed", "policy", "rollout", "reconstruct", "reward", "camera", "evaluate"]


def main() -> None:
    params = config.load()
    ev = params.evaluate
    paths = store.Paths()
    prompts = test_prompts(store.read_table(paths.prompts, store.PROMPTS), ev.prompts)
    latest = Path(paths.policy_dir(ev.policy))
    adapters = [
        Adapter("base", Path(paths.policy_dir("base"))),
        Adapter(ev.policy, latest / "ema" if ev.ema else latest),
    ]
    # Each rank evaluates its share of the prompts (both policies); rank 0 writes the report.
    with (
        joined(world_from_env()) as world,
        scratch(world, paths.eval_report) as parts,
        progress_bar("evaluate", world) as tick,
    ):
        name, rows = evaluate_rank(params, adapters, prompts, world, parts, "eval", tick)
    if rows is None:
        return
    result = {
        "protocol": "worldr1/evaluate.py",
        "policy": name,
        "evaluated": ev.policy,
        "ema": ev.ema,
        "prompts": len(prompts),
        **summary(rows, [a.label for a in adapters], "base", ev.policy),
        "videos": rows,
    }
    store.write_json(paths.eval_report, result)
    table = Table(title=f"evaluate: base vs {ev.policy} on {len(prompts)} test prompts")
    for col in ("metric", "base", ev.policy, "change", "± s.e."):
        table.add_column(col, justify="right")
    for m in METRICS:
        a, b, d, e = (
            result["means"]["base"][m],
            result["means"][ev.policy][m],
            result["delta"][m],
            result["delta_sem"][m],
        )
        table.add_row(
            m, *("-" if v is None else f"{v:{fmt}}" for v, fmt in ((a, ".3f"), (b, ".3f"), (d, "+.3f"), (e, ".3f")))
        )
    out.print(table)
    err.print(f"evaluate: wrote {paths.eval_report}", highlight=False)


if __name__ == "__main__":
    stage(main)
