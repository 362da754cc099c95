"""Pose pools on disk: the real bodies the discriminator learns from (paper, Sec. 3.3 and 4).

A pool is an ``.npz`` with ``pose`` (N, 72) and ``shape`` (N, ≥ 10): CMU mocap fitted with MoSh, AMASS
converted to SMPL, or the pool of the pose prior (``python -m hmr_core.pose_prior`` writes one).

Letters in shapes: N bodies.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from hmr_core import constants
from hmr_core.archetypes import ARCHETYPES, Archetype

if TYPE_CHECKING:  # pragma: no cover - typing only; hmr_core.pose_prior imports this module
    from hmr_core.pose_prior import PoseSamples


class PosePool(NamedTuple):
    """A pool of real (or prior) bodies for the discriminator.

    Attributes:
        pose: (N, 72) axis-angle θ (the global orientation in the first 3).
        shape: (N, 10) β.
    """

    pose: torch.Tensor
    shape: torch.Tensor


class PosePoolError(ValueError):
    """A pose-pool file is missing, unreadable, or not in the expected format."""


def load_pose_pool(path: str | Path, num_betas: int = constants.NUM_BETAS) -> PosePool:
    """Load a pool of bodies, e.g. CMU mocap fitted with MoSh, or AMASS converted to SMPL.

    The file is an ``.npz`` with ``pose`` (N, 72) and ``shape`` (N, ≥ num_betas) arrays of finite
    numbers (read without unpickling anything).

    Args:
        path: the ``.npz`` file.
        num_betas: how many shape coefficients to keep.

    Returns:
        ``PosePool`` of float32 tensors.

    Raises:
        PosePoolError: naming the file and the missing key, wrong shape, or first non-finite row.
    """
    from hmr_core.annotations import read_npz

    path = Path(path)
    arrays = read_npz(path, PosePoolError, "pose pool")
    missing = [k for k in ("pose", "shape") if k not in arrays]
    if missing:
        raise PosePoolError(f"{path} is missing key(s) {missing}: a pose pool needs 'pose' (N, 72) and "
                            f"'shape' (N, 10); it has {sorted(arrays)}")
    pose, shape = arrays["pose"], arrays["shape"]
    if pose.ndim != 2 or pose.shape[1] != constants.POSE_DIM:
        raise PosePoolError(f"{path}: 'pose' has shape {pose.shape}, expected (N, {constants.POSE_DIM})")
    if shape.ndim != 2 or shape.shape[1] < num_betas or shape.shape[0] != pose.shape[0]:
        raise PosePoolError(f"{path}: 'shape' has shape {shape.shape}, expected ({pose.shape[0]}, ≥{num_betas}) "
                            f"to match 'pose' {pose.shape}")
    for key, array in (("pose", pose), ("shape", shape)):
        if not np.issubdtype(array.dtype, np.number):
            raise PosePoolError(f"{path}: '{key}' has dtype {array.dtype}, expected numbers")
        bad = ~np.isfinite(array).all(axis=1)
        if bad.any():
            raise PosePoolError(f"{path}: '{key}' row {int(np.argmax(bad))} holds NaN or infinite values "
                                f"({int(bad.sum())} such rows)")
    return PosePool(torch.as_tensor(pose, dtype=torch.float32), torch.as_tensor(shape[:, :num_betas], dtype=torch.float32))


def save_pose_pool(path: str | Path, samples: PoseSamples, betas: torch.Tensor,
                   archetypes: tuple[Archetype, ...] = ARCHETYPES) -> None:
    """Write a prior pool in the pose-pool format (``load_pose_pool`` reads it back).

    Args:
        path: the ``.npz`` to write.
        samples: the poses; ``pose`` gets their global orientation.
        betas: (N, 10) shapes to store with them.
        archetypes: names stored alongside the archetype indices.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        pose=samples.pose_with_global_orient().numpy().astype(np.float32),
        shape=betas.numpy().astype(np.float32),
        archetype=samples.archetype.numpy().astype(np.int16),
        archetype_names=np.array([a.name for a in archetypes]),
    )

