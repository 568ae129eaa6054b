"""Stage `toy-pretrain`: data/toy/clips -> data/toy/policy (the toy policy, flow matching) and
data/toy/reconstructor (the toy reconstructor, true depth and cameras), reports/toy-pretrain.json.
Runs once: DVC caches both models until the clips or the toy settings change."""

from __future__ import annotations

import json
from pathlib import Path

from worldr1 import config, store
from worldr1.stagekit import err, progress_bar, stage

PARAMS = ["seed", "toy.data", "toy.policy", "toy.reconstructor", "rollout.shift", "policy.model", "reconstruct.backend"]


def main() -> None:
    params = config.load()
    paths = store.Paths()
    toy = params.toy
    report: dict[str, object] = {"code": store.git_version()}
    with store.atomic_dir(paths.toy_policy) as policy_out, store.atomic_dir(paths.toy_reconstructor) as recon_out:
        if not params.uses_toy:
            for out in (policy_out, recon_out):
                (out / "unused.json").write_text(json.dumps({"reason": "no toy model in this profile"}) + "\n")
            err.print("toy-pretrain: no toy model in this profile, nothing to train", highlight=False)
        else:
            # Imported here: with another profile this stage only leaves a note, and should start fast.
            from worldr1.policy.toy import ToyPolicy
            from worldr1.reconstruct.toy import ToyReconstructor
            from worldr1.toyworld.data import load_clips
            from worldr1.toyworld.pretrain import pretrain_policy, pretrain_reconstructor, tail_mean

            data = load_clips(Path(paths.toy_clips))
            policy = ToyPolicy.fresh(toy.policy.net, data.prompts, params.seed)
            with progress_bar("toy-pretrain policy") as tick:
                ae_losses, losses = pretrain_policy(policy, data, toy.policy, params.rollout.shift, params.seed, tick)
            policy.save(policy_out)
            recon = ToyReconstructor.fresh(
                toy.reconstructor.net.width,
                toy.reconstructor.net.levels,
                data.K[0, 0],
                data.frames.shape[2:4],
                params.seed,
            )
            with progress_bar("toy-pretrain reconstructor") as tick:
                recon_losses = pretrain_reconstructor(recon, data, toy.reconstructor, params.seed, tick)
            recon.save(recon_out)
            report.update(
                clips=len(data),
                autoencoder_loss_last=tail_mean(ae_losses),
                policy_loss_first=tail_mean(losses[:50]),
                policy_loss_last=tail_mean(losses),
                reconstructor_loss_first=tail_mean(recon_losses[:50]),
                reconstructor_loss_last=tail_mean(recon_losses),
            )
            err.print(
                f"toy-pretrain: policy loss {report['policy_loss_first']:.3f} -> {report['policy_loss_last']:.3f}, "
                f"reconstructor loss {report['reconstructor_loss_first']:.3f} -> "
                f"{report['reconstructor_loss_last']:.3f}",
                highlight=False,
            )
    store.write_json(paths.toy_report, report)


if __name__ == "__main__":
    stage(main)
