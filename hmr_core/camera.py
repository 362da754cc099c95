"""Cameras: HMR's weak-perspective projection, a perspective camera to compare it with, and pixels.

HMR predicts a weak-perspective camera (s, tx, ty) with every body (HMR, Sec. 3.1; chapter "Projection and
the reprojection loss"). A 3D point X in the camera frame (x right, y down, z away from the camera, as in
image coordinates) lands at

    x = s · Π(R X) + t        (HMR, Sec. 3.1)

where Π drops the depth and R is the global rotation, already part of SMPL's pose θ. HMR's code
(``batch_orth_proj_idrot``) applies the scale after the translation, x = s · (X_xy + t), with t in
body units (metres); the two are the same camera with t rescaled by s. Image points are in HMR's
normalised coordinates: [-1, 1] across the square input crop of ``constants.IMG_SIZE`` pixels.

Letters in shapes: B batch, K points (keypoints or vertices).
"""

import torch

from hmr_core import constants


def _check_points(name: str, points: torch.Tensor, last: int) -> None:
    if points.dim() != 3 or points.shape[-1] != last:
        raise ValueError(f"{name} must have shape (B, K, {last}), got {tuple(points.shape)}")


def _check_cam(points: torch.Tensor, cam: torch.Tensor) -> None:
    if cam.dim() != 2 or cam.shape[-1] != constants.CAM_DIM or cam.shape[0] != points.shape[0]:
        raise ValueError(
            f"cam must have shape (B={points.shape[0]}, {constants.CAM_DIM}) for points of shape "
            f"{tuple(points.shape)}, got {tuple(cam.shape)}"
        )


def weak_perspective_project(
    points: torch.Tensor, cam: torch.Tensor
) -> torch.Tensor:
    """HMR's weak-perspective (scaled orthographic) projection.

        x = s · (X_xy + t)

    The same as HMR's TensorFlow ``batch_orth_proj_idrot(X, camera)``: the
    translation is added to the x and y of each point first, then the sum is
    scaled. The depth is ignored: every point is imaged as if it were at the
    depth of the body.

    Args:
        points: (B, K, 3) points in the camera frame (x right, y down), body
            units (metres).
        cam: (B, 3) cameras (s, tx, ty): scale from metres to normalised image
            units, and translation in metres.

    Returns:
        (B, K, 2) points in normalised image coordinates ([-1, 1] across the
        crop).

    Raises:
        ValueError: if ``points`` is not (B, K, 3) or ``cam`` not (B, 3) with
            the same B.
    """
    _check_points("points", points, 3)
    _check_cam(points, cam)
    scale = cam[:, None, :1]  # (B, 1, 1)
    transl = cam[:, None, 1:]  # (B, 1, 2)
    return scale * (points[..., :2] + transl)  # (B, K, 2)


def perspective_project(
    points: torch.Tensor, focal_length: float | torch.Tensor, camera_center: torch.Tensor | None = None
) -> torch.Tensor:
    """The pinhole camera x = f · X_xy / Z + c, for points already in the camera frame.

    With ``focal_length`` in normalised units (the crop's half-width is 1) the result is in HMR's
    normalised coordinates, directly comparable with ``weak_perspective_project``.

    Args:
        points: (B, K, 3) points in the camera frame (x right, y down, z > 0 in front of the camera).
        focal_length: a number, or (B,) per-sample focal lengths, in the units of the result.
        camera_center: (B, 2) principal points c; None for the origin (the centre of the crop).

    Returns:
        (B, K, 2) image points.

    Raises:
        ValueError: for points not (B, K, 3), or a focal length or centre whose batch does not match.
    """
    _check_points("points", points, 3)
    batch = points.shape[0]
    focal = torch.as_tensor(focal_length, dtype=points.dtype, device=points.device)
    if focal.dim() == 0:
        focal = focal.expand(batch)
    if focal.shape != (batch,):
        raise ValueError(f"focal_length must be a number or have shape (B={batch},), got {tuple(focal.shape)}")
    projected = focal[:, None, None] * points[..., :2] / points[..., 2:]  # (B, K, 2)
    if camera_center is not None:
        if camera_center.shape != (batch, 2):
            raise ValueError(f"camera_center must have shape (B={batch}, 2), got {tuple(camera_center.shape)}")
        projected = projected + camera_center[:, None, :]
    return projected


def weak_perspective_to_translation(cam: torch.Tensor, focal_length: float | torch.Tensor) -> torch.Tensor:
    """The camera-frame translation that makes a perspective camera agree with a weak-perspective one.

    A body centred at the origin and moved by (tx, ty, f / s) images, under ``perspective_project`` with
    focal length f, as ``weak_perspective_project`` with (s, tx, ty) images it, up to terms of order
    (body depth) / (f / s): the further the camera, the better they agree.

    Args:
        cam: (B, 3) weak-perspective cameras (s, tx, ty).
        focal_length: a number, or (B,) focal lengths, in normalised units.

    Returns:
        (B, 3) translations (tx, ty, f / s), metres.

    Raises:
        ValueError: if ``cam`` is not (B, 3).
    """
    if cam.dim() != 2 or cam.shape[-1] != constants.CAM_DIM:
        raise ValueError(f"cam must have shape (B, {constants.CAM_DIM}), got {tuple(cam.shape)}")
    focal = torch.as_tensor(focal_length, dtype=cam.dtype, device=cam.device)
    depth = focal / cam[:, 0]  # (B,)
    return torch.stack((cam[:, 1], cam[:, 2], depth), dim=-1)


def normalized_to_pixel(points_2d: torch.Tensor, img_size: int = constants.IMG_SIZE) -> torch.Tensor:
    """HMR's normalised coordinates [-1, 1] to pixel coordinates [0, img_size] of the square crop.

    Pixel coordinates are continuous, with 0 the left (top) edge of the first pixel, as in HMR's
    ``(x + 1) * 0.5 * img_size``.

    Args:
        points_2d: (..., 2) normalised image points.
        img_size: side of the square crop in pixels.

    Returns:
        (..., 2) pixel coordinates (x right, y down).
    """
    if points_2d.shape[-1] != 2:
        raise ValueError(f"points_2d must have shape (..., 2), got {tuple(points_2d.shape)}")
    return (points_2d + 1.0) * (0.5 * img_size)


def pixel_to_normalized(points_2d: torch.Tensor, img_size: int = constants.IMG_SIZE) -> torch.Tensor:
    """Pixel coordinates of the square crop to HMR's normalised coordinates, 2 · x / img_size - 1.

    Args:
        points_2d: (..., 2) pixel coordinates.
        img_size: side of the square crop in pixels.

    Returns:
        (..., 2) normalised image points.
    """
    if points_2d.shape[-1] != 2:
        raise ValueError(f"points_2d must have shape (..., 2), got {tuple(points_2d.shape)}")
    return points_2d * (2.0 / img_size) - 1.0
