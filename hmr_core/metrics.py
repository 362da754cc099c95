"""Evaluation metrics for 3D and 2D pose, as papers report them (chapter "Evaluation").

* MPJPE: mean per-joint position error after aligning the roots (pelvis, or the mid-hip point for the
  14 LSP joints), in the units of the input (the book reports millimetres).
* PA-MPJPE: MPJPE after a similarity Procrustes alignment (scale, rotation, translation) of the
  prediction to the ground truth; Human3.6M's "protocol 2" in HMR's paper.
* PCK3D at 150 mm and its AUC over thresholds 0-150 mm (MPI-INF-3DHP).
* PCK2D: share of visible keypoints within a threshold of the ground truth (e.g. a fraction of the box).

Letters in shapes: B batch, K joints/keypoints.
"""

import torch

PCK3D_THRESHOLD_MM = 150.0  # MPI-INF-3DHP's PCK threshold
AUC_THRESHOLDS_MM = tuple(float(t) for t in range(0, 155, 5))  # 0, 5, …, 150 mm as in MPI-INF-3DHP's AUC


def _check_pair(pred: torch.Tensor, gt: torch.Tensor, dim: int) -> None:
    if pred.shape != gt.shape or pred.dim() != 3 or pred.shape[-1] != dim:
        raise ValueError(f"pred and gt must both have shape (B, K, {dim}); got {tuple(pred.shape)} and {tuple(gt.shape)}")


def root_align(joints: torch.Tensor, root: int | tuple[int, ...]) -> torch.Tensor:
    """Subtract the root joint (or the mean of several, e.g. both hips) from every joint.

    Args:
        joints: (B, K, 3) joints.
        root: index of the root joint, or indices whose mean is the root.

    Returns:
        (B, K, 3) root-relative joints.
    """
    idx = [root] if isinstance(root, int) else list(root)
    return joints - joints[:, idx].mean(dim=1, keepdim=True)


def per_joint_error(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Euclidean distance per joint.

    Args:
        pred: (B, K, 3) predicted joints.
        gt: (B, K, 3) ground-truth joints.

    Returns:
        (B, K) distances.
    """
    _check_pair(pred, gt, 3)
    return (pred - gt).norm(dim=-1)


def mpjpe(pred: torch.Tensor, gt: torch.Tensor, root: int | tuple[int, ...] | None = None) -> torch.Tensor:
    """Mean per-joint position error, per sample, after root alignment.

    Args:
        pred: (B, K, 3) predicted joints.
        gt: (B, K, 3) ground-truth joints.
        root: root joint(s) to align first; None if the inputs are already aligned.

    Returns:
        (B,) errors.
    """
    _check_pair(pred, gt, 3)
    if root is not None:
        pred, gt = root_align(pred, root), root_align(gt, root)
    return per_joint_error(pred, gt).mean(dim=1)


def procrustes_align(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """The similarity transform (s, R, t) that best maps ``pred`` onto ``gt``, applied to ``pred``.

    Solves min_{s,R,t} Σ_k ||s R p_k + t - g_k||² with R a proper rotation (Umeyama 1991), by the SVD of
    the cross-covariance of the centred point sets.

    Args:
        pred: (B, K, 3) predicted joints.
        gt: (B, K, 3) ground-truth joints.

    Returns:
        (B, K, 3) aligned prediction.
    """
    _check_pair(pred, gt, 3)
    mu_p, mu_g = pred.mean(1, keepdim=True), gt.mean(1, keepdim=True)
    p, g = pred - mu_p, gt - mu_g  # (B, K, 3)
    # cov[b, i, j] = Σ_k g[b, k, i] · p[b, k, j]
    cov = torch.einsum("bki,bkj->bij", g, p)
    u, sigma, vh = torch.linalg.svd(cov)
    # Flip the last axis where needed so R is a rotation, not a reflection.
    d = torch.sign(torch.linalg.det(u @ vh))
    fix = torch.ones_like(sigma)
    fix[:, -1] = d
    rot = u @ torch.diag_embed(fix) @ vh  # (B, 3, 3)
    var_p = p.square().sum(dim=(1, 2))  # (B,)
    scale = (sigma * fix).sum(-1) / var_p.clamp_min(torch.finfo(pred.dtype).tiny)  # (B,)
    return scale[:, None, None] * p @ rot.transpose(1, 2) + mu_g


def pa_mpjpe(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """MPJPE after similarity Procrustes alignment (reconstruction error; H3.6M protocol 2 in HMR).

    Args:
        pred: (B, K, 3) predicted joints.
        gt: (B, K, 3) ground-truth joints.

    Returns:
        (B,) errors.
    """
    return per_joint_error(procrustes_align(pred, gt), gt).mean(dim=1)


def pck3d(pred: torch.Tensor, gt: torch.Tensor, threshold: float = PCK3D_THRESHOLD_MM,
          root: int | tuple[int, ...] | None = None) -> torch.Tensor:
    """Share of joints within ``threshold`` of the ground truth, per sample (inputs in mm for the default).

    Args:
        pred: (B, K, 3) predicted joints.
        gt: (B, K, 3) ground-truth joints.
        threshold: distance threshold (150 mm in MPI-INF-3DHP).
        root: root joint(s) to align first, or None.

    Returns:
        (B,) values in [0, 1].
    """
    _check_pair(pred, gt, 3)
    if root is not None:
        pred, gt = root_align(pred, root), root_align(gt, root)
    return (per_joint_error(pred, gt) <= threshold).to(pred.dtype).mean(dim=1)


def pck3d_auc(pred: torch.Tensor, gt: torch.Tensor, thresholds=AUC_THRESHOLDS_MM,
              root: int | tuple[int, ...] | None = None) -> torch.Tensor:
    """Area under the PCK3D curve, the mean of PCK over the thresholds (MPI-INF-3DHP's AUC).

    Args:
        pred: (B, K, 3) predicted joints.
        gt: (B, K, 3) ground-truth joints.
        thresholds: the thresholds to average over (0, 5, …, 150 mm).
        root: root joint(s) to align first, or None.

    Returns:
        (B,) values in [0, 1].
    """
    return torch.stack([pck3d(pred, gt, t, root) for t in thresholds]).mean(dim=0)


def pck2d(pred: torch.Tensor, gt: torch.Tensor, threshold: float | torch.Tensor) -> torch.Tensor:
    """Share of visible keypoints within ``threshold`` of the ground truth, per sample.

    Args:
        pred: (B, K, 2) predicted keypoints.
        gt: (B, K, 3) ground truth with visibility in the last column.
        threshold: a distance, or (B,) per-sample distances (e.g. 0.1 × box size).

    Returns:
        (B,) values in [0, 1]; NaN for a sample with no visible keypoint.
    """
    if pred.dim() != 3 or pred.shape[-1] != 2 or gt.shape != pred.shape[:2] + (3,):
        raise ValueError(f"pred must be (B, K, 2) and gt (B, K, 3); got {tuple(pred.shape)} and {tuple(gt.shape)}")
    vis = gt[..., 2] > 0
    dist = (pred - gt[..., :2]).norm(dim=-1)
    thr = torch.as_tensor(threshold, dtype=pred.dtype, device=pred.device).reshape(-1, 1)
    hits = ((dist <= thr) & vis).to(pred.dtype).sum(1)
    return hits / vis.sum(1).to(pred.dtype)
