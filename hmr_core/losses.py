"""HMR's losses (Kanazawa et al., CVPR 2018, Sec. 3), each a small pure function of predictions and labels.

Loss weights are not applied here: they are named fields of the training configuration.

Letters in shapes: B batch, K keypoints.
"""

import torch

from hmr_core import constants
from hmr_core.rotation import axis_angle_to_matrix


def keypoint_reprojection_loss(
    pred_kp_2d: torch.Tensor, gt_kp_2d: torch.Tensor
) -> torch.Tensor:
    """The visibility-masked L1 reprojection loss (HMR eq. 3).

        L_reproj = Σ_i ||v_i ⊙ (x_i − x̂_i)||_1

    with x_i the annotated and x̂_i the projected i-th keypoint, and
    v_i ∈ {0, 1} its visibility. As in HMR's code (``keypoint_l1_loss``, which
    calls ``tf.losses.absolute_difference`` with the visibility as weights and
    the default reduction ``SUM_BY_NONZERO_WEIGHTS``), the sum is divided by
    the number of non-zero weights after broadcasting them to the coordinates:
    the loss is the mean absolute error over the x and y of the visible
    keypoints of the whole batch, and 0 when none is visible. Chapter
    "Projection and the reprojection loss" checks this against the TensorFlow
    semantics.

    Args:
        pred_kp_2d: (B, K, 2) projected keypoints, normalised image
            coordinates.
        gt_kp_2d: (B, K, 3) annotated keypoints, normalised coordinates and
            the visibility in the last column (a non-zero visibility also
            weights the keypoint's error).

    Returns:
        The loss, a scalar tensor.

    Raises:
        ValueError: if the shapes are not (B, K, 2) and (B, K, 3) with the
            same B and K.
    """
    if pred_kp_2d.dim() != 3 or pred_kp_2d.shape[-1] != 2:
        raise ValueError(
            "pred_kp_2d must have shape (B, K, 2), "
            f"got {tuple(pred_kp_2d.shape)}"
        )
    if (
        gt_kp_2d.dim() != 3
        or gt_kp_2d.shape[-1] != 3
        or gt_kp_2d.shape[:2] != pred_kp_2d.shape[:2]
    ):
        raise ValueError(
            "gt_kp_2d must have shape (B, K, 3) = "
            f"{(*pred_kp_2d.shape[:2], 3)} to match pred_kp_2d "
            f"{tuple(pred_kp_2d.shape)}, got {tuple(gt_kp_2d.shape)}"
        )
    vis = gt_kp_2d[..., 2:].to(pred_kp_2d.dtype)  # (B, K, 1)
    weighted = vis * (gt_kp_2d[..., :2] - pred_kp_2d).abs()  # (B, K, 2)
    # Non-zero weights once broadcast over (x, y): two per visible keypoint.
    num_present = 2 * (vis != 0).sum()
    return weighted.sum() / num_present.clamp_min(1)


# --------------------------------------------------------------------------------------------------
# 3D and adversarial losses (HMR Sec. 3.1 and 3.3; the official code's ``compute_3d_loss`` and
# ``setup_discriminator``)
# --------------------------------------------------------------------------------------------------
def _masked_half_mse(
    pred: torch.Tensor, gt: torch.Tensor, has: torch.Tensor
) -> torch.Tensor:
    """0.5 · mean squared error over the samples with ground truth.

    HMR's ``compute_3d_loss``: TensorFlow's ``mean_squared_error(weights=has)``
    divides by the number of non-zero weights after broadcasting, i.e. by
    (samples with ground truth) × (numbers per sample); no ground truth
    gives 0.
    """
    # (B, 1, ...)
    has = has.to(pred.dtype).reshape(-1, *([1] * (pred.dim() - 1)))
    count = has.sum() * pred[0].numel()
    return 0.5 * ((pred - gt).square() * has).sum() / count.clamp_min(1.0)


def align_by_pelvis(joints: torch.Tensor) -> torch.Tensor:
    """Subtract the mid-hip point (LSP joints 2 and 3) from 14 LSP joints (B, 14, 3)."""
    hips = [constants.LSP_JOINT_NAMES.index("right_hip"), constants.LSP_JOINT_NAMES.index("left_hip")]
    return joints - joints[:, hips].mean(dim=1, keepdim=True)


