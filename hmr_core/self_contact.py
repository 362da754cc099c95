"""Self-penetration: capsules along the bones, and which posed bodies pass through themselves.

Self-penetration uses capsules along the bones (limbs, torso, head), posed rigidly with their joint, as
SMPLify approximates the body for its interpenetration term (Bogo et al., ECCV 2016, Sec. 3); two
capsules that are not neighbours and come closer than the sum of their radii make a penetrating body.
The pose prior (``hmr_core.pose_prior``) rejects such bodies; the evaluation counts them.

Letters in shapes: B batch, J joints (24), C capsules, P capsule pairs, V vertices.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from hmr_core import constants
from hmr_core.joint_limits import _JOINT, _check_pose
from hmr_core.lbs import forward_kinematics
from hmr_core.rotation import axis_angle_to_matrix


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
