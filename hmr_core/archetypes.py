"""Whole-body pose archetypes: the pose families the pose prior draws around (chapter "Data").

Standing, walking, running, sitting, crouching, reaching, bending, arms raised and lying: each a mean
pose, correlated directions of variation (a gait phase swings the legs and the opposite arms together),
noise scaled to each joint's range of motion (``hmr_core.joint_limits``), and how the whole body is
oriented. ``hmr_core.pose_prior`` blends, jitters and samples them.

Letters in shapes: J joints (24), A archetypes, K variations per archetype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from hmr_core import constants
from hmr_core.joint_limits import _JOINT, limit_tensors

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