def joints_3d_loss(pred_joints_3d: torch.Tensor, gt_joints_3d: torch.Tensor, has_3d: torch.Tensor) -> torch.Tensor:
    """L_3D on joints: 0.5·MSE of the pelvis-aligned 14 LSP joints, where 3D ground truth exists.

        L_joints = ||X - X̂||²₂  over the samples with 3D labels                     (HMR, Sec. 3.1)

    Args:
        pred_joints_3d: (B, 14, 3) predicted joints.
        gt_joints_3d: (B, 14, 3) or (B, 14, 4) ground truth (a 4th column is a confidence: joints with
            confidence 0 are ignored).
        has_3d: (B,) 1 where the sample has 3D joints.

    Returns:
        Scalar loss.
    """
    if pred_joints_3d.shape[1:] != (constants.NUM_LSP_JOINTS, 3) or gt_joints_3d.shape[:2] != pred_joints_3d.shape[:2]:
        raise ValueError(f"joints must be (B, 14, 3) and (B, 14, 3|4); got {tuple(pred_joints_3d.shape)} "
                         f"and {tuple(gt_joints_3d.shape)}")
    gt = gt_joints_3d[..., :3]
    pred = align_by_pelvis(pred_joints_3d)
    gt = align_by_pelvis(gt)
    if gt_joints_3d.shape[-1] == 4:
        conf = (gt_joints_3d[..., 3:] > 0).to(pred.dtype)  # (B, 14, 1)
        pred, gt = pred * conf, gt * conf
    return _masked_half_mse(pred, gt, has_3d)


def smpl_param_loss(pred_rotmats: torch.Tensor, pred_betas: torch.Tensor, gt_pose: torch.Tensor,
                    gt_betas: torch.Tensor, has_smpl: torch.Tensor) -> torch.Tensor:
    """L_3D on SMPL parameters: 0.5·MSE of [R(θ) (24·9), β (10)] = 226 numbers, where θ, β are known.

        L_smpl = ||[R(θ), β] - [R(θ̂), β̂]||²₂                                           (HMR, Sec. 3.1)

    Rotation matrices rather than axis-angle make the loss continuous (2π-periodicity of axis-angle).

    Args:
        pred_rotmats: (B, 24, 3, 3) predicted rotations.
        pred_betas: (B, 10) predicted shapes.
        gt_pose: (B, 72) axis-angle ground truth.
        gt_betas: (B, 10) ground-truth shapes.
        has_smpl: (B,) 1 where the sample has θ and β.

    Returns:
        Scalar loss.
    """
    gt_rotmats = axis_angle_to_matrix(gt_pose.reshape(-1, constants.NUM_SMPL_JOINTS, 3))
    pred = torch.cat((pred_rotmats.flatten(1), pred_betas), dim=1)  # (B, 226)
    gt = torch.cat((gt_rotmats.flatten(1), gt_betas), dim=1)
    return _masked_half_mse(pred, gt, has_smpl)


def encoder_adversarial_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """The encoder's least-squares adversarial loss: min_E Σ_i E[(D_i(E(I)) - 1)²]      (HMR, Sec. 3.3)

    Args:
        d_fake: (N, 25) discriminator outputs for predicted (θ, β).

    Returns:
        Scalar: mean over samples of the sum over the 25 discriminators.
    """
    return (d_fake - 1).square().sum(dim=1).mean()


def discriminator_adversarial_losses(
    d_real: torch.Tensor, d_fake: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each discriminator's least-squares loss (HMR, Sec. 3.3):

        E[(D_i(Θ) - 1)²] + E[D_i(E(I))²]

    Args:
        d_real: (N, 25) outputs for real (θ, β) from the pose pool.
        d_fake: (M, 25) outputs for predictions (detached from the encoder).

    Returns:
        ``(loss_real, loss_fake)``, each a mean over samples of the sum over
        the 25 discriminators.
    """
    loss_real = (d_real - 1).square().sum(dim=1).mean()
    loss_fake = d_fake.square().sum(dim=1).mean()
    return loss_real, loss_fake
