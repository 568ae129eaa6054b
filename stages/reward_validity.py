"""Stage `reward-validity`: held-out labelled toy videos + the reward code + the trained toy reconstructor
-> reports/reward-validity.json (AUC per corruption and term, the sound clip's wins over its twins).
With a profile that has no toy reconstructor it writes nothing but a note."""

from __future__ import annotations

from worldr1 import config, store
from worldr1.stagekit import err, progress_bar, stage

PARAMS = ["seed", "validity", "toy.data", "reconstruct", "reward", "camera", "rollout.fps"]


def main() -> None:
    params = config.load()
    paths = store.Paths()
    if params.reconstruct.backend != "toy":
        store.write_json(paths.validity_report, {"reason": "no toy reconstructor in this profile"})
        err.print("reward-validity: no toy reconstructor in this profile, nothing to measure", highlight=False)
        return
    from worldr1.score_video import VideoScorer  # the models only when measuring
    from worldr1.toyworld.suite import make_suite
    from worldr1.validity import score_suite, summary

    d, v = params.toy.data, params.validity
    scorer = VideoScorer(params)
    with progress_bar("reward-validity") as tick:
        rows = score_suite(
            make_suite(params.seed, v.clips, d.frames, d.height, d.width, d.supersample),
            scorer,
            float(params.rollout.fps),
            v.true_geometry,
            lambda n: tick(n, v.clips),
        )
    report = {"code": store.git_version(), **summary(rows), "rows": rows}
    store.write_json(paths.validity_report, report)
    err.print(
        f"reward-validity: {report['seeds']} seeds, reward AUC at worst {report['reward_auc_min']}, "
        f"sound first {report['sound_first']}",
        highlight=False,
    )


if __name__ == "__main__":
    stage(main)
