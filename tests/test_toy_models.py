"""The toy models: the toy policy behind the `Policy` interface (pretrained, saved, loaded, sampled,
with a LoRA adapter), the toy reconstructor, which after a short training on toy clips recovers
the relative cameras of held-out consistent videos, and the toy consistency classifier."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from worldr1.config import (
    LoraConfig,
    PolicyConfig,
    SdeConfig,
    ToyClassifierNetConfig,
    ToyClassifierPretrainConfig,
    ToyPolicyNetConfig,
    ToyPolicyPretrainConfig,
    ToyReconstructorNetConfig,
    ToyReconstructorPretrainConfig,
    TrainingConfig,
)
from worldr1.errors import UserError
from worldr1.geometry.cameras import rotation_matrix
from worldr1.grpo.sampler import Schedule, recompute_log_probs, sample
from worldr1.policy.base import Policy as PolicyProtocol
from worldr1.policy.toy import MIN_SIGMA, ToyPolicy, ToyTokenizer, load_toy, video_latents
from worldr1.reconstruct.toy import (
    DepthNet,
    ToyReconstructor,
    frames_tensor,
    load_toy_reconstructor,
    relative_poses,
    rotation_vector,
)
from worldr1.toyworld.classifier import (
    ToyClassifier,
    heldout_report,
    heldout_seed,
    load_toy_classifier,
    pretrain_classifier,
)
from worldr1.toyworld.data import ClipSpec, ToyData, clip_seed, load_clips, render_clips, save_clips
from worldr1.toyworld.pretrain import pretrain_policy, pretrain_reconstructor
from worldr1.toyworld.render import SUPERSAMPLE
from worldr1.toyworld.suite import suite_seed

FRAMES, SIZE = 5, 32
NET = ToyPolicyNetConfig(
    latent_channels=4,
    autoencoder_width=8,
    patch=1,
    heads=2,
    head_dim=8,
    ffn_dim=32,
    layers=1,
    text_dim=16,
    max_words=32,
)
SHORT = ToyPolicyPretrainConfig(
    net=NET,
    autoencoder=TrainingConfig(steps=4, batch=8, lr=1e-3),
    train=TrainingConfig(steps=4, batch=4, lr=1e-3),
    text_dropout=0.1,
    ema_decay=0.9,
)
SDE = SdeConfig(kind="flow_grpo", noise_level=0.7, train_fraction=0.5, window=0)
LORA = PolicyConfig(
    model="toy",
    dtype="float32",
    attention="auto",
    lora=LoraConfig(rank=4, alpha=8.0, targets=["to_q", "to_k", "to_v", "to_out.0"]),
)
# The reconstructor test: trained briefly on TRAIN_CLIPS clips (consistent or not), checked on
# HELD_OUT consistent clips of other seeds. Bounds on the mean error over their frames, for this
# test-sized training; for scale, the toy moves turn the camera up to 24 degrees and move it up to
# 1.1 scene units, 3.8 from the scene. (The pipeline's pretraining, 384 clips and 600 steps, gets
# 1.7 degrees and 0.28 units on 16 held-out clips: README, "Toy world".)
TRAIN_CLIPS, HELD_OUT = 48, 4
ROTATION_BOUND_DEG, TRANSLATION_BOUND = 3.0, 0.6
# The classifier test: a small network memorising the labels of 8 clips, enough to see the loss fall.
CLASSIFIER_STEPS = 200


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> tuple[ToyData, Path]:
    d = tmp_path_factory.mktemp("clips")
    made = render_clips(list(range(TRAIN_CLIPS)), ClipSpec(FRAMES, SIZE, SIZE, 0.5, SUPERSAMPLE), workers=2)
    save_clips(made, d)
    return load_clips(d), d


def test_tokenizer_maps_words_and_round_trips() -> None:
    tok = ToyTokenizer.fit(["Camera orbit left. A red cube.", "Camera fixed. A blue-green sphere."], 8)
    ids = tok(["camera ORBIT left, a purple cube", ""])
    assert ids.shape == (2, 8) and ids[1].eq(0).all()
    assert ids[0, 4].item() == 1  # "purple" was never seen: unknown
    assert (ids[0, :6] > 0).all() and ids[0, 6:].eq(0).all()
    assert "blue-green" in tok.vocab
    assert ToyTokenizer.from_json(tok.to_json()) == tok


def test_toy_policy_is_a_policy_with_x_prediction() -> None:
    policy = ToyPolicy.fresh(NET, ["Camera fixed. A red cube."], seed=0)
    assert isinstance(policy, PolicyProtocol)
    shape = policy.latent_shape(FRAMES, SIZE, SIZE)
    assert shape == (4, FRAMES, SIZE // 4, SIZE // 4)
    text = policy.encode(["Camera fixed. A red cube.", ""])
    assert text.shape == (2, 32, 16) and text[1].eq(0).all()
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([700.0, 10.0])
    v = policy.velocity(x, t, text)
    clean = policy.clean(x, t, text)
    # The velocity is what the clean estimate implies: (x - clean) / sigma, sigma floored.
    assert torch.allclose(v[0], (x[0] - clean[0]) / 0.7, atol=1e-5)
    assert torch.allclose(v[1], (x[1] - clean[1]) / MIN_SIGMA, atol=1e-4)
    frames = policy.decode(x)
    assert frames.dtype == torch.uint8 and frames.shape == (2, FRAMES, SIZE, SIZE, 3)


def test_pretrained_policy_saves_loads_and_samples_with_an_adapter(clips: tuple[ToyData, Path], tmp_path: Path) -> None:
    data, _ = clips
    policy = ToyPolicy.fresh(NET, data.prompts, seed=0)
    ae_losses, losses = pretrain_policy(policy, data, SHORT, shift=3.0, seed=0)
    assert len(ae_losses) == 4 and len(losses) == 4 and all(np.isfinite(losses))
    # Latents are normalised by the training frames' statistics, as Wan's VAE config does.
    z = video_latents(policy.autoencoder, data.frames)
    assert abs(float(z.mean())) < 0.05 and abs(float(z.std()) - 1) < 0.1
    policy.save(tmp_path)

    loaded = load_toy(tmp_path, "float32", torch.device("cpu"))
    text = data.prompts[:2]
    assert torch.equal(loaded.encode(text), policy.encode(text))
    loaded.attach_adapter(LORA, seed=0)
    schedule = Schedule.flow_match(6, 3.0)
    gens = [torch.Generator().manual_seed(i) for i in range(2)]
    traj = sample(
        loaded,
        loaded.encode(text),
        loaded.encode(["", ""]),
        gens,
        loaded.latent_shape(FRAMES, SIZE, SIZE),
        schedule,
        2.0,
        SDE,
        [0, 1, 2],
    )
    frames = loaded.decode(traj.final)
    assert frames.shape == (2, FRAMES, SIZE, SIZE, 3) and frames.dtype == torch.uint8
    # On-policy, the recomputed log-probs are the stored ones: the update stage's ratio is exactly 1.
    again = recompute_log_probs(
        loaded,
        traj.latents,
        traj.next_latents,
        traj.steps,
        schedule,
        loaded.encode(text),
        loaded.encode(["", ""]),
        2.0,
        SDE,
    )
    assert torch.equal(again, traj.log_probs)
    assert loaded.trainable_parameters() and all(p.requires_grad for p in loaded.trainable_parameters())

    with pytest.raises(UserError, match="no pretrained toy policy"):
        load_toy(tmp_path / "missing")
    (tmp_path / "autoencoder.safetensors").write_bytes(b"broken")
    with pytest.raises(UserError, match="unreadable"):
        load_toy(tmp_path)


def test_missing_clips_are_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="toy clips in .* are missing or unreadable.*dvc repro toy-data"):
        load_clips(tmp_path)


def test_rotation_vectors_round_trip() -> None:
    v = torch.tensor([[0.1, -0.2, 0.05], [0.0, 0.0, 0.0], [0.0, 1.2, 0.0]], dtype=torch.float64)
    r = rotation_matrix(v)
    assert torch.allclose(r @ r.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(3, 3, 3), atol=1e-12)
    assert np.allclose(rotation_vector(r.numpy()), v.numpy(), atol=1e-9)


def angle_deg(r: np.ndarray) -> np.ndarray:
    return np.degrees(np.linalg.norm(rotation_vector(r), axis=-1))


def test_toy_reconstructor_recovers_relative_cameras(clips: tuple[ToyData, Path], tmp_path: Path) -> None:
    data, _ = clips
    recon = ToyReconstructor.fresh(16, 2, data.K[0, 0], (SIZE, SIZE), seed=0)
    cfg = ToyReconstructorPretrainConfig(
        net=ToyReconstructorNetConfig(width=16, levels=2), train=TrainingConfig(steps=300, batch=8, lr=2e-3)
    )
    losses = pretrain_reconstructor(recon, data, cfg, seed=0)
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])
    recon.save(tmp_path)
    loaded = load_toy_reconstructor(tmp_path, torch.device("cpu"))

    held_out = render_clips(
        list(range(10_000, 10_000 + HELD_OUT)), ClipSpec(FRAMES, SIZE, SIZE, 0.0, SUPERSAMPLE), workers=2
    )
    rot, trans, rot_still, trans_still = [], [], [], []
    for clip in held_out:
        out = loaded.reconstruct(clip.video.frames)
        truth = relative_poses(clip.video.w2c)
        assert np.allclose(out.extrinsics[0], np.eye(4)) and out.depth.shape == (FRAMES, SIZE, SIZE)
        rot.append(angle_deg(out.extrinsics[:, :3, :3] @ truth[:, :3, :3].transpose(0, 2, 1)).mean())
        trans.append(np.linalg.norm(out.extrinsics[:, :3, 3] - truth[:, :3, 3], axis=-1).mean())
        rot_still.append(angle_deg(truth[:, :3, :3]).mean())  # what "the camera never moved" would score
        trans_still.append(np.linalg.norm(truth[:, :3, 3], axis=-1).mean())
    assert np.mean(rot) < ROTATION_BOUND_DEG and np.mean(trans) < TRANSLATION_BOUND, (np.mean(rot), np.mean(trans))
    # ...and it has learnt how the camera turned, not just that most frames are close to the first.
    assert np.mean(rot) < 0.8 * np.mean(rot_still), (np.mean(rot), np.mean(rot_still))
    with pytest.raises(UserError, match="no pretrained toy reconstructor"):
        load_toy_reconstructor(tmp_path / "missing")


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_depth_unet_keeps_any_frame_size_at_every_depth(levels: int, tmp_path: Path) -> None:
    net = DepthNet(4, levels)
    assert len(net.encoders) == levels + 1 and len(net.decoders) == levels
    for hw in ((32, 32), (30, 22)):  # odd halvings too: each decoder meets its skip's size
        assert net(torch.rand(2, 3, *hw)).shape == (2, *hw)
    # The number of levels is the reconstructor's: it comes back from disk as it was trained.
    recon = ToyReconstructor.fresh(4, levels, HAND_K, (SIZE, SIZE), seed=0)
    recon.save(tmp_path)
    loaded = load_toy_reconstructor(tmp_path, torch.device("cpu"))
    assert len(loaded.net.depth.decoders) == levels
    frames = np.random.default_rng(0).integers(0, 256, (FRAMES, SIZE, SIZE, 3), dtype=np.uint8)
    assert torch.equal(loaded.reconstruct(frames).depth, recon.reconstruct(frames).depth)
    # A reconstructor saved before `levels` existed is named as stale, with the rerun that mends it.
    config = json.loads((tmp_path / "config.json").read_text())
    del config["levels"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match=r"unreadable \('levels'\).*dvc repro -f toy-pretrain"):
        load_toy_reconstructor(tmp_path, torch.device("cpu"))


# A hand camera for the size-independence test: f = 30 px, centred, at the 32x32 working size.
HAND_K = np.array([[30.0, 0.0, 16.0], [0.0, 30.0, 16.0], [0.0, 0.0, 1.0]])


def test_toy_reconstructor_works_at_its_size_on_videos_of_any_size() -> None:
    frames = np.random.default_rng(1).integers(0, 256, (FRAMES, SIZE, SIZE, 3), dtype=np.uint8)
    recon = ToyReconstructor.fresh(8, 3, HAND_K, (SIZE, SIZE), seed=0)

    # At the working size: exactly what the network makes of the frames, no resize in between.
    out = recon.reconstruct(frames)
    log_depth, w2c = recon.net(frames_tensor(frames)[None])
    assert torch.equal(out.depth, log_depth[0].exp()) and np.array_equal(out.extrinsics, w2c[0].double().numpy())
    assert np.array_equal(out.intrinsics, np.repeat(HAND_K[None], FRAMES, 0))
    assert np.array_equal(out.images, frames) and out.frame_hw == (SIZE, SIZE) and out.process_hw == (SIZE, SIZE)

    # 4x larger by whole blocks: the same video, so the same reconstruction; K in the large pixels.
    big = recon.reconstruct(frames.repeat(4, 1).repeat(4, 2))
    assert big.frame_hw == (128, 128) and big.process_hw == (SIZE, SIZE) and big.conf.shape == (FRAMES, SIZE, SIZE)
    np.testing.assert_array_equal(big.images, frames)
    np.testing.assert_allclose(big.depth.numpy(), out.depth.numpy(), rtol=1e-4)
    np.testing.assert_allclose(big.extrinsics, out.extrinsics, atol=1e-4)
    np.testing.assert_array_equal(big.intrinsics[3], [[120.0, 0.0, 64.0], [0.0, 120.0, 64.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(big.cameras.resized(SIZE, SIZE).K, out.intrinsics)

    # Non-square: each axis scaled on its own (64/32 across, 48/32 down), depth at the working size.
    wide = recon.reconstruct(np.random.default_rng(0).integers(0, 256, (FRAMES, 48, 64, 3), dtype=np.uint8))
    assert (
        wide.frame_hw == (48, 64)
        and wide.depth.shape == (FRAMES, SIZE, SIZE)
        and wide.images.shape[1:] == (SIZE, SIZE, 3)
    )
    assert wide.images.dtype == np.uint8 and np.isfinite(wide.depth.numpy()).all()
    np.testing.assert_array_equal(wide.intrinsics[0], [[60.0, 0.0, 32.0], [0.0, 45.0, 24.0], [0.0, 0.0, 1.0]])
    # A video smaller than the working size is enlarged, not refused.
    small = recon.reconstruct(frames[:, ::2, ::2])
    assert (
        small.depth.shape == (FRAMES, SIZE, SIZE) and small.intrinsics[0, 0, 0] == 15.0 and small.frame_hw == (16, 16)
    )


def test_toy_classifier_learns_the_labels_of_a_few_clips(tmp_path: Path) -> None:
    # Plain renders (no supersampling) are enough to see a network memorise labels, and quick.
    save_clips(render_clips(list(range(8)), ClipSpec(FRAMES, SIZE, SIZE, 0.5, 1), workers=1), tmp_path)
    few = load_clips(tmp_path)
    assert set(few.consistent.tolist()) == {True, False}
    classifier = ToyClassifier.fresh(8, (SIZE, SIZE), seed=0)
    cfg = ToyClassifierPretrainConfig(
        net=ToyClassifierNetConfig(width=8), train=TrainingConfig(steps=CLASSIFIER_STEPS, batch=8, lr=5e-3), heldout=2
    )
    losses = pretrain_classifier(classifier, few, cfg, seed=0)
    assert len(losses) == CLASSIFIER_STEPS and all(np.isfinite(losses))
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10]), (np.mean(losses[:10]), np.mean(losses[-10:]))
    assert not classifier.net.training and not any(p.requires_grad for p in classifier.net.parameters())
    # Deterministic from the seed, like the other toy models.
    again = ToyClassifier.fresh(8, (SIZE, SIZE), seed=0)
    assert pretrain_classifier(again, few, cfg, seed=0) == losses

    made = render_clips([heldout_seed(0, i) for i in range(4)], ClipSpec(FRAMES, SIZE, SIZE, 0.5, 1), workers=1)
    report = heldout_report(classifier, made)
    assert report["classifier_heldout_clips"] == 4 and 0 <= report["classifier_heldout_accuracy"] <= 1
    assert sum(k["clips"] for k in report["classifier_heldout_by_corruption"].values()) == 4


def test_toy_classifier_heldout_seeds_are_their_own() -> None:
    heldout = {heldout_seed(0, i) for i in range(1000)}
    assert not heldout & {clip_seed(0, i) for i in range(1000)}
    assert not heldout & {suite_seed(0, i) for i in range(1000)}


def test_toy_classifier_saves_loads_and_reads_videos_of_any_size(tmp_path: Path) -> None:
    frames = np.random.default_rng(2).integers(0, 256, (FRAMES, SIZE, SIZE, 3), dtype=np.uint8)
    classifier = ToyClassifier.fresh(8, (SIZE, SIZE), seed=0)
    p = classifier.p_consistent(frames)
    assert 0.0 < p < 1.0 and p == float(torch.sigmoid(classifier.net(frames_tensor(frames)[None]))[0])

    classifier.save(tmp_path)
    loaded = load_toy_classifier(tmp_path, torch.device("cpu"))
    assert loaded.frame_hw == (SIZE, SIZE) and loaded.p_consistent(frames) == p
    saved, back = classifier.net.state_dict(), loaded.net.state_dict()
    assert saved.keys() == back.keys() and all(torch.equal(saved[k], back[k]) for k in saved)

    # 4x larger by whole blocks: the same video after the area resize, so the same probability.
    assert loaded.p_consistent(frames.repeat(4, 1).repeat(4, 2)) == pytest.approx(p, abs=1e-5)
    # Non-square, smaller, longer: resized to the working size, any number of frames (two at least).
    rng = np.random.default_rng(3)
    for shape in ((FRAMES, 48, 64, 3), (FRAMES, 16, 16, 3), (9, SIZE, SIZE, 3), (2, SIZE, SIZE, 3)):
        assert 0.0 <= loaded.p_consistent(rng.integers(0, 256, shape, dtype=np.uint8)) <= 1.0
    with pytest.raises(ValueError, match="F >= 2"):
        loaded.p_consistent(frames[:1])

    with pytest.raises(UserError, match="no pretrained toy consistency classifier") as info:
        load_toy_classifier(tmp_path / "missing")
    assert "\n" not in info.value.line() and "dvc repro toy-classifier" in info.value.line()
    (tmp_path / "classifier.safetensors").write_bytes(b"broken")
    with pytest.raises(UserError, match="unreadable"):
        load_toy_classifier(tmp_path)
