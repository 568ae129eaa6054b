"""The toy consistency classifier: P(a clip is 3D-consistent), learnt from the labelled toy clips.

A check that owes nothing to the reward: the evaluate stage's 3D numbers come from the same
reconstruction and scoring code that training optimises, so a policy can raise them without making
its videos any more consistent (a reward hack). This network never sees a reconstruction or a
reward; it learns, from the toy clips' labels alone, what the corruptions of the toy world look
like (an object jumps, changes colour or size mid-clip, the scene swaps).

`ConsistencyNet` reads a whole clip as its consecutive frame pairs: a shared CNN maps each frame,
another reads each pair of maps (both and their difference), and the head sees, per feature, the
most suspicious transition of the clip. A corruption happens between two consecutive frames, and a
clip is inconsistent when any one of its transitions is, so the max over pairs fits the label;
it also reads clips of any length. Like the toy reconstructor it works at the size it was trained
at: frames of another size are resized to it (area averaging when shrinking).

The `toy-classifier` stage trains it (`pretrain_classifier`) and measures it on held-out clips
(`heldout_report`), apart from `toy-pretrain`: a change to the classifier retrains nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from worldr1.config import ToyClassifierPretrainConfig
from worldr1.device import default_device, seeded
from worldr1.errors import UserError
from worldr1.ids import derive_seed
from worldr1.reconstruct.toy import frames_tensor, resize_frames
from worldr1.rewards.report import auc
from worldr1.toyworld.corrupt import Corruption, ToyClip
from worldr1.toyworld.data import ClipSpec, ToyData, render_clips
from worldr1.toyworld.pretrain import optimizer_step
from worldr1.toyworld.suite import SOUND

WEIGHTS = "classifier.safetensors"
CONFIG = "config.json"


def conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    # No normalisation: a per-frame norm would wash out the very colour and brightness shifts
    # between frames (a scene swap, a colour change) the classifier has to see.
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.SiLU())


class ConsistencyNet(nn.Module):
    """Clips `[B, F, 3, H, W]` in [0, 1] (F >= 2) -> the logit of P(consistent) `[B]`."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width
        # Each frame to a map, a quarter of its size, of what is where.
        self.frame = nn.Sequential(conv(3, width), conv(width, 2 * width, 2), conv(2 * width, 4 * width, 2))
        # Two consecutive frames' maps and their change, then a max over space: a corruption is a
        # local change (one object), which averaging would dilute among the camera's motion elsewhere.
        self.pair = nn.Sequential(
            conv(12 * width, 4 * width, 2), conv(4 * width, 4 * width), nn.AdaptiveMaxPool2d(1), nn.Flatten()
        )
        self.head = nn.Sequential(nn.Linear(4 * width, 4 * width), nn.SiLU(), nn.Linear(4 * width, 1))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        b, f = frames.shape[:2]
        maps = self.frame(frames.flatten(0, 1))
        maps = maps.view(b, f, *maps.shape[1:])
        before, after = maps[:, :-1], maps[:, 1:]
        pairs = self.pair(torch.cat([before, after, after - before], 2).flatten(0, 1)).view(b, f - 1, -1)
        return self.head(pairs.amax(1))[:, 0]


class ToyClassifier:
    """P(consistent) of videos of any size, judged at the size it was trained on (`frame_hw`)."""

    def __init__(self, net: ConsistencyNet, frame_hw: tuple[int, int], device: torch.device | None = None) -> None:
        self.net = net.eval().requires_grad_(False)
        self.frame_hw = frame_hw
        self.device = device or default_device()
        self.net.to(self.device)

    @torch.no_grad()
    def p_consistent(self, frames: np.ndarray) -> float:
        """uint8 `[F, H, W, 3]` (F >= 2, any size) -> P(the clip is 3D-consistent)."""
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 2:
            raise ValueError(f"frames must be [F, H, W, 3] with F >= 2, got {list(frames.shape)}")
        work = resize_frames(frames_tensor(frames).to(self.device), self.frame_hw)
        return float(torch.sigmoid(self.net(work[None]))[0])

    def save(self, directory: Path) -> None:
        save_file({k: v.contiguous().cpu() for k, v in self.net.state_dict().items()}, str(directory / WEIGHTS))
        config = {"width": self.net.width, "frame_hw": list(self.frame_hw)}
        (directory / CONFIG).write_text(json.dumps(config, indent=1) + "\n")

    @classmethod
    def fresh(cls, width: int, frame_hw: tuple[int, int], seed: int) -> ToyClassifier:
        with seeded(seed):
            return cls(ConsistencyNet(width), frame_hw, torch.device("cpu"))


