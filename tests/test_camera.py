"""Tests for hmr_core.camera: HMR's weak-perspective camera against a NumPy copy of its TensorFlow code."""

import numpy as np
import pytest
import torch

from hmr_core import camera, constants


def tf_batch_orth_proj_idrot(X: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """HMR's ``batch_orth_proj_idrot`` (``src/tf_smpl/projection.py`` of the official code), line by line in NumPy.

        camera = tf.reshape(camera, [-1, 1, 3])
        X_trans = X[:, :, :2] + camera[:, :, 1:]
        shape = tf.shape(X_trans)
        return tf.reshape(camera[:, :, 0] * tf.reshape(X_trans, [shape[0], -1]), shape)
    """
    cam = cam.reshape(-1, 1, 3)  # (B, 1, 3)
    X_trans = X[:, :, :2] + cam[:, :, 1:]  # (B, K, 2)
    shape = X_trans.shape
    return (cam[:, :, 0] * X_trans.reshape(shape[0], -1)).reshape(shape)  # (B, 1) * (B, 2K)


def test_weak_perspective_matches_hmr_tensorflow(device):
    rng = np.random.default_rng(0)
    points = rng.normal(size=(4, 19, 3))
    cam = np.column_stack((rng.uniform(0.5, 1.5, 4), rng.normal(size=(4, 2)) * 0.2))
    got = camera.weak_perspective_project(torch.tensor(points, device=device),
                                          torch.tensor(cam, device=device))
    torch.testing.assert_close(got.cpu(), torch.tensor(tf_batch_orth_proj_idrot(points, cam)), atol=1e-12, rtol=0)


def test_scale_applies_to_translated_points():
    # x = s · (X + t), not s · X + t
    points = torch.tensor([[[1.0, 2.0, 3.0]]])
    cam = torch.tensor([[2.0, 0.5, -1.0]])
    torch.testing.assert_close(camera.weak_perspective_project(points, cam), torch.tensor([[[3.0, 2.0]]]))


def test_weak_perspective_ignores_depth():
    points = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(0))
    moved = points.clone()
    moved[..., 2] += 10.0
    cam = torch.tensor([[1.0, 0.1, 0.2], [0.7, 0.0, -0.3]])
    torch.testing.assert_close(camera.weak_perspective_project(points, cam),
                               camera.weak_perspective_project(moved, cam))


def test_weak_perspective_gradcheck():
    gen = torch.Generator().manual_seed(1)
    points = torch.randn(2, 3, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    cam = torch.randn(2, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(camera.weak_perspective_project, (points, cam))


@pytest.mark.parametrize(
    "points_shape, cam_shape, message",
    [((4, 19, 2), (4, 3), r"points must have shape \(B, K, 3\), got \(4, 19, 2\)"),
     ((19, 3), (1, 3), r"points must have shape \(B, K, 3\), got \(19, 3\)"),
     ((4, 19, 3), (3, 3), r"cam must have shape \(B=4, 3\).*got \(3, 3\)"),
     ((4, 19, 3), (4, 2), r"cam must have shape \(B=4, 3\).*got \(4, 2\)")],
)
def test_weak_perspective_rejects_bad_shapes(points_shape, cam_shape, message):
    with pytest.raises(ValueError, match=message):
        camera.weak_perspective_project(torch.zeros(points_shape), torch.ones(cam_shape))


def test_perspective_known_value_and_centre():
    points = torch.tensor([[[0.5, -0.25, 2.0]]])
    torch.testing.assert_close(camera.perspective_project(points, 4.0), torch.tensor([[[1.0, -0.5]]]))
    centre = torch.tensor([[0.1, 0.2]])
    torch.testing.assert_close(camera.perspective_project(points, torch.tensor([4.0]), centre),
                               torch.tensor([[[1.1, -0.3]]]))
    with pytest.raises(ValueError, match=r"focal_length must be a number or have shape \(B=1,\), got \(2,\)"):
        camera.perspective_project(points, torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"camera_center must have shape \(B=1, 2\), got \(2,\)"):
        camera.perspective_project(points, 1.0, torch.zeros(2))


def test_perspective_approaches_weak_perspective_far_away():
    # A body-sized cloud (±1 m across, ±0.15 m deep): the gap shrinks like depth / distance.
    gen = torch.Generator().manual_seed(0)
    extent = torch.tensor([1.0, 2.0, 0.3], dtype=torch.float64)
    points = (torch.rand(1, 50, 3, generator=gen, dtype=torch.float64) - 0.5) * extent
    cam = torch.tensor([[0.8, 0.05, -0.1]], dtype=torch.float64)
    weak = camera.weak_perspective_project(points, cam)
    errors = []
    for focal in (2.0, 20.0, 200.0):
        transl = camera.weak_perspective_to_translation(cam, focal)  # (1, 3): (tx, ty, f / s)
        persp = camera.perspective_project(points + transl[:, None], focal)
        errors.append(float((persp - weak).abs().max()))
    assert errors[0] > errors[1] > errors[2]
    assert errors[1] / errors[2] == pytest.approx(10.0, rel=0.05)
    assert errors[2] < 1e-3


def test_pixel_conversions():
    corners = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]])
    pixels = camera.normalized_to_pixel(corners)
    torch.testing.assert_close(pixels, torch.tensor([[0.0, 0.0], [224.0, 224.0], [112.0, 112.0]]))
    assert constants.IMG_SIZE == 224
    points = torch.randn(3, 19, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(camera.pixel_to_normalized(camera.normalized_to_pixel(points, 500), 500), points,
                               atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match=r"points_2d must have shape \(\.\.\., 2\), got \(19, 3\)"):
        camera.normalized_to_pixel(torch.zeros(19, 3))


def test_device_and_dtype_follow_inputs(device):
    points = torch.zeros(1, 2, 3, dtype=torch.float64, device=device)
    cam = torch.ones(1, 3, dtype=torch.float64, device=device)
    out = camera.weak_perspective_project(points, cam)
    assert out.dtype == torch.float64 and out.device == points.device
    assert camera.weak_perspective_to_translation(cam, 5.0).device == points.device
