"""Stage `enhance`: plain prompt files (prompts.enhance.sources) -> camera-first prompts by an LLM,
data/prompts/enhanced/<stem>.txt (read by the prompts stage) and enhanced.parquet, every line's
outcome; answers are kept per line in data/prompts/enhance-cache.parquet across runs."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from worldr1 import config, store
from worldr1.enhance.cache import LineCache
from worldr1.enhance.camera_mix import CameraMix
from worldr1.enhance.chat import open_chat
from worldr1.enhance.check import Bounds
from worldr1.enhance.enhancer import Job, Run, enhance
from worldr1.prompts.sources import Skipped, read_prompt_file, resolve
from worldr1.stagekit import err, progress_bar, stage

# The params keys this stage reads: the same list as its `params:` in dvc.yaml (a test checks).
PARAMS = ["seed", "prompts.enhance", "prompts.max_chars"]
# The report lists this many failed lines in full; the counts cover all of them.
REPORT_EXAMPLES = 50


def main() -> None:
    params = config.load()
    cfg, paths = params.prompts.enhance, store.Paths()
    jobs: list[Job] = []
    skipped: list[Skipped] = []
    mix = CameraMix.from_config(cfg.camera_mix)
    for src in cfg.sources:
        if not src.path.startswith("data/sources/"):
            err.print(f"note: {src.path} is outside data/sources/, so DVC does not see it change", highlight=False)
        lines, bad = read_prompt_file(resolve(src.path, "."), params.prompts.max_chars, "prompts.enhance.sources")
        jobs += [Job(src.path, s.line, s.text, mix.draw(params.seed, s.text)) for s in lines]
        skipped += [Skipped(src.path, s.line, s.reason) for s in bad]
    cache = LineCache.read(paths.enhance_cache)
    bounds = Bounds(cfg.min_chars, cfg.max_chars)
    run, model = Run([], 0, {}), ""
    try:
        if jobs:
            chat = open_chat(cfg)
            model = chat.identity
            with progress_bar("enhance") as progress:
                run = enhance(jobs, chat, bounds, cfg.attempts, cache, params.seed, progress)
    finally:  # answers paid for are kept, even when the endpoint went away halfway
        if cache.added or not store.exists(paths.enhance_cache):
            store.write_table(paths.enhance_cache, cache.table(), store.ENHANCE_CACHE, provenance(params))
    write_outputs(params, run, model, paths)
    report = summary(run, cfg.sources, model or None, skipped)
    store.write_json(paths.enhance_report, report)
    err.print(
        f"enhance: {report['lines']} lines of {len(cfg.sources)} source{'s' * (len(cfg.sources) != 1)}: "
        f"{report['kept']} kept, "
        f"{report['failed']} failed, {report['cached']} from the cache, {report['calls']} answers asked for, "
        f"{report['lines_skipped']} lines skipped"
        + (f" (see {paths.enhance_report})" if report["failed"] or report["lines_skipped"] else "")
        if cfg.sources
        else "enhance: no prompts.enhance.sources, nothing to do",
        highlight=False,
        soft_wrap=True,
    )


def provenance(params: config.Params) -> store.Provenance:
    return store.Provenance(config.params_hash(params, PARAMS), store.code_version(), models={})


def write_outputs(params: config.Params, run: Run, model: str, paths: store.Paths) -> None:
    rows = [
        {
            "source": o.job.source,
            "source_line": o.job.line,
            "input": o.job.text,
            "output": o.output,
            "camera": [m.value for m in o.job.moves],
            "model": model,
            "attempts": o.attempts,
            "status": o.status,
            "reason": o.reason,
            "cached": o.cached,
        }
        for o in run.outcomes
    ]
    table = pa.Table.from_pylist(rows, schema=store.ENHANCED.schema)
    with store.atomic_dir(paths.enhanced_dir) as tmp:
        for src in params.prompts.enhance.sources:
            kept = [o.output for o in run.outcomes if o.job.source == src.path and o.output is not None]
            name = paths.enhanced_text(src.path).rsplit("/", 1)[1]
            (tmp / name).write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
        store.write_table(str(tmp / "enhanced.parquet"), table, store.ENHANCED, provenance(params))


def summary(
    run: Run, sources: list[config.PromptSourceConfig], model: str | None, skipped: list[Skipped]
) -> dict[str, object]:
    """Counts for reports/enhance.json (a DVC metric) and the stage's line."""
    outcomes = run.outcomes
    asked = [o for o in outcomes if not o.cached]
    kept_now = sum(run.pass_at.values())
    failed = [o for o in outcomes if o.status != "ok"]
    return {
        "model": model,
        "lines": len(outcomes),
        "kept": len(outcomes) - len(failed),
        "failed": len(failed),
        "cached": len(outcomes) - len(asked),
        "calls": run.calls,
        # Of the lines asked this run: the share whose answer passed the check at all, and at once.
        "check_pass_rate": round(kept_now / len(asked), 4) if asked else None,
        "first_answer_pass_rate": round(run.pass_at.get(1, 0) / len(asked), 4) if asked else None,
        "kept_at_attempt": {str(k): v for k, v in run.pass_at.items()},
        "by_source": {
            src.path: {
                "lines": sum(o.job.source == src.path for o in outcomes),
                "kept": sum(o.job.source == src.path and o.status == "ok" for o in outcomes),
            }
            for src in sources
        },
        "camera_kept": dict(
            Counter(", ".join(m.phrase for m in o.job.moves) for o in outcomes if o.status == "ok").most_common()
        ),
        "failed_by_reason": dict(Counter((o.reason or "").split(" (")[0].split(":")[0] for o in failed).most_common()),
        "failures": [
            {"source": o.job.source, "line": o.job.line, "reason": o.reason} for o in failed[:REPORT_EXAMPLES]
        ],
        # Plain lines not read (not UTF-8, over prompts.max_chars), as the prompts stage skips them.
        "lines_skipped": len(skipped),
        "skipped": [s.as_dict() for s in skipped[:REPORT_EXAMPLES]],
    }


if __name__ == "__main__":
    stage(main)
