"""The evaluation protocol, the same for every profile: did training make videos more 3D-consistent
without freezing them or losing quality?

For each of the first `evaluate.prompts` test prompts (in the prompts table's order) and each
policy (the base adapter, then the evaluated round's), one video is sampled with the ODE
(no SDE noise) from the same seed and the rollout's settings, so the two policies see the same
initial noise. Each video goes through the reconstruct and score code (`VideoScorer`, as
`worldr1 score` does) with the scene built from the even frames (`reconstruct.holdout`), and:

- 3D consistency at the input cameras: PSNR / SSIM (/ LPIPS when its weights are present) of the
  scene rendered at the cameras of the frames that built it, against those frames;
- held-out 3D consistency: the same at the odd frames' cameras, which the scene never saw;
- every frame pulled into every other by the reconstruction (`s_reproj`), trajectory fidelity
  `s_traj`, the judge's `s_meta`, the quality `r_gen`, the reward;
- motion magnitude (mean |frame change|): a frozen video would win a naive 3D score;
- `p_consistent` (toy profile; None otherwise): P(consistent) of the video by the toy consistency
  classifier (`worldr1/toyworld/classifier.py`), a number the reward does not optimise. Every 3D
  number above comes from the reconstruction and scoring code that training pushes up, so a policy
  can raise them without its videos becoming any more consistent (a reward hack). The classifier
  never sees a reconstruction or a reward: it learnt what inconsistency looks like from the
  labelled toy clips. A gain in held-out PSNR that it does not confirm is suspect. Its own
  held-out accuracy is in reports/toy-classifier.json.
- the base softened to the evaluated policy's sharpness (`SOFTENED`, the evaluate stage only): per
  prompt, the base video low-passed by a Gaussian that brings its sharpness (the mean gradient,
  `Sharpness`) down to the evaluated video's (`softened_to`), then scored like the others.
  Blur alone buys held-out PSNR (sound toy clips low-passed to 96% of their sharpness gain 0.9 dB,
  benchmarks/softness_gain.py) and a policy trained on a 3D reward softens its videos: the change
  against this control is what the policy gained beyond softening. Where the policy is as sharp as
  the base, the control is the base itself.

`reports/eval.json` holds per-policy means, the latest-minus-base deltas with the standard error of
the paired per-prompt change, the same against the softened base (`delta_vs_base_softened`), and every
video's numbers.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from worldr1.config import Params
from worldr1.distributed import World
from worldr1.errors import UserError
from worldr1.geometry.warp import gaussian_blur
from worldr1.grpo.sampler import Schedule, sample
from worldr1.ids import derive_seed
from worldr1.policy.base import Policy
from worldr1.rewards.quality import Sharpness
from worldr1.rewards.recon import s_recon
from worldr1.rewards.report import finite_mean
from worldr1.rewards.score import load_views
from worldr1.rewards.terms import evaluated
from worldr1.score_video import Video, VideoScorer

#: the numbers a video's rewards row gives as they are
FROM_REWARDS = (*evaluated(), "motion", "reward")
METRICS = (
    "psnr_input",
    "ssim_input",
    "lpips_input",
    "psnr_heldout",
    "ssim_heldout",
    "lpips_heldout",
    *FROM_REWARDS,
    "p_consistent",
)
#: the control label: the base softened to the evaluated policy's sharpness, prompt by prompt
SOFTENED = "base_softened"


@dataclass(frozen=True)
class EvalPrompt:
    prompt_id: str
    text: str


def test_prompts(prompts: pa.Table, count: int) -> list[EvalPrompt]:
    rows = [r for r in prompts.to_pylist() if r["split"] == "test"]
    if len(rows) < count:
        raise UserError(
            f"evaluate.prompts is {count} but the prompts table has {len(rows)} test prompts",
            "lower evaluate.prompts or add a test split to prompts.sources",
        )
    return [EvalPrompt(r["prompt_id"], r["text"]) for r in rows[:count]]


def probe_prompts(prompts: pa.Table, count: int, seeds: int) -> list[EvalPrompt]:
    """The fixed probe set: the first `count` train prompts, each `seeds` times. A copy's id carries
    its seed index (`<prompt_id>~<k>`), so `sample_eval_video` draws each copy its own fixed noise."""
    rows = [r for r in prompts.to_pylist() if r["split"] == "train"]
    if len(rows) < count:
        raise UserError(
            f"probe.prompts is {count} but the prompts table has {len(rows)} train prompts",
            "lower probe.prompts or add train prompts",
        )
    return [EvalPrompt(f"{r['prompt_id']}~{k}", r["text"]) for r in rows[:count] for k in range(seeds)]


@torch.no_grad()
def sample_eval_video(policy: Policy, params: Params, prompt: EvalPrompt, uncond: torch.Tensor | None) -> np.ndarray:
    """One ODE sample (uint8 frames) of `prompt`, from a seed of (seed, "eval", prompt) only;
    `uncond` is the negative prompt's encoding (None without CFG), encoded once per policy."""
    ro = params.rollout
    schedule = Schedule.flow_match(ro.steps, ro.shift)
    shape = policy.latent_shape(ro.frames, ro.height, ro.width)
    cond = policy.encode([prompt.text])
    generator = torch.Generator().manual_seed(derive_seed(params.seed, "eval", prompt.prompt_id))
    traj = sample(policy, cond, uncond, [generator], shape, schedule, ro.cfg, ro.sde, steps=[])
    return policy.decode(traj.final)[0].cpu().numpy()


