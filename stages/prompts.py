"""Stage `prompts`: prompt sources (text files, generator settings) -> data/prompts/prompts.parquet."""

from __future__ import annotations

from worldr1 import config, store
from worldr1.prompts import build_prompt_set
from worldr1.stagekit import err, stage

# The params keys this stage reads: the same list as its `params:` in dvc.yaml (a test checks).
PARAMS = ["seed", "prompts.sources", "prompts.enhance.sources", "prompts.generator", "prompts.toy", "prompts.max_chars"]


def main() -> None:
    params = config.load()
    paths = store.Paths()
    for src in params.prompts.sources:
        if not src.path.startswith("data/sources/"):
            err.print(
                f"note: {src.path} is outside data/sources/, so DVC does not see it change",
                highlight=False,
                soft_wrap=True,
            )
    toy_prompt = None
    if params.prompts.toy.train or params.prompts.toy.test:
        from worldr1.toyworld.corrupt import clip_prompt as toy_prompt  # the toy world only when asked for
    prompts = build_prompt_set(params.prompts, params.seed, toy_prompt=toy_prompt)
    provenance = store.Provenance(config.params_hash(params, PARAMS), store.code_version(), models={})
    report = {**prompts.report(), "code": store.git_version()}
    store.write_table(paths.prompts, prompts.table, store.PROMPTS, provenance)
    store.write_json(paths.prompts_report, report)
    err.print(
        f"prompts: {report['prompts']} ({report['by_split']}), camera parsed for {report['camera_parsed']}, "
        f"no camera for {report['camera_unparsed']}, {report['duplicates_removed']} duplicates removed, "
        f"{report['lines_skipped']} lines skipped"
        + (f" (see {paths.prompts_report})" if report["lines_skipped"] else ""),
        highlight=False,
        soft_wrap=True,
    )


if __name__ == "__main__":
    stage(main)
