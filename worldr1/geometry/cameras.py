"""Pinhole cameras in OpenCV convention: world-to-camera 4x4 extrinsics, intrinsics in pixels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Cameras:
    """`F` cameras of one video: `w2c [F, 4, 4]` and `K [F, 3, 3]` (pixels of a `height x width` frame), float64."""

    w2c: np.ndarray
    K: np.ndarray
    height: int
    width: int

    def __post_init__(self) -> None:
        n = len(self.w2c)
        if self.w2c.shape != (n, 4, 4) or self.K.shape != (n, 3, 3):
            raise ValueError(f"need w2c [F, 4, 4] and K [F, 3, 3], got {self.w2c.shape} and {self.K.shape}")

    def __len__(self) -> int:
        return len(self.w2c)

    @property
    def c2w(self) -> np.ndarray:
        return invert(self.w2c)

    @property
    def centres(self) -> np.ndarray:
        """Camera positions in the world `[F, 3]`."""
        return self.c2w[:, :3, 3]

    def resized(self, height: int, width: int) -> Cameras:
        return Cameras(self.w2c, resize_intrinsics(self.K, (self.height, self.width), (height, width)), height, width)

    def path_length(self) -> float:
        """Sum of the distances between consecutive camera centres."""
        return float(np.linalg.norm(np.diff(self.centres, axis=0), axis=1).sum()) if len(self) > 1 else 0.0


def invert(m: np.ndarray) -> np.ndarray:
    """Inverse of rigid 4x4 transforms (batched): [R t] -> [R^T, -R^T t]."""
    out = np.zeros_like(m, dtype=np.float64)
    rt = np.swapaxes(m[..., :3, :3], -1, -2)
    out[..., :3, :3] = rt
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", rt, m[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out


def to_4x4(extrinsics: np.ndarray) -> np.ndarray:
    """`[..., 3, 4]` (or already `[..., 4, 4]`) extrinsics as 4x4 matrices (float64)."""
    extrinsics = np.asarray(extrinsics, dtype=np.float64)
    if extrinsics.shape[-2:] == (4, 4):
        return extrinsics.copy()
    out = np.zeros((*extrinsics.shape[:-2], 4, 4))
    out[..., :3, :] = extrinsics
    out[..., 3, 3] = 1.0
    return out


def resize_intrinsics(K: np.ndarray, old_hw: tuple[int, int], new_hw: tuple[int, int]) -> np.ndarray:
    """Intrinsics of the same camera for a resized image (pixel centres at +0.5 stay aligned)."""
    sy, sx = new_hw[0] / old_hw[0], new_hw[1] / old_hw[1]
    out = np.array(K, dtype=np.float64, copy=True)
    out[..., 0, 0] *= sx
    out[..., 0, 2] *= sx
    out[..., 1, 1] *= sy
    out[..., 1, 2] *= sy
    return out


def intrinsics_from_fov(height: int, width: int, fov_x_deg: float) -> np.ndarray:
    f = width / (2 * np.tan(np.radians(fov_x_deg) / 2))
    return np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])


def look_at(centre: np.ndarray, target: np.ndarray, up: np.ndarray | None = None) -> np.ndarray:
    """World-to-camera of a camera at `centre` looking at `target` (OpenCV: y down, so up defaults to -y)."""
    up = np.array([0.0, -1.0, 0.0]) if up is None else up
    forward = target - centre
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-9:
        raise ValueError("look_at: the view direction is parallel to up")
    right = right / np.linalg.norm(right)
    down = np.cross(forward, right)
    c2w = np.eye(4)
    c2w[:3, :3] = np.stack([right, down, forward], axis=1)
    c2w[:3, 3] = centre
    return invert(c2w)


def rotation_matrix(rotvec: torch.Tensor) -> torch.Tensor:
    """Rodrigues: rotation vectors `[B, 3]` -> matrices `[B, 3, 3]` (differentiable)."""
    skew = torch.zeros((*rotvec.shape[:-1], 3, 3), dtype=rotvec.dtype, device=rotvec.device)
    x, y, z = rotvec.unbind(-1)
    skew[..., 0, 1], skew[..., 0, 2], skew[..., 1, 2] = -z, y, -x
    skew[..., 1, 0], skew[..., 2, 0], skew[..., 2, 1] = z, -y, x
    return torch.linalg.matrix_exp(skew)
