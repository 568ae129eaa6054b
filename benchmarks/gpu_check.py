"""GPU check (issue 18): what the CPU cannot show, in one run on one H100/H200 with nothing downloaded.

1. a bf16 rollout and update round of a randomly initialised full-size Wan 2.1 1.3B transformer
   (its config: 30 layers, 12 heads of 128, ffn 8960) and Wan 2.1's VAE, at 81x480x832 or the
   largest of `--sizes` that fits, through the project's own `rollout_round` and `Trainer` with
   the attention kernel `load_policy` pins; it prints on_policy_ratio_deviation, which must be 0
   (or at bf16 rounding: the update recomputes the stored log-probs with autograd on);
2. the MFU of one transformer forward at that size (model FLOPs over time over the card's peak);
3. reconstruct of one rollout video with DA3-GIANT's architecture (random weights, its Gaussian
   head, so the held-out scene's second pass runs), rendered with gsplat.

Each stage prints its seconds and peak GPU memory. The text encoder is a one-layer UMT5 at Wan's
width (4096) instead of UMT5-XXL: random text embeddings do as well for timing and ratios.
`benchmarks/gpu_check.sh` runs this after the gsplat parity test. `--smoke` runs the same code at
toy sizes on the CPU (a check that the script itself works, not a measurement).

    python benchmarks/gpu_check.py [--smoke] [--sizes 81x480x832,49x480x832,33x480x832]
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
import yaml

from worldr1 import config
from worldr1.grpo.rollout import PromptRow, rollout_round
from worldr1.grpo.sampler import Schedule
from worldr1.grpo.trainer import Trainer
from worldr1.grpo.update import stored_samples
from worldr1.policy import seeded
from worldr1.policy.attention import pin_attention, resolve_attention
from worldr1.policy.load import load_policy

#: Wan 2.1 T2V 1.3B's transformer (its config.json)
WAN_1_3B = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=12,
    attention_head_dim=128,
    in_channels=16,
    out_channels=16,
    text_dim=4096,
    freq_dim=256,
    ffn_dim=8960,
    num_layers=30,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    eps=1e-6,
    rope_max_seq_len=1024,
)
SMOKE = dict(WAN_1_3B, num_attention_heads=2, attention_head_dim=16, ffn_dim=64, num_layers=2, text_dim=64, freq_dim=32)
#: dense bf16 peak of an H100/H200 SXM, FLOP/s (override with --peak-tflops for another card)
PEAK_BF16 = 989e12
PROMPT = PromptRow(
    "gpu-check", "Camera orbit left. A stone lighthouse on a headland at dusk, waves below.", ("orbit_left",), "train"
)


@contextmanager
def stage(name: str, results: dict) -> Iterator[None]:
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    yield
    if cuda:
        torch.cuda.synchronize()
    results[name] = {
        "seconds": round(time.perf_counter() - start, 2),
        "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
    }
    print(f"{name}: {results[name]}", flush=True)


def wan_params(smoke: bool, frames: int, height: int, width: int) -> config.Params:
    raw = yaml.safe_load((Path(config.__file__).parent / "profiles" / "wan2.1-1.3b.yaml").read_text())
    raw["rounds"] = {"r000": {"prev": "base", "phase": "3d"}}
    raw["evaluate"]["policy"] = "r000"
    raw["policy"]["model"] = "tiny"  # then swapped for the full-size random transformer (`full_size`)
    raw["rollout"].update(frames=frames, height=height, width=width, group_size=2, steps=4 if smoke else 20)
    raw["grpo"].update(minibatch_samples=2, inner_epochs=1)
    if smoke:
        raw["reconstruct"].update(process_res=56, renderer="torch")
    return config.validate(raw)


def full_size(policy, smoke: bool) -> None:  # noqa: ANN001
    """The tiny policy's modules replaced by Wan 2.1 1.3B's transformer and VAE (random weights) and a
    one-layer UMT5 at the transformer's text width; the adapter attached again."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    cfg = SMOKE if smoke else WAN_1_3B
    with seeded(0):
        transformer = WanTransformer3DModel(**cfg)
        vae = (
            AutoencoderKLWan(
                base_dim=8, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
            )
            if smoke
            else AutoencoderKLWan()
        )
        encoder = UMT5EncoderModel(
            UMT5Config(
                vocab_size=len(policy.pipe.tokenizer),
                d_model=cfg["text_dim"],
                d_kv=64,
                d_ff=256,
                num_layers=1,
                num_heads=4,
                relative_attention_num_buckets=8,
                pad_token_id=0,
                eos_token_id=1,
                decoder_start_token_id=0,
            )
        )
    transformer = transformer.to(policy.device, policy.dtype).eval()
    # As from_pretrained(torch_dtype=bf16) loads Wan: its norms, time embedding and rope stay float32.
    keep = transformer._keep_in_fp32_modules or []
    for name, t in [*transformer.named_parameters(), *transformer.named_buffers()]:
        if any(k in name.split(".") for k in keep):
            t.data = t.data.float()
    policy.pipe.transformer = policy.transformer = transformer
    policy.pipe.vae = vae.to(policy.device, torch.float32).eval()
    policy.pipe.text_encoder = encoder.to(policy.device, policy.dtype).eval()
    policy.attention = resolve_attention("auto", policy.device, policy.dtype)
    pin_attention(policy.transformer, policy.attention)


