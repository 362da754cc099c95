"""Fitting the open body model as SMPL was trained: a PCA shape space and sparse vertex regressors.

SMPL's shape space is a PCA of registered rest meshes and its joint regressor a sparse, non-negative map
from vertices to joints learned over many bodies (SMPL paper, Sec. 4). ``hmr_core.open_body_model`` fits
both to Anny's bodies with these functions; they know nothing of Anny.

Letters in shapes: N bodies, V vertices, K shape components, C candidate vertices, P regressed points.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from hmr_core.constants import SMPL_PARENTS

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