def load_toy_classifier(directory: Path, device: torch.device | None = None) -> ToyClassifier:
    """The toy consistency classifier the `toy-classifier` stage wrote to `directory`."""
    if not (directory / CONFIG).is_file():
        raise UserError(
            f"no pretrained toy consistency classifier in {directory}",
            "run `dvc repro toy-classifier` (the toy profile's classifier is trained by the pipeline itself)",
        )
    try:
        config = json.loads((directory / CONFIG).read_text())
        net = ConsistencyNet(int(config["width"]))
        net.load_state_dict(load_file(str(directory / WEIGHTS)))
        frame_hw = (int(config["frame_hw"][0]), int(config["frame_hw"][1]))
    except (OSError, ValueError, KeyError, IndexError, TypeError, RuntimeError, SafetensorError) as exc:
        raise UserError(
            f"the toy consistency classifier in {directory} is unreadable ({str(exc).splitlines()[0][:160]})",
            "rerun `dvc repro -f toy-classifier`",
        ) from None
    return ToyClassifier(net, frame_hw, device)


# ---------------------------------------------------------------------------------------------
# Training


def pretrain_classifier(
    classifier: ToyClassifier,
    data: ToyData,
    cfg: ToyClassifierPretrainConfig,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
) -> list[float]:
    """Binary cross-entropy on the clips' labels (`data.consistent`). A few hundred clips are easily
    memorised, so each is shown mirrored or played backwards at random (neither changes whether
    it is consistent) under a strong weight decay; pixel noise as for the reconstructor, since the
    policy's videos are never as clean as the renders. The toy models' optimiser schedule
    (`worldr1/toyworld/pretrain.py`), and the generator seed it had when toy-pretrain trained it:
    the same seed gives the same classifier."""
    net = classifier.net.train().requires_grad_(True)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.train.lr, weight_decay=1e-2)
    gen = torch.Generator().manual_seed(derive_seed(seed, "toy-pretrain", "classifier"))
    frames = frames_tensor(data.frames)
    labels = torch.from_numpy(data.consistent).float()
    losses = []
    for step in range(cfg.train.steps):
        pick = torch.randint(len(data), (cfg.train.batch,), generator=gen)
        x = frames[pick]
        mirror = (torch.rand(len(pick), generator=gen) < 0.5).view(-1, 1, 1, 1, 1)
        x = torch.where(mirror, x.flip(-1), x)
        backwards = (torch.rand(len(pick), generator=gen) < 0.5).view(-1, 1, 1, 1, 1)
        x = torch.where(backwards, x.flip(1), x)
        x = x + 0.03 * torch.rand(len(pick), 1, 1, 1, 1, generator=gen) * torch.randn(x.shape, generator=gen)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x.clamp(0, 1)), labels[pick])
        losses.append(optimizer_step(opt, loss, cfg.train, step))
        if progress:
            progress(step + 1, cfg.train.steps)
    net.eval().requires_grad_(False)
    return losses


# ---------------------------------------------------------------------------------------------
# Held-out accuracy


def heldout_seed(seed: int, index: int) -> int:
    """Scenes of their own: no training clip's, prompt's or reward-validity suite's seed."""
    return derive_seed(seed, "toy-classifier", index) % 2**31


def heldout_clips(seed: int, count: int, spec: ClipSpec, workers: int) -> list[ToyClip]:
    return render_clips([heldout_seed(seed, i) for i in range(count)], spec, workers)


@dataclass(frozen=True)
class Judged:
    kind: str  # SOUND or a corruption
    p_consistent: float

    @property
    def right(self) -> bool:
        return (self.p_consistent >= 0.5) == (self.kind == SOUND)


def heldout_report(classifier: ToyClassifier, clips: list[ToyClip]) -> dict[str, object]:
    """Accuracy (at P = 0.5) and AUC over `clips`, overall and per corruption (each corruption's AUC
    against the sound clips): the `classifier_heldout_*` keys of reports/toy-classifier.json."""
    judged = [
        Judged(SOUND if c.corruption is None else c.corruption.value, classifier.p_consistent(c.video.frames))
        for c in clips
    ]
    sound = [j.p_consistent for j in judged if j.kind == SOUND]
    by_kind: dict[str, dict[str, object]] = {}
    for kind in (SOUND, *(c.value for c in Corruption)):
        mine = [j for j in judged if j.kind == kind]
        if mine:
            by_kind[kind] = {"clips": len(mine), "accuracy": round(float(np.mean([j.right for j in mine])), 4)}
            if kind != SOUND:
                by_kind[kind]["auc"] = auc(sound, [j.p_consistent for j in mine])
    return {
        "classifier_heldout_clips": len(judged),
        "classifier_heldout_accuracy": round(float(np.mean([j.right for j in judged])), 4) if judged else None,
        "classifier_heldout_auc": auc(sound, [j.p_consistent for j in judged if j.kind != SOUND]),
        "classifier_heldout_by_corruption": by_kind,
    }
