"""Time of one rollout group: our SDE sampler (with log-prob bookkeeping) vs diffusers' WanPipeline.

Same model, prompt, steps, shift, CFG and group size; both stop at latents (no VAE decode), so
the difference is the sampler's own cost. Target: ours within 1.10x of the pipeline.

    python benchmarks/rollout_speed.py [--repeats 3] [--configs tiny,mid]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from diffusers import FlowMatchEulerDiscreteScheduler, WanTransformer3DModel

from worldr1.config import LoraConfig, PolicyConfig, SdeConfig
from worldr1.grpo.sampler import Schedule, sample, trained_steps
from worldr1.policy import load_wan, seeded

CONFIGS = {
    # name: (transformer overrides, frames, height, width)
    "tiny": ({}, 17, 64, 64),
    "mid": ({"num_attention_heads": 4, "attention_head_dim": 32, "ffn_dim": 512, "num_layers": 6}, 33, 128, 128),
}


def build(name: str):  # noqa: ANN201
    overrides, frames, height, width = CONFIGS[name]
    policy = load_wan(
        PolicyConfig(
            model="tiny", dtype="float32", attention="auto", lora=LoraConfig(rank=8, alpha=16.0, targets=["to_q"])
        ),
        torch.device("cuda" if torch.cuda.is_available() else "cpu"),
    )
    if overrides:
        config = dict(policy.transformer.config)
        config.update(overrides)
        with seeded(0):
            policy.transformer = policy.pipe.transformer = WanTransformer3DModel.from_config(config).eval()
        policy.transformer.to(policy.device)
    return policy, frames, height, width


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--configs", default="tiny,mid")
    ap.add_argument("--group", type=int, default=4)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    sde = SdeConfig(kind="flow_grpo", noise_level=0.7, train_fraction=0.5, window=0)
    prompt, cfg, shift = "Camera orbit left. A stone lighthouse on a headland.", 5.0, 5.0
    print(
        f"device={'cuda' if torch.cuda.is_available() else 'cpu'} threads={torch.get_num_threads()} "
        f"group={args.group} steps={args.steps} repeats={args.repeats}"
    )
    for name in args.configs.split(","):
        policy, frames, height, width = build(name)
        params = sum(p.numel() for p in policy.transformer.parameters())
        shape = policy.latent_shape(frames, height, width)
        schedule = Schedule.flow_match(args.steps, shift)
        policy.pipe.scheduler = FlowMatchEulerDiscreteScheduler(shift=shift)
        policy.pipe.set_progress_bar_config(disable=True)
        cond = policy.encode([prompt]).expand(args.group, -1, -1)
        uncond = policy.encode([""]).expand(args.group, -1, -1)

        def ours() -> None:
            gens = [torch.Generator().manual_seed(i) for i in range(args.group)]
            sample(policy, cond, uncond, gens, shape, schedule, cfg, sde, trained_steps(schedule, sde))

        def theirs() -> None:
            policy.pipe(
                prompt=prompt,
                negative_prompt="",
                num_frames=frames,
                height=height,
                width=width,
                num_inference_steps=args.steps,
                guidance_scale=cfg,
                num_videos_per_prompt=args.group,
                output_type="latent",
                max_sequence_length=policy.max_sequence_length,
                generator=torch.Generator().manual_seed(0),
            )

        times: dict[str, list[float]] = {"ours": [], "pipeline": []}
        ours(), theirs()  # warm-up
        for _ in range(args.repeats):
            for label, fn in (("ours", ours), ("pipeline", theirs)):
                start = time.perf_counter()
                fn()
                times[label].append(time.perf_counter() - start)
        a, b = statistics.median(times["ours"]), statistics.median(times["pipeline"])
        print(
            f"{name}: transformer {params / 1e6:.2f}M params, latents {list(shape)}; "
            f"ours {a:.3f}s, WanPipeline {b:.3f}s (medians of {args.repeats}), ratio {a / b:.3f}"
        )


if __name__ == "__main__":
    main()
