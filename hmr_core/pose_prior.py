"""A pose prior for the synthetic world: anatomical joint limits, whole-body archetypes, no self-penetration.

HMR's discriminator learns what a real body looks like from a pool of mocap poses (CMU fitted with MoSh;
paper, Sec. 3.3 and 4). The synthetic world has no mocap, so this module makes a pool that behaves like
one: poses are drawn around whole-body archetypes (standing, walking, running, sitting, crouching,
reaching, bending, arms raised, lying), blended and jittered, so the joints are correlated as in
captured motion; every joint is kept inside its anatomical range of motion; and a body that would pass
through itself is rejected (chapter "Data").

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

Self-penetration uses capsules along the bones (limbs, torso, head), posed rigidly with their joint, as
SMPLify approximates the body for its interpenetration term (Bogo et al., ECCV 2016, Sec. 3); two
capsules that are not neighbours and come closer than the sum of their radii make a penetrating body.

``python -m hmr_core.pose_prior --num 10000 --out pool.npz`` writes a pool and prints the rejection rate.

Letters in shapes: B batch, J joints (24), C capsules, P capsule pairs, A archetypes.
"""

from __future__ import annotations

import argparse
import datetime
import math
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from hmr_core import constants
from hmr_core.augment import flip_pose
from hmr_core.lbs import forward_kinematics
from hmr_core.rotation import axis_angle_to_matrix, matrix_to_axis_angle, matrix_to_quaternion, quaternion_to_axis_angle

_JOINT = {name: j for j, name in enumerate(constants.SMPL_JOINT_NAMES)}


# ==================================================================================================
# Anatomical joint limits
# ==================================================================================================
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


# ==================================================================================================
# Self-penetration: capsules along the bones
# ==================================================================================================
class CapsuleSpec(NamedTuple):
    """One capsule of the body, attached to one joint.

    The axis runs between two rest-pose points, each ``J[a] + t (J[b] - J[a])`` for rest joints J.

    Attributes:
        name: e.g. "left_forearm".
        joint: the joint whose rigid motion moves the capsule.
        start: (a, b, t) of the first end.
        end: (a, b, t) of the second end.
        parts: skinning parts whose vertices measure the radius.
        group: "torso", "head", or the limb ("left_arm", ...).
        limb_root: True for the upper arm and thigh (which touch the torso at their root).
        centred: move the axis to the middle of the part's flesh (SMPL's spine joints lie near the back,
            and the head joint at the base of the skull); limbs keep the axis through their joints.
    """

    name: str
    joint: str
    start: tuple[str, str, float]
    end: tuple[str, str, float]
    parts: tuple[str, ...]
    group: str
    limb_root: bool = False
    centred: bool = False


def _limb_capsules(side: str) -> tuple[CapsuleSpec, ...]:
    s = side + "_"
    arm, leg = side + "_arm", side + "_leg"
    return (
        CapsuleSpec(s + "upper_arm", s + "shoulder", (s + "shoulder", s + "elbow", 0.0), (s + "shoulder", s + "elbow", 1.0),
                    (s + "shoulder",), arm, True),
        CapsuleSpec(s + "forearm", s + "elbow", (s + "elbow", s + "wrist", 0.0), (s + "elbow", s + "wrist", 1.0),
                    (s + "elbow",), arm),
        # From the wrist to the fingertips, about 1.6 wrist-to-knuckle lengths.
        CapsuleSpec(s + "hand", s + "wrist", (s + "wrist", s + "hand", 0.0), (s + "wrist", s + "hand", 1.6),
                    (s + "wrist", s + "hand"), arm),
        CapsuleSpec(s + "thigh", s + "hip", (s + "hip", s + "knee", 0.0), (s + "hip", s + "knee", 1.0),
                    (s + "hip",), leg, True),
        CapsuleSpec(s + "shin", s + "knee", (s + "knee", s + "ankle", 0.0), (s + "knee", s + "ankle", 1.0),
                    (s + "knee",), leg),
        CapsuleSpec(s + "foot", s + "ankle", (s + "ankle", s + "foot", 0.0), (s + "ankle", s + "foot", 1.0),
                    (s + "ankle", s + "foot"), leg),
    )


CAPSULES: tuple[CapsuleSpec, ...] = (
    # Between the hip joints, shortened so the rounded ends stay inside the hips.
    CapsuleSpec("pelvis", "pelvis", ("left_hip", "right_hip", 0.25), ("left_hip", "right_hip", 0.75), ("pelvis",),
                "torso", centred=True),
    CapsuleSpec("abdomen", "spine1", ("spine1", "spine2", 0.0), ("spine1", "spine2", 1.0), ("spine1",), "torso",
                centred=True),
    CapsuleSpec("chest", "spine2", ("spine2", "spine3", 0.0), ("spine2", "spine3", 1.0), ("spine2",), "torso",
                centred=True),
    CapsuleSpec("upper_chest", "spine3", ("spine3", "neck", 0.0), ("spine3", "neck", 1.0), ("spine3",), "torso",
                centred=True),
    CapsuleSpec("neck", "neck", ("neck", "head", 0.0), ("neck", "head", 1.0), ("neck",), "torso", centred=True),
    # From the head joint (base of the skull) up to 2.2 neck-to-head lengths above the neck.
    CapsuleSpec("head", "head", ("neck", "head", 1.0), ("neck", "head", 2.2), ("head",), "head", centred=True),
) + _limb_capsules("left") + _limb_capsules("right")

