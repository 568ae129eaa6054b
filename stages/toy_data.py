"""Stage `toy-data`: toy.data settings -> data/toy/clips/ (rendered clips with true depth and cameras,
a share made 3D-inconsistent on purpose). With a profile that uses no toy model it writes nothing
but a note, so the stages after it keep one shape for every profile."""

from __future__ import annotations

import json

from worldr1 import config, store
from worldr1.stagekit import err, progress_bar, stage

PARAMS = ["seed", "toy.data", "policy.model", "reconstruct.backend"]


def main() -> None:
    params = config.load()
    d = params.toy.data
    with store.atomic_dir(store.Paths().toy_clips) as out:
        if not params.uses_toy:
            (out / "unused.json").write_text(json.dumps({"reason": "no toy model in this profile"}) + "\n")
            err.print("toy-data: no toy model in this profile, nothing to render", highlight=False)
            return
        from worldr1.toyworld.data import ClipSpec, clip_seed, render_clips, save_clips  # only when rendering

        spec = ClipSpec(d.frames, d.height, d.width, d.inconsistent_share, d.supersample)
        with progress_bar("toy-data") as tick:
            clips = render_clips([clip_seed(params.seed, i) for i in range(d.clips)], spec, d.workers, tick)
        save_clips(clips, out)
    inconsistent = sum(not c.consistent for c in clips)
    err.print(
        f"toy-data: {len(clips)} clips of {d.frames}x{d.height}x{d.width}, {inconsistent} made inconsistent",
        highlight=False,
    )


if __name__ == "__main__":
    stage(main)
