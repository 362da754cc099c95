"""Where the synthetic world's camera stands: orientation in the camera frame, framing, visibility.

Steps 1, 2 and 4 of an image of the synthetic world (``synthetic``; design in
``docs/synthetic_world.md``): the body's orientation turned into the camera frame with a random pitch
and roll, a weak-perspective camera placed as HMR's crops are, and which projected keypoints are seen.

Letters in shapes: K keypoints (19), V vertices, H/W image.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from hmr_core import camera, constants
from hmr_core.rotation import axis_angle_to_matrix, matrix_to_axis_angle

if TYPE_CHECKING:
    from hmr_core.synthetic import WorldConfig


# --------------------------------------------------------------------------------------------------
# Geometry: orientation, camera, labels
# --------------------------------------------------------------------------------------------------
def _rotation_x(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rotation_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def camera_global_orient(global_orient_smpl: np.ndarray, view_pitch: float, view_roll: float) -> np.ndarray:
    """θ's global orientation in the camera frame: R = R_z(roll) · R_x(pitch) · R_x(π) · R_smpl.

    R_x(π) turns SMPL's y-up body upright in the y-down camera frame (as ``regressor.mean_theta``);
    then the camera's pitch (looking down on or up at the body) and roll (a tilted camera).

    Args:
        global_orient_smpl: (3,) axis-angle orientation in SMPL's frame (``PoseSamples.global_orient``).
        view_pitch: radians, about the camera's x axis.
        view_roll: radians, about the camera's optical axis.

    Returns:
        (3,) axis-angle global orientation in the camera frame.
    """
    r_smpl = axis_angle_to_matrix(torch.as_tensor(global_orient_smpl, dtype=torch.float64)).numpy()
    rotation = _rotation_z(view_roll) @ _rotation_x(view_pitch) @ _rotation_x(math.pi) @ r_smpl
    return matrix_to_axis_angle(torch.from_numpy(rotation)).numpy()


class Framing(NamedTuple):
    """Where the camera puts the body.

    Attributes:
        cam: (3,) weak-perspective camera (s, tx, ty).
        truncated: whether the body was pushed partly out of the crop on purpose.
        box_diagonal_px: the diagonal of the body's tight box in the crop, pixels.
    """

    cam: np.ndarray
    truncated: bool
    box_diagonal_px: float


def frame_body(vertices_xy: np.ndarray, rng: np.random.Generator, config: WorldConfig,
               img_size: int = constants.IMG_SIZE) -> Framing:
    """Place a weak-perspective camera as HMR's crops do: box diagonal, jittered scale and shift, truncation.

    Args:
        vertices_xy: (V, 2) x, y of the body in the camera frame, metres.
        rng: NumPy random generator.
        config: the world's settings.
        img_size: side of the crop in pixels.

    Returns:
        ``Framing``.
    """
    half = img_size / 2.0
    low, high = vertices_xy.min(0), vertices_xy.max(0)
    extent = high - low  # (2,) metres
    diagonal_px = config.box_diagonal * rng.uniform(1.0 - config.scale_jitter, 1.0 + config.scale_jitter)
    scale = diagonal_px / (half * max(float(np.hypot(*extent)), 1e-6))  # normalised units per metre
    centre = (low + high) / 2.0
    shift = rng.uniform(-config.translation_max, config.translation_max, 2) / half  # normalised units
    truncated = bool(rng.random() < config.truncation_probability)
    if truncated:
        axis, side = int(rng.integers(2)), rng.choice((-1.0, 1.0))
        half_extent = scale * extent[axis] / 2.0  # normalised
        out = rng.uniform(*config.truncation_range) * 2.0 * half_extent  # how far the box's edge leaves
        shift[axis] = side * (1.0 + out - half_extent)
    transl = shift / scale - centre  # x_n = s (X + t): the box centre lands at ``shift``
    return Framing(np.array([scale, transl[0], transl[1]]), truncated, float(diagonal_px))


def keypoint_visibility(
    keypoints_2d: np.ndarray,
    occluded: np.ndarray | None,
    img_size: int = constants.IMG_SIZE,
) -> np.ndarray:
    """Visibility of projected keypoints.

    1 inside the crop and not under an occluder, else 0. Self-occluded
    keypoints stay visible, as annotators label them. "Inside" is |x|, |y| ≤ 1
    in normalised coordinates (as ``augment.transform_keypoints``).

    Args:
        keypoints_2d: (K, 2) normalised keypoints.
        occluded: (H, W) bool mask of occluded pixels, or None.
        img_size: side of the crop.

    Returns:
        (K,) float32 visibility.
    """
    inside = (np.abs(keypoints_2d) <= 1.0).all(axis=1)
    visible = inside.copy()
    if occluded is not None:
        pixel = camera.normalized_to_pixel(
            torch.from_numpy(keypoints_2d), img_size
        ).numpy()
        # (K, 2) column, row
        pixel = np.floor(pixel).clip(0, img_size - 1).astype(np.int64)
        visible &= ~(inside & occluded[pixel[:, 1], pixel[:, 0]])
    return visible.astype(np.float32)
