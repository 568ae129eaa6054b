"""The toy reconstructor: a small feed-forward network trained on toy-world ground truth, behind the
`Reconstructor` protocol, so the score path is the same code as with Depth Anything 3.

Like DA3 it predicts, from the frames alone, a depth map per frame and every frame's camera
relative to the first (OpenCV world-to-camera, frame 0 at the identity). Two heads:
- depth: a small U-Net on each frame, log-depth out;
- pose: a CNN on (frame 0, frame i) stacked, a rotation vector and a translation out.
The intrinsics are the toy cameras' own (a fixed field of view), as DA3's would be estimated.
Like DA3 with `process_res`, it works at its own size (the one it was trained at): other frames are
resized to it, and the intrinsics come back in the input frames' pixels, so renders are at the video's size.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from worldr1.device import default_device, seeded
from worldr1.errors import UserError
from worldr1.geometry.cameras import resize_intrinsics, rotation_matrix
from worldr1.reconstruct.base import Reconstruction

NAME = "toy"
WEIGHTS = "reconstructor.safetensors"
CONFIG = "config.json"


def conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.GroupNorm(4, cout), nn.SiLU())


class DepthNet(nn.Module):
    """A U-Net over `levels` halvings: log-depth `[B, H, W]` of images `[B, 3, H, W]` in [0, 1].
    Channels double per level up to 4x `width`. A third level (4x4 at 32x32) halved the held-out
    depth error of the second at the same training compute (benchmarks/reconstructor_heldout.py):
    where a pixel lies on the floor needs the whole frame's perspective, not a 3x3 neighbourhood."""

    def __init__(self, width: int, levels: int) -> None:
        super().__init__()
        chans = [width * min(2**level, 4) for level in range(levels + 1)]
        self.encoders = nn.ModuleList([nn.Sequential(conv(3, width), conv(width, width))])
        self.encoders.extend(
            nn.Sequential(conv(cin, cout, 2), conv(cout, cout)) for cin, cout in zip(chans[:-1], chans[1:])
        )
        self.decoders = nn.ModuleList(conv(deep + c, c) for deep, c in zip(chans[1:], chans[:-1]))
        self.out = nn.Conv2d(width, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for encode in self.encoders:
            x = encode(x)
            skips.append(x)
        for decode, skip in zip(reversed(self.decoders), reversed(skips[:-1])):
            x = decode(torch.cat([nn.functional.interpolate(x, size=skip.shape[-2:]), skip], 1))
        return self.out(x)[:, 0]


class PoseNet(nn.Module):
    """Frame i's camera relative to frame 0's from the two images: (rotation vector, translation)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        # Where things moved matters, not only how much: the features keep a 4x4 layout into the head.
        self.features = nn.Sequential(
            conv(9, width),
            conv(width, 2 * width, 2),
            conv(2 * width, 4 * width, 2),
            conv(4 * width, 4 * width, 2),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Linear(64 * width, 8 * width), nn.SiLU(), nn.Linear(8 * width, 6))

    def forward(self, first: torch.Tensor, other: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.head(self.features(torch.cat([first, other, other - first], 1)))
        return out[:, :3], out[:, 3:]


def rotation_vector(r: np.ndarray) -> np.ndarray:
    """Matrices `[..., 3, 3]` -> rotation vectors `[..., 3]` (angles below pi)."""
    cos = np.clip((np.trace(r, axis1=-2, axis2=-1) - 1) / 2, -1.0, 1.0)
    angle = np.arccos(cos)
    axis = np.stack([r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0], r[..., 1, 0] - r[..., 0, 1]], -1)
    scale = np.where(angle > 1e-8, angle / (2 * np.sin(np.maximum(angle, 1e-8))), 0.5)
    return axis * scale[..., None]


def relative_poses(w2c: np.ndarray) -> np.ndarray:
    """`w2c [..., F, 4, 4]` -> every frame's camera in frame 0's (frame 0 becomes the identity)."""
    return w2c @ np.linalg.inv(w2c[..., :1, :, :])


class ToyReconstructorNet(nn.Module):
    def __init__(self, width: int, levels: int) -> None:
        super().__init__()
        self.depth = DepthNet(width, levels)
        self.pose = PoseNet(width)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames `[B, F, 3, H, W]` in [0, 1] -> log-depth `[B, F, H, W]`, relative w2c `[B, F, 4, 4]`."""
        b, f = frames.shape[:2]
        flat = frames.flatten(0, 1)
        log_depth = self.depth(flat).view(b, f, *frames.shape[-2:])
        first = frames[:, :1].expand_as(frames).flatten(0, 1)
        rotvec, t = self.pose(first, flat)
        w2c = torch.zeros((b * f, 4, 4), dtype=frames.dtype, device=frames.device)
        w2c[:, :3, :3] = rotation_matrix(rotvec)
        w2c[:, :3, 3] = t
        w2c[:, 3, 3] = 1.0
        # Frame 0 is the reference by definition, not by what the network says of it.
        w2c = w2c.view(b, f, 4, 4)
        eye = torch.eye(4, dtype=w2c.dtype, device=w2c.device).expand(b, 1, 4, 4)
        return log_depth, torch.cat([eye, w2c[:, 1:]], 1)


def frames_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 `[..., F, H, W, 3]` -> float `[..., F, 3, H, W]` in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).float().div(255.0).movedim(-1, -3)


