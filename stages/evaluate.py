"""Stage `evaluate`: test prompts, the base policy and the evaluated round's policy -> reports/eval.json
(3D consistency at input and held-out cameras, trajectory, motion, quality, and with the toy policy
the toy classifier's P(consistent); the evaluated policy against the base softened to its sharpness
too, since blur alone buys held-out PSNR; protocol in worldr1/evaluate.py)."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from worldr1 import config, store
from worldr1.distributed import joined, scratch, world_from_env
from worldr1.evaluate import METRICS, SOFTENED, Adapter, evaluate_rank, summary, test_prompts
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
        name, rows = evaluate_rank(params, adapters, prompts, world, parts, "eval", tick, soften=True)
    if rows is None:
        return
    result = {
        "protocol": "worldr1/evaluate.py",
        "policy": name,
        "evaluated": ev.policy,
        "ema": ev.ema,
        "prompts": len(prompts),
        **summary(rows, [a.label for a in adapters] + [SOFTENED], "base", ev.policy, SOFTENED),
        "videos": rows,
    }
    store.write_json(paths.eval_report, result)
    table = Table(title=f"evaluate: base vs {ev.policy} on {len(prompts)} test prompts")
    soft = f"delta_vs_{SOFTENED}"
    for col in ("metric", "base", ev.policy, "change ± s.e.", "vs base softened"):
        table.add_column(col, justify="right", no_wrap=True)

    def num(v: object, fmt: str) -> str:
        return "-" if v is None else f"{v:{fmt}}"

    def change(delta: object, sem: object) -> str:
        return "-" if delta is None else f"{num(delta, '+.3f')} ± {num(sem, '.3f')}"

    for m in METRICS:
        table.add_row(
            m,
            num(result["means"]["base"][m], ".3f"),
            num(result["means"][ev.policy][m], ".3f"),
            change(result["delta"][m], result["delta_sem"][m]),
            change(result[soft][m], result[f"{soft}_sem"][m]),
        )
    out.print(table)
    err.print(f"evaluate: wrote {paths.eval_report}", highlight=False)


if __name__ == "__main__":
    stage(main)