def softened_to(frames: np.ndarray, sharpness: float, iterations: int = 12) -> tuple[np.ndarray, float]:
    """uint8 `frames [F, H, W, 3]` low-passed by a Gaussian whose result is no sharper than
    `sharpness` (`Sharpness`), and that Gaussian's std in pixels (rounded to 1e-4); the frames as
    they are and 0.0 where they are no sharper already. The std is bisected to 1/2^iterations of its
    bracket: uint8 rounding makes sharpness fall in small steps, so it is where the curve crosses the
    target, not always the very narrowest such blur. A target under what a 64 px blur reaches (a
    flat video) gets the 64 px blur."""
    measure = Sharpness()
    if measure.score(frames, "") <= sharpness:
        return frames, 0.0
    x = torch.from_numpy(np.ascontiguousarray(frames)).float()

    def blurred(std: float) -> np.ndarray:
        return gaussian_blur(x, std).round().clamp(0, 255).to(torch.uint8).numpy()

    lo, hi = 0.0, 1.0
    while measure.score(soft := blurred(hi), "") > sharpness:
        if hi >= 64.0:
            return soft, hi
        lo, hi = hi, 2 * hi
    for _ in range(iterations):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if measure.score(blurred(mid), "") > sharpness else (lo, mid)
    return blurred(hi), round(hi, 4)


@dataclass(frozen=True)
class Adapter:
    """A policy under evaluation: its label in the report and its adapter directory."""

    label: str
    directory: Path


def evaluate(
    policy: Policy,
    adapters: Sequence[Adapter],
    params: Params,
    prompts: list[EvalPrompt],
    scorer: VideoScorer,
    progress: Callable[[int, int], None] | None = None,
    p_consistent: Callable[[np.ndarray], float] | None = None,
    soften: bool = False,
) -> list[dict[str, object]]:
    """Every (adapter, prompt) video's numbers. The adapters are loaded into `policy` one after the
    other, each once. `p_consistent` (the toy classifier's, uint8 frames -> P(consistent)) fills
    that metric; None leaves it None. With `soften`, rows labelled `SOFTENED` too: the first
    adapter's video softened to the last one's sharpness (`softened_to`; its std in `blur_px`)."""
    labels = [a.label for a in adapters]
    if len(set(labels)) != len(labels) or SOFTENED in labels:
        raise ValueError(f"two adapters share a label, or one is {SOFTENED!r}: {labels}")
    videos: dict[str, dict[str, np.ndarray]] = {}
    blur: dict[str, float] = {}
    total, done = len(adapters) * len(prompts) + (len(adapters) + soften) * len(prompts), 0
    for adapter in adapters:
        label = adapter.label
        policy.load_adapter(adapter.directory, params.policy)
        uncond = policy.encode([params.rollout.negative_prompt]) if params.rollout.cfg > 1 else None
        videos[label] = {}
        for p in prompts:
            videos[label][p.prompt_id] = sample_eval_video(policy, params, p, uncond)
            done += 1
            if progress:
                progress(done, total)
    if soften:
        sharpness = Sharpness()
        videos[SOFTENED] = {}
        for p in prompts:
            target = sharpness.score(videos[labels[-1]][p.prompt_id], p.text)
            videos[SOFTENED][p.prompt_id], blur[p.prompt_id] = softened_to(videos[labels[0]][p.prompt_id], target)
        labels.append(SOFTENED)
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="worldr1-eval-") as tmp:
        for n, p in enumerate(prompts):
            clips = [
                Video(
                    Path(f"{label}-{p.prompt_id}.mp4"),
                    videos[label][p.prompt_id],
                    float(params.rollout.fps),
                    params.rollout.frames,
                )
                for label in labels
            ]
            work = Path(tmp) / f"{n:04d}"
            scored = scorer.score(clips, p.text, work, novel_path=False)
            for label, clip, reward, recon in zip(labels, clips, scored.rewards.to_pylist(), scored.recon.to_pylist()):
                row = _row(label, p, clip.frames, reward, recon, work / "recon", scorer)
                row["p_consistent"] = p_consistent(clip.frames) if p_consistent is not None else None
                if soften:
                    row["blur_px"] = blur[p.prompt_id] if label == SOFTENED else None
                rows.append(row)
            done += len(labels)
            if progress:
                progress(done, total)
    return rows


