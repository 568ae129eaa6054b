"""Pretraining of the toy models on toy clips: the policy by flow matching, the reconstructor on
true depth and cameras. Both are ordinary supervised loops; what they learn from is `ToyData`."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import torch

from worldr1.config import ToyPolicyPretrainConfig, ToyReconstructorPretrainConfig, TrainingConfig
from worldr1.ids import derive_seed
from worldr1.policy.toy import ToyAutoencoder, ToyPolicy, frames_to_pixels, video_latents
from worldr1.reconstruct.toy import ToyReconstructor, frames_tensor, relative_poses
from worldr1.toyworld.data import ToyData

WARMUP = 20
# Rotation entries are ~0.1 for the toy moves' few degrees; this puts them on the translations' scale.
ROTATION_WEIGHT = 10.0


def learning_rate(cfg: TrainingConfig, step: int) -> float:
    """Linear warm-up, then a cosine down to a tenth."""
    if step < WARMUP:
        return cfg.lr * (step + 1) / WARMUP
    done = (step - WARMUP) / max(1, cfg.steps - WARMUP)
    return cfg.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * done)))


def optimizer_step(
    opt: torch.optim.Optimizer, loss: torch.Tensor, cfg: TrainingConfig, step: int, clip: torch.nn.Module | None = None
) -> float:
    """One step at the schedule's learning rate (gradients of `clip` clipped to norm 1); the loss."""
    for group in opt.param_groups:
        group["lr"] = learning_rate(cfg, step)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(clip.parameters(), 1.0)
    opt.step()
    return float(loss.detach())


def tail_mean(losses: list[float], n: int = 50) -> float | None:
    """The mean of the last `n` losses: what a report says a training loop ended at."""
    return float(np.mean(losses[-n:])) if losses else None


def shifted_sigmas(u: torch.Tensor, shift: float) -> torch.Tensor:
    """Noise levels drawn as the sampler spends its steps: uniform, then the schedule's shift."""
    return shift * u / (1 + (shift - 1) * u)


def pretrain_autoencoder(
    ae: ToyAutoencoder, data: ToyData, cfg: TrainingConfig, seed: int, progress: Callable[[int], None] | None = None
) -> list[float]:
    """Frames through the autoencoder and back (L1 + L2 on pixels, a light L2 on the latents to keep
    their scale); then the latent mean and std over the training frames, for normalisation."""
    pixels = frames_to_pixels(data.frames).flatten(0, 1)  # [N*F, 3, H, W]
    ae.train().requires_grad_(True)
    opt = torch.optim.AdamW(ae.parameters(), lr=cfg.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(derive_seed(seed, "toy-pretrain", "autoencoder"))
    losses = []
    for step in range(cfg.steps):
        x = pixels[torch.randint(len(pixels), (cfg.batch,), generator=gen)]
        z = ae.encoder(x)
        out = ae.decoder(z)
        loss = (out - x).abs().mean() + ((out - x) ** 2).mean() + 1e-4 * (z**2).mean()
        losses.append(optimizer_step(opt, loss, cfg, step))
        if progress:
            progress(step + 1)
    ae.eval().requires_grad_(False)
    with torch.no_grad():
        z = torch.cat([ae.encoder(pixels[i : i + 256]) for i in range(0, len(pixels), 256)])
        ae.mean.copy_(z.mean((0, 2, 3)))
        ae.std.copy_(z.std((0, 2, 3)).clamp_min(1e-3))
    return losses


def pretrain_policy(
    policy: ToyPolicy,
    data: ToyData,
    cfg: ToyPolicyPretrainConfig,
    shift: float,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[float], list[float]]:
    """The autoencoder, then flow matching of the transformer and the word encoder on the clips'
    latents at `x_t = (1 - sigma) x0 + sigma noise`, as Wan is trained, through the policy's
    x-prediction with the loss on the clean latents: every noise level weighs the same, where the
    velocity loss (x-error / sigma^2) would spend a short training on the easy low-noise end and leave
    the model blind at the noisy start of sampling. The policy ends with the EMA weights.
    Returns the autoencoder's and the transformer's losses."""
    total = cfg.autoencoder.steps + cfg.train.steps
    ae_losses = pretrain_autoencoder(
        policy.autoencoder, data, cfg.autoencoder, seed, (lambda n: progress(n, total)) if progress else None
    )
    latents = video_latents(policy.autoencoder, data.frames)
    modules = torch.nn.ModuleDict({"transformer": policy.transformer, "text": policy.text_encoder})
    modules.train().requires_grad_(True)
    ema = copy.deepcopy(modules).requires_grad_(False)
    opt = torch.optim.AdamW(modules.parameters(), lr=cfg.train.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(derive_seed(seed, "toy-pretrain", "policy"))
    ids = policy.tokenizer(data.prompts)
    losses = []
    for step in range(cfg.train.steps):
        pick = torch.randint(len(data), (cfg.train.batch,), generator=gen)
        x0, words = latents[pick], ids[pick].clone()
        words[torch.rand(len(pick), generator=gen) < cfg.text_dropout] = 0
        sigma = shifted_sigmas(torch.rand(len(pick), generator=gen), shift)
        noise = torch.randn(x0.shape, generator=gen)
        s = sigma.view(-1, 1, 1, 1, 1)
        clean = policy.clean((1 - s) * x0 + s * noise, 1000 * sigma, policy.text_encoder(words))
        losses.append(optimizer_step(opt, torch.nn.functional.mse_loss(clean, x0), cfg.train, step, clip=modules))
        with torch.no_grad():
            for e, p in zip(ema.parameters(), modules.parameters()):
                e.lerp_(p, 1 - min(cfg.ema_decay, (1 + step) / (10 + step)))
        if progress:
            progress(cfg.autoencoder.steps + step + 1, total)
    modules.load_state_dict(ema.state_dict())
    modules.eval().requires_grad_(False)
    return ae_losses, losses


def pretrain_reconstructor(
    recon: ToyReconstructor,
    data: ToyData,
    cfg: ToyReconstructorPretrainConfig,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
) -> list[float]:
    """Supervised on the clips' truth: L1 on log-depth, on the relative rotation matrices and on the
    relative translations. All clips count, inconsistent ones too: their cameras and per-frame depth
    are as true as any, and the policy's videos will look like both kinds."""
    net = recon.net.train().requires_grad_(True)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.train.lr, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(derive_seed(seed, "toy-pretrain", "reconstructor"))
    frames = frames_tensor(data.frames)
    log_depth = torch.from_numpy(data.depth).clamp_min(1e-3).log()
    rel = torch.from_numpy(relative_poses(data.w2c)).float()
    losses = []
    for step in range(cfg.train.steps):
        pick = torch.randint(len(data), (cfg.train.batch,), generator=gen)
        x = frames[pick]
        # A little pixel noise: the policy's videos are never as clean as the renders.
        x = x + 0.03 * torch.rand(len(pick), 1, 1, 1, 1, generator=gen) * torch.randn(x.shape, generator=gen)
        pred_depth, pred_w2c = net(x.clamp(0, 1))
        target = rel[pick]
        loss = (
            (pred_depth - log_depth[pick]).abs().mean()
            + (pred_w2c[:, :, :3, :3] - target[:, :, :3, :3]).abs().mean() * ROTATION_WEIGHT
            + (pred_w2c[:, :, :3, 3] - target[:, :, :3, 3]).abs().mean()
        )
        losses.append(optimizer_step(opt, loss, cfg.train, step))
        if progress:
            progress(step + 1, cfg.train.steps)
    net.eval().requires_grad_(False)
    return losses