def forward_flops(cfg: dict, tokens: int, text_tokens: int) -> float:
    """Model FLOPs of one transformer forward: 2 per multiply-add of the linear layers, plus the
    attention matmuls (self: 4 * tokens^2 * dim per layer; cross: 4 * tokens * text * dim)."""
    dim = cfg["num_attention_heads"] * cfg["attention_head_dim"]
    per_layer = (
        2 * tokens * (4 * dim * dim)
        + 2 * tokens * (2 * dim * dim)
        + 2 * text_tokens * (2 * dim * dim)
        + 2 * tokens * (2 * dim * cfg["ffn_dim"])
        + 4 * tokens * tokens * dim
        + 4 * tokens * text_tokens * dim
    )
    return float(cfg["num_layers"] * per_layer)


def out_of_memory(exc: BaseException) -> bool:
    # cuBLAS and cuDNN report it as a plain RuntimeError
    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and ("out of memory" in str(exc) or "ALLOC" in str(exc))
    )


def try_sizes(sizes: list[tuple[int, int, int]], run: Callable[[tuple[int, int, int]], dict]) -> dict:
    for size in sizes:
        try:
            return run(size)
        except (torch.OutOfMemoryError, RuntimeError) as exc:
            if not out_of_memory(exc):
                raise
            print(f"{'x'.join(map(str, size))}: out of memory, trying the next size", flush=True)
        # Outside the except block: its traceback held the failed attempt's model and activations.
        gc.collect()
        torch.cuda.empty_cache()
    raise SystemExit("no size fits")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="toy sizes on the CPU: checks the script, measures nothing")
    ap.add_argument("--sizes", default="81x480x832,49x480x832,33x480x832")
    ap.add_argument("--peak-tflops", type=float, default=PEAK_BF16 / 1e12)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if not args.smoke and not torch.cuda.is_available():
        raise SystemExit("no cuda: run with --smoke to check the script on the CPU")
    sizes = [(5, 32, 32)] if args.smoke else [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    results: dict = {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu", "stages": {}}

    def round_at(size: tuple[int, int, int]) -> dict:
        frames, height, width = size
        params = wan_params(args.smoke, frames, height, width)
        stages: dict = {}
        with stage("load", stages):
            policy = load_policy(params.policy)
            full_size(policy, args.smoke)
            policy.attach_adapter(params.policy, params.seed, None)
            policy.prepare_training()
        ro = params.rollout
        schedule = Schedule.flow_match(ro.steps, ro.shift)
        with tempfile.TemporaryDirectory(prefix="worldr1-gpu-check-") as tmp:
            out = Path(tmp) / "rollout"
            with stage("rollout", stages), torch.no_grad():
                samples = rollout_round(policy, params, "r000", "3d", [PROMPT], out)
            ok = [r for r in samples.to_pylist() if r["status"] == "ok"]
            if len(ok) != ro.group_size:
                raise SystemExit(f"rollout failed: {[r['error'] for r in samples.to_pylist()]}")
            rewards = pa.Table.from_pylist(
                [
                    {
                        "sample_id": r["sample_id"],
                        "status": "ok",
                        "reward": float(i),
                        "advantage": 1.0 if i % 2 == 0 else -1.0,
                    }
                    for i, r in enumerate(ok)
                ]
            )
            data = stored_samples(out, samples, rewards, schedule, "r000")
            trainer = Trainer(policy, params.grpo, ro.sde, schedule, ro.cfg, ro.negative_prompt)
            with stage("update", stages):
                metrics = trainer.train(data.samples, np.random.default_rng(0))
            cfg = SMOKE if args.smoke else WAN_1_3B
            shape = policy.latent_shape(frames, height, width)
            tokens = shape[1] * (shape[2] // 2) * (shape[3] // 2)
            latents = torch.randn((1, *shape), device=policy.device)
            text = policy.encode([PROMPT.text])
            t = torch.tensor([500.0], device=policy.device)
            with torch.no_grad():
                policy.velocity(latents, t, text)  # warm-up
                with stage("transformer_forward", stages):
                    policy.velocity(latents, t, text)
            flops = forward_flops(cfg, tokens, text.shape[1])
            seconds = stages["transformer_forward"]["seconds"]
            from worldr1.video import read_mp4

            video = read_mp4(out / ok[0]["video"])
        return {
            "size": f"{frames}x{height}x{width}",
            "attention": policy.attention,
            "stages": stages,
            "on_policy_ratio_deviation": metrics.on_policy_ratio_deviation,
            "optimizer_steps": metrics.optimizer_steps,
            "transformer_tflops": round(flops / 1e12, 1),
            "mfu": None if args.smoke else round(flops / seconds / (args.peak_tflops * 1e12), 3),
            "video": video,
            "params": params,
        }

    wan = try_sizes(sizes, round_at)
    video, params = wan.pop("video"), wan.pop("params")
    results["wan"] = wan
    print(json.dumps(wan), flush=True)

    from worldr1.reconstruct.da3 import DA3Reconstructor, _import_api
    from worldr1.reconstruct.run import reconstruct_frames

    stages: dict = {}
    with stage("da3_load", stages):
        api = _import_api()
        reconstructor = object.__new__(DA3Reconstructor)
        with seeded(0):
            model = api(model_name="da3-small" if args.smoke else "da3-giant")
        reconstructor.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        reconstructor.process_res = params.reconstruct.process_res
        reconstructor.model = model.to(reconstructor.device).eval()
        reconstructor.name = "da3-giant (random weights)"
        reconstructor.has_gaussian_head = getattr(model.model, "gs_head", None) is not None
    passes: list[int] = []
    whole = reconstructor.reconstruct

    def counted(frames: np.ndarray):  # noqa: ANN202
        passes.append(len(frames))
        return whole(frames)

    reconstructor.reconstruct = counted
    with tempfile.TemporaryDirectory(prefix="worldr1-gpu-check-") as tmp, stage("reconstruct", stages):
        row = reconstruct_frames(
            reconstructor,
            video,
            "gpu-check",
            "r000",
            Path(tmp),
            params.reconstruct,
            params.rollout.fps,
            reconstructor.device,
        )
    results["reconstruct"] = {
        "stages": stages,
        "status": row["status"],
        "error": row["error"],
        "gaussian_head": reconstructor.has_gaussian_head,
        "passes": passes,
        "n_gaussians": row["n_gaussians"],
        "gaussian_frames": row["gaussian_frames"],
    }
    print(json.dumps(results["reconstruct"]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    # A random model's video may fail a check before the scene is built: then nothing was measured.
    if row["status"] != "ok" or (reconstructor.has_gaussian_head and len(passes) != 2):
        raise SystemExit(f"reconstruct did not run through: {row['status']} {row['error']}, passes {passes}")


if __name__ == "__main__":
    main()
