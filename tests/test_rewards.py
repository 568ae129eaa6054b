"""s_recon, the motion guard and group advantages, each alone; and together on synthetic videos."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from worldr1.errors import UserError
from worldr1.geometry.raster import render
from worldr1.geometry.synthetic import card_scene, orbit_cameras
from worldr1.prompts.camera import Primitive as P
from worldr1.prompts.camera_path import target_path
from worldr1.reconstruct.base import Reconstruction
from worldr1.reconstruct.scene import reconstruction_gaussians
from worldr1.rewards.advantages import STD_EPS, group_advantages
from worldr1.rewards.recon import ALEXNET_FILE, motion, motion_factor, psnr, require_lpips, s_recon, ssim, to_tensor
from worldr1.rewards.traj import s_traj


def test_psnr_and_ssim_basics() -> None:
    rng = np.random.default_rng(0)
    a = (rng.random((2, 32, 32, 3)) * 255).astype(np.uint8)
    ta = to_tensor(a)
    assert float(psnr(ta, ta)[0]) == 100.0
    torch.testing.assert_close(ssim(ta, ta), torch.ones(2))
    noisy = (ta + 0.1 * torch.randn(ta.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    mse = float(((noisy - ta) ** 2).mean(dim=(1, 2, 3))[0])
    assert float(psnr(noisy, ta)[0]) == pytest.approx(-10 * math.log10(mse), rel=1e-5)
    assert 0 < float(ssim(noisy, ta)[0]) < 0.99
    assert float(ssim(ta, 1 - ta)[0]) < 0.1


def test_s_recon_uses_ssim_and_records_every_metric() -> None:
    rng = np.random.default_rng(1)
    frames = (rng.random((5, 24, 24, 3)) * 255).astype(np.uint8)
    perfect = s_recon(frames, frames, [1, 3], "ssim")
    assert perfect.s_recon == pytest.approx(1.0) and perfect.psnr == 100.0 and perfect.frames == [1, 3]
    worse = s_recon(frames[::-1].copy(), frames, [1, 3], "ssim")
    assert worse.s_recon < 0.2 and worse.psnr < 15
    with pytest.raises(ValueError, match="differ in shape"):
        s_recon(frames[:4], frames, [1], "ssim")


def test_lpips_without_weights_is_a_clear_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from worldr1.rewards import recon

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    recon.lpips_model.cache_clear()
    try:
        with pytest.raises(UserError, match=f"AlexNet's weights \\({ALEXNET_FILE}\\) are not in {tmp_path}"):
            require_lpips()
    finally:
        recon.lpips_model.cache_clear()


def test_motion_guard() -> None:
    still = np.full((6, 8, 8, 3), 100, np.uint8)
    assert motion(still) == 0.0
    moving = still.copy()
    moving[1::2] = 120
    assert motion(moving) == pytest.approx(20 / 255)
    assert motion_factor(0.0, 0.05, wants_motion=True) == 0.0
    assert motion_factor(0.025, 0.05, wants_motion=True) == pytest.approx(0.5)
    assert motion_factor(0.2, 0.05, wants_motion=True) == 1.0
    assert motion_factor(0.0, 0.05, wants_motion=False) == 1.0  # "Camera fixed." may stay still


def test_group_advantages_by_hand() -> None:
    groups = ["a", "a", "a", "a", "b", "b", "c"]
    rewards = [1.0, 2.0, None, 3.0, 5.0, 5.0, 7.0]
    adv, stats = group_advantages(groups, rewards, clip=5.0)
    mean, std = 2.0, math.sqrt(2 / 3)  # the failed third sample is left out
    assert stats["a"].valid == 3 and stats["a"].mean == pytest.approx(mean) and stats["a"].std == pytest.approx(std)
    assert adv[0] == pytest.approx((1 - mean) / (std + STD_EPS))
    assert adv[3] == pytest.approx((3 - mean) / (std + STD_EPS))
    assert adv[2] is None
    assert adv[4] == 0.0 and adv[5] == 0.0  # equal rewards: no preference
    assert adv[6] is None and stats["c"].valid == 1  # nothing to compare with
    clipped, _ = group_advantages(["g"] * 4, [0.0, 0.0, 0.0, 1.0], clip=1.0)
    assert clipped[3] == 1.0 and (0.0 - 0.25) / (math.sqrt(0.1875) + STD_EPS) == pytest.approx(clipped[0])
    assert group_advantages(["g", "g"], [float("nan"), 1.0], clip=5)[0] == [None, None]


def test_group_advantages_with_the_rounds_std() -> None:
    # Flow-GRPO's global_std: every group's centred rewards over the std of every valid reward, so a
    # group of near-equal samples keeps its small spread instead of being blown up to unit spread.
    groups = ["a", "a", "b", "b", "c"]
    rewards = [1.0, 1.1, 0.0, 4.0, None]
    adv, stats = group_advantages(groups, rewards, clip=5.0, std="global")
    every = float(np.std([1.0, 1.1, 0.0, 4.0]))
    assert adv[0] == pytest.approx(-0.05 / (every + STD_EPS)) and adv[3] == pytest.approx(2.0 / (every + STD_EPS))
    assert stats["a"].std == pytest.approx(0.05)  # the group's own statistics are kept
    own, _ = group_advantages(groups, rewards, clip=5.0)
    assert own[0] == pytest.approx(-1.0, abs=1e-2) and abs(adv[0]) < 0.05 * abs(own[0])
    assert adv[4] is None
    # A group of one valid reward counts in the round's std but has nothing to compare; NaN is no reward.
    lone, _ = group_advantages(["a", "a", "b", "c"], [1.0, 3.0, 10.0, float("nan")], clip=50.0, std="global")
    assert lone[2] is None and lone[3] is None
    assert lone[1] == pytest.approx(1.0 / (float(np.std([1.0, 3.0, 10.0])) + STD_EPS))
    with pytest.raises(ValueError, match="group or global"):
        group_advantages(groups, rewards, clip=5.0, std="batch")  # type: ignore[arg-type]


def test_consistent_video_beats_shuffled_noisy_and_frozen() -> None:
    n, size = 9, 64
    target = target_path([P.ORBIT_LEFT], n)
    cams = orbit_cameras(np.linspace(0, 12, n), size, size)  # orbit left: slides right, turns left
    scene = card_scene(seed=2, density=24)
    out = render(scene, torch.from_numpy(cams.w2c).float(), torch.from_numpy(cams.K).float(), size, size, "torch")
    frames = (out.rgb.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    depth = out.depth

    def score(video: np.ndarray, w2c: np.ndarray, d: torch.Tensor) -> float:
        rec = Reconstruction(d, torch.ones_like(d), video, w2c, cams.K, (size, size))
        g = reconstruction_gaussians(rec, True, 0.0, 100_000, 0.02).gaussians
        back = render(g, torch.from_numpy(w2c).float(), torch.from_numpy(cams.K).float(), size, size, "torch").rgb
        renders = (back.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        r = s_recon(renders, video, list(range(1, n, 2)), "ssim").s_recon
        t = s_traj(w2c, target).s_traj
        return (r + t) * motion_factor(motion(video), 0.01, wants_motion=True)

    good = score(frames, cams.w2c, depth)
    shuffled = frames[np.random.default_rng(0).permutation(n)]
    noisy = np.clip(frames + np.random.default_rng(1).normal(0, 25, frames.shape), 0, 255).astype(np.uint8)
    frozen = np.repeat(frames[:1], n, 0)
    still_cams = np.repeat(cams.w2c[:1], n, 0)
    still_cams[:, 0, 3] += np.linspace(0, 1e-3, n)  # a reconstructor's jitter on a still video
    assert good > score(shuffled, cams.w2c, depth)
    assert good > score(noisy, cams.w2c, depth)
    assert good > 1.5
    assert score(frozen, still_cams, depth[:1].repeat(n, 1, 1)) < 0.1


def test_judge_logit_scoring_by_hand() -> None:
    from worldr1.rewards.digit_score import digit_token_ids, expected_digit_score

    vocab = 40
    digit_ids = list(range(20, 30))
    logits = torch.full((2, vocab), -5.0)
    logits[:, 3] = 50.0  # a non-digit token the model would rather say: ignored
    logits[0, digit_ids] = torch.tensor([0.0, 0, 0, 0, 0, 0, 0, 0, 0, math.log(3.0)])  # "9" three times as likely
    logits[1, digit_ids] = torch.tensor([2.0, 2.0] + [-1e9] * 8)  # even between "0" and "1"
    p9 = 3 / 12
    expected0 = (sum(d / 12 for d in range(9)) + 9 * p9) / 9
    torch.testing.assert_close(
        expected_digit_score(logits, digit_ids), torch.tensor([expected0, 0.5 / 9]), rtol=1e-6, atol=1e-7
    )

    class Digits:
        def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
            return [100 + int(text)] if text.isdigit() and len(text) == 1 else [1, 2]

    assert digit_token_ids(Digits()) == list(range(100, 110))

    class Splits(Digits):
        def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
            return [1, 2]

    with pytest.raises(ValueError, match="as 2 tokens"):
        digit_token_ids(Splits())


def test_tiny_qwen3_vl_judge_rates_in_batches() -> None:
    from worldr1.rewards.digit_score import expected_digit_score
    from worldr1.rewards.meta import QwenJudge, _user_turn, question

    judge = QwenJudge("tiny", torch.device("cpu"))
    rng = np.random.default_rng(0)
    images = [(rng.random((48, 64, 3)) * 255).astype(np.uint8) for _ in range(3)]
    prompts = ["Camera orbit left. A red cube.", "Camera push in. A long hall of blue doors.", "Camera fixed."]
    batched = judge.rate(images, prompts, batch=3)
    one_by_one = [judge.rate([im], [p])[0] for im, p in zip(images, prompts)]
    assert all(0.0 <= s <= 1.0 for s in batched)
    assert batched == pytest.approx(one_by_one, abs=1e-5)  # left padding reads the right position
    inputs = judge.processor(
        text=[_user_turn(judge.processor, question(prompts[0]))], images=[images[0]], return_tensors="pt"
    )
    with torch.no_grad():
        logits = judge.model(**inputs).logits[:, -1]
    assert float(expected_digit_score(logits, judge.digits)[0]) == pytest.approx(one_by_one[0], abs=1e-6)
    # The prompt is part of the question: the same image asked about another prompt scores otherwise.
    assert judge.rate([images[0]], [prompts[1]])[0] != pytest.approx(one_by_one[0], abs=1e-7)
    with pytest.raises(ValueError, match="1 images but 2 prompts"):
        judge.rate(images[:1], prompts[:2])


def test_judge_question_names_the_prompt_and_world_r1s_rubric() -> None:
    from worldr1.rewards.meta import question

    q = question('Camera orbit left.  A "red"\ncube on a floor.')
    assert "prompt \"Camera orbit left. A 'red' cube on a floor.\"" in q  # one line, its quotes kept apart
    for point in (
        "3D structure",
        "parallax",
        "static or flat picture",
        "distortions",
        "farthest",
        "single digit (0-9)",
    ):
        assert point in q


def test_missing_judge_weights_is_a_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from worldr1.rewards.meta import QwenJudge

    monkeypatch.setenv("WORLDR1_MODELS", str(tmp_path))
    with pytest.raises(UserError, match=r"model Qwen/Qwen3-VL-4B-Instruct \(config.json\) not found locally"):
        QwenJudge("qwen3-vl-4b", torch.device("cpu"))