# Radius of each capsule over its axis length, for when only joint positions are known (no mesh): what
# ``fit_capsules_to_mesh`` measures on the open body model's mean shape, rounded.
CAPSULE_RADIUS_PER_LENGTH = {
    "pelvis": 0.66, "abdomen": 0.71, "chest": 0.94, "upper_chest": 0.33, "neck": 0.47, "head": 0.5,
    "upper_arm": 0.15, "forearm": 0.11, "hand": 0.11, "thigh": 0.16, "shin": 0.07, "foot": 0.13,
}


def capsule_pairs(specs: tuple[CapsuleSpec, ...] = CAPSULES) -> list[tuple[int, int]]:
    """The pairs of capsules to test: the ones that cannot touch without passing through each other.

    Tested: capsules of different limbs; a limb's capsules against the head; a limb's capsules beyond
    its root segment (forearm, hand, shin, foot) against the torso. Not tested: capsules of the same
    limb or of the torso (neighbours overlap at every joint), the torso against the head, the upper
    arm and thigh against the torso they are attached to, and the two hands (clasped or folded hands
    interlock, which a capsule cannot tell from penetration).

    Args:
        specs: the capsules.

    Returns:
        A list of index pairs (i, j), i < j.
    """
    pairs = []
    limbs = {"left_arm", "right_arm", "left_leg", "right_leg"}
    for i, a in enumerate(specs):
        for j in range(i + 1, len(specs)):
            b = specs[j]
            groups = {a.group, b.group}
            if a.group in limbs and b.group in limbs:
                hands = a.name.endswith("_hand") and b.name.endswith("_hand")
                test = a.group != b.group and not hands
            elif groups == {"torso", "head"} or len(groups) == 1:
                test = False
            elif "head" in groups:
                test = True
            else:  # a limb against the torso
                limb = a if a.group in limbs else b
                test = not limb.limb_root
            if test:
                pairs.append((i, j))
    return pairs


class BodyCapsules(NamedTuple):
    """Capsules of one body in the rest pose.

    Attributes:
        joint: (C,) long, the joint that moves each capsule.
        ends: (C, 2, 3) rest-pose end points.
        radius: (C,) radii, metres.
        pairs: (P, 2) long, the capsule pairs tested for penetration.
        rest_joints: (24, 3) rest-pose joints the capsules were built on.
        radii_from: "mesh" or "joints".
    """

    joint: torch.Tensor
    ends: torch.Tensor
    radius: torch.Tensor
    pairs: torch.Tensor
    rest_joints: torch.Tensor
    radii_from: str


def _capsule_ends(rest_joints: np.ndarray, specs) -> np.ndarray:
    def point(a, b, t):
        return rest_joints[_JOINT[a]] + t * (rest_joints[_JOINT[b]] - rest_joints[_JOINT[a]])

    return np.stack([np.stack((point(*s.start), point(*s.end))) for s in specs])  # (C, 2, 3)


