"""Anny's bodies for the open body model: sampling them, T-posing them, and their keypoint targets.

The "scanner" side of the build (``hmr_core.open_body_model``): adult bodies drawn over Anny's
phenotypes and local changes, re-posed to a T-pose with Anny's own kinematics and skinning, the parts of
its mesh that are dropped, and where the LSP and face keypoints lie on them. ``anny`` is an optional build
dependency, imported only inside the functions that need it.

Letters in shapes: N bodies, B Anny bones, V_anny Anny's vertices, K keypoints, F triangles.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from hmr_core.anny_to_smpl import arm_tpose_transforms
from hmr_core.constants import FACE_KEYPOINT_NAMES, LSP_JOINT_NAMES

if TYPE_CHECKING:  # pragma: no cover - typing only; anny is an optional build dependency
    import anny

    from hmr_core.open_body_model import OpenModelConfig

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
