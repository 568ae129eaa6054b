"""Umeyama Sim(3) alignment of point sets (camera centres), with a RANSAC option."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sim3:
    """`x -> s * R @ x + t`."""

    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    def apply(self, points: np.ndarray) -> np.ndarray:
        return self.scale * points @ self.rotation.T + self.translation

    def inverse(self) -> Sim3:
        rt = self.rotation.T
        return Sim3(1.0 / self.scale, rt, -(rt @ self.translation) / self.scale)

    def apply_to_w2c(self, w2c: np.ndarray) -> np.ndarray:
        """Extrinsics of the same cameras in the transformed world (rotation and centre mapped)."""
        c2w = np.linalg.inv(w2c)
        out = np.tile(np.eye(4), (len(w2c), 1, 1))
        out[:, :3, :3] = self.rotation @ c2w[:, :3, :3]
        out[:, :3, 3] = self.apply(c2w[:, :3, 3])
        return np.linalg.inv(out)


def umeyama(src: np.ndarray, dst: np.ndarray, with_scale: bool = True) -> Sim3:
    """The least-squares similarity mapping `src [N, 3]` onto `dst [N, 3]` (Umeyama 1991), float64.

    Degenerate inputs (fewer than 2 distinct points) raise ValueError: there is no alignment to find.
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3:
        raise ValueError(f"need two [N, 3] point sets, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    var_s = (xs**2).sum() / len(src)
    if var_s < 1e-18:
        raise ValueError("cannot align: the source points all coincide")
    cov = xd.T @ xs / len(src)
    u, d, vt = np.linalg.svd(cov)
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2, 2] = -1
    rotation = u @ sign @ vt
    scale = float(np.trace(np.diag(d) @ sign) / var_s) if with_scale else 1.0
    return Sim3(scale, rotation, mu_d - scale * rotation @ mu_s)


def umeyama_ransac(
    src: np.ndarray,
    dst: np.ndarray,
    threshold: float,
    iterations: int = 200,
    rng: np.random.Generator | None = None,
    with_scale: bool = True,
) -> tuple[Sim3, np.ndarray]:
    """Umeyama on the largest consensus set of random 3-point samples; returns (fit, inlier mask).

    `threshold` is in `dst` units, after alignment.
    """
    rng = rng or np.random.default_rng(0)
    n = len(src)
    best = np.zeros(n, dtype=bool)
    for _ in range(iterations):
        pick = rng.choice(n, size=min(3, n), replace=False)
        try:
            fit = umeyama(src[pick], dst[pick], with_scale)
        except ValueError:
            continue
        inliers = np.linalg.norm(fit.apply(src) - dst, axis=1) < threshold
        if inliers.sum() > best.sum():
            best = inliers
    if best.sum() < 2:
        return umeyama(src, dst, with_scale), np.ones(n, dtype=bool)
    return umeyama(src[best], dst[best], with_scale), best


def align_passes(src_w2c: np.ndarray, src_depth: np.ndarray, dst_w2c: np.ndarray, dst_depth: np.ndarray) -> Sim3:
    """The similarity taking the world of one reconstruction pass onto another's, from the same frames
    seen by both: `*_w2c [N, 4, 4]` and `*_depth [N, h, w]` at those frames.

    Camera centres alone fail on a pan (the centres coincide), so the rotation is the mean of the
    per-frame world rotations (projected back onto SO(3)), the scale the median ratio of the two
    passes' depths at the same pixels (depth is in camera units, so this holds for any motion),
    and the translation what then maps the centres onto each other on average.
    """
    src_c2w, dst_c2w = np.linalg.inv(src_w2c), np.linalg.inv(dst_w2c)
    u, _, vt = np.linalg.svd((dst_c2w[:, :3, :3] @ np.swapaxes(src_c2w[:, :3, :3], 1, 2)).sum(0))
    rotation = u @ np.diag([1.0, 1.0, float(np.sign(np.linalg.det(u @ vt)))]) @ vt
    valid = np.isfinite(src_depth) & np.isfinite(dst_depth) & (src_depth > 0) & (dst_depth > 0)
    if not valid.any():
        raise ValueError("cannot align the passes: no pixel has a valid depth in both")
    scale = float(np.median(dst_depth[valid] / src_depth[valid]))
    translation = (dst_c2w[:, :3, 3] - scale * src_c2w[:, :3, 3] @ rotation.T).mean(0)
    return Sim3(scale, rotation, translation)
