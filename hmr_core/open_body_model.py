"""An open body model in SMPL's format, built from Anny (Apache-2.0).

The official SMPL model (Loper et al., SIGGRAPH Asia 2015) needs a registration, so the book's default
body model is built here from the Anny body model (Brégier et al., ECCV 2026; code Apache-2.0, MakeHuman
assets CC0). The result is a plain SMPL-format ``.npz`` (``v_template``, ``shapedirs``, ``posedirs``,
``J_regressor``, ``weights``, ``kintree_table``, ``f``, plus HMR's keypoint regressors) that any SMPL code
can load: metres, y up, facing +z, the subject's left at +x, a T-pose at θ = 0, SMPL's 24 joints.

The build follows how SMPL's own shape space and joint regressor were trained (SMPL paper, Sec. 4), with
Anny as the "scanner"; the chapter "The SMPL body model" uses the result:

1. sample adult bodies over Anny's phenotypes and local changes (:func:`sample_body_parameters`);
2. re-pose each body's arms from Anny's A-pose to a T-pose with Anny's own skinning (:func:`tpose_bodies`)
   and express it in SMPL's axes (:func:`anny_to_smpl_axes`);
3. PCA of the rest meshes gives ``v_template`` and ``shapedirs`` (:func:`fit_shape_space`);
4. sparse non-negative regressors from vertices to joints and keypoints are fitted over the sampled
   bodies (:func:`fit_sparse_regressor`);
5. Anny's 104 bones' skinning weights are summed into SMPL's 24 parts (:func:`smpl_skinning_weights`).

Every choice (joint placement, bone → part mapping, inner parts, keypoints) and the measured report are in
``docs/open_body_model.md``. Build with ``python -m hmr_core.open_body_model build``. ``anny`` is an
optional build dependency, imported only inside the functions that need it.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from hmr_core.constants import (
    FACE_KEYPOINT_NAMES,
    LSP_JOINT_NAMES,
    NUM_BETAS,
    NUM_POSE_BLEND,
    NUM_SMPL_JOINTS,
    OPEN_MODEL_FILENAME,
    SMPL_JOINT_NAMES,
    SMPL_PARENTS,
)

if TYPE_CHECKING:  # pragma: no cover - typing only; anny is an optional build dependency
    import anny

DEFAULT_OUTPUT_PATH = Path(__file__).resolve().parent / "data" / OPEN_MODEL_FILENAME

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

# --- Mesh ----------------------------------------------------------------------------------------------
# Anny's segmentation labels of the parts dropped from the mesh: the tongue is a separate closed piece
# inside the closed mouth that SMPL does not have and that no θ can ever show (no jaw joint). The eyeballs
# are kept: without them the eye openings look into Anny's eye cavities.
DROPPED_SEGMENTS = ("tongue",)

# --- Shape sampling ------------------------------------------------------------------------------------
# Anny's local changes that move a body part sideways, and so break the left/right symmetry of a body
# (measured: the displacement field is not its own mirror image). Pose-like, not shape.
ASYMMETRIC_LOCAL_CHANGES = (
    "head-trans-out",
    "hip-trans-out",
    "mouth-trans-out",
    "neck-trans-out",
    "nose-trans-out",
    "torso-trans-out",
)
# Local changes whose blend shapes duplicate another one's (sampling both would double that variation);
# the "measure-" twin is kept.
DUPLICATE_LOCAL_CHANGES = ("head-trans-up", "lowerlegs-height-incr", "upperlegs-height-incr")

# --- Keypoints -----------------------------------------------------------------------------------------
# LSP joint <- Anny's COCO keypoint regressor (COCO and LSP annotate the limb joints alike: the hips lie
# more lateral than the hip joint centres, the shoulders on the top of the shoulder). "neck" and
# "head_top" are not COCO keypoints and are defined geometrically in :func:`lsp_keypoint_targets`.
LSP_JOINT_TO_ANNY_COCO = {name: name for name in LSP_JOINT_NAMES if name not in ("neck", "head_top")}
# SMPL joints whose neighbourhood holds the candidate vertices for each LSP keypoint's regressor.
LSP_JOINT_TO_SMPL_JOINT = {
    "right_ankle": "right_ankle",
    "right_knee": "right_knee",
    "right_hip": "right_hip",
    "left_hip": "left_hip",
    "left_knee": "left_knee",
    "left_ankle": "left_ankle",
    "right_wrist": "right_wrist",
    "right_elbow": "right_elbow",
    "right_shoulder": "right_shoulder",
    "left_shoulder": "left_shoulder",
    "left_elbow": "left_elbow",
    "left_wrist": "left_wrist",
    "neck": "neck",
    "head_top": "head",
}

# Unit directions (6 axes and 8 diagonals) that bin the candidate vertices around a joint, so that the
# candidates surround it and a convex combination of them can reach an interior point.
_CANDIDATE_DIRECTIONS = np.concatenate(
    [np.eye(3), -np.eye(3), np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T / np.sqrt(3)]
)
# Weight of the sum-to-one row in the non-negative least squares, relative to the per-coordinate rows.
_SUM_TO_ONE_WEIGHT = 1e4
# Regressor weights below this are dropped (and the rest refitted), so that the sparsity pattern is
# robust to round-off.
_MIN_REGRESSOR_WEIGHT = 1e-3
_ROOT_PARENT = -1  # kintree_table[0, 0]: the official model stores 2**32 - 1; we store -1 as int64


@dataclasses.dataclass(frozen=True)
class OpenModelConfig:
    """Settings of the build; the defaults make the committed ``hmr_core/data/open_body_model.npz``."""

    num_bodies: int = 2400  # sampled bodies, training and held-out together
    heldout_fraction: float = 0.1  # the last ~10% of the sampled bodies only measure the fit
    seed: int = 0  # seeds every random draw (NumPy's PCG64)
    min_age_years: float = 18.0  # adults: Anny's "morphological age" in years, sampled uniformly
    max_age_years: float = 80.0
    local_change_std: float = 0.1  # std of each local change (Anny's range is [-1, 1]), clipped to ±1
    num_betas: int = NUM_BETAS  # shape components kept
    candidates_per_direction: int = 4  # regressor candidates: nearest vertices per direction bin (14 bins)
    batch_size: int = 200  # bodies per Anny forward pass


class BodySamples(NamedTuple):
    """Anny parameters of the sampled bodies.

    Attributes:
        phenotypes: (N, P) values in [0, 1], columns in the order of ``phenotype_labels``.
        phenotype_labels: Anny's phenotype names (gender, age, muscle, weight, height, proportions).
        local_changes: (N, L) values in [-1, 1], columns in the order of ``local_change_labels``.
        local_change_labels: all of Anny's (default) local change names, excluded ones left at 0.
        age_years: (N,) sampled morphological ages.
    """

    phenotypes: np.ndarray
    phenotype_labels: tuple[str, ...]
    local_changes: np.ndarray
    local_change_labels: tuple[str, ...]
    age_years: np.ndarray


class TPosedBodies(NamedTuple):
    """Anny bodies re-posed to the T-pose, in Anny's axes.

    Attributes:
        vertices: (N, V_anny, 3) float64, metres.
        bone_heads: (N, B, 3) the posed heads of Anny's B bones.
    """

    vertices: np.ndarray
    bone_heads: np.ndarray


class ShapeSpace(NamedTuple):
    """PCA of rest meshes (SMPL paper, Sec. 4.2): v = mean + B_S(β), B_S(β) = shapedirs · β, β ~ N(0, I).

    Attributes:
        mean: (V, 3) mean body.
        shapedirs: (V, 3, K) principal directions scaled by the square root of their variance.
        variance_ratio: (K,) fraction of the total variance each direction explains.
        total_variance: the summed variance of all 3V coordinates (m²) over the bodies.
    """

    mean: np.ndarray
    shapedirs: np.ndarray
    variance_ratio: np.ndarray
    total_variance: float


class OpenBodyModel(NamedTuple):
    """The built model (the arrays of the ``.npz``) and its measured report."""

    arrays: dict[str, np.ndarray]
    report: dict


# --- Small pure functions ------------------------------------------------------------------------------


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


def fit_shape_space(vertices: np.ndarray, num_components: int) -> ShapeSpace:
    """PCA of rest meshes, scaled as SMPL's: shapedir_k = sqrt(λ_k) · component_k.

    The components come from the eigenvectors of the (N, N) Gram matrix, cheaper than the (3V, 3V)
    covariance for N << 3V. Their sign is fixed so that the entries of large magnitude are mostly
    positive (the sum of cubed entries is positive), which is deterministic and, unlike "the largest
    entry", not flipped by the tie between a vertex and its mirror image; the first component is then
    signed so that +β₁ makes the body taller.

    Args:
        vertices: (N, V, 3) rest meshes.
        num_components: K, the number of components kept.

    Returns:
        The :class:`ShapeSpace`.
    """
    num_bodies, num_vertices, _ = vertices.shape
    if num_components >= num_bodies:
        raise ValueError(f"need more bodies ({num_bodies}) than components ({num_components})")
    mean = vertices.mean(axis=0)
    centred = (vertices - mean).reshape(num_bodies, -1)  # (N, 3V)
    gram = centred @ centred.T / (num_bodies - 1)  # (N, N), same non-zero eigenvalues as the covariance
    eigenvalues, eigenvectors = np.linalg.eigh(gram)
    order = np.argsort(eigenvalues)[::-1][:num_components]
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    # sqrt(λ) · component = X^T u / sqrt(N - 1) for the unit eigenvector u of X X^T / (N - 1).
    shapedirs = centred.T @ eigenvectors / np.sqrt(num_bodies - 1)  # (3V, K)
    shapedirs *= np.sign((shapedirs**3).sum(axis=0))
    heights = shapedirs.reshape(num_vertices, 3, num_components)[:, 1]  # (V, K) vertical displacement
    top, bottom = mean[:, 1].argmax(), mean[:, 1].argmin()
    if heights[top, 0] - heights[bottom, 0] < 0:
        shapedirs[:, 0] *= -1
    total_variance = (centred**2).sum() / (num_bodies - 1)
    return ShapeSpace(
        mean=mean,
        shapedirs=shapedirs.reshape(num_vertices, 3, num_components),
        variance_ratio=eigenvalues / total_variance,
        total_variance=float(total_variance),
    )


def project_to_shape_space(vertices: np.ndarray, shape_space: ShapeSpace) -> np.ndarray:
    """Least-squares betas of meshes, and so their best reconstruction in the shape space.

    Args:
        vertices: (N, V, 3) rest meshes.
        shape_space: the :class:`ShapeSpace`.

    Returns:
        (N, K) betas β minimising |mean + shapedirs · β - vertices|.
    """
    basis = shape_space.shapedirs.reshape(-1, shape_space.shapedirs.shape[-1])  # (3V, K), orthogonal
    centred = (vertices - shape_space.mean).reshape(len(vertices), -1)  # (N, 3V)
    return centred @ basis / (basis**2).sum(axis=0)


def select_candidate_vertices(
    vertices: np.ndarray, target: np.ndarray, allowed: np.ndarray, per_direction: int
) -> np.ndarray:
    """Vertices around a point: the nearest few in each of 14 directions, among the allowed ones.

    Args:
        vertices: (V, 3) a mesh (e.g. the mean body).
        target: (3,) the point.
        allowed: (V,) bool mask of eligible vertices.
        per_direction: how many nearest vertices to take per direction bin.

    Returns:
        (C,) sorted vertex ids, C <= 14 · per_direction.
    """
    ids = np.flatnonzero(allowed)
    offsets = vertices[ids] - target  # (n, 3)
    distances = np.linalg.norm(offsets, axis=1)
    bins = np.argmax(offsets @ _CANDIDATE_DIRECTIONS.T, axis=1)  # (n,) nearest direction
    chosen = []
    for direction in range(len(_CANDIDATE_DIRECTIONS)):
        in_bin = np.flatnonzero(bins == direction)
        # A stable sort so that equal distances (mirror-symmetric meshes) pick the same vertex every time.
        chosen.append(ids[in_bin[np.argsort(distances[in_bin], kind="stable")[:per_direction]]])
    return np.unique(np.concatenate(chosen))


def fit_sparse_regressor(vertices: np.ndarray, targets: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Non-negative weights w over candidate vertices, summing to 1, with Σ w_c v_c ≈ target.

    Solves non-negative least squares over all bodies at once (SMPL's J_regressor is likewise a sparse,
    non-negative map learned over many bodies, SMPL paper Sec. 4.1), with a heavily weighted row for
    Σ w = 1; weights below 1e-3 are dropped and the rest refitted, then normalised exactly. The rows are
    written relative to each body's target, which the sum-to-one constraint makes equivalent and which
    keeps the numbers at the scale of the joint's neighbourhood.

    Args:
        vertices: (N, V, 3) meshes.
        targets: (N, 3) the point to regress on each mesh.
        candidates: (C,) vertex ids allowed a weight.

    Returns:
        (C,) weights, non-negative, summing to 1.
    """
    from scipy.optimize import nnls

    offsets = vertices[:, candidates, :] - targets[:, None, :]  # (N, C, 3)
    design = offsets.transpose(0, 2, 1).reshape(-1, len(candidates))  # (3N, C)
    design = np.concatenate([design, np.full((1, len(candidates)), _SUM_TO_ONE_WEIGHT)])
    rhs = np.zeros(len(design))
    rhs[-1] = _SUM_TO_ONE_WEIGHT
    weights, _ = nnls(design, rhs, maxiter=50 * len(candidates))
    keep = weights >= _MIN_REGRESSOR_WEIGHT
    weights = np.zeros(len(candidates))
    weights[keep], _ = nnls(design[:, keep], rhs, maxiter=50 * len(candidates))
    return weights / weights.sum()