def resize_frames(frames: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Float frames `[F, 3, H, W]` at `hw`; already there, untouched (bit-identical to not resizing).

    Shrinking averages each output pixel's area, as DA3's preprocessing does (cv2 INTER_AREA): fine
    texture is averaged, not aliased, and a video enlarged by whole blocks comes back as it was.
    Enlarging (a video smaller than the working size) is bilinear. Both are deterministic.
    """
    if tuple(frames.shape[-2:]) == tuple(hw):
        return frames
    if frames.shape[-2] >= hw[0] and frames.shape[-1] >= hw[1]:
        return nn.functional.interpolate(frames, size=hw, mode="area")
    return nn.functional.interpolate(frames, size=hw, mode="bilinear", align_corners=False, antialias=True).clamp(
        0.0, 1.0
    )


def to_uint8_frames(frames: torch.Tensor) -> np.ndarray:
    """Float `[F, 3, H, W]` in [0, 1] -> uint8 `[F, H, W, 3]` (the colours the scene's Gaussians take)."""
    return frames.mul(255.0).round().clamp(0, 255).to(torch.uint8).movedim(1, -1).contiguous().cpu().numpy()


class ToyReconstructor:
    """Reconstructs videos of any size at the size it was trained on (`frame_hw`, its working size);
    intrinsics are the toy cameras', scaled to the input frames' pixels."""

    def __init__(
        self, net: ToyReconstructorNet, K: np.ndarray, frame_hw: tuple[int, int], device: torch.device | None = None
    ) -> None:
        self.net = net.eval().requires_grad_(False)
        self.K = np.asarray(K, dtype=np.float64)
        self.frame_hw = frame_hw
        self.device = device or default_device()
        self.net.to(self.device)
        self.name = NAME

    @torch.no_grad()
    def reconstruct(self, frames: np.ndarray) -> Reconstruction:
        """uint8 `[F, H, W, 3]` of any size -> depth/conf/images at `frame_hw`, cameras in the input's pixels."""
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be [F, H, W, 3], got {list(frames.shape)}")
        input_hw = (int(frames.shape[1]), int(frames.shape[2]))
        same = input_hw == tuple(self.frame_hw)
        work = resize_frames(frames_tensor(frames).to(self.device), self.frame_hw)
        log_depth, w2c = self.net(work[None])
        n = frames.shape[0]
        # The toy K is the trained size's camera: the same camera seen at the input's pixel grid.
        K = self.K if same else resize_intrinsics(self.K, self.frame_hw, input_hw)
        return Reconstruction(
            depth=log_depth[0].exp().float().cpu(),
            conf=torch.ones((n, *self.frame_hw)),
            images=np.ascontiguousarray(frames) if same else to_uint8_frames(work),
            extrinsics=w2c[0].double().cpu().numpy(),
            intrinsics=np.repeat(K[None], n, 0),
            frame_hw=input_hw,
        )

    def save(self, directory: Path) -> None:
        save_file({k: v.contiguous().cpu() for k, v in self.net.state_dict().items()}, str(directory / WEIGHTS))
        config = {
            "width": self.net.depth.out.in_channels,
            "levels": len(self.net.depth.decoders),
            "K": self.K.tolist(),
            "frame_hw": list(self.frame_hw),
        }
        (directory / CONFIG).write_text(json.dumps(config, indent=1) + "\n")

    @classmethod
    def fresh(cls, width: int, levels: int, K: np.ndarray, frame_hw: tuple[int, int], seed: int) -> ToyReconstructor:
        with seeded(seed):
            return cls(ToyReconstructorNet(width, levels), K, frame_hw, torch.device("cpu"))


def load_toy_reconstructor(directory: Path, device: torch.device | None = None) -> ToyReconstructor:
    """The toy reconstructor the `toy-pretrain` stage wrote to `directory`."""
    if not (directory / CONFIG).is_file():
        raise UserError(
            f"no pretrained toy reconstructor in {directory}",
            "run `dvc repro toy-pretrain` (reconstruct.backend toy is trained by the pipeline itself)",
        )
    try:
        config = json.loads((directory / CONFIG).read_text())
        net = ToyReconstructorNet(int(config["width"]), int(config["levels"]))
        net.load_state_dict(load_file(str(directory / WEIGHTS)))
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as exc:
        raise UserError(
            f"the toy reconstructor in {directory} is unreadable ({str(exc).splitlines()[0][:160]})",
            "rerun `dvc repro -f toy-pretrain`",
        ) from None
    return ToyReconstructor(net, np.array(config["K"]), tuple(config["frame_hw"]), device)
