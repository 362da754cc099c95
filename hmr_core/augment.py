"""Data augmentation as in HMR's training: crop, random scale, translation, rotation, flip, colour noise.

A training sample is a person in an image, located by SPIN's and HMR's box convention: a square of side
``200 · scale`` pixels around ``center``. The crop that the network sees (``constants.IMG_SIZE`` = 224
pixels) is one similarity transform of the image: scale, rotation about the box centre and translation,
optionally followed by a horizontal flip. Everything that lives in the image (keypoints) or in the
camera's frame (3D joints, the global orientation of θ) goes through the same transform, so the labels
stay consistent with the pixels (HMR, Sec. 4 "Datasets"; chapter "Data").

Conventions:

* Image coordinates are continuous: the image spans [0, W] × [0, H] and pixel (i, j) covers
  [i, i + 1) × [j, j + 1), so its centre is at (i + 0.5, j + 0.5). Annotations in pixel-index coordinates
  (LSP, MPII, COCO: the centre of the top-left pixel at (0, 0)) are shifted by half a pixel on reading
  (``hmr_core.datasets``). With this convention a flip is exactly x → W - x and the crop's normalised
  coordinates are exactly ``2 x / IMG_SIZE - 1`` in [-1, 1], as in HMR's code.
* Keypoints in the crop are normalised to [-1, 1] (HMR); a keypoint that falls outside the crop keeps
  its visibility and lies beyond [-1, 1], so truncated bodies are supervised, as in HMR's code
  (``AugmentConfig.keep_outside_keypoints`` switches this off).
* 3D joints and θ's global orientation are in the camera's frame (x right, y down, z forward, as in
  the preprocessed datasets), so an in-plane image rotation by ``rotation`` degrees is a rotation about
  the camera's z axis, and a horizontal flip is the mirror x → -x.

Defaults: HMR's code jitters the scale in [0.8, 1.23] and the translation by up to 20 pixels
(``src/config.py``: ``scale_min``, ``scale_max``, ``trans_max``) and flips half the samples, mirroring the
keypoints, θ and the 3D joints (``src/util/data_utils.py``: ``random_flip``, ``reflect_pose``). It
neither rotates nor changes colours. The per-channel colour noise in [0.6, 1.4] is SPIN's (Kolotouros et
al., ICCV 2019; ``utils/train_options.py``: ``noise_factor`` 0.4). The rotation is this project's own
choice, uniform in ±30° for 60% of the samples; SPIN's (``datasets/base_dataset.py``, ``augm_params``)
is N(0, 30°) clipped at ±60°, applied to 40% of the samples (``rot_factor`` 30).

Letters in shapes: B batch, K keypoints, J joints, H/W image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from hmr_core import constants
from hmr_core.rotation import axis_angle_to_matrix, matrix_to_axis_angle

if TYPE_CHECKING:  # pragma: no cover - Pillow is imported where images are handled
    from PIL import Image


@dataclass(frozen=True)
class AugmentConfig:
    """How much to jitter each training sample (``None`` of a field, or 0, switches it off)."""

    scale_min: float = 0.8  # box size multiplied by a factor in [scale_min, scale_max] (HMR's code)
    scale_max: float = 1.23
    translation_max: float = 20.0  # shift of the box centre, crop pixels, in each axis (HMR's trans_max)
    # In-plane rotation, uniform in [-rotation_max, rotation_max] degrees, for a share of the samples: this
    # project's choice (HMR's code does not rotate; SPIN: N(0, 30°) clipped at ±60°, on 40% of the samples).
    rotation_max: float = 30.0
    rotation_probability: float = 0.6
    flip_probability: float = 0.5  # horizontal flips (HMR's code: random_flip; SPIN kept it)
    color_noise: float = 0.4  # per-channel gain in [1 - color_noise, 1 + color_noise] (SPIN's pn)
    # Keypoints pushed out of the crop keep their visibility and are supervised (HMR's code); False: invisible.
    keep_outside_keypoints: bool = True


# For evaluation: crop around the annotated box, nothing random.
NO_AUGMENTATION = AugmentConfig(scale_min=1.0, scale_max=1.0, translation_max=0.0, rotation_max=0.0,
                                rotation_probability=0.0, flip_probability=0.0, color_noise=0.0)


class AugmentParams(NamedTuple):
    """The random draws for one sample (all neutral: the plain crop of the annotated box).

    Attributes:
        scale: multiplies the box size (> 1 zooms out).
        translation: (2,) shift of the box centre in crop pixels (x right, y down).
        rotation: in-plane rotation in degrees; positive turns the person clockwise on screen.
        flip: mirror the crop left-right.
        color_gain: (3,) per-channel multiplicative gains.
    """

    scale: float = 1.0
    translation: tuple[float, float] = (0.0, 0.0)
    rotation: float = 0.0
    flip: bool = False
    color_gain: tuple[float, float, float] = (1.0, 1.0, 1.0)


def sample_augment_params(config: AugmentConfig, generator: torch.Generator | None = None) -> AugmentParams:
    """Draw one sample's augmentation.

    Args:
        config: the ranges.
        generator: torch random generator; None uses torch's global one (seeded per DataLoader worker).

    Returns:
        ``AugmentParams``.
    """
    u = torch.rand(9, generator=generator, dtype=torch.float64).tolist()
    scale = config.scale_min + (config.scale_max - config.scale_min) * u[0]
    translation = (config.translation_max * (2 * u[1] - 1), config.translation_max * (2 * u[2] - 1))
    rotation = config.rotation_max * (2 * u[3] - 1) if u[4] < config.rotation_probability else 0.0
    flip = u[5] < config.flip_probability
    color_gain = tuple(1 - config.color_noise + 2 * config.color_noise * g for g in u[6:9])
    return AugmentParams(scale, translation, rotation, flip, color_gain)


# --------------------------------------------------------------------------------------------------
# The crop as one affine map from image to crop coordinates
# --------------------------------------------------------------------------------------------------
def crop_transform(center, box_size: float, params: AugmentParams = AugmentParams(),
                   out_size: int = constants.IMG_SIZE) -> np.ndarray:
    """The 2×3 affine matrix A that maps image points to crop points, x_crop = A [x_img; 1].

    The box of side ``box_size · params.scale`` centred on ``center`` (shifted by ``params.translation``
    crop pixels) fills the ``out_size`` crop, turned by ``params.rotation`` about its centre, then
    mirrored if ``params.flip``. The box is square, so the aspect ratio is preserved.

    Args:
        center: (2,) box centre in image coordinates.
        box_size: side of the box in image pixels (200 · scale in SPIN's annotations).
        params: the augmentation.
        out_size: side of the crop in pixels.

    Returns:
        (2, 3) float64 matrix.

    Raises:
        ValueError: for a non-positive or non-finite box size or centre.
    """
    center = np.asarray(center, dtype=np.float64)
    size = float(box_size) * float(params.scale)
    if not (np.isfinite(size) and size > 0) or center.shape != (2,) or not np.isfinite(center).all():
        raise ValueError(f"a crop needs a finite centre of shape (2,) and a positive box size; got centre "
                         f"{center.tolist()} and size {size}")
    zoom = out_size / size
    angle = math.radians(params.rotation)
    cos, sin = math.cos(angle), math.sin(angle)
    # y points down, so this matrix turns points clockwise on screen for a positive angle.
    rot = np.array([[cos, -sin], [sin, cos]])
    half = out_size / 2.0
    linear = zoom * rot  # (2, 2)
    offset = np.array([half, half]) + np.asarray(params.translation, dtype=np.float64) - linear @ center
    matrix = np.concatenate((linear, offset[:, None]), axis=1)  # (2, 3)
    if params.flip:
        # x -> out_size - x in the crop: an exact mirror in continuous coordinates.
        matrix = np.array([[-1.0, 0.0, out_size], [0.0, 1.0, 0.0]]) @ np.vstack((matrix, [0.0, 0.0, 1.0]))
    return matrix


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2×3 affine map.

    Args:
        matrix: (2, 3) affine matrix.

    Returns:
        (2, 3) matrix of the inverse map.
    """
    linear_inv = np.linalg.inv(matrix[:, :2])
    return np.concatenate((linear_inv, -linear_inv @ matrix[:, 2:]), axis=1)


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (..., 2) points with a 2×3 affine matrix.

    Args:
        matrix: (2, 3) affine matrix.
        points: (..., 2) points.

    Returns:
        (..., 2) mapped points.
    """
    return points @ matrix[:, :2].T + matrix[:, 2]


def warp_image(image: Image.Image, matrix: np.ndarray, out_size: int = constants.IMG_SIZE) -> Image.Image:
    """Resample the crop that ``matrix`` (image → crop) describes; outside the image is black.

    Args:
        image: a PIL image (any size; converted to RGB).
        matrix: (2, 3) image-to-crop affine matrix (``crop_transform``).
        out_size: side of the square crop.

    Returns:
        The ``out_size`` × ``out_size`` RGB crop.
    """
    from PIL import Image

    # PIL wants the inverse map (crop -> image) as (a, b, c, d, e, f), in the same continuous
    # coordinates (it samples pixel centres at i + 0.5).
    inverse = invert_affine(matrix)
    return image.convert("RGB").transform((out_size, out_size), Image.AFFINE, tuple(inverse.ravel()),
                                          resample=Image.BILINEAR)


def scale_image_coordinates(matrix: np.ndarray, factor: float) -> np.ndarray:
    """The same crop from an image resized by ``1 / factor`` (e.g. decoded at half size: factor 2).

    Args:
        matrix: (2, 3) image-to-crop affine matrix for the full-size image.
        factor: full-size pixels per pixel of the resized image.

    Returns:
        (2, 3) matrix that takes the resized image's coordinates to the same crop.
    """
    return np.concatenate((matrix[:, :2] * factor, matrix[:, 2:]), axis=1)


def image_to_tensor(image: Image.Image, color_gain=(1.0, 1.0, 1.0)) -> torch.Tensor:
    """RGB image to a float tensor in [0, 1], with per-channel gains (SPIN's colour noise) and clipping.

    Args:
        image: an RGB PIL image of size W × H.
        color_gain: (3,) multiplicative gain per channel.

    Returns:
        (3, H, W) float32 tensor.
    """
    # NumPy, not torch: this runs once per sample in DataLoader workers and in the main process, where
    # torch's intra-op threads only contend with the workers for the same cores.
    gain = np.asarray(color_gain, dtype=np.float32) / 255.0
    array = np.asarray(image, dtype=np.float32) * gain  # (H, W, 3)
    np.clip(array, 0.0, 1.0, out=array)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def tensor_to_image(image: torch.Tensor) -> np.ndarray:
    """The inverse of ``image_to_tensor`` for display: (3, H, W) in [0, 1] → (H, W, 3) uint8, rounded."""
    return (image.detach().float().cpu().permute(1, 2, 0).clamp(0, 1).numpy() * 255.0 + 0.5).astype(np.uint8)


# --------------------------------------------------------------------------------------------------
# Labels through the same transform
# --------------------------------------------------------------------------------------------------
def normalize_keypoints(points: np.ndarray, out_size: int = constants.IMG_SIZE) -> np.ndarray:
    """Crop pixels to HMR's normalised coordinates: x_n = 2 x / out_size - 1, so the crop spans [-1, 1].

    Args:
        points: (..., 2) crop coordinates.
        out_size: side of the crop.

    Returns:
        (..., 2) normalised coordinates.
    """
    return 2.0 * points / out_size - 1.0


def transform_keypoints(keypoints: np.ndarray, matrix: np.ndarray, flip: bool,
                        flip_permutation=constants.KEYPOINT_FLIP_PERMUTATION,
                        out_size: int = constants.IMG_SIZE, keep_outside: bool = True) -> np.ndarray:
    """Move annotated keypoints into the normalised crop.

    A keypoint that leaves the crop keeps its annotated visibility and its position beyond [-1, 1], so
    a truncated body is still supervised, as in HMR's code (``src/data_loader.py``,
    ``image_preprocessing``: the visibility is carried through the crop and flip unchanged);
    ``keep_outside=False`` marks such keypoints invisible instead.

    Args:
        keypoints: (K, 3) image coordinates and visibility.
        matrix: (2, 3) image-to-crop affine matrix, flip included (``crop_transform``).
        flip: whether the matrix mirrors; then left and right keypoints swap names.
        flip_permutation: (K,) index of each keypoint's mirror image.
        out_size: side of the crop.
        keep_outside: keep the visibility of keypoints outside the crop (HMR) or set it to 0.

    Returns:
        (K, 3) float32: normalised (x, y) (in [-1, 1] inside the crop) and the visibility; invisible
        keypoints are all zero (as in HMR's code).
    """
    xy = normalize_keypoints(apply_affine(matrix, keypoints[:, :2]), out_size)  # (K, 2)
    inside = (np.abs(xy) <= 1.0).all(axis=1) | keep_outside
    vis = np.where(inside & (keypoints[:, 2] > 0), keypoints[:, 2], 0.0)
    out = np.concatenate((xy, vis[:, None]), axis=1) * (vis[:, None] > 0)
    if flip:
        out = out[list(flip_permutation)]
    return out.astype(np.float32)


def flip_pose(pose: torch.Tensor) -> torch.Tensor:
    """Mirror SMPL's θ left-right.

    Swap left and right joints and negate the y and z of each axis-angle: a
    mirror M = diag(-1, 1, 1) turns a rotation R into M R M, whose axis-angle
    is (ω_x, -ω_y, -ω_z); the left arm of the mirrored body is the mirrored
    right arm. Applies to the global orientation too, so the mirrored body
    stands where the mirrored camera image shows it.

    Args:
        pose: (..., 72) axis-angle θ (or (..., 24, 3)).

    Returns:
        A new tensor of the same shape; ``flip_pose(flip_pose(θ)) == θ``.
    """
    shape = pose.shape
    joints = pose
    if shape[-1] == constants.POSE_DIM:
        joints = pose.reshape(*shape[:-1], constants.NUM_SMPL_JOINTS, 3)
    if joints.shape[-2:] != (constants.NUM_SMPL_JOINTS, 3):
        raise ValueError(
            f"pose must have shape (..., {constants.POSE_DIM}) "
            f"or (..., 24, 3), got {tuple(shape)}"
        )
    sign = torch.tensor([1.0, -1.0, -1.0], dtype=pose.dtype, device=pose.device)
    flip = torch.tensor(constants.SMPL_FLIP_PERMUTATION, device=pose.device)
    return (joints.index_select(-2, flip) * sign).reshape(shape)


def flip_points(points: np.ndarray, flip_permutation) -> np.ndarray:
    """Mirror keypoints or joints about x = 0 and swap left and right names.

    Serves normalised 2D keypoints of a crop (whose centre is x = 0) and camera-frame 3D joints alike;
    columns after x (y, z, visibility or confidence) are carried along.

    Args:
        points: (K, D) points, x in the first column.
        flip_permutation: (K,) index of each point's mirror image, e.g. ``constants.KEYPOINT_FLIP_PERMUTATION``
            for HMR's 19 keypoints or ``constants.LSP_FLIP_PERMUTATION`` for the 14 LSP joints.

    Returns:
        (K, D) mirrored points; ``flip_points(flip_points(p, perm), perm) == p``.
    """
    out = points[list(flip_permutation)].copy()
    out[:, 0] = -out[:, 0]
    return out


def rotation_about_z(degrees: float) -> np.ndarray:
    """The camera-frame rotation that matches turning the image by ``degrees`` (``crop_transform``).

    Args:
        degrees: the in-plane rotation angle.

    Returns:
        (3, 3) rotation matrix about the camera's z axis.
    """
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    return np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])


def rotate_global_orient(pose: np.ndarray, degrees: float) -> np.ndarray:
    """Turn θ's global orientation (its first 3 numbers) with the image, about the camera's z axis.

    Args:
        pose: (72,) axis-angle θ in the camera's frame.
        degrees: the in-plane rotation of the crop.

    Returns:
        (72,) θ with R_root' = R_z · R_root.
    """
    if degrees == 0:
        return pose.copy()
    root = axis_angle_to_matrix(torch.as_tensor(pose[:3], dtype=torch.float64))
    turned = torch.as_tensor(rotation_about_z(degrees)) @ root
    out = pose.copy()
    out[:3] = matrix_to_axis_angle(turned).numpy()
    return out


class AugmentedLabels(NamedTuple):
    """One sample's labels after the crop and augmentation.

    Attributes:
        keypoints_2d: (K, 3) normalised crop coordinates in [-1, 1] and visibility.
        joints_3d: (J, 4) camera-frame 3D joints and confidence, rotated and mirrored with the image.
        pose: (72,) θ, its global orientation rotated and the whole of it mirrored with the image.
    """

    keypoints_2d: np.ndarray
    joints_3d: np.ndarray
    pose: np.ndarray


def augment_labels(keypoints_2d: np.ndarray, joints_3d: np.ndarray, pose: np.ndarray, matrix: np.ndarray,
                   params: AugmentParams, out_size: int = constants.IMG_SIZE,
                   keep_outside_keypoints: bool = True) -> AugmentedLabels:
    """Send a sample's labels through the crop (``matrix``) and the augmentation (``params``).

    Args:
        keypoints_2d: (19, 3) image coordinates and visibility.
        joints_3d: (14, 4) camera-frame joints and confidence.
        pose: (72,) axis-angle θ, global orientation in the camera's frame.
        matrix: (2, 3) image-to-crop affine matrix made with ``params`` (``crop_transform``).
        params: the augmentation drawn for this sample.
        out_size: side of the crop.
        keep_outside_keypoints: keypoints outside the crop keep their visibility (HMR; see
            ``transform_keypoints``).

    Returns:
        ``AugmentedLabels``.
    """
    kp = transform_keypoints(keypoints_2d, matrix, params.flip, constants.KEYPOINT_FLIP_PERMUTATION, out_size,
                             keep_outside_keypoints)
    joints = joints_3d.astype(np.float64).copy()
    joints[:, :3] = joints[:, :3] @ rotation_about_z(params.rotation).T
    theta = rotate_global_orient(pose.astype(np.float64), params.rotation)
    if params.flip:
        joints = flip_points(joints, constants.LSP_FLIP_PERMUTATION)
        theta = flip_pose(torch.from_numpy(theta)).numpy()
    return AugmentedLabels(kp, joints.astype(np.float32), theta.astype(np.float32))
