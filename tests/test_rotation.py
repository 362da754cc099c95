import math

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from hmr_core.rotation import axis_angle_to_matrix, matrix_to_axis_angle, skew

from numpy_smpl import rodrigues


def random_axis_angle(n, max_angle=math.pi, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    axis = torch.nn.functional.normalize(torch.randn(n, 3, generator=gen, dtype=dtype), dim=-1)
    angle = torch.rand(n, 1, generator=gen, dtype=dtype) * max_angle
    return axis * angle


def test_shape_and_orthonormal(device):
    aa = random_axis_angle(500).to(device)
    R = axis_angle_to_matrix(aa)
    assert R.shape == (500, 3, 3)
    eye = torch.eye(3, dtype=R.dtype, device=device).expand_as(R)
    assert_close(R @ R.transpose(1, 2), eye, atol=1e-12, rtol=0)
    assert_close(torch.linalg.det(R), torch.ones(500, dtype=R.dtype, device=device), atol=1e-12, rtol=0)


def test_matches_numpy_reference():
    aa = random_axis_angle(200)
    expected = np.stack([rodrigues(a) for a in aa.numpy()])
    assert_close(axis_angle_to_matrix(aa), torch.from_numpy(expected), atol=1e-12, rtol=0)


def test_known_value_quarter_turn_about_z():
    R = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2], dtype=torch.float64))
    expected = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    assert_close(R, expected, atol=1e-15, rtol=0)


def test_skew_is_cross_product():
    a, b = torch.randn(2, 10, 3, dtype=torch.float64)
    assert_close((skew(a) @ b[..., None])[..., 0], torch.linalg.cross(a, b), atol=1e-14, rtol=0)


def test_zero_angle_value_and_gradient():
    aa = torch.zeros(4, 3, dtype=torch.float64, requires_grad=True)
    R = axis_angle_to_matrix(aa)
    assert_close(R, torch.eye(3, dtype=torch.float64).expand(4, 3, 3), atol=0, rtol=0)
    (grad,) = torch.autograd.grad((R * torch.randn_like(R)).sum(), aa)
    assert torch.isfinite(grad).all()
    # dR/dω at 0 is the skew generator: d(R·u)/dω = -[u]_×
    u = torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda w: axis_angle_to_matrix(w) @ u, torch.zeros(3, dtype=torch.float64))
    assert_close(jac, -skew(u), atol=1e-12, rtol=0)


@pytest.mark.parametrize("angle", [0.0, 1e-9, 1e-4, 1.0, math.pi - 1e-6, math.pi])
def test_gradcheck_float64(angle):
    axis = torch.nn.functional.normalize(torch.tensor([[0.3, -0.5, 0.8], [1.0, 0.0, 0.0]], dtype=torch.float64), dim=-1)
    aa = (axis * angle).requires_grad_(True)
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (aa,), eps=1e-7, atol=1e-6)


@pytest.mark.parametrize("max_angle", [1e-6, 1.0, math.pi - 1e-3])
def test_round_trip(max_angle):
    aa = random_axis_angle(300, max_angle=max_angle, seed=1)
    assert_close(matrix_to_axis_angle(axis_angle_to_matrix(aa)), aa, atol=1e-9, rtol=0)


def test_round_trip_at_pi_gives_same_rotation():
    aa = torch.nn.functional.normalize(torch.randn(50, 3, dtype=torch.float64), dim=-1) * math.pi
    R = axis_angle_to_matrix(aa)
    back = matrix_to_axis_angle(R)
    assert_close(back.norm(dim=-1), torch.full((50,), math.pi, dtype=torch.float64), atol=1e-7, rtol=0)
    assert_close(axis_angle_to_matrix(back), R, atol=1e-7, rtol=0)


@pytest.mark.parametrize("angle", [0.0, 1e-5, 2.0, math.pi - 1e-4])
def test_inverse_gradient_finite(angle):
    axis = torch.nn.functional.normalize(torch.tensor([0.2, 0.9, -0.4], dtype=torch.float64), dim=0)
    R = axis_angle_to_matrix(axis * angle).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad((matrix_to_axis_angle(R) * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).sum(), R)
    assert torch.isfinite(grad).all()


def test_inverse_gradcheck_away_from_pi():
    aa = random_axis_angle(5, max_angle=2.5, seed=3)
    R = axis_angle_to_matrix(aa).requires_grad_(True)
    assert torch.autograd.gradcheck(matrix_to_axis_angle, (R,), eps=1e-7, atol=1e-6)


def test_bad_shape_is_named():
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\).*\(5, 4\)"):
        axis_angle_to_matrix(torch.zeros(5, 4))
    with pytest.raises(ValueError, match=r"\(5, 3, 4\)"):
        matrix_to_axis_angle(torch.zeros(5, 3, 4))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_inverse_gradient_finite_at_exactly_pi(dtype):
    # diag(1, -1, -1) is a half turn about x: its quaternion has w = 0 exactly.
    R = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=dtype)).requires_grad_(True)
    (grad,) = torch.autograd.grad(matrix_to_axis_angle(R).sum(), R)
    assert torch.isfinite(grad).all(), grad
    aa = torch.tensor([math.pi, 0.0, 0.0], dtype=dtype, requires_grad=True)
    (grad,) = torch.autograd.grad(matrix_to_axis_angle(axis_angle_to_matrix(aa)).sum(), aa)
    assert torch.isfinite(grad).all(), grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_quaternion_gradient_finite_at_w_zero(dtype):
    from hmr_core.rotation import quaternion_to_axis_angle

    quat = torch.tensor([0.0, 0.0, 1.0, 0.0], dtype=dtype, requires_grad=True)
    out = quaternion_to_axis_angle(quat)
    assert_close(out, torch.tensor([0.0, math.pi, 0.0], dtype=dtype), atol=1e-6, rtol=0)
    (grad,) = torch.autograd.grad(out.sum(), quat)
    assert torch.isfinite(grad).all(), grad
