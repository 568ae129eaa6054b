"""Stage `toy-classifier`: data/toy/clips -> data/toy/classifier (the toy consistency classifier,
trained on the clips' labels) and reports/toy-classifier.json (its training loss and its accuracy
on held-out clips of seeds of their own). A stage of its own, so that a change to the classifier
never retrains the toy policy and reconstructor of `toy-pretrain`. With a profile that has no toy
model it writes nothing but a note."""

from __future__ import annotations

import json
from pathlib import Path

from worldr1 import config, store
from worldr1.stagekit import err, progress_bar, stage

PARAMS = ["seed", "toy.data", "toy.classifier", "policy.model", "reconstruct.backend"]
UNUSED = "no toy model in this profile"


def main() -> None:
    params = config.load()
    paths = store.Paths()
    toy = params.toy
    report: dict[str, object] = {"code": store.git_version()}
    with store.atomic_dir(paths.toy_classifier) as out:
        if not params.uses_toy:
            (out / "unused.json").write_text(json.dumps({"reason": UNUSED}) + "\n")
            report["reason"] = UNUSED
            err.print("toy-classifier: no toy model in this profile, nothing to train", highlight=False)
        else:
            # Imported here: with another profile this stage only leaves a note, and should start fast.
            from worldr1.toyworld.classifier import ToyClassifier, heldout_clips, heldout_report, pretrain_classifier
            from worldr1.toyworld.data import ClipSpec, load_clips
            from worldr1.toyworld.pretrain import tail_mean

            data = load_clips(Path(paths.toy_clips))
            classifier = ToyClassifier.fresh(toy.classifier.net.width, data.frames.shape[2:4], params.seed)
            with progress_bar("toy-classifier") as tick:
                losses = pretrain_classifier(classifier, data, toy.classifier, params.seed, tick)
            classifier.save(out)
            # Balanced held-out clips, half of them inconsistent, whatever share the training clips had.
            d = toy.data
            heldout = heldout_clips(
                params.seed,
                toy.classifier.heldout,
                ClipSpec(d.frames, d.height, d.width, 0.5, d.supersample),
                d.workers,
            )
            report.update(
                clips=len(data),
                classifier_loss_first=tail_mean(losses[:50]),
                classifier_loss_last=tail_mean(losses),
                **heldout_report(classifier, heldout),
            )
            err.print(
                f"toy-classifier: loss {report['classifier_loss_first']:.3f} -> "
                f"{report['classifier_loss_last']:.3f}, held-out accuracy "
                f"{report['classifier_heldout_accuracy']:.3f} (AUC {report['classifier_heldout_auc']})",
                highlight=False,
            )
    store.write_json(paths.toy_classifier_report, report)


if __name__ == "__main__":
    stage(main)