def regressor_errors_mm(regressor: np.ndarray, vertices: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Euclidean error of a vertex regressor per body and point, in millimetres.

    Args:
        regressor: (J, V) weights.
        vertices: (N, V, 3) meshes.
        targets: (N, J, 3) true points.

    Returns:
        (N, J) errors in mm.
    """
    # n: body, j: joint, v: vertex, c: coordinate
    predicted = np.einsum("jv,nvc->njc", regressor, vertices)
    return 1000.0 * np.linalg.norm(predicted - targets, axis=-1)


# --- Anny ----------------------------------------------------------------------------------------------


def load_anny() -> anny.Anny:
    """Anny's full-body model with its default local changes, float64, with dense torch skinning.

    Dense LBS (rather than the default Warp kernel) keeps the build on plain, deterministic torch ops.
    The first call on a machine builds Anny's cache (about a minute, in ``~/.cache/anny``).
    """
    import anny
    import torch

    return anny.Anny(local_changes="default", skinning_method="lbs").to(dtype=torch.float64)


def sampled_local_change_labels(local_change_labels: Sequence[str]) -> list[str]:
    """The local changes that are sampled: Anny's defaults less the asymmetric and duplicate ones."""
    excluded = set(ASYMMETRIC_LOCAL_CHANGES) | set(DUPLICATE_LOCAL_CHANGES)
    return [label for label in local_change_labels if label not in excluded]


def sample_body_parameters(model: anny.Anny, num_bodies: int, config: OpenModelConfig) -> BodySamples:
    """Sample adult bodies over Anny's phenotypes and local changes, reproducibly from ``config.seed``.

    * gender ~ U(0, 1): men (0), women (1) and everything in between;
    * age: a "morphological age" ~ U(18, 80) years, mapped to Anny's age parameter by Anny's own
      calibration (``anny.shape_distribution``);
    * height, weight, muscle, proportions ~ Anny's age-conditional Beta distributions (calibrated on WHO
      data; Anny picks the men's or women's by gender <= 0.5 and so do we);
    * local changes ~ N(0, σ²) clipped to [-1, 1], the same value on both sides for each left/right pair
      (real bodies are close to symmetric, as are SMPL's shape components), the asymmetric and duplicate
      ones left at 0.

    All draws come from one NumPy ``Generator`` in a fixed order, so no global random state is touched.

    Args:
        model: an Anny model (for its labels and calibration).
        num_bodies: N.
        config: the build settings (seed, ages, σ).

    Returns:
        The :class:`BodySamples`.
    """
    import torch
    from anny.shape_distribution import SimpleShapeDistribution

    rng = np.random.default_rng(config.seed)
    calibration = SimpleShapeDistribution(model)
    age_years = rng.uniform(config.min_age_years, config.max_age_years, num_bodies)
    gender = rng.uniform(0.0, 1.0, num_bodies)
    age = calibration.morphological_age_mapping.morphological_to_anny_age(
        torch.as_tensor(age_years, dtype=torch.float64)
    )
    values = {"gender": gender, "age": age.numpy()}
    is_man = gender <= 0.5
    for name in ("height", "weight", "muscle", "proportions"):
        men = getattr(calibration, f"boys_conditional_{name}_distribution").get_distribution_params(age)
        women = getattr(calibration, f"girls_conditional_{name}_distribution").get_distribution_params(age)
        alpha = np.where(is_man, men[0].numpy(), women[0].numpy())
        beta = np.where(is_man, men[1].numpy(), women[1].numpy())
        values[name] = rng.beta(alpha, beta)
    labels = tuple(model.phenotype_labels)
    if set(labels) != set(values):
        raise ValueError(f"unexpected Anny phenotypes {labels}, expected {sorted(values)}")
    phenotypes = np.stack([values[name] for name in labels], axis=1)

    local_labels = tuple(model.local_change_labels)
    sampled = sampled_local_change_labels(local_labels)
    # One draw per symmetric group: "l-x"/"r-x" share the key "x".
    keys = sorted({label[2:] if label[:2] in ("l-", "r-") else label for label in sampled})
    draws = np.clip(rng.normal(0.0, config.local_change_std, (num_bodies, len(keys))), -1.0, 1.0)
    local_changes = np.zeros((num_bodies, len(local_labels)))
    for column, label in enumerate(local_labels):
        if label in sampled:
            local_changes[:, column] = draws[:, keys.index(label[2:] if label[:2] in ("l-", "r-") else label)]
    return BodySamples(phenotypes, labels, local_changes, local_labels, age_years)


def kept_vertex_mask(model: anny.Anny) -> np.ndarray:
    """(V_anny,) bool: the vertices kept in the open model (all but those of :data:`DROPPED_SEGMENTS`)."""
    from anny.face_segmentation import get_face_segmentation_mask

    faces = model.faces.cpu().numpy()
    dropped_faces = get_face_segmentation_mask(model, list(DROPPED_SEGMENTS)).cpu().numpy()
    keep = np.ones(len(model.template_vertices), dtype=bool)
    keep[np.unique(faces[dropped_faces])] = False
    if np.isin(faces[~dropped_faces], np.flatnonzero(~keep)).any():
        raise ValueError(f"the dropped segments {DROPPED_SEGMENTS} share vertices with the kept mesh")
    return keep


def coco_regressor(model: anny.Anny) -> tuple[np.ndarray, list[str]]:
    """Anny's COCO keypoint regressor: (K, V_anny) weights and the K names."""
    import anny as anny_module

    regressor = anny_module.KeypointsRegressor.coco(model)
    return regressor.regression_weights.cpu().numpy(), list(regressor.labels)


def tpose_bodies(
    model: anny.Anny, samples: BodySamples, config: OpenModelConfig, progress: bool = True
) -> TPosedBodies:
    """Rest meshes of the sampled bodies re-posed to a T-pose with Anny's own kinematics and skinning.

    The steps of Anny's ``forward``: its rest model for the bodies' blend-shape coefficients, its forward
    kinematics for 'world' pose parameters (the posed bone poses W_b = T_b · P_b themselves, from
    :func:`arm_tpose_transforms`), and its linear blend skinning.

    Args:
        model: the Anny model.
        samples: the sampled parameters.
        config: for the batch size.
        progress: show a tqdm bar.

    Returns:
        The :class:`TPosedBodies`, in Anny's axes.
    """
    import torch
    from tqdm import tqdm

    num_bodies = len(samples.phenotypes)
    vertices, heads = [], []
    starts = range(0, num_bodies, config.batch_size)
    for start in tqdm(starts, desc="T-posing Anny bodies", unit="batch", disable=not progress):
        stop = min(start + config.batch_size, num_bodies)
        phenotypes = torch.as_tensor(samples.phenotypes[start:stop], dtype=torch.float64)
        local_changes = torch.as_tensor(samples.local_changes[start:stop], dtype=torch.float64)
        with torch.no_grad():
            # Anny's forward starts with this (private) call; there is no public one for tensors.
            coefficients = model._get_phenotype_blendshape_coefficients(
                phenotypes, local_changes, torch.zeros(stop - start, 0, dtype=torch.float64)
            )
            rest = model.get_rest_model(coefficients)
            rest_poses = rest["rest_bone_poses"].numpy()  # (n, B, 4, 4)
            transforms = arm_tpose_transforms(rest_poses[..., :3, 3], model.bone_labels, model.bone_parents)
            bone_transforms, bone_poses = model.get_bone_transforms(
                torch.as_tensor(transforms @ rest_poses),
                rest["rest_bone_poses"],
                pose_parameterization="world",
            )
            posed = model.get_skinned_vertices(rest["rest_vertices"], bone_transforms)
        vertices.append(posed.numpy())
        heads.append(bone_poses[..., :3, 3].numpy())
    return TPosedBodies(np.concatenate(vertices), np.concatenate(heads))


def vertical_ray_top(vertices: np.ndarray, faces: np.ndarray, origins: np.ndarray) -> np.ndarray:
    """The highest point where the vertical line through each origin meets a surface (z up).

    Args:
        vertices: (N, V, 3) meshes, z up.
        faces: (F, 3) triangles of the surface to hit (e.g. the scalp).
        origins: (N, 2) the (x, y) of each body's vertical line.

    Returns:
        (N, 3) the hit points.

    Raises:
        ValueError: if a line misses the surface.
    """
    tri = vertices[:, faces]  # (N, F, 3 corners, 3)
    # Barycentric coordinates of the origin in each triangle projected on the xy plane.
    a, b, c = tri[:, :, 0, :2], tri[:, :, 1, :2], tri[:, :, 2, :2]  # (N, F, 2)
    p = origins[:, None, :]
    det = (b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - (c[..., 0] - a[..., 0]) * (
        b[..., 1] - a[..., 1]
    )
    det = np.where(np.abs(det) < 1e-18, np.nan, det)  # triangles seen edge-on are skipped
    u = (
        (p[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - (c[..., 0] - a[..., 0]) * (p[..., 1] - a[..., 1])
    ) / det
    v = (
        (b[..., 0] - a[..., 0]) * (p[..., 1] - a[..., 1]) - (p[..., 0] - a[..., 0]) * (b[..., 1] - a[..., 1])
    ) / det
    inside = (u >= 0) & (v >= 0) & (u + v <= 1)  # NaN compares False
    height = (1 - u - v) * tri[..., 0, 2] + u * tri[..., 1, 2] + v * tri[..., 2, 2]  # (N, F)
    height = np.where(inside, height, -np.inf)
    if np.any(~inside.any(axis=1)):
        raise ValueError("vertical_ray_top: a vertical line misses the surface")
    return np.concatenate([origins, height.max(axis=1, keepdims=True)], axis=1)


def lsp_keypoint_targets(
    anny_vertices: np.ndarray,
    bone_heads: np.ndarray,
    bone_labels: Sequence[str],
    coco_weights: np.ndarray,
    coco_labels: Sequence[str],
    head_faces: np.ndarray,
) -> np.ndarray:
    """Anatomical targets of the 14 LSP keypoints on T-posed bodies, in Anny's axes.

    * ankles, knees, hips, wrists, elbows, shoulders: Anny's COCO keypoints (annotation-like: COCO and
      LSP annotators mark the hip on the side of the pelvis, more lateral than the joint centre);
    * neck: the base of the neck, midway between the two sternoclavicular joints (the clavicle heads),
      i.e. at the suprasternal notch's height, where LSP annotates "neck" (the upper thorax);
    * head_top: the crown, where the vertical line through the midpoint of the two (COCO) ears leaves
      the scalp (the anthropometric "vertex" above the ear canals). The highest head vertex would do on
      a round head but jumps by centimetres between front and back on a flat-topped one.

    Args:
        anny_vertices: (N, V_anny, 3) T-posed meshes in Anny's axes (z up).
        bone_heads: (N, B, 3) their bone heads.
        bone_labels: the B bone names.
        coco_weights: (K, V_anny) Anny's COCO regressor.
        coco_labels: its K names.
        head_faces: (F, 3) the head's triangles (the crown is searched on them).

    Returns:
        (N, 14, 3) targets in Anny's axes, in the order of :data:`LSP_JOINT_NAMES`.
    """
    index = {label: i for i, label in enumerate(bone_labels)}
    # n: body, k: keypoint, v: vertex, c: coordinate
    coco = np.einsum("kv,nvc->nkc", coco_weights, anny_vertices)
    neck = 0.5 * (bone_heads[:, index["clavicle.L"]] + bone_heads[:, index["clavicle.R"]])
    ears = 0.5 * (coco[:, coco_labels.index("left_ear")] + coco[:, coco_labels.index("right_ear")])
    crown = vertical_ray_top(anny_vertices, head_faces, ears[:, :2])
    targets = []
    for name in LSP_JOINT_NAMES:
        if name == "neck":
            targets.append(neck)
        elif name == "head_top":
            targets.append(crown)
        else:
            targets.append(coco[:, coco_labels.index(LSP_JOINT_TO_ANNY_COCO[name])])
    return np.stack(targets, axis=1)


def face_keypoint_vertex_ids(
    vertices: np.ndarray, segment_vertex_ids: dict[str, np.ndarray], coco_points: dict[str, np.ndarray]
) -> np.ndarray:
    """Single vertices for HMR's 5 face keypoints, picked on the mean T-posed body (SMPL's axes).

    * nose: the tip, the most anterior (largest z) head vertex;
    * eyes: the pupil, the most anterior vertex of the eyeball's front (Anny's ``eye_front.L/R``);
    * ears: the head vertex nearest to Anny's COCO ear keypoint.

    Args:
        vertices: (V, 3) the mean body, SMPL's axes.
        segment_vertex_ids: vertex ids of the segments "head", "eye_front.L", "eye_front.R".
        coco_points: the COCO "left_ear" and "right_ear" points on the mean body, (3,) each.

    Returns:
        (5,) int64 vertex ids in the order of :data:`FACE_KEYPOINT_NAMES`.
    """
    head = segment_vertex_ids["head"]
    ids = {
        "nose": head[vertices[head, 2].argmax()],
        "left_eye": segment_vertex_ids["eye_front.L"][
            vertices[segment_vertex_ids["eye_front.L"], 2].argmax()
        ],
        "right_eye": segment_vertex_ids["eye_front.R"][
            vertices[segment_vertex_ids["eye_front.R"], 2].argmax()
        ],
    }
    for side in ("left", "right"):
        point = coco_points[f"{side}_ear"]
        ids[f"{side}_ear"] = head[np.linalg.norm(vertices[head] - point, axis=1).argmin()]
    return np.array([ids[name] for name in FACE_KEYPOINT_NAMES], dtype=np.int64)


def segment_faces(model: anny.Anny, label: str) -> np.ndarray:
    """(F_label, 3) the triangles (Anny's vertex ids) that Anny's segmentation labels ``label``."""
    from anny.face_segmentation import get_face_segmentation_mask

    return model.faces.cpu().numpy()[get_face_segmentation_mask(model, [label]).cpu().numpy()]


# --- The build -----------------------------------------------------------------------------------------


def _neighbour_parts(joint: int) -> set[int]:
    """A joint's own part, its parent's and its children's (the parts that meet around the joint)."""
    parts = {joint} | {child for child, parent in enumerate(SMPL_PARENTS) if parent == joint}
    if SMPL_PARENTS[joint] >= 0:
        parts.add(SMPL_PARENTS[joint])
    return parts


def fit_joint_regressor(
    train_vertices: np.ndarray,
    train_points: np.ndarray,
    dominant_part: np.ndarray,
    point_to_joint: Sequence[int],
    per_direction: int,
) -> np.ndarray:
    """A sparse (P, V) regressor: for each point, NNLS over the vertices around it in the adjacent parts.

    Args:
        train_vertices: (N, V, 3) rest meshes.
        train_points: (N, P, 3) the points to regress (joints or keypoints).
        dominant_part: (V,) the SMPL part of each vertex (its largest skinning weight).
        point_to_joint: for each point, the SMPL joint whose neighbour parts hold its candidates.
        per_direction: candidates per direction bin.

    Returns:
        (P, V) weights, non-negative, each row summing to 1.
    """
    mean_vertices = train_vertices.mean(axis=0)
    mean_points = train_points.mean(axis=0)
    regressor = np.zeros((train_points.shape[1], train_vertices.shape[1]))
    for point, joint in enumerate(point_to_joint):
        allowed = np.isin(dominant_part, sorted(_neighbour_parts(joint)))
        candidates = select_candidate_vertices(mean_vertices, mean_points[point], allowed, per_direction)
        regressor[point, candidates] = fit_sparse_regressor(
            train_vertices, train_points[:, point], candidates
        )
    return regressor


def build_open_body_model(
    config: OpenModelConfig = OpenModelConfig(), progress: bool = True
) -> OpenBodyModel:
    """Build the open SMPL-format body model from Anny (see the module docstring for the steps).

    Args:
        config: the build settings.
        progress: show a progress bar on stderr.

    Returns:
        The arrays of the ``.npz`` and the measured report.
    """
    import anny as anny_module
    import torch

    num_heldout = int(round(config.heldout_fraction * config.num_bodies))
    num_train = config.num_bodies - num_heldout
    if num_train <= config.num_betas or num_heldout < 1:
        raise ValueError(
            f"num_bodies={config.num_bodies} leaves no held-out body or too few training bodies "
            f"for {config.num_betas} betas"
        )
    train, heldout = slice(0, num_train), slice(num_train, None)

    started = time.perf_counter()
    # Anny runs single-threaded, so that its results do not depend on the machine's core count; the
    # caller's setting is restored on exit.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = load_anny()
        samples = sample_body_parameters(model, config.num_bodies, config)
        anny_vertices, anny_heads = tpose_bodies(model, samples, config, progress)
        bone_labels = list(model.bone_labels)
        coco_weights, coco_labels = coco_regressor(model)
        segments = {name: segment_faces(model, name) for name in ("head", "eye_front.L", "eye_front.R")}
        keep = kept_vertex_mask(model)
        faces_anny = model.faces.cpu().numpy()
        dropped_faces = ~np.all(keep[faces_anny], axis=1)
        # Anny packs up to 9 (bone, weight) pairs per vertex, padding with zero weights on bone 0:
        # accumulate them into a dense (V, B) array.
        dense_bone_weights = np.zeros((len(keep), len(bone_labels)))
        np.add.at(
            dense_bone_weights,
            (np.arange(len(keep))[:, None], model.vertex_bone_indices.cpu().numpy()),
            model.vertex_bone_weights.cpu().numpy(),
        )
    finally:
        torch.set_num_threads(threads)

    lsp_anny = lsp_keypoint_targets(
        anny_vertices, anny_heads, bone_labels, coco_weights, coco_labels, segments["head"]
    )
    joints = anny_to_smpl_axes(joints_from_bone_heads(anny_heads, bone_labels))  # (N, 24, 3)
    pelvis = joints[:, :1].copy()  # (N, 1, 3): every body is placed with its pelvis at the origin
    joints -= pelvis
    lsp = anny_to_smpl_axes(lsp_anny) - pelvis
    # n: body, k: keypoint, v: vertex, c: coordinate
    coco_train = np.einsum("kv,nvc->nkc", coco_weights, anny_vertices[train])
    coco_mean = (anny_to_smpl_axes(coco_train) - pelvis[train]).mean(axis=0)  # (K, 3) on the mean body
    vertices = anny_to_smpl_axes(anny_vertices[:, keep]) - pelvis  # (N, V, 3)
    del anny_vertices, coco_train

    new_index = np.cumsum(keep) - 1  # Anny vertex id -> open-model vertex id
    faces = new_index[faces_anny[~dropped_faces]].astype(np.int32)
    segments = {name: new_index[np.unique(tris[keep[tris].all(axis=1)])] for name, tris in segments.items()}

    shape_space = fit_shape_space(vertices[train], config.num_betas)
    weights = smpl_skinning_weights(dense_bone_weights[keep], bone_labels)
    dominant_part = weights.argmax(axis=1)

    j_regressor = fit_joint_regressor(
        vertices[train], joints[train], dominant_part, range(NUM_SMPL_JOINTS), config.candidates_per_direction
    )
    lsp_regressor = fit_joint_regressor(
        vertices[train],
        lsp[train],
        dominant_part,
        [SMPL_JOINT_NAMES.index(LSP_JOINT_TO_SMPL_JOINT[name]) for name in LSP_JOINT_NAMES],
        config.candidates_per_direction,
    )
    # The mean body's regressed pelvis is at the origin exactly (it is within a millimetre already).
    pelvis_offset = j_regressor[0] @ shape_space.mean
    v_template = shape_space.mean - pelvis_offset

    coco_points = {name: coco_mean[coco_labels.index(name)] for name in ("left_ear", "right_ear")}
    face_ids = face_keypoint_vertex_ids(
        v_template, segments, {k: p - pelvis_offset for k, p in coco_points.items()}
    )

    kintree_table = np.stack([np.array(SMPL_PARENTS), np.arange(NUM_SMPL_JOINTS)]).astype(np.int64)
    kintree_table[0, 0] = _ROOT_PARENT
    arrays = {
        "v_template": v_template.astype(np.float32),
        "shapedirs": shape_space.shapedirs.astype(np.float32),
        "posedirs": np.zeros((len(v_template), 3, NUM_POSE_BLEND), dtype=np.float32),
        "J_regressor": j_regressor.astype(np.float32),
        "weights": weights.astype(np.float32),
        "kintree_table": kintree_table,
        "f": faces,
        "J_regressor_lsp": lsp_regressor.astype(np.float32),
        "face_vertex_ids": face_ids,
    }

    # --- The report: all measured on float64 arrays, the held-out bodies never seen by any fit.
    betas = project_to_shape_space(vertices[heldout], shape_space)
    reconstruction = shape_space.mean + np.einsum("vck,nk->nvc", shape_space.shapedirs, betas)
    residual = np.linalg.norm(reconstruction - vertices[heldout], axis=-1)  # (n, V)
    per_body_rms = 1000.0 * np.sqrt((residual**2).mean(axis=1))
    # On the training bodies the squared residual is the variance the kept components leave out.
    unexplained = shape_space.total_variance * (1.0 - shape_space.variance_ratio.sum())
    train_rms = np.sqrt(unexplained * (num_train - 1) / num_train / len(v_template))
    joint_errors = regressor_errors_mm(j_regressor, vertices[heldout], joints[heldout])
    lsp_errors = regressor_errors_mm(lsp_regressor, vertices[heldout], lsp[heldout])
    # Joint errors once the held-out bodies are replaced by their shape-space reconstruction: what a user
    # of the model gets for the betas that best fit such a body.
    joint_errors_reconstructed = regressor_errors_mm(j_regressor, reconstruction, joints[heldout])
    heights = vertices[:, :, 1].max(axis=1) - vertices[:, :, 1].min(axis=1)
    is_man = samples.phenotypes[:, samples.phenotype_labels.index("gender")] <= 0.5
    report = {
        "anny_version": anny_module.__version__,
        "seed": config.seed,
        "config": dataclasses.asdict(config),
        "num_bodies": config.num_bodies,
        "num_train": num_train,
        "num_heldout": num_heldout,
        "num_vertices": len(v_template),
        "num_faces": len(faces),
        "variance_explained": [round(float(r), 6) for r in shape_space.variance_ratio],
        "variance_explained_cumulative": [round(float(r), 6) for r in np.cumsum(shape_space.variance_ratio)],
        "heldout_rms_mm": round(float(1000.0 * np.sqrt((residual**2).mean())), 3),
        "heldout_rms_mm_per_body_median": round(float(np.median(per_body_rms)), 3),
        "heldout_rms_mm_per_body_max": round(float(per_body_rms.max()), 3),
        "heldout_max_vertex_error_mm": round(float(1000.0 * residual.max()), 3),
        "train_rms_mm": round(float(1000.0 * train_rms), 3),
        # The population's spread: RMS distance of a training body's vertices from the mean body.
        "shape_spread_rms_mm": round(
            float(1000.0 * np.sqrt(shape_space.total_variance / len(v_template))), 3
        ),
        "joint_regressor_heldout_mean_mm": round(float(joint_errors.mean()), 3),
        "joint_regressor_heldout_max_mm": round(float(joint_errors.max()), 3),
        "joint_regressor_heldout_mean_mm_per_joint": {
            name: round(float(e), 3)
            for name, e in zip(SMPL_JOINT_NAMES, joint_errors.mean(axis=0), strict=True)
        },
        "joint_error_after_shape_projection_mean_mm": round(float(joint_errors_reconstructed.mean()), 3),
        "lsp_regressor_heldout_mean_mm": round(float(lsp_errors.mean()), 3),
        "lsp_regressor_heldout_max_mm": round(float(lsp_errors.max()), 3),
        "lsp_regressor_heldout_mean_mm_per_keypoint": {
            name: round(float(e), 3) for name, e in zip(LSP_JOINT_NAMES, lsp_errors.mean(axis=0), strict=True)
        },
        "regressor_nonzeros_max": int(max((j_regressor > 0).sum(1).max(), (lsp_regressor > 0).sum(1).max())),
        "mean_body_height_m": round(float(v_template[:, 1].max() - v_template[:, 1].min()), 4),
        "sampled_height_m": {
            "men_mean": round(float(heights[is_man].mean()), 4),
            "men_std": round(float(heights[is_man].std()), 4),
            "women_mean": round(float(heights[~is_man].mean()), 4),
            "women_std": round(float(heights[~is_man].std()), 4),
            "min": round(float(heights.min()), 4),
            "max": round(float(heights.max()), 4),
        },
        "pelvis_offset_mm": round(float(1000.0 * np.linalg.norm(pelvis_offset)), 3),
        "face_vertex_ids": face_ids.tolist(),
    }
    arrays["model_name"] = np.array(f"open_body_model (anny {anny_module.__version__})")
    arrays["build_info"] = np.array(json.dumps(report, sort_keys=True))
    report = {**report, "build_seconds": round(time.perf_counter() - started, 1)}
    return OpenBodyModel(arrays=arrays, report=report)


def save_open_body_model(model: OpenBodyModel, path: Path) -> None:
    """Write the arrays with ``np.savez_compressed`` (the zero ``posedirs`` compress to almost nothing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **model.arrays)


def format_report(report: dict) -> str:
    """The measured report as a few readable lines."""
    r, h = report, report["sampled_height_m"]
    lines = [
        f"anny {r['anny_version']}, seed {r['seed']}: {r['num_train']} training + {r['num_heldout']} "
        f"held-out bodies, {r['num_vertices']} vertices, {r['num_faces']} faces",
        "variance explained (%): " + " ".join(f"{100 * x:.2f}" for x in r["variance_explained"]),
        "cumulative (%):         " + " ".join(f"{100 * x:.2f}" for x in r["variance_explained_cumulative"]),
        f"held-out reconstruction RMS: {r['heldout_rms_mm']:.2f} mm (per body: median "
        f"{r['heldout_rms_mm_per_body_median']:.2f}, max {r['heldout_rms_mm_per_body_max']:.2f}; worst "
        f"vertex {r['heldout_max_vertex_error_mm']:.1f} mm); training {r['train_rms_mm']:.2f} mm; "
        f"spread of the bodies {r['shape_spread_rms_mm']:.1f} mm",
        f"J_regressor held-out error: mean {r['joint_regressor_heldout_mean_mm']:.2f} mm, "
        f"max {r['joint_regressor_heldout_max_mm']:.2f} mm",
        f"J_regressor_lsp held-out error: mean {r['lsp_regressor_heldout_mean_mm']:.2f} mm, "
        f"max {r['lsp_regressor_heldout_max_mm']:.2f} mm",
        f"mean body height {r['mean_body_height_m']:.3f} m; sampled men {h['men_mean']:.3f} ± "
        f"{h['men_std']:.3f} m, women {h['women_mean']:.3f} ± {h['women_std']:.3f} m",
    ]
    if "build_seconds" in report:
        lines.append(f"build time {report['build_seconds']:.1f} s")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m hmr_core.open_body_model build [--out PATH] [--num-bodies N] [--seed S]``."""
    parser = argparse.ArgumentParser(
        prog="python -m hmr_core.open_body_model", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build the model from Anny and write the .npz")
    build.add_argument(
        "--out", type=Path, default=DEFAULT_OUTPUT_PATH, help="output .npz (default: %(default)s)"
    )
    build.add_argument("--num-bodies", type=int, default=OpenModelConfig.num_bodies, help="bodies sampled")
    build.add_argument("--seed", type=int, default=OpenModelConfig.seed, help="random seed")
    args = parser.parse_args(argv)
    config = OpenModelConfig(num_bodies=args.num_bodies, seed=args.seed)
    model = build_open_body_model(config)
    save_open_body_model(model, args.out)
    print(format_report(model.report))
    size_mb = args.out.stat().st_size / 1e6
    print(f"wrote {args.out} ({size_mb:.2f} MB) on {datetime.date.today()}, {platform.node()}")


if __name__ == "__main__":
    main()
