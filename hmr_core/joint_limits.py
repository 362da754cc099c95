"""Anatomical joint limits: the range of motion of each SMPL joint (chapter "The factorized adversarial prior").

Joint limits are written in anatomical coordinates, one per joint. A joint's rotation R is split into a
*swing* of its segment and a *twist* about the segment (Baerlocher & Boulic, "Parametrization and range
of motion of the ball-and-socket joint", 2001):

    R = F_jᵀ · exp(a₁ e₁ + a₂ e₂) · exp(a₃ e₃) · F_j

where the rows of F_j are the joint's anatomical axes in SMPL's rest frame (the T-pose, y up, facing +z,
left at +x): e₁ and e₂ the swing axes (e.g. flexion and abduction of the hip), e₃ the twist axis along
the bone. (a₁, a₂) must lie in a polygon of the plane, a₃ in an interval. The swing is an exponential
map, exact for movements in one plane and singular only for a swing of 180°, which no joint reaches.
Ranges come from the clinical literature (AAOS; see ``JOINT_LIMITS``), and the right side is the mirror
image of the left.

The pose prior (``hmr_core.pose_prior``) keeps every sampled joint inside these limits; the evaluation
counts the predicted joints outside them (``joint_limit_violations``).

Letters in shapes: B batch, J joints (24), N polygon vertices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from hmr_core import constants
from hmr_core.rotation import axis_angle_to_matrix, matrix_to_axis_angle, matrix_to_quaternion, quaternion_to_axis_angle

_JOINT = {name: j for j, name in enumerate(constants.SMPL_JOINT_NAMES)}


@dataclass(frozen=True)
class JointLimit:
    """The range of motion of one joint, in its anatomical swing-twist coordinates (degrees).

    Attributes:
        joint: SMPL joint name without side ("hip") for paired joints, which are given for the left side
            (the right side is the mirror image), or the full name of a central joint ("spine1").
        axes: rows e₁, e₂, e₃ in SMPL's rest frame; a right-handed frame (e₁ × e₂ = e₃), e₃ along the bone.
        names: the movement that each coordinate measures, positive direction first.
        swing: vertices of the polygon that (a₁, a₂) must stay in, degrees.
        twist: (low, high) range of a₃, degrees.
        source: where the numbers come from.
    """

    joint: str
    axes: tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]
    names: tuple[str, str, str]
    swing: tuple[tuple[float, float], ...]
    twist: tuple[float, float]
    source: str


def _box(low_1: float, high_1: float, low_2: float, high_2: float) -> tuple[tuple[float, float], ...]:
    """A rectangle as a swing polygon: a₁ in [low_1, high_1] and a₂ in [low_2, high_2]."""
    return ((low_1, low_2), (high_1, low_2), (high_1, high_2), (low_1, high_2))


# Axes of the anatomical frames. In SMPL's T-pose every joint's frame is the world frame, so a local
# rotation about +x tilts the segment's +y end towards +z, and so on. Checked by posing the model (the
# tests do it): +x bends a knee (the foot goes back), -x flexes a hip (the knee comes forward), -y
# flexes the left elbow (the hand comes forward), +z lifts the left arm, +x bends the trunk forward.
_PX, _NX = (1.0, 0.0, 0.0), (-1.0, 0.0, 0.0)
_PY, _NY = (0.0, 1.0, 0.0), (0.0, -1.0, 0.0)
_PZ, _NZ = (0.0, 0.0, 1.0), (0.0, 0.0, -1.0)
_AAOS = "AAOS (Greene & Heckman 1994, after the 1965 AAOS handbook)"
_SPINE_SPLIT = ("AAOS thoracolumbar flexion 80°, extension 25°, lateral flexion 35°, rotation 45°, "
                "split evenly over SMPL's 3 spine joints")
_NECK_SPLIT = ("AAOS cervical flexion 45°, extension 45°, lateral flexion 45°, rotation 60°, "
               "split evenly over neck and head")
_SPINE_BOX = _box(-25 / 3, 80 / 3, -35 / 3, 35 / 3)
_NECK_BOX = _box(-22.5, 22.5, -22.5, 22.5)

# The shoulder's swing polygon in (elevation above the T-pose, horizontal flexion), degrees. A box is a
# poor fit here: the arm reaches further forward-across than back, and the sagittal extension of the
# hanging arm (60°) is not the horizontal extension of the raised one (45°). The vertices are the
# clinical end positions written in this chart: arm across the chest (horizontal adduction 135°),
# forward-up and overhead (flexion / abduction 180°), up-and-back, horizontal extension 45°, extension
# 60° of the hanging arm, hanging at the side, and adducted across the front of the trunk.
_SHOULDER_POLYGON = (
    (0.0, 135.0),  # horizontal adduction 135°: hand towards the opposite shoulder
    (55.0, 100.0),  # forward, up and across
    (80.0, 45.0),  # flexion about 150°
    (95.0, 0.0),  # overhead: abduction / flexion 180° and a few degrees across
    (75.0, -35.0),  # overhead and back
    (20.0, -45.0),  # raised and back
    (0.0, -45.0),  # horizontal extension 45°
    (-45.0, -78.0),  # extension 60° of the hanging arm
    (-80.0, -45.0),  # hanging, 30° back
    (-95.0, 0.0),  # hanging at the side, 5° of adduction
    (-100.0, 45.0),  # hanging, forward and across the belly (adduction ~30° in front)
    (-60.0, 100.0),  # forward-down and across
)

JOINT_LIMITS: tuple[JointLimit, ...] = (
    JointLimit("hip", (_NX, _PZ, _PY), ("flexion", "abduction", "external rotation"),
               _box(-30, 120, -30, 45), (-45, 45),
               f"{_AAOS}: flexion 120°, extension 30°, abduction 45°, adduction 30°, rotation 45° each way"),
    JointLimit("knee", (_PX, _PZ, _NY), ("flexion", "valgus", "internal rotation"),
               _box(0, 150, -5, 5), (-15, 15),
               "flexion 0–150° (AAOS 135°; healthy adults reach more passively, Soucie et al. 2011); "
               "varus/valgus and axial rotation kept small (the knee is nearly a hinge)"),
    JointLimit("ankle", (_NX, _PY, _NZ), ("dorsiflexion", "toe-out", "inversion"),
               _box(-50, 20, -15, 15), (-15, 35),
               f"{_AAOS}: dorsiflexion 20°, plantarflexion 50°, inversion 35°, eversion 15°; "
               "toe-in/out ±15° (conservative)"),
    JointLimit("foot", (_PX, _PY, _PZ), ("toe flexion", "toe-out", "eversion"),
               _box(-70, 45, -10, 10), (-10, 10),
               f"{_AAOS}: metatarsophalangeal flexion 45°, extension 70°; other axes small (conservative)"),
    JointLimit("spine1", (_PX, _PZ, _NY), ("flexion", "right lateral flexion", "right rotation"),
               _SPINE_BOX, (-15, 15), _SPINE_SPLIT),
    JointLimit("spine2", (_PX, _PZ, _NY), ("flexion", "right lateral flexion", "right rotation"),
               _SPINE_BOX, (-15, 15), _SPINE_SPLIT),
    JointLimit("spine3", (_PX, _PZ, _NY), ("flexion", "right lateral flexion", "right rotation"),
               _SPINE_BOX, (-15, 15), _SPINE_SPLIT),
    JointLimit("neck", (_PX, _PZ, _NY), ("flexion", "right lateral flexion", "right rotation"),
               _NECK_BOX, (-30, 30), _NECK_SPLIT),
    JointLimit("head", (_PX, _PZ, _NY), ("flexion", "right lateral flexion", "right rotation"),
               _NECK_BOX, (-30, 30), _NECK_SPLIT),
    JointLimit("collar", (_PZ, _NY, _PX), ("elevation", "protraction", "forward rotation"),
               _box(-15, 35, -20, 20), (-20, 20),
               "sternoclavicular joint, conservative: elevation ~35°, depression ~15°, protraction and retraction "
               "~20° (see Neumann, Kinesiology of the Musculoskeletal System, ch. 5)"),
    JointLimit("shoulder", (_PZ, _NY, _PX), ("elevation", "horizontal flexion", "internal rotation"),
               _SHOULDER_POLYGON, (-90, 70),
               f"{_AAOS}: flexion 180°, extension 60°, abduction 180°, horizontal adduction 135°, horizontal "
               "extension 45°, internal rotation 70°, external rotation 90° (measured in 90° abduction, SMPL's T-pose)"),
    JointLimit("elbow", (_NY, _PZ, _NX), ("flexion", "valgus", "supination"),
               _box(0, 150, -5, 5), (-50, 50),
               f"{_AAOS}: flexion 0–150° about one axis; forearm pronation and supination 80° each, shared "
               "between SMPL's elbow (±50°) and wrist (±30°) twists"),
    JointLimit("wrist", (_NZ, _NY, _NX), ("flexion", "radial deviation", "supination"),
               _box(-70, 80, -30, 20), (-30, 30),
               f"{_AAOS}: flexion 80°, extension 70°, radial deviation 20°, ulnar deviation 30°"),
    JointLimit("hand", (_NZ, _NY, _NX), ("flexion", "abduction", "twist"),
               _box(-45, 90, -10, 10), (-5, 5),
               f"{_AAOS}: metacarpophalangeal flexion 90°, hyperextension 45° (all fingers as one joint)"),
)

# The mirror of a rotation vector is (x, -y, -z): the right side's axes are the left side's times this.
_MIRROR_AXIAL = (1.0, -1.0, -1.0)


def joint_limit_table() -> list[JointLimit | None]:
    """The limits of each of SMPL's 24 joints, the right side mirrored from the left.

    Returns:
        A list of 24 entries in SMPL's joint order, None for the root (its rotation is the global
        orientation, which has no anatomical limit).
    """
    table: list[JointLimit | None] = [None] * constants.NUM_SMPL_JOINTS
    for limit in JOINT_LIMITS:
        if limit.joint in _JOINT:
            table[_JOINT[limit.joint]] = limit
            continue
        table[_JOINT["left_" + limit.joint]] = limit
        mirrored = tuple(tuple(a * m for a, m in zip(axis, _MIRROR_AXIAL)) for axis in limit.axes)
        table[_JOINT["right_" + limit.joint]] = JointLimit(
            limit.joint, mirrored, limit.names, limit.swing, limit.twist, limit.source)
    return table


def anatomical_frames(dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> torch.Tensor:
    """Every joint's anatomical frame F_j (rows e₁, e₂, e₃); the root's is the identity.

    Args:
        dtype: floating dtype of the result.
        device: device of the result.

    Returns:
        (24, 3, 3) proper rotation matrices.
    """
    frames = [np.eye(3) if limit is None else np.array(limit.axes) for limit in joint_limit_table()]
    return torch.as_tensor(np.stack(frames), dtype=dtype, device=device)


class LimitTensors(NamedTuple):
    """The limits as padded tensors, radians.

    Attributes:
        polygon: (24, N, 2) swing polygon vertices, each polygon padded by repeating its last vertex.
        twist: (24, 2) twist range.
        has_limit: (24,) False for the root.
    """

    polygon: torch.Tensor
    twist: torch.Tensor
    has_limit: torch.Tensor


def limit_tensors(dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> LimitTensors:
    """``JOINT_LIMITS`` as tensors in radians, for vectorised checks.

    Args:
        dtype: floating dtype.
        device: device.

    Returns:
        ``LimitTensors``; the root gets a huge box, so nothing about it is ever out of range.
    """
    table = joint_limit_table()
    size = max(len(limit.swing) for limit in table if limit is not None)
    polygons, twists = [], []
    for limit in table:
        if limit is None:
            swing, twist = _box(-360, 360, -360, 360), (-360, 360)
        else:
            swing, twist = limit.swing, limit.twist
        padded = list(swing) + [swing[-1]] * (size - len(swing))
        polygons.append(padded)
        twists.append(twist)
    to = dict(dtype=dtype, device=device)
    return LimitTensors(
        polygon=torch.deg2rad(torch.tensor(polygons, **to)),
        twist=torch.deg2rad(torch.tensor(twists, **to)),
        has_limit=torch.tensor([limit is not None for limit in table], device=device),
    )


# --- From rotations to anatomical coordinates and back --------------------------------------------
def anatomical_to_rotmat(angles: torch.Tensor) -> torch.Tensor:
    """Anatomical swing-twist angles to local joint rotations, R = Fᵀ exp(a₁e₁ + a₂e₂) exp(a₃e₃) F.

    Args:
        angles: (B, 24, 3) angles (a₁, a₂, a₃) in radians, in each joint's frame (``JOINT_LIMITS``).

    Returns:
        (B, 24, 3, 3) local rotation matrices (the root's angles are plain axis-angle).
    """
    frames = anatomical_frames(angles.dtype, angles.device)  # (24, 3, 3)
    zero = torch.zeros_like(angles[..., :1])
    swing = axis_angle_to_matrix(torch.cat((angles[..., :2], zero), dim=-1))  # (B, 24, 3, 3), local frame
    twist = axis_angle_to_matrix(torch.cat((zero, zero, angles[..., 2:]), dim=-1))
    return frames.transpose(-1, -2) @ swing @ twist @ frames


def rotmat_to_anatomical(rotmats: torch.Tensor) -> torch.Tensor:
    """Local joint rotations to anatomical swing-twist angles (the inverse of ``anatomical_to_rotmat``).

    In each joint's frame, the quaternion q = (w, x, y, z) splits into a twist about e₃,
    q_t ∝ (w, 0, 0, z) with angle a₃ = 2 atan2(z, w), and a swing q_s = q q_t⁻¹ whose axis lies in the
    (e₁, e₂) plane; (a₁, a₂) is the swing's rotation vector.

    Args:
        rotmats: (B, 24, 3, 3) local rotation matrices.

    Returns:
        (B, 24, 3) angles in radians, a₃ in (-π, π].
    """
    frames = anatomical_frames(rotmats.dtype, rotmats.device)
    local = frames @ rotmats @ frames.transpose(-1, -2)  # (B, 24, 3, 3)
    q = matrix_to_quaternion(local)  # (B, 24, 4), w ≥ 0
    w, z = q[..., 0], q[..., 3]
    norm = torch.sqrt(w * w + z * z)
    # A swing of exactly 180° leaves the twist undefined (w = z = 0); call it no twist.
    degenerate = norm < 1e-9
    cos_half = torch.where(degenerate, torch.ones_like(w), w / norm.clamp_min(1e-12))
    sin_half = torch.where(degenerate, torch.zeros_like(z), z / norm.clamp_min(1e-12))
    twist = 2.0 * torch.atan2(sin_half, cos_half)
    twist = torch.remainder(twist + math.pi, 2 * math.pi) - math.pi
    # q_s = q ⊗ conj(q_t), with q_t = (c, 0, 0, s): the z part cancels by construction.
    qw, qx, qy, qz = q.unbind(-1)
    swing_q = torch.stack((qw * cos_half + qz * sin_half, qx * cos_half - qy * sin_half,
                           qy * cos_half + qx * sin_half, qz * cos_half - qw * sin_half), dim=-1)
    swing = quaternion_to_axis_angle(swing_q)[..., :2]  # (B, 24, 2)
    return torch.cat((swing, twist[..., None]), dim=-1)


def pose_to_anatomical(pose: torch.Tensor) -> torch.Tensor:
    """θ (B, 72) axis-angle to (B, 24, 3) anatomical angles in radians.

    Args:
        pose: (B, 72) axis-angle θ.

    Returns:
        (B, 24, 3) angles; the root's entry describes the global orientation in the same way.
    """
    _check_pose(pose)
    return rotmat_to_anatomical(axis_angle_to_matrix(pose.reshape(-1, constants.NUM_SMPL_JOINTS, 3)))


def anatomical_to_pose(angles: torch.Tensor) -> torch.Tensor:
    """(B, 24, 3) anatomical angles to θ (B, 72) axis-angle.

    Args:
        angles: (B, 24, 3) angles in radians.

    Returns:
        (B, 72) axis-angle θ.
    """
    return matrix_to_axis_angle(anatomical_to_rotmat(angles)).flatten(1)


def _check_pose(pose: torch.Tensor) -> None:
    if pose.dim() != 2 or pose.shape[1] != constants.POSE_DIM:
        raise ValueError(f"pose must have shape (B, {constants.POSE_DIM}), got {tuple(pose.shape)}")


# --- Polygons -------------------------------------------------------------------------------------
def inside_polygon(points: torch.Tensor, polygon: torch.Tensor) -> torch.Tensor:
    """Whether points lie inside polygons (crossing-number test, boundary counts as either).

    Args:
        points: (..., 2) points.
        polygon: (..., N, 2) vertices in order (broadcast against ``points``).

    Returns:
        (...) bool.
    """
    start, end = polygon, polygon.roll(-1, dims=-2)  # (..., N, 2) edges start -> end
    px, py = points[..., None, 0], points[..., None, 1]  # (..., 1)
    straddles = (start[..., 1] > py) != (end[..., 1] > py)  # (..., N)
    dy = end[..., 1] - start[..., 1]
    dy = torch.where(dy == 0, torch.ones_like(dy), dy)
    x_cross = start[..., 0] + (py - start[..., 1]) * (end[..., 0] - start[..., 0]) / dy
    crossings = (straddles & (px < x_cross)).sum(-1)
    return crossings % 2 == 1


def nearest_on_polygon(points: torch.Tensor, polygon: torch.Tensor) -> torch.Tensor:
    """The nearest point of each polygon's boundary.

    Args:
        points: (..., 2) points.
        polygon: (..., N, 2) vertices in order.

    Returns:
        (..., 2) nearest boundary points.
    """
    start, end = polygon, polygon.roll(-1, dims=-2)  # (..., N, 2)
    edge = end - start
    length_sq = (edge * edge).sum(-1).clamp_min(1e-12)  # (..., N); padded edges have length 0
    t = (((points[..., None, :] - start) * edge).sum(-1) / length_sq).clamp(0.0, 1.0)
    candidates = start + t[..., None] * edge  # (..., N, 2)
    dist = ((candidates - points[..., None, :]) ** 2).sum(-1)
    best = dist.argmin(-1)  # (...)
    return torch.gather(candidates, -2, best[..., None, None].expand(*best.shape, 1, 2)).squeeze(-2)


# --- Checking and clamping ------------------------------------------------------------------------
def within_limits(angles: torch.Tensor, tolerance_deg: float = 0.5) -> torch.Tensor:
    """Which joints are inside their range of motion.

    Args:
        angles: (B, 24, 3) anatomical angles in radians.
        tolerance_deg: slack for round-off (a clamped pose sits on the boundary).

    Returns:
        (B, 24) bool; always True for the root.
    """
    limits = limit_tensors(angles.dtype, angles.device)
    tol = math.radians(tolerance_deg)
    swing = angles[..., :2]
    polygon = limits.polygon.expand(*angles.shape[:-2], *limits.polygon.shape)
    near = ((nearest_on_polygon(swing, polygon) - swing) ** 2).sum(-1) <= tol * tol
    swing_ok = inside_polygon(swing, polygon) | near
    twist = angles[..., 2]
    twist_ok = (twist >= limits.twist[:, 0] - tol) & (twist <= limits.twist[:, 1] + tol)
    return (swing_ok & twist_ok) | ~limits.has_limit


def joint_limit_violations(pose: torch.Tensor, tolerance_deg: float = 0.5) -> torch.Tensor:
    """The share of the 23 body joints outside their anatomical range, per sample (a plausibility metric).

    Args:
        pose: (B, 72) axis-angle θ; the global orientation is ignored.
        tolerance_deg: slack in degrees.

    Returns:
        (B,) values in [0, 1]: 0 for a pose inside every limit.

    Raises:
        ValueError: for a pose that is not (B, 72).
    """
    ok = within_limits(pose_to_anatomical(pose), tolerance_deg)[:, 1:]  # (B, 23)
    return (~ok).to(pose.dtype).mean(-1)


def clamp_to_limits(angles: torch.Tensor) -> torch.Tensor:
    """Bring every joint into its range: twist clipped, swing moved to the nearest point of its polygon.

    Args:
        angles: (B, 24, 3) anatomical angles in radians.

    Returns:
        (B, 24, 3) angles inside the limits (the root unchanged).
    """
    limits = limit_tensors(angles.dtype, angles.device)
    swing = angles[..., :2]
    polygon = limits.polygon.expand(*angles.shape[:-2], *limits.polygon.shape)
    inside = inside_polygon(swing, polygon)
    swing = torch.where(inside[..., None], swing, nearest_on_polygon(swing, polygon))
    twist = torch.minimum(torch.maximum(angles[..., 2], limits.twist[:, 0]), limits.twist[:, 1])
    out = torch.cat((swing, twist[..., None]), dim=-1)
    return torch.where(limits.has_limit[:, None], out, angles)

