"""Anny's rig in SMPL's terms: axes, joints, parts, skinning weights, and the arms' T-pose.

Anny (Brégier et al., ECCV 2026) is z-up with 104 bones; SMPL is y-up with 24 joints. This module holds
the correspondence the open body model is built on (``hmr_core.open_body_model``): the change of axes,
which Anny bone heads make each SMPL joint, which SMPL part rotates each Anny bone (and so the skinning
weights), and the transforms that take Anny's A-pose rest to SMPL's T-pose. Plain NumPy; no Anny needed.

Letters in shapes: N bodies, B Anny bones, V vertices.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hmr_core.constants import NUM_SMPL_JOINTS, SMPL_JOINT_NAMES

# --- Axes ----------------------------------------------------------------------------------------------
# Anny is z-up, faces -y, the subject's left at +x. SMPL is y-up, faces +z, left at +x:
# (x, y, z)_smpl = (x, z, -y)_anny, a rotation of +90° about x (determinant +1, so no mirroring).
ANNY_TO_SMPL_ROTATION = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

# --- Joints --------------------------------------------------------------------------------------------
# SMPL joint <- the Anny bone heads (in the re-posed rest) whose mean is the joint. Anny's "spine05" starts
# at the root, so SMPL's three spine joints sit at spine04/spine02/spine01 (see the docs for the heights).
SMPL_JOINT_TO_ANNY_BONE_HEADS: dict[str, tuple[str, ...]] = {
    "pelvis": ("root",),
    "left_hip": ("upperleg01.L",),
    "right_hip": ("upperleg01.R",),
    "spine1": ("spine04",),
    "left_knee": ("lowerleg01.L",),
    "right_knee": ("lowerleg01.R",),
    "spine2": ("spine02",),
    "left_ankle": ("foot.L",),
    "right_ankle": ("foot.R",),
    "spine3": ("spine01",),
    # The ball of the foot: the mean of the five metatarsophalangeal joints.
    "left_foot": ("toe1-1.L", "toe2-1.L", "toe3-1.L", "toe4-1.L", "toe5-1.L"),
    "right_foot": ("toe1-1.R", "toe2-1.R", "toe3-1.R", "toe4-1.R", "toe5-1.R"),
    "neck": ("neck01",),
    # The sternoclavicular joint, about which the clavicle turns.
    "left_collar": ("clavicle.L",),
    "right_collar": ("clavicle.R",),
    "head": ("head",),
    "left_shoulder": ("upperarm01.L",),
    "right_shoulder": ("upperarm01.R",),
    "left_elbow": ("lowerarm01.L",),
    "right_elbow": ("lowerarm01.R",),
    "left_wrist": ("wrist.L",),
    "right_wrist": ("wrist.R",),
    # The middle finger's knuckle (Anny's finger1 is the thumb, finger3 the middle finger).
    "left_hand": ("finger3-1.L",),
    "right_hand": ("finger3-1.R",),
}

# Anny bone (its name without the ".L"/".R" side) -> SMPL part (without "left_"/"right_"). The first
# matching prefix wins. A part is the set of vertices an SMPL joint rotates, so each bone goes to the
# SMPL joint at or above its own head: e.g. "upperarm02" (the upper arm's twist bone) is still rotated by
# the shoulder, and the palm (wrist, metacarpals) and thumb by the wrist, the four fingers by the hand joint.
ANNY_BONE_PREFIX_TO_SMPL_PART: tuple[tuple[str, str], ...] = (
    ("root", "pelvis"),
    ("pelvis", "pelvis"),
    ("spine05", "pelvis"),
    ("spine04", "spine1"),
    ("spine03", "spine1"),
    ("spine02", "spine2"),
    ("spine01", "spine3"),
    ("upperleg", "hip"),
    ("lowerleg", "knee"),
    ("foot", "ankle"),
    ("toe", "foot"),
    ("neck", "neck"),
    ("head", "head"),
    ("eye", "head"),
    ("clavicle", "collar"),
    ("shoulder01", "collar"),
    ("upperarm", "shoulder"),
    ("lowerarm", "elbow"),
    ("wrist", "wrist"),
    ("metacarpal", "wrist"),
    ("finger1-", "wrist"),
    ("finger", "hand"),
)


def anny_to_smpl_axes(points: np.ndarray) -> np.ndarray:
    """Anny's axes (z up, facing -y) to SMPL's (y up, facing +z): (x, y, z) -> (x, z, -y).

    Args:
        points: (..., 3) points or vectors in Anny's axes.

    Returns:
        (..., 3) the same in SMPL's axes.
    """
    if points.shape[-1] != 3:
        raise ValueError(f"points must have shape (..., 3), got {points.shape}")
    return points @ ANNY_TO_SMPL_ROTATION.T


def anny_bone_to_smpl_part(bone_label: str) -> str:
    """The SMPL part (a name of :data:`SMPL_JOINT_NAMES`) whose joint rotates an Anny bone.

    Args:
        bone_label: an Anny bone name, e.g. ``"upperarm02.L"``.

    Returns:
        The SMPL joint name, e.g. ``"left_shoulder"``.

    Raises:
        KeyError: if no rule of :data:`ANNY_BONE_PREFIX_TO_SMPL_PART` matches.
    """
    stem, _, side = bone_label.partition(".")
    for prefix, part in ANNY_BONE_PREFIX_TO_SMPL_PART:
        if stem.startswith(prefix):
            if side in ("L", "R") and part not in SMPL_JOINT_NAMES:
                return ("left_" if side == "L" else "right_") + part
            if part in SMPL_JOINT_NAMES:
                return part
            raise KeyError(f"Anny bone {bone_label!r} maps to the sided part {part!r} but has no side")
    raise KeyError(f"no SMPL part for Anny bone {bone_label!r}")


def smpl_skinning_weights(bone_weights: np.ndarray, bone_labels: Sequence[str]) -> np.ndarray:
    """Sum Anny's per-bone skinning weights into SMPL's 24 parts.

    Args:
        bone_weights: (V, B) dense weights over Anny's B bones, rows summing to 1.
        bone_labels: the B bone names.

    Returns:
        (V, 24) weights over SMPL's joints, rows summing to 1.
    """
    if bone_weights.ndim != 2 or bone_weights.shape[1] != len(bone_labels):
        raise ValueError(f"bone_weights must be (V, {len(bone_labels)}), got {bone_weights.shape}")
    part_of_bone = np.array([SMPL_JOINT_NAMES.index(anny_bone_to_smpl_part(b)) for b in bone_labels])
    one_hot = np.eye(NUM_SMPL_JOINTS)[part_of_bone]  # (B, 24)
    weights = bone_weights @ one_hot  # (V, 24)
    return weights / weights.sum(axis=1, keepdims=True)


def minimal_rotation(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The rotation of smallest angle that turns the direction of ``source`` into that of ``target``.

    Args:
        source: (N, 3) non-zero vectors.
        target: (N, 3) non-zero vectors, not opposite to ``source``.

    Returns:
        (N, 3, 3) rotation matrices R with R · source/|source| = target/|target|.
    """
    a = source / np.linalg.norm(source, axis=-1, keepdims=True)
    b = target / np.linalg.norm(target, axis=-1, keepdims=True)
    axis = np.cross(a, b)  # (N, 3), |axis| = sin(angle)
    cos = np.einsum("ni,ni->n", a, b)
    if np.any(cos <= -1.0 + 1e-9):
        raise ValueError("minimal_rotation: source and target are opposite; the axis is undefined")
    # Rodrigues with k sinθ = axis: R = I + [axis]x + [axis]x^2 / (1 + cos θ), exact and finite at θ = 0.
    skew = np.zeros((*axis.shape, 3))
    skew[:, 0, 1], skew[:, 0, 2], skew[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    skew = skew - skew.transpose(0, 2, 1)
    return np.eye(3) + skew + skew @ skew / (1.0 + cos)[:, None, None]


def rotation_about(rotation: np.ndarray, pivot: np.ndarray) -> np.ndarray:
    """Homogeneous transforms x -> R (x - p) + p.

    Args:
        rotation: (N, 3, 3) rotations R.
        pivot: (N, 3) fixed points p.

    Returns:
        (N, 4, 4) rigid transforms.
    """
    transform = np.tile(np.eye(4), (len(rotation), 1, 1))
    transform[:, :3, :3] = rotation
    transform[:, :3, 3] = pivot - np.einsum("nij,nj->ni", rotation, pivot)
    return transform


def arm_tpose_transforms(
    bone_heads: np.ndarray, bone_labels: Sequence[str], bone_parents: Sequence[int]
) -> np.ndarray:
    """World transforms of Anny's bones that take its A-pose rest to a T-pose (Anny's axes).

    Each arm turns at the shoulder (the ``upperarm01`` head) so that the upper arm points straight out
    along ±x, then at the elbow (``lowerarm01``) so that the forearm continues along the same line; both
    turns are the rotations of smallest angle, so the elbow bends back about its own hinge axis and the
    palm ends facing down as in SMPL's T-pose. Every other bone keeps its rest pose.

    Args:
        bone_heads: (N, B, 3) rest bone heads in Anny's axes (the subject's left at +x).
        bone_labels: the B bone names.
        bone_parents: the B parent indices (-1 for the root).

    Returns:
        (N, B, 4, 4) transforms T_b from the rest to the T-pose; the posed bone pose is T_b · P_b.
    """
    index = {label: i for i, label in enumerate(bone_labels)}
    children: list[list[int]] = [[] for _ in bone_labels]
    for bone, parent in enumerate(bone_parents):
        if parent >= 0:
            children[parent].append(bone)

    def subtree(bone: int) -> list[int]:
        return [bone] + [b for child in children[bone] for b in subtree(child)]

    num_bodies = bone_heads.shape[0]
    transforms = np.tile(np.eye(4), (num_bodies, len(bone_labels), 1, 1))
    for side, sign in (("L", 1.0), ("R", -1.0)):
        shoulder = bone_heads[:, index[f"upperarm01.{side}"]]  # (N, 3)
        elbow = bone_heads[:, index[f"lowerarm01.{side}"]]
        wrist = bone_heads[:, index[f"wrist.{side}"]]
        out = np.tile([sign, 0.0, 0.0], (num_bodies, 1))  # the subject's left is +x
        upper = rotation_about(minimal_rotation(elbow - shoulder, out), shoulder)
        elbow_t = np.einsum("nij,nj->ni", upper[:, :3, :3], elbow) + upper[:, :3, 3]
        wrist_t = np.einsum("nij,nj->ni", upper[:, :3, :3], wrist) + upper[:, :3, 3]
        lower = rotation_about(minimal_rotation(wrist_t - elbow_t, out), elbow_t) @ upper
        transforms[:, subtree(index[f"upperarm01.{side}"])] = upper[:, None]
        transforms[:, subtree(index[f"lowerarm01.{side}"])] = lower[:, None]
    return transforms


def joints_from_bone_heads(bone_heads: np.ndarray, bone_labels: Sequence[str]) -> np.ndarray:
    """SMPL's 24 joints from Anny's bone heads (:data:`SMPL_JOINT_TO_ANNY_BONE_HEADS`).

    Args:
        bone_heads: (N, B, 3) bone heads.
        bone_labels: the B bone names.

    Returns:
        (N, 24, 3) joints in the order of :data:`SMPL_JOINT_NAMES`.
    """
    index = {label: i for i, label in enumerate(bone_labels)}
    return np.stack(
        [
            bone_heads[:, [index[b] for b in SMPL_JOINT_TO_ANNY_BONE_HEADS[name]]].mean(axis=1)
            for name in SMPL_JOINT_NAMES
        ],
        axis=1,
    )

