"""Tests for hmr_core.losses against a NumPy copy of HMR's TensorFlow ``keypoint_l1_loss``."""

import numpy as np
import pytest
import torch

from hmr_core import losses


def tf_keypoint_l1_loss(kp_gt: np.ndarray, kp_pred: np.ndarray) -> float:
    """HMR's ``keypoint_l1_loss`` (``src/ops.py``) with TF 1.x's ``tf.losses.absolute_difference`` written out.

        kp_gt = tf.reshape(kp_gt, (-1, 3)); kp_pred = tf.reshape(kp_pred, (-1, 2))
        vis = tf.expand_dims(tf.cast(kp_gt[:, 2], tf.float32), 1)
        res = tf.losses.absolute_difference(kp_gt[:, :2], kp_pred, weights=vis)

    ``absolute_difference`` computes |predictions - labels|, multiplies by the weights broadcast to its
    shape, and with the default reduction SUM_BY_NONZERO_WEIGHTS divides the sum by the number of
    non-zero entries of the broadcast weights (``_num_present``), giving 0 when there are none.
    """
    kp_gt = kp_gt.reshape(-1, 3)
    kp_pred = kp_pred.reshape(-1, 2)
    vis = kp_gt[:, 2].astype(np.float32)[:, None]  # (N, 1)
    abs_diff = np.abs(kp_pred - kp_gt[:, :2])  # (N, 2)
    weights = np.broadcast_to(vis, abs_diff.shape)  # (N, 2)
    total = (abs_diff * weights).sum()
    num_present = np.count_nonzero(weights)
    return float(total / num_present) if num_present > 0 else 0.0


def random_keypoints(seed: int, batch: int = 4, num: int = 19, vis_values=(0.0, 1.0)):
    rng = np.random.default_rng(seed)
    pred = rng.normal(size=(batch, num, 2))
    gt = np.concatenate((rng.normal(size=(batch, num, 2)), rng.choice(vis_values, size=(batch, num, 1))), axis=-1)
    return pred, gt


@pytest.mark.parametrize("seed", range(5))
def test_matches_hmr_tensorflow(seed, device):
    pred, gt = random_keypoints(seed)
    got = losses.keypoint_reprojection_loss(torch.tensor(pred, device=device), torch.tensor(gt, device=device))
    assert got.shape == ()
    assert float(got) == pytest.approx(tf_keypoint_l1_loss(gt, pred), rel=1e-6)


def test_averages_over_visible_keypoint_coordinates():
    pred = torch.zeros(1, 3, 2)
    gt = torch.tensor([[[1.0, 3.0, 1.0], [10.0, 10.0, 0.0], [2.0, 2.0, 1.0]]])
    # visible: |1| + |3| + |2| + |2| over 2 keypoints × 2 coordinates; the invisible one is ignored
    assert float(losses.keypoint_reprojection_loss(pred, gt)) == pytest.approx(2.0)


def test_fractional_visibility_weights_like_tensorflow():
    pred, gt = random_keypoints(7, vis_values=(0.0, 0.5, 1.0))
    got = losses.keypoint_reprojection_loss(torch.tensor(pred), torch.tensor(gt))
    assert float(got) == pytest.approx(tf_keypoint_l1_loss(gt, pred), rel=1e-6)


def test_no_visible_keypoint_gives_zero_and_zero_gradient():
    pred = torch.randn(2, 19, 2, requires_grad=True)
    gt = torch.cat((torch.randn(2, 19, 2), torch.zeros(2, 19, 1)), dim=-1)
    loss = losses.keypoint_reprojection_loss(pred, gt)
    loss.backward()
    assert float(loss.detach()) == 0.0
    assert torch.equal(pred.grad, torch.zeros_like(pred))


def test_gradient_is_finite_and_masked():
    pred, gt = random_keypoints(3)
    pred = torch.tensor(pred, requires_grad=True)
    losses.keypoint_reprojection_loss(pred, torch.tensor(gt)).backward()
    assert torch.isfinite(pred.grad).all()
    invisible = torch.tensor(gt[..., 2] == 0)
    assert torch.equal(pred.grad[invisible], torch.zeros_like(pred.grad[invisible]))


@pytest.mark.parametrize(
    "pred_shape, gt_shape, message",
    [((2, 19, 3), (2, 19, 3), r"pred_kp_2d must have shape \(B, K, 2\), got \(2, 19, 3\)"),
     ((2, 19, 2), (2, 19, 2), r"gt_kp_2d must have shape \(B, K, 3\) = \(2, 19, 3\).*got \(2, 19, 2\)"),
     ((2, 19, 2), (2, 14, 3), r"gt_kp_2d must have shape \(B, K, 3\) = \(2, 19, 3\).*got \(2, 14, 3\)")],
)
def test_rejects_bad_shapes(pred_shape, gt_shape, message):
    with pytest.raises(ValueError, match=message):
        losses.keypoint_reprojection_loss(torch.zeros(pred_shape), torch.zeros(gt_shape))
