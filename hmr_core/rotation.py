"""Rotations: axis-angle (Rodrigues) and rotation matrices, safe at zero angle and near π.

SMPL and HMR write each joint's rotation as an axis-angle vector ω = θ·k (unit axis k, angle θ = |ω|).
Rodrigues' formula turns it into a rotation matrix (paper, Sec. 3; chapter "The SMPL body model"):

    R(ω) = I + sin θ [k]_× + (1 - cos θ) [k]_×²
         = I + a(θ) [ω]_× + b(θ) [ω]_×²,   a = sin θ / θ,  b = (1 - cos θ) / θ²

The second form has no division by θ once a and b are written with their Taylor series near 0, so
values and gradients stay finite at ω = 0 (where ``ω / |ω|`` would be 0/0).
"""

import torch

# Below this squared angle (rad²) the Taylor series of a(θ) and b(θ) is exact to float64 round-off:
# the first neglected terms are θ⁴/120 and θ⁴/720.
_SMALL_ANGLE_SQ = 1e-8


def skew(v: torch.Tensor) -> torch.Tensor:
    """The cross-product matrix [v]_× such that [v]_× u = v × u.

    Args:
        v: (..., 3) vectors.

    Returns:
        (..., 3, 3) skew-symmetric matrices.
    """
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    rows = (
        torch.stack((zero, -z, y), dim=-1),
        torch.stack((z, zero, -x), dim=-1),
        torch.stack((-y, x, zero), dim=-1),
    )
    return torch.stack(rows, dim=-2)


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula: axis-angle vectors to rotation matrices.

    Args:
        axis_angle: (..., 3) axis-angle vectors ω (angle = |ω| in radians).

    Returns:
        (..., 3, 3) rotation matrices R(ω).
    """
    if axis_angle.shape[-1] != 3:
        raise ValueError(
            "axis_angle must have shape (..., 3), "
            f"got {tuple(axis_angle.shape)}"
        )
    # (..., 1, 1)
    theta_sq = (axis_angle * axis_angle).sum(-1)[..., None, None]
    small = theta_sq < _SMALL_ANGLE_SQ
    # Replace small angles by 1 before dividing so neither branch of
    # torch.where produces NaN (a NaN in the unused branch would still poison
    # the gradient).
    theta_sq_safe = torch.where(small, torch.ones_like(theta_sq), theta_sq)
    theta = theta_sq_safe.sqrt()
    a = torch.where(small, 1.0 - theta_sq / 6.0, torch.sin(theta) / theta)
    b = torch.where(
        small, 0.5 - theta_sq / 24.0, (1.0 - torch.cos(theta)) / theta_sq_safe
    )
    # [ω]_×² = ω ωᵀ - |ω|² I, which avoids a 3×3 matrix product.
    outer = axis_angle[..., :, None] * axis_angle[..., None, :]  # (..., 3, 3)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + a * skew(axis_angle) + b * (outer - theta_sq * eye)


def matrix_to_quaternion(rotmat: torch.Tensor) -> torch.Tensor:
    """Rotation matrices to unit quaternions (w, x, y, z) with w ≥ 0.

    Uses the largest of the four candidate denominators (Shepperd's method), so the result is
    accurate for every rotation, including angles near π where w → 0.

    Args:
        rotmat: (..., 3, 3) rotation matrices.

    Returns:
        (..., 4) unit quaternions, scalar first.
    """
    if rotmat.shape[-2:] != (3, 3):
        raise ValueError(f"rotmat must have shape (..., 3, 3), got {tuple(rotmat.shape)}")
    m = rotmat
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # 4·q_i² for i = w, x, y, z; clamped so sqrt's gradient stays finite.
    four_sq = torch.stack(
        (1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22), dim=-1
    )
    two_q = four_sq.clamp_min(1e-12).sqrt()  # (..., 4): 2|q_i|
    # Each row is 4·q_i·q for one choice of i; dividing by 2|q_i| gives ±q.
    candidates = torch.stack(
        (
            torch.stack((four_sq[..., 0], m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]), -1),
            torch.stack((m[..., 2, 1] - m[..., 1, 2], four_sq[..., 1], m[..., 1, 0] + m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0]), -1),
            torch.stack((m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] + m[..., 0, 1], four_sq[..., 2], m[..., 2, 1] + m[..., 1, 2]), -1),
            torch.stack((m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 2, 1] + m[..., 1, 2], four_sq[..., 3]), -1),
        ),
        dim=-2,
    ) / two_q[..., :, None]  # (..., 4, 4)
    best = four_sq.argmax(dim=-1)  # (...)
    quat = torch.gather(candidates, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    quat = quat / quat.norm(dim=-1, keepdim=True)
    return torch.where(quat[..., :1] < 0, -quat, quat)


def quaternion_to_axis_angle(quat: torch.Tensor) -> torch.Tensor:
    """Unit quaternions (w, x, y, z) to axis-angle vectors with angle in [0, π].

    Args:
        quat: (..., 4) unit quaternions, scalar first.

    Returns:
        (..., 3) axis-angle vectors.
    """
    quat = torch.where(quat[..., :1] < 0, -quat, quat)
    xyz = quat[..., 1:]
    sin_half_sq = (xyz * xyz).sum(-1, keepdim=True)
    small = sin_half_sq < _SMALL_ANGLE_SQ
    sin_half = torch.where(small, torch.ones_like(sin_half_sq), sin_half_sq).sqrt()
    half_angle = torch.atan2(sin_half, quat[..., :1])
    # angle / sin(angle/2) → 2/w + (sin²(angle/2)) / (3w³) as the angle → 0, where w ≈ 1. The series
    # divides by a w replaced by 1 outside that branch: at w = 0 (angle π) the unused 2/w would be
    # infinite, and 0 · ∞ in its gradient is NaN.
    w = torch.where(small, quat[..., :1], torch.ones_like(sin_half_sq))
    scale = torch.where(small, 2.0 / w - 2.0 * sin_half_sq / (3.0 * w**3), 2.0 * half_angle / sin_half)
    return scale * xyz


def matrix_to_axis_angle(rotmat: torch.Tensor) -> torch.Tensor:
    """Inverse Rodrigues: rotation matrices to axis-angle vectors with angle in [0, π].

    Goes through the quaternion, which is well conditioned at every angle; at exactly π the axis sign
    is ambiguous and either answer is the same rotation.

    Args:
        rotmat: (..., 3, 3) rotation matrices.

    Returns:
        (..., 3) axis-angle vectors.
    """
    return quaternion_to_axis_angle(matrix_to_quaternion(rotmat))
