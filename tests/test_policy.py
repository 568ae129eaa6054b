"""The tiny Wan policy: same numbers as WanPipeline, LoRA adapters that load where diffusers loads them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open

from worldr1 import config
from worldr1.errors import UserError
from worldr1.grpo.sampler import Schedule, sample
from worldr1.policy import Policy, WanPolicy, load_wan
from worldr1.policy.tiny import tiny_tokenizer


@pytest.fixture
def params(params_dict: dict[str, Any]) -> config.Params:
    params_dict["policy"]["model"] = "tiny"
    return config.validate(params_dict)


@pytest.fixture
def policy(params: config.Params) -> WanPolicy:
    return load_wan(params.policy, torch.device("cpu"))


def noise(shape: tuple[int, ...], seeds: list[int]) -> torch.Tensor:
    return torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(s)) for s in seeds])


def test_tiny_policy_implements_the_interface(policy: WanPolicy) -> None:
    assert isinstance(policy, Policy)
    shape = policy.latent_shape(17, 64, 96)
    assert shape == (16, 5, 8, 12)
    text = policy.encode(["Camera push in. A hall.", ""])
    assert text.shape == (2, 64, 32)
    x = noise(shape, [0, 1])
    v = policy.velocity(x, torch.tensor([900.0, 900.0]), text)
    assert v.shape == x.shape and v.dtype == torch.float32
    frames = policy.decode(x)
    assert frames.shape == (2, 17, 64, 96, 3) and frames.dtype == torch.uint8


def test_tiny_is_the_same_model_in_every_process(params: config.Params) -> None:
    a, b = load_wan(params.policy), load_wan(params.policy)
    for (name, p), (_, q) in zip(a.transformer.named_parameters(), b.transformer.named_parameters()):
        assert torch.equal(p, q), name


def test_tokenizer_is_offline_and_t5_like() -> None:
    tok = tiny_tokenizer()
    ids = tok(["Camera pan left. Café’s façade."], padding="max_length", max_length=40, truncation=True).input_ids[0]
    assert ids[len("Camera pan left. Café’s façade.")] == tok.eos_token_id == 1
    assert ids[-1] == tok.pad_token_id == 0 and tok.unk_token_id not in ids


def test_ode_sampler_with_cfg_reproduces_wan_pipeline(policy: WanPolicy) -> None:
    texts, steps, shift, cfg = ["Camera orbit left. A lighthouse.", "Camera push in. A library."], 6, 3.0, 5.0
    shape = policy.latent_shape(9, 32, 48)
    start = noise(shape, [3, 4])
    schedule = Schedule.flow_match(steps, shift)
    ours = sample(
        policy,
        policy.encode(texts),
        policy.encode(["blurry"] * 2),
        [torch.Generator()] * 2,
        shape,
        schedule,
        cfg,
        _sde(),
        steps=[],
        initial=start,
    ).final
    from diffusers import FlowMatchEulerDiscreteScheduler

    policy.pipe.scheduler = FlowMatchEulerDiscreteScheduler(shift=shift)
    policy.pipe.set_progress_bar_config(disable=True)
    theirs = policy.pipe(
        prompt=texts,
        negative_prompt="blurry",
        num_frames=9,
        height=32,
        width=48,
        num_inference_steps=steps,
        guidance_scale=cfg,
        latents=start.clone(),
        output_type="latent",
        max_sequence_length=policy.max_sequence_length,
    ).frames
    assert theirs.abs().mean() > 0.1  # a real output, not zeros
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def _sde() -> config.SdeConfig:
    return config.SdeConfig(kind="flow_grpo", noise_level=0.7, train_fraction=0.5, window=0)


def test_fresh_adapter_changes_nothing_and_reference_disables_it(policy: WanPolicy, params: config.Params) -> None:
    x, t = noise(policy.latent_shape(5, 32, 32), [5]), torch.tensor([700.0])
    text = policy.encode(["Camera pan right. A dune."])
    before = policy.velocity(x, t, text)
    policy.attach_adapter(params.policy, seed=0)
    assert len(policy.trainable_parameters()) == 2 * 4 * 2 * 2  # A and B x 4 targets x 2 attentions x 2 blocks
    assert all(p.requires_grad and p.dtype == torch.float32 for p in policy.trainable_parameters())
    torch.testing.assert_close(policy.velocity(x, t, text), before, rtol=0, atol=0)
    with torch.no_grad():
        for name, p in policy.transformer.named_parameters():
            if "lora_B" in name:
                p.add_(0.05)
    moved = policy.velocity(x, t, text)
    assert (moved - before).abs().max() > 1e-3
    with policy.reference():
        torch.testing.assert_close(policy.velocity(x, t, text), before, rtol=0, atol=0)
    torch.testing.assert_close(policy.velocity(x, t, text), moved, rtol=0, atol=0)


def test_adapter_round_trips_and_loads_into_wan_pipeline(tmp_path: Path, params: config.Params) -> None:
    trained = load_wan(params.policy)
    trained.attach_adapter(params.policy, seed=0)
    with torch.no_grad():
        for name, p in trained.transformer.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05, generator=torch.Generator().manual_seed(1))
    trained.save_adapter(tmp_path, params.policy)
    keys = list(header(tmp_path / "pytorch_lora_weights.safetensors")["__metadata__"])
    assert keys == sorted(keys) and len(keys) >= 2

    x, t = noise(trained.latent_shape(5, 32, 32), [6]), torch.tensor([500.0])
    text = trained.encode(["Camera move left. A street."])
    want = trained.velocity(x, t, text)

    reloaded = load_wan(params.policy)
    reloaded.attach_adapter(params.policy, seed=123, directory=tmp_path)
    torch.testing.assert_close(reloaded.velocity(x, t, text), want, rtol=0, atol=0)

    # The file is diffusers' own LoRA format: WanPipeline.load_lora_weights reads it.
    plain = load_wan(params.policy)
    base_out = plain.velocity(x, t, text)
    plain.pipe.load_lora_weights(str(tmp_path), adapter_name="ours")
    torch.testing.assert_close(plain.velocity(x, t, text), want, rtol=1e-5, atol=1e-5)
    assert (want - base_out).abs().max() > 1e-3


def header(path: Path) -> dict[str, Any]:
    raw = path.read_bytes()
    return json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])


# numpy, not torch: the same writer (safetensors' Rust core) without seconds of imports per process
SAVE = """
import sys, numpy as np
from safetensors.numpy import save_file
from worldr1.store import sort_safetensors_metadata
meta = {k: k * 3 for k in ["format", "lora_adapter_metadata", "a", "b", "c", "d", "e", "f"]}
save_file({"w": np.arange(6.0, dtype=np.float32).reshape(2, 3), "b": np.ones(5, dtype=np.float16)}, sys.argv[1], metadata=meta)
sort_safetensors_metadata(__import__("pathlib").Path(sys.argv[1]))
"""


def test_adapter_files_are_the_same_bytes_in_every_process(tmp_path: Path) -> None:
    # safetensors writes its metadata map in a per-process order: the same adapter hashed differently
    # from run to run, and DVC reran every later round.
    paths = [tmp_path / f"{i}.safetensors" for i in range(4)]
    for path in paths:
        subprocess.run([sys.executable, "-c", SAVE, str(path)], check=True)
    assert len({p.read_bytes() for p in paths}) == 1
    assert list(header(paths[0])["__metadata__"]) == sorted(header(paths[0])["__metadata__"])
    with safe_open(str(paths[0]), framework="pt") as f:
        assert f.metadata()["a"] == "aaa"
        torch.testing.assert_close(f.get_tensor("w"), torch.arange(6.0).reshape(2, 3))
        torch.testing.assert_close(f.get_tensor("b"), torch.ones(5, dtype=torch.float16))


def test_adapter_of_another_rank_is_a_user_error(tmp_path: Path, params_dict: dict[str, Any]) -> None:
    params_dict["policy"]["model"] = "tiny"
    first = config.validate(params_dict)
    p = load_wan(first.policy)
    p.attach_adapter(first.policy, seed=0)
    p.save_adapter(tmp_path, first.policy)
    params_dict["policy"]["lora"]["rank"] = 8
    other = config.validate(params_dict)
    with pytest.raises(UserError, match="does not fit policy.lora"):
        load_wan(other.policy).attach_adapter(other.policy, seed=0, directory=tmp_path)
    with pytest.raises(UserError, match="no LoRA adapter at"):
        load_wan(other.policy).attach_adapter(other.policy, seed=0, directory=tmp_path / "missing")
    (tmp_path / "pytorch_lora_weights.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken")
    with pytest.raises(UserError, match="is unreadable"):
        load_wan(first.policy).attach_adapter(first.policy, seed=0, directory=tmp_path)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("wan3", "unknown policy.model 'wan3'"),
        ("wan2.1-1.3b", r"model Wan-AI/Wan2.1-T2V-1.3B-Diffusers \(model_index.json\) not found locally"),
        ("someone/some-wan", r"model someone/some-wan \(model_index.json\) not found locally"),
    ],
)
def test_missing_weights_or_unknown_model(
    params_dict: dict[str, Any], model: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("WORLDR1_MODELS", str(tmp_path / "models"))
    params_dict["policy"]["model"] = model
    with pytest.raises(UserError, match=message):
        load_wan(config.validate(params_dict).policy)


def test_bad_lora_targets_are_a_user_error(params_dict: dict[str, Any]) -> None:
    params_dict["policy"]["model"] = "tiny"
    params_dict["policy"]["lora"]["targets"] = ["to_qq"]
    cfg = config.validate(params_dict).policy
    with pytest.raises(UserError, match="do not fit this model"):
        load_wan(cfg).attach_adapter(cfg, seed=0)


def test_attention_is_pinned_to_one_kernel(params: config.Params, params_dict: dict[str, Any]) -> None:
    from diffusers.models.attention_dispatch import AttentionBackendName

    from worldr1.policy.attention import EFFICIENT, FLASH, resolve_attention
    from worldr1.policy.load import load_policy

    assert resolve_attention("auto", torch.device("cpu"), torch.float32) == FLASH
    assert resolve_attention("auto", torch.device("cuda"), torch.bfloat16) == FLASH
    assert resolve_attention("auto", torch.device("cuda"), torch.float32) == EFFICIENT
    assert resolve_attention("_native_math", torch.device("cpu"), torch.float32) == "_native_math"
    with pytest.raises(UserError, match="unknown policy.attention 'flash3'.*use auto, or one of"):
        resolve_attention("flash3", torch.device("cpu"), torch.float32)
    policy = load_policy(params.policy, torch.device("cpu"))
    assert policy.attention == FLASH
    processors = [m.processor for m in policy.transformer.modules() if hasattr(m, "processor")]
    assert processors and all(p._attention_backend == AttentionBackendName(FLASH) for p in processors)
    # On the CPU the pinned kernel is the one torch picks unasked: pinning moves no number.
    shape = policy.latent_shape(5, 32, 32)
    x, t, text = noise(shape, [1]), torch.tensor([700.0]), policy.encode(["Camera push in. A red cube."])
    pinned = policy.velocity(x, t, text)
    policy.transformer.reset_attention_backend()
    assert torch.equal(pinned, policy.velocity(x, t, text))