def evaluate_rank(
    params: Params,
    adapters: list[Adapter],
    prompts: list[EvalPrompt],
    world: World,
    parts: Path,
    name: str,
    progress: Callable[[int, int], None] | None = None,
    soften: bool = False,
) -> tuple[str, list[dict[str, object]] | None]:
    """`evaluate` on `world`'s share of `prompts` (all adapters), gathered: the policy's name and
    every row in (prompt, adapter) order on rank 0, None on the other ranks. The protocol holds out
    the odd frames whatever the training rounds do; with the toy policy the toy classifier adds
    P(consistent), the check the reward does not optimise. `parts` is the stage's scratch directory
    (`distributed.scratch`), `name` its rows' part name there; `soften` adds `evaluate`'s `SOFTENED`
    control rows."""
    from worldr1.distributed import gather_rows
    from worldr1.policy import load_policy
    from worldr1.store import Paths
    from worldr1.toyworld.classifier import load_toy_classifier

    scored = params.model_copy(update={"reconstruct": params.reconstruct.model_copy(update={"holdout": True})})
    policy = load_policy(params.policy)
    policy.attach_adapter(params.policy, params.seed, adapters[0].directory)
    toy = params.policy.model == "toy"
    classifier = load_toy_classifier(Path(Paths().toy_classifier)) if toy else None
    labels = [a.label for a in adapters] + ([SOFTENED] if soften else [])
    mine = evaluate(
        policy,
        adapters,
        scored,
        world.mine(prompts),
        VideoScorer(scored),
        progress,
        classifier.p_consistent if classifier is not None else None,
        soften,
    )
    rows = gather_rows(
        world,
        parts,
        name,
        mine,
        lambda r: (r["policy"], r["prompt_id"]),
        [(label, p.prompt_id) for p in prompts for label in labels],
    )
    return policy.name, rows


def _row(
    label: str, prompt: EvalPrompt, frames: np.ndarray, reward: dict, recon: dict, recon_dir: Path, scorer: VideoScorer
) -> dict[str, object]:
    row: dict[str, object] = {
        "policy": label,
        "prompt_id": prompt.prompt_id,
        "prompt": prompt.text,
        "status": reward["status"],
        "error": reward["error"],
        **dict.fromkeys(METRICS),
        **{k: reward.get(k) for k in FROM_REWARDS},
    }
    if reward["status"] != "ok":
        return row
    # Held out: s_recon's own metrics (the scene is built from the even frames, so the frames it
    # compares are the odd ones). At the input cameras: the same measure on the even frames.
    row.update(psnr_heldout=reward["psnr"], ssim_heldout=reward["ssim"], lpips_heldout=reward["lpips"])
    views = load_views(recon, recon_dir)
    seen = sorted(set(views.gaussian_frames))
    score = s_recon(views.inputs, frames, seen, scorer.params.reward.recon_metric, scorer.scorer.lpips)
    row.update(psnr_input=score.psnr, ssim_input=score.ssim, lpips_input=score.lpips)
    return row


def summary(
    rows: list[dict[str, object]], labels: list[str], base: str, latest: str, control: str | None = None
) -> dict[str, object]:
    """Means per label over the videos that reconstructed, and `latest` minus `base`; with `control`
    (one of `labels`), `latest` minus it too (`delta_vs_<control>`, `delta_vs_<control>_sem`)."""
    means: dict[str, dict[str, float | int | None]] = {}
    for label in labels:
        mine = [r for r in rows if r["policy"] == label]
        means[label] = {
            "videos": len(mine),
            "failed": sum(1 for r in mine if r["status"] != "ok"),
            **{m: finite_mean([r.get(m) for r in mine if r["status"] == "ok"]) for m in METRICS},
        }

    def delta(first: dict[str, float | int | None], last: dict[str, float | int | None]) -> dict[str, float | None]:
        return {
            m: (round(b - a, 6) if (a := first[m]) is not None and (b := last[m]) is not None else None)
            for m in METRICS
        }

    out: dict[str, object] = {
        "means": means,
        "delta": delta(means[base], means[latest]),
        "delta_sem": paired_sem(rows, base, latest),
    }
    if control is not None:
        out[f"delta_vs_{control}"] = delta(means[control], means[latest])
        out[f"delta_vs_{control}_sem"] = paired_sem(rows, control, latest)
    return out


def paired_sem(rows: list[dict[str, object]], base: str, latest: str) -> dict[str, float | None]:
    """Standard error of the per-prompt change (same prompt, same noise, two policies): how much of
    a delta over a handful of test prompts is noise. None below two prompts where both scored."""
    by = {(r["policy"], r["prompt_id"]): r for r in rows if r["status"] == "ok"}
    out: dict[str, float | None] = {}
    for m in METRICS:
        diffs = [
            float(by[(latest, p)][m]) - float(by[(base, p)][m])  # type: ignore[arg-type]
            for (label, p) in by
            if label == base
            and (latest, p) in by
            and isinstance(by[(base, p)][m], (int, float))
            and isinstance(by[(latest, p)][m], (int, float))
        ]
        diffs = [d for d in diffs if math.isfinite(d)]
        out[m] = round(float(np.std(diffs, ddof=1) / math.sqrt(len(diffs))), 6) if len(diffs) >= 2 else None
    return out