def point_segment_distance(points: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance from points to a segment, and where along it the nearest point is.

    Args:
        points: (N, 3) points.
        start: (3,) one end.
        end: (3,) the other end.

    Returns:
        ``(distance, t)``, both (N,); t in [0, 1] from ``start`` to ``end``.
    """
    axis = end - start
    t = np.clip((points - start) @ axis / max(float(axis @ axis), 1e-12), 0.0, 1.0)
    return np.linalg.norm(points - (start + t[:, None] * axis), axis=1), t


class CapsuleFit(NamedTuple):
    """Capsules fitted to a mesh.

    Attributes:
        ends: (C, 2, 3) rest-pose end points (centred capsules moved into their part's flesh).
        radius: (C,) radii, metres.
    """

    ends: np.ndarray
    radius: np.ndarray


def fit_capsules_to_mesh(vertices: np.ndarray, weights: np.ndarray, rest_joints: np.ndarray,
                         specs: tuple[CapsuleSpec, ...] = CAPSULES, quantile: float = 0.1) -> CapsuleFit:
    """Fit capsules to a body mesh: radius = a low quantile of the part's vertex distances to the axis.

    A low quantile (default: the 10th percentile) makes an inner capsule: flesh that merely touches
    (a hand on a thigh, arms against the ribs) does not count as penetration, a limb that passes
    through another part's core does. Only vertices whose nearest axis point is inside the segment (not
    at the caps) count. Capsules marked ``centred`` first move their axis to the middle of those
    vertices' extent around it.

    Args:
        vertices: (V, 3) rest-pose vertices.
        weights: (V, 24) skinning weights; a vertex belongs to the part of its largest weight.
        rest_joints: (24, 3) rest-pose joints.
        specs: the capsules.
        quantile: which quantile of the distances is the radius.

    Returns:
        ``CapsuleFit``.

    Raises:
        ValueError: if a capsule has no vertices along its axis (the mesh does not fit the skeleton).
    """
    ends = _capsule_ends(rest_joints, specs)  # (C, 2, 3)
    part = weights.argmax(1)
    radii = []
    for c, spec in enumerate(specs):
        points = vertices[np.isin(part, [_JOINT[p] for p in spec.parts])]
        start, end = ends[c]
        dist, t = point_segment_distance(points, start, end)
        along = (t > 0.1) & (t < 0.9)
        if not along.any():
            raise ValueError(f"capsule {spec.name!r}: no vertices of parts {spec.parts} lie along its axis")
        if spec.centred:
            # Centre of the flesh around the axis: the middle of its extent in each direction.
            axis = (end - start) / np.linalg.norm(end - start)
            perp = points[along] - (start + t[along, None] * (end - start))  # (n, 3), ⊥ the axis
            offset = (perp.min(0) + perp.max(0)) / 2
            ends[c] = ends[c] + offset - (offset @ axis) * axis
            dist, t = point_segment_distance(points, *ends[c])
            along = (t > 0.1) & (t < 0.9)
        radii.append(float(np.quantile(dist[along], quantile)))
    return CapsuleFit(ends, np.array(radii))


def capsule_radii_from_joints(rest_joints: np.ndarray, specs: tuple[CapsuleSpec, ...] = CAPSULES) -> np.ndarray:
    """Radii from joint positions alone: each capsule's length times ``CAPSULE_RADIUS_PER_LENGTH``.

    Args:
        rest_joints: (24, 3) rest-pose joints.
        specs: the capsules.

    Returns:
        (C,) radii in metres.
    """
    ends = _capsule_ends(rest_joints, specs)
    lengths = np.linalg.norm(ends[:, 1] - ends[:, 0], axis=1)
    kinds = [spec.name.removeprefix("left_").removeprefix("right_") for spec in specs]
    return lengths * np.array([CAPSULE_RADIUS_PER_LENGTH[k] for k in kinds])


def body_capsules(model=None, specs: tuple[CapsuleSpec, ...] = CAPSULES, dtype=torch.float32) -> BodyCapsules:
    """The capsules of a body model's mean shape, or of the template skeleton when there is no model.

    Args:
        model: an ``hmr_core.SMPL`` (radii from its mesh), or None for ``constants.TEMPLATE_REST_JOINTS``
            with radii from joint positions alone.
        specs: the capsules.
        dtype: floating dtype of the tensors.

    Returns:
        ``BodyCapsules`` on the CPU.
    """
    if model is None:
        rest_joints = np.asarray(constants.TEMPLATE_REST_JOINTS, dtype=np.float64)
        ends = _capsule_ends(rest_joints, specs)
        radii, radii_from = capsule_radii_from_joints(rest_joints, specs), "joints"
    else:
        with torch.no_grad():
            rest = model()  # β = 0, θ = 0: the mean shape in the rest pose
        rest_joints = rest.joints[0].double().cpu().numpy()
        vertices = rest.vertices[0].double().cpu().numpy()
        weights = model.weights.double().cpu().numpy()
        fit = fit_capsules_to_mesh(vertices, weights, rest_joints, specs)
        ends, radii, radii_from = fit.ends, fit.radius, "mesh"
    return BodyCapsules(
        joint=torch.tensor([_JOINT[s.joint] for s in specs]),
        ends=torch.as_tensor(ends, dtype=dtype),
        radius=torch.as_tensor(radii, dtype=dtype),
        pairs=torch.tensor(capsule_pairs(specs)).reshape(-1, 2),
        rest_joints=torch.as_tensor(rest_joints, dtype=dtype),
        radii_from=radii_from,
    )


def segment_distance(p0: torch.Tensor, p1: torch.Tensor, q0: torch.Tensor, q1: torch.Tensor) -> torch.Tensor:
    """Closest distance between segments p0–p1 and q0–q1 (Ericson, Real-Time Collision Detection, 5.1.9).

    Args:
        p0, p1: (..., 3) ends of the first segments.
        q0, q1: (..., 3) ends of the second segments.

    Returns:
        (...) distances.
    """
    d1, d2, r = p1 - p0, q1 - q0, p0 - q0
    a, e = (d1 * d1).sum(-1), (d2 * d2).sum(-1)
    b, c, f = (d1 * d2).sum(-1), (d1 * r).sum(-1), (d2 * r).sum(-1)
    denom = a * e - b * b
    eps = 1e-12
    # s on the first segment for the infinite-line solution, clamped; parallel segments take s = 0.
    s = torch.where(denom > eps, ((b * f - c * e) / denom.clamp_min(eps)).clamp(0, 1), torch.zeros_like(a))
    t = (b * s + f) / e.clamp_min(eps)
    # If t left [0, 1], clamp it and recompute s for that t.
    t_clamped = t.clamp(0, 1)
    s = torch.where(t != t_clamped, ((b * t_clamped - c) / a.clamp_min(eps)).clamp(0, 1), s)
    closest_p = p0 + s[..., None] * d1
    closest_q = q0 + t_clamped[..., None] * d2
    return (closest_p - closest_q).norm(dim=-1)


def posed_capsule_ends(pose: torch.Tensor, capsules: BodyCapsules) -> torch.Tensor:
    """The capsules' end points after posing the rest skeleton with θ.

    Args:
        pose: (B, 72) axis-angle θ.
        capsules: the rest-pose capsules.

    Returns:
        (B, C, 2, 3) posed end points.
    """
    _check_pose(pose)
    rotmats = axis_angle_to_matrix(pose.reshape(-1, constants.NUM_SMPL_JOINTS, 3))
    rest = capsules.rest_joints.to(pose)[None].expand(pose.shape[0], -1, -1)
    _, rel_rot, rel_transl = forward_kinematics(rotmats, rest, constants.SMPL_PARENTS)
    rot = rel_rot[:, capsules.joint]  # (B, C, 3, 3)
    transl = rel_transl[:, capsules.joint]  # (B, C, 3)
    ends = capsules.ends.to(pose)  # (C, 2, 3)
    # end'[b, c, e] = R[b, c] · end[c, e] + t[b, c]
    return torch.einsum("bcij,cej->bcei", rot, ends) + transl[:, :, None]


def penetrating_pairs(pose: torch.Tensor, capsules: BodyCapsules) -> torch.Tensor:
    """Which tested capsule pairs intersect.

    Args:
        pose: (B, 72) axis-angle θ.
        capsules: the body's capsules.

    Returns:
        (B, P) bool, one column per row of ``capsules.pairs``.
    """
    ends = posed_capsule_ends(pose, capsules)  # (B, C, 2, 3)
    i, j = capsules.pairs[:, 0], capsules.pairs[:, 1]
    dist = segment_distance(ends[:, i, 0], ends[:, i, 1], ends[:, j, 0], ends[:, j, 1])  # (B, P)
    radius = capsules.radius.to(pose)
    return dist < radius[i] + radius[j]


def self_penetration(pose: torch.Tensor, capsules: BodyCapsules) -> torch.Tensor:
    """Whether each posed body passes through itself (any tested capsule pair intersects).

    Args:
        pose: (B, 72) axis-angle θ.
        capsules: the body's capsules.

    Returns:
        (B,) bool.
    """
    return penetrating_pairs(pose, capsules).any(-1)


def default_capsules() -> BodyCapsules:
    """Capsules of the default body model (the open model) or, when its file is missing, the template skeleton."""
    from hmr_core.body_model import SMPL
    from hmr_core.model_files import ModelFileError

    try:
        model = SMPL()
    except ModelFileError:
        return body_capsules(None)
    return body_capsules(model)


# ==================================================================================================
# Archetypes
# ==================================================================================================
Angles = dict[str, tuple[float, float, float]]  # joint -> (a₁, a₂, a₃) degrees; "hip" sets both sides


class Variation(NamedTuple):
    """A correlated direction of variation: ``deltas`` times a coefficient drawn uniformly in [low, high]."""

    deltas: Angles
    low: float = -1.0
    high: float = 1.0


@dataclass(frozen=True)
class Archetype:
    """A whole-body pose family: a mean, correlated variations, noise, and how the body is oriented.

    Attributes:
        name: e.g. "walking".
        mean: joint angles in degrees (``JOINT_LIMITS`` coordinates); "hip" sets both hips, "left_hip"
            only the left; unlisted joints are 0 (the T-pose).
        variations: correlated directions (e.g. the gait phase swings the legs and the opposite arms).
        noise: per-joint Gaussian noise, as a fraction of each coordinate's range of motion (capped, see
            ``noise_scales``).
        pitch: (mean, std) degrees of the whole body's forward tilt about the x axis (bending forward
            is positive; lying on the back is -90).
        spin: whether the body turns freely about its own long axis (lying on back, side or front).
        weight: how often the archetype is drawn, relative to the others.
    """

    name: str
    mean: Angles
    variations: tuple[Variation, ...] = ()
    noise: float = 0.06
    pitch: tuple[float, float] = (0.0, 4.0)
    spin: bool = False
    weight: float = 1.0


_ARMS_DOWN = {"shoulder": (-75.0, 5.0, 0.0), "elbow": (15.0, 0.0, 0.0)}
NOISE_WIDTH_CAP_DEG = 90.0  # noise std = archetype fraction × min(range of motion, this)

ARCHETYPES: tuple[Archetype, ...] = (
    Archetype("standing", {**_ARMS_DOWN, "hip": (0, 3, 5), "knee": (3, 0, 0)}, (
        Variation({"left_shoulder": (35, 30, 0), "left_elbow": (50, 0, 0)}, 0, 1),  # left arm raised, bent
        Variation({"right_shoulder": (35, 30, 0), "right_elbow": (50, 0, 0)}, 0, 1),
        Variation({"left_hip": (0, 8, 0), "right_hip": (0, -8, 0), "spine1": (0, 4, 0)}),  # weight shift
        Variation({"neck": (5, 0, 20), "head": (5, 0, 20)}),  # looking around
    ), noise=0.06, weight=1.5),
    Archetype("walking", {"shoulder": (-74, 0, 0), "elbow": (25, 0, 0), "hip": (5, 3, 0), "knee": (20, 0, 0),
                          "spine1": (3, 0, 0)}, (
        # Gait phase: one leg forward, the other back, the opposite arms swinging with them.
        Variation({"left_hip": (25, 0, 0), "right_hip": (-25, 0, 0), "left_shoulder": (0, -25, 0),
                   "right_shoulder": (0, 25, 0), "spine2": (0, 0, 5), "left_ankle": (5, 0, 0),
                   "right_ankle": (-10, 0, 0)}),
        Variation({"left_knee": (20, 0, 0), "right_knee": (-15, 0, 0)}),  # swing-leg knee bend
    ), noise=0.05, pitch=(3.0, 3.0), weight=1.5),
    Archetype("running", {"shoulder": (-70, 10, 0), "elbow": (85, 0, 0), "hip": (25, 3, 0), "knee": (65, 0, 0),
                          "spine1": (5, 0, 0), "spine2": (5, 0, 0), "spine3": (5, 0, 0)}, (
        Variation({"left_hip": (40, 0, 0), "right_hip": (-40, 0, 0), "left_knee": (-30, 0, 0),
                   "right_knee": (30, 0, 0), "left_shoulder": (0, -40, 0), "right_shoulder": (0, 40, 0),
                   "spine2": (0, 0, 8)}),
        Variation({"elbow": (20, 0, 0)}),
    ), noise=0.05, pitch=(10.0, 5.0)),
    Archetype("sitting", {"shoulder": (-62, 40, 0), "elbow": (70, 0, 0), "hip": (90, 8, 5), "knee": (90, 0, 0),
                          "spine1": (5, 0, 0), "spine2": (5, 0, 0), "spine3": (5, 0, 0)}, (
        Variation({"knee": (-30, 0, 0), "ankle": (-15, 0, 0)}),  # feet forward or tucked
        Variation({"spine1": (8, 0, 0), "spine2": (8, 0, 0), "spine3": (8, 0, 0), "hip": (10, 0, 0)}),  # leaning
        Variation({"left_shoulder": (35, 20, 0), "left_elbow": (40, 0, 0)}, 0, 1),
        Variation({"right_shoulder": (35, 20, 0), "right_elbow": (40, 0, 0)}, 0, 1),
        Variation({"left_knee": (25, 0, 0), "right_knee": (-25, 0, 0)}),  # one foot forward
    ), noise=0.06),
    # Squatting on the balls of the feet: hips and knees deeply bent, heels up, trunk leaning forward.
    Archetype("crouching", {"shoulder": (0, 75, 0), "elbow": (25, 0, 0), "hip": (105, 15, 10), "knee": (130, 0, 0),
                            "ankle": (18, 8, 0), "foot": (-25, 0, 0), "spine1": (10, 0, 0), "spine2": (10, 0, 0),
                            "spine3": (10, 0, 0), "neck": (-10, 0, 0), "head": (-10, 0, 0)}, (
        Variation({"hip": (12, 0, 0), "knee": (15, 0, 0)}),  # depth
        Variation({"shoulder": (-20, 0, 0), "elbow": (20, 0, 0)}, 0, 1),  # arms resting lower
    ), noise=0.05, pitch=(25.0, 6.0)),
    Archetype("reaching", {"left_shoulder": (10, 70, 0), "left_elbow": (10, 0, 0), "right_shoulder": (-75, 10, 0),
                           "right_elbow": (20, 0, 0), "hip": (5, 3, 0), "knee": (5, 0, 0), "spine2": (0, 0, -8)}, (
        Variation({"left_shoulder": (40, 0, 0)}),  # reach higher or lower
        Variation({"left_shoulder": (0, 40, 0)}),  # reach across or out to the side
        Variation({"spine1": (8, 0, 0), "spine2": (8, 0, 0), "hip": (15, 0, 0)}, 0, 1),  # leaning into it
        Variation({"right_shoulder": (30, 50, 0), "right_elbow": (40, 0, 0)}, 0, 1),  # other arm helps
    ), noise=0.06, pitch=(5.0, 5.0)),
    Archetype("bending", {"shoulder": (10, 85, 0), "elbow": (10, 0, 0), "hip": (60, 5, 0), "knee": (10, 0, 0),
                          "ankle": (10, 0, 0), "spine1": (15, 0, 0), "spine2": (15, 0, 0), "spine3": (15, 0, 0),
                          "neck": (-10, 0, 0), "head": (-15, 0, 0)}, (
        Variation({"hip": (20, 0, 0), "spine1": (5, 0, 0), "spine2": (5, 0, 0), "spine3": (5, 0, 0)}),  # depth
        Variation({"knee": (20, 0, 0), "ankle": (10, 0, 0)}, 0, 1),
        Variation({"shoulder": (-35, -15, 0), "elbow": (10, 0, 0)}, 0, 1),  # hands towards the knees
    ), noise=0.05, pitch=(60.0, 12.0)),
    Archetype("arms_raised", {"shoulder": (70, 15, -20), "elbow": (20, 0, 0), "spine3": (-3, 0, 0),
                              "head": (-10, 0, 0), "hip": (0, 3, 0), "knee": (3, 0, 0)}, (
        Variation({"left_shoulder": (15, 20, 0), "left_elbow": (70, 0, 0)}, 0, 1),  # hand on the head
        Variation({"right_shoulder": (15, 20, 0), "right_elbow": (70, 0, 0)}, 0, 1),
        Variation({"spine1": (0, 8, 0), "spine2": (0, 8, 0), "spine3": (0, 8, 0)}),  # side bend
    ), noise=0.06),
    Archetype("lying", {"shoulder": (-30, 0, 0), "elbow": (10, 0, 0), "hip": (5, 8, 10), "knee": (5, 0, 0)}, (
        Variation({"shoulder": (45, 0, 0)}),  # arms by the sides .. out to the sides
        Variation({"left_hip": (50, 0, 0), "left_knee": (90, 0, 0)}, 0, 1),  # one knee up
        Variation({"right_hip": (50, 0, 0), "right_knee": (90, 0, 0)}, 0, 1),
        Variation({"neck": (0, 0, 25), "head": (0, 0, 25)}),
    ), noise=0.06, pitch=(-90.0, 8.0), spin=True, weight=0.7),
)


def archetype_angles(angles: Angles) -> np.ndarray:
    """Expand an archetype's joint dict to (24, 3) radians.

    Args:
        angles: joint -> degrees; "hip" means both hips, "left_hip" the left only.

    Returns:
        (24, 3) array.

    Raises:
        KeyError: for a name that is neither an SMPL joint nor a paired joint without its side.
    """
    out = np.zeros((constants.NUM_SMPL_JOINTS, 3))
    for name, value in angles.items():
        names = [name] if name in _JOINT else ["left_" + name, "right_" + name]
        for joint in names:
            if joint not in _JOINT:
                raise KeyError(f"archetype joint {name!r} is not an SMPL joint (see constants.SMPL_JOINT_NAMES)")
            out[_JOINT[joint]] += np.radians(value)
    return out


class ArchetypeTensors(NamedTuple):
    """Archetypes stacked for sampling.

    Attributes:
        mean: (A, 24, 3) radians.
        variations: (A, K, 24, 3) radians, zero-padded to the largest K.
        variation_range: (A, K, 2) coefficient ranges ([0, 0] for padding).
        noise: (A,) noise fractions.
        pitch: (A, 2) mean and std, radians.
        spin: (A,) bool.
        weight: (A,) sampling weights.
    """

    mean: torch.Tensor
    variations: torch.Tensor
    variation_range: torch.Tensor
    noise: torch.Tensor
    pitch: torch.Tensor
    spin: torch.Tensor
    weight: torch.Tensor


def archetype_tensors(archetypes: tuple[Archetype, ...] = ARCHETYPES, dtype=torch.float64) -> ArchetypeTensors:
    """Stack archetypes into tensors.

    Args:
        archetypes: the archetypes.
        dtype: floating dtype.

    Returns:
        ``ArchetypeTensors``.
    """
    num_var = max(max(len(a.variations) for a in archetypes), 1)
    variations = np.zeros((len(archetypes), num_var, constants.NUM_SMPL_JOINTS, 3))
    ranges = np.zeros((len(archetypes), num_var, 2))
    for i, arch in enumerate(archetypes):
        for k, var in enumerate(arch.variations):
            variations[i, k] = archetype_angles(var.deltas)
            ranges[i, k] = (var.low, var.high)
    to = dict(dtype=dtype)
    return ArchetypeTensors(
        mean=torch.tensor(np.stack([archetype_angles(a.mean) for a in archetypes]), **to),
        variations=torch.tensor(variations, **to),
        variation_range=torch.tensor(ranges, **to),
        noise=torch.tensor([a.noise for a in archetypes], **to),
        pitch=torch.deg2rad(torch.tensor([a.pitch for a in archetypes], **to)),
        spin=torch.tensor([a.spin for a in archetypes]),
        weight=torch.tensor([a.weight for a in archetypes], **to),
    )


def limit_widths(dtype=torch.float64) -> torch.Tensor:
    """Width of each joint's range per coordinate (the swing polygon's bounding box, the twist range).

    Args:
        dtype: floating dtype.

    Returns:
        (24, 3) radians; zero for the root.
    """
    limits = limit_tensors(dtype)
    swing = limits.polygon.amax(1) - limits.polygon.amin(1)  # (24, 2)
    twist = limits.twist[:, 1] - limits.twist[:, 0]
    widths = torch.cat((swing, twist[:, None]), dim=1)
    return widths * limits.has_limit[:, None]


def noise_scales(dtype=torch.float64) -> torch.Tensor:
    """How wide each coordinate's noise is, before the archetype's fraction: its range, capped.

    The cap (``NOISE_WIDTH_CAP_DEG``) keeps the shoulder (a ~200° range) from swinging as wildly as its
    range would allow: large arm movements come from the archetypes' variations, not from noise.

    Args:
        dtype: floating dtype.

    Returns:
        (24, 3) radians.
    """
    return limit_widths(dtype).clamp_max(math.radians(NOISE_WIDTH_CAP_DEG))


# ==================================================================================================
# Sampling
# ==================================================================================================
@dataclass(frozen=True)
class PosePriorConfig:
    """How poses are drawn (defaults make the synthetic world's pool)."""

    blend_probability: float = 0.5  # share of samples that blend two archetypes
    max_blend: float = 0.5  # weight of the second archetype, uniform in [0, max_blend]
    noise_scale: float = 1.0  # multiplies every archetype's noise
    mirror_probability: float = 0.5  # left-right mirrored samples, so the pool is symmetric
    reject_penetration: bool = True  # redraw bodies whose capsules intersect
    max_rounds: int = 50  # give up after this many redraw rounds
    archetype_weights: dict[str, float] = field(default_factory=dict)  # override ``Archetype.weight`` by name


class PoseSamples(NamedTuple):
    """What ``sample_poses`` returns.

    Attributes:
        pose: (B, 72) axis-angle θ with the global orientation left at zero.
        global_orient: (B, 3) axis-angle orientation drawn for each body in SMPL's frame (y up): a random
            heading, plus the archetype's tilt (lying bodies lie down). The datasets' camera frame has y
            down: there an upright body's global orientation is this one turned by π about x.
        archetype: (B,) long, index into ``ARCHETYPES`` of the main archetype.
        num_drawn: bodies drawn in all, rejected ones included.
        num_rejected: bodies rejected for self-penetration.
    """

    pose: torch.Tensor
    global_orient: torch.Tensor
    archetype: torch.Tensor
    num_drawn: int
    num_rejected: int

    @property
    def rejection_rate(self) -> float:
        """The share of drawn bodies rejected for self-penetration."""
        return self.num_rejected / max(self.num_drawn, 1)

    def pose_with_global_orient(self) -> torch.Tensor:
        """(B, 72) θ with ``global_orient`` in its first 3 entries (as mocap pools store it)."""
        return torch.cat((self.global_orient, self.pose[:, 3:]), dim=1)


def _uniform(shape, low, high, generator, dtype):
    return low + (high - low) * torch.rand(shape, generator=generator, dtype=dtype)


def sample_anatomical(num: int, generator: torch.Generator | None = None, config: PosePriorConfig = PosePriorConfig(),
                      archetypes: tuple[Archetype, ...] = ARCHETYPES) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw joint angles around blended archetypes, with noise, clamped to the joint limits.

    Each sample takes archetype a (and, with ``config.blend_probability``, a second archetype b with
    weight w ≤ ``config.max_blend``); each archetype contributes its mean plus its variations times
    uniform coefficients; Gaussian noise scaled to each joint's range of motion is added.

    Args:
        num: B, how many.
        generator: torch random generator.
        config: the sampling settings.
        archetypes: the archetypes.

    Returns:
        ``(angles, pitch, archetype)``: (B, 24, 3) anatomical angles in radians inside the limits
        (float64), (B,) body pitch in radians, and (B,) long index of the main archetype.
    """
    dtype = torch.float64
    arch = archetype_tensors(archetypes, dtype)
    weights = arch.weight.clone()
    for name, value in config.archetype_weights.items():
        names = [a.name for a in archetypes]
        if name not in names:
            raise KeyError(f"unknown archetype {name!r}; the archetypes are {names}")
        weights[names.index(name)] = value
    first = torch.multinomial(weights, num, replacement=True, generator=generator)
    second = torch.multinomial(weights, num, replacement=True, generator=generator)
    blend = _uniform(num, 0.0, config.max_blend, generator, dtype)
    blend = blend * (torch.rand(num, generator=generator, dtype=dtype) < config.blend_probability)

    def draw(index):
        ranges = arch.variation_range[index]  # (B, K, 2)
        coeff = _uniform(ranges.shape[:2], 0.0, 1.0, generator, dtype) * (ranges[..., 1] - ranges[..., 0]) + ranges[..., 0]
        # angles[b, j, k] = mean[b, j, k] + Σ_v coeff[b, v] · variations[b, v, j, k]
        angles = arch.mean[index] + torch.einsum("bv,bvjk->bjk", coeff, arch.variations[index])
        pitch = arch.pitch[index, 0] + arch.pitch[index, 1] * torch.randn(num, generator=generator, dtype=dtype)
        return angles, pitch

    angles_a, pitch_a = draw(first)
    angles_b, pitch_b = draw(second)
    w = blend[:, None, None]
    angles = (1 - w) * angles_a + w * angles_b
    pitch = (1 - blend) * pitch_a + blend * pitch_b
    noise = ((1 - blend) * arch.noise[first] + blend * arch.noise[second]) * config.noise_scale  # (B,)
    sigma = noise[:, None, None] * noise_scales(dtype)  # (B, 24, 3)
    angles = angles + sigma * torch.randn(angles.shape, generator=generator, dtype=dtype)
    return clamp_to_limits(angles), pitch, first


def sample_global_orient(pitch: torch.Tensor, spin: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Orientation of whole bodies: R = R_y(heading) · R_x(pitch) · R_y(spin about the body's long axis).

    Args:
        pitch: (B,) forward tilt in radians (-π/2 lies on the back before the spin).
        spin: (B,) bool, whether the body also turns at random about its own long axis.
        generator: torch random generator.

    Returns:
        (B, 3) axis-angle global orientations in SMPL's frame (y up).
    """
    num, dtype = pitch.shape[0], pitch.dtype
    zero = torch.zeros(num, dtype=dtype)
    heading = _uniform(num, -math.pi, math.pi, generator, dtype)
    roll = _uniform(num, -math.pi, math.pi, generator, dtype) * spin
    r_heading = axis_angle_to_matrix(torch.stack((zero, heading, zero), -1))
    r_pitch = axis_angle_to_matrix(torch.stack((pitch, zero, zero), -1))
    r_spin = axis_angle_to_matrix(torch.stack((zero, roll, zero), -1))
    return matrix_to_axis_angle(r_heading @ r_pitch @ r_spin)


def sample_poses(num: int, generator: torch.Generator | None = None, config: PosePriorConfig = PosePriorConfig(),
                 capsules: BodyCapsules | None = None,
                 archetypes: tuple[Archetype, ...] = ARCHETYPES) -> PoseSamples:
    """Draw ``num`` plausible whole-body poses: archetypes, joint limits, no self-penetration.

    Args:
        num: B, how many.
        generator: torch random generator (seed it for a reproducible pool).
        config: the sampling settings.
        capsules: the body used for the penetration test; None builds ``default_capsules()``.
        archetypes: the archetypes.

    Returns:
        ``PoseSamples`` (float32 tensors), with the numbers of drawn and rejected bodies.

    Raises:
        RuntimeError: if ``config.max_rounds`` rounds of redrawing still leave too few bodies.
    """
    if num < 0:
        raise ValueError(f"num must be ≥ 0, got {num}")
    if config.reject_penetration and capsules is None:
        capsules = default_capsules()
    spins = torch.tensor([a.spin for a in archetypes])
    poses = [torch.zeros(0, constants.POSE_DIM, dtype=torch.float64)]
    orients = [torch.zeros(0, 3, dtype=torch.float64)]
    kinds = [torch.zeros(0, dtype=torch.long)]
    have, drawn, rejected, rounds = 0, 0, 0, 0
    while have < num and rounds < config.max_rounds:
        rounds += 1
        # Draw a little more than is missing, since some are rejected.
        batch = max(64, int(1.3 * (num - have)))
        angles, pitch, kind = sample_anatomical(batch, generator, config, archetypes)
        pose = anatomical_to_pose(angles)  # (batch, 72), root zero
        mirror = torch.rand(batch, generator=generator, dtype=pose.dtype) < config.mirror_probability
        pose = torch.where(mirror[:, None], flip_pose(pose), pose)
        drawn += batch
        if config.reject_penetration:
            ok = ~self_penetration(pose, capsules)
            rejected += int((~ok).sum())
            pose, pitch, kind = pose[ok], pitch[ok], kind[ok]
        orient = sample_global_orient(pitch, spins[kind], generator)
        poses.append(pose)
        orients.append(orient)
        kinds.append(kind)
        have += pose.shape[0]
    if have < num:
        raise RuntimeError(f"only {have} of {num} poses passed the penetration test after {config.max_rounds} "
                           f"rounds ({rejected} of {drawn} rejected); loosen the archetypes or the capsules")
    pose = torch.cat(poses)[:num]
    return PoseSamples(pose=pose.float(), global_orient=torch.cat(orients)[:num].float(),
                       archetype=torch.cat(kinds)[:num], num_drawn=drawn, num_rejected=rejected)


def rejection_rates(num: int = 10_000, generator: torch.Generator | None = None,
                    config: PosePriorConfig = PosePriorConfig(), capsules: BodyCapsules | None = None,
                    archetypes: tuple[Archetype, ...] = ARCHETYPES) -> dict[str, float]:
    """The share of drawn bodies the penetration test rejects, overall and per archetype.

    Args:
        num: bodies to draw.
        generator: torch random generator.
        config: the sampling settings (``reject_penetration`` is ignored: everything is tested).
        capsules: the body; None uses ``default_capsules()``.
        archetypes: the archetypes.

    Returns:
        ``{"all": rate, "<archetype>": rate, ...}``.
    """
    capsules = default_capsules() if capsules is None else capsules
    angles, _, kind = sample_anatomical(num, generator, config, archetypes)
    pose = anatomical_to_pose(angles)
    bad = self_penetration(pose, capsules)
    rates = {"all": float(bad.double().mean())}
    for i, arch in enumerate(archetypes):
        mine = kind == i
        rates[arch.name] = float(bad[mine].double().mean()) if mine.any() else float("nan")
    return rates


# ==================================================================================================
# Pools on disk
# ==================================================================================================
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
    from hmr_core.datasets import read_npz

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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m hmr_core.pose_prior", description=__doc__.split("\n")[0])
    parser.add_argument("--num", type=int, default=10_000, help="poses to draw (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("pose_prior_pool.npz"), help="output .npz (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    capsules = default_capsules()
    generator = torch.Generator().manual_seed(args.seed)
    samples = sample_poses(args.num, generator, capsules=capsules)
    betas = torch.randn(args.num, constants.NUM_BETAS, generator=generator)
    save_pose_pool(args.out, samples, betas)
    rates = rejection_rates(args.num, torch.Generator().manual_seed(args.seed + 1), capsules=capsules)
    elapsed = time.perf_counter() - start
    violations = joint_limit_violations(samples.pose.double())
    print(f"# pose prior, {datetime.date.today()}, {platform.processor() or platform.machine()}, torch {torch.__version__}")
    print(f"capsule radii from the {capsules.radii_from}; {len(capsules.pairs)} capsule pairs tested")
    print(f"wrote {args.num} poses to {args.out} in {elapsed:.1f} s")
    print(f"rejection rate (self-penetration): {samples.rejection_rate:.2%} "
          f"({samples.num_rejected} of {samples.num_drawn} drawn)")
    print("per archetype, on a fresh draw of the same size:")
    for name, rate in rates.items():
        print(f"  {name:12s} {rate:7.2%}")
    print(f"joints outside their limits in the pool: {float(violations.mean()):.4%} (clamped, so ~0)")


if __name__ == "__main__":
    sys.exit(main())
