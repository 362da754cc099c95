import math

import pytest
import torch
from torch.testing import assert_close

from hmr_core.metrics import mpjpe, pa_mpjpe, pck2d, pck3d, pck3d_auc, per_joint_error, procrustes_align, root_align
from hmr_core.rotation import axis_angle_to_matrix


def random_joints(batch=4, k=14, seed=0):
    return torch.randn(batch, k, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 300


def test_mpjpe_hand_computed():
    gt = torch.zeros(1, 2, 3, dtype=torch.float64)
    pred = torch.tensor([[[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]]], dtype=torch.float64)
    assert_close(mpjpe(pred, gt), torch.tensor([3.0], dtype=torch.float64))  # (5 + 1) / 2
    assert_close(per_joint_error(pred, gt), torch.tensor([[5.0, 1.0]], dtype=torch.float64))


def test_mpjpe_root_alignment_removes_translation():
    gt = random_joints()
    shifted = gt + torch.tensor([10.0, -20.0, 5.0], dtype=torch.float64)
    assert mpjpe(shifted, gt).min() > 1
    assert_close(mpjpe(shifted, gt, root=(2, 3)), torch.zeros(4, dtype=torch.float64), atol=1e-9, rtol=0)
    assert_close(root_align(gt, 0)[:, 0], torch.zeros(4, 3, dtype=torch.float64))


def test_pa_mpjpe_invariant_to_similarity_of_prediction():
    gt = random_joints(seed=1)
    pred = gt + random_joints(seed=2) * 0.1
    rot = axis_angle_to_matrix(torch.tensor([[0.3, -1.2, 2.0]], dtype=torch.float64))
    transformed = 2.7 * pred @ rot.transpose(1, 2) + torch.tensor([100.0, 5.0, -40.0], dtype=torch.float64)
    assert_close(pa_mpjpe(transformed, gt), pa_mpjpe(pred, gt), atol=1e-8, rtol=0)
    assert (pa_mpjpe(pred, gt) <= mpjpe(pred, gt, root=0) + 1e-9).all()


def test_pa_mpjpe_zero_for_exact_similarity():
    gt = random_joints(seed=3)
    rot = axis_angle_to_matrix(torch.tensor([[math.pi - 0.01, 0.2, 0.0]], dtype=torch.float64))
    pred = 0.5 * gt @ rot.transpose(1, 2) + 3.0
    assert_close(procrustes_align(pred, gt), gt, atol=1e-8, rtol=0)
    assert_close(pa_mpjpe(pred, gt), torch.zeros(4, dtype=torch.float64), atol=1e-8, rtol=0)


def test_procrustes_never_reflects():
    gt = random_joints(seed=4)
    mirrored = gt * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    aligned = procrustes_align(mirrored, gt)
    # A mirror image cannot be aligned exactly by a rotation: the error stays well above zero.
    assert (pa_mpjpe(mirrored, gt) > 1).all()
    centred = aligned - aligned.mean(1, keepdim=True)
    assert torch.isfinite(centred).all()


def test_pck3d_and_auc_hand_computed():
    gt = torch.zeros(1, 4, 3, dtype=torch.float64)
    pred = torch.tensor([[[0.0, 0, 0], [100.0, 0, 0], [150.0, 0, 0], [200.0, 0, 0]]], dtype=torch.float64)
    assert_close(pck3d(pred, gt), torch.tensor([0.75], dtype=torch.float64))
    # PCK at thresholds 0..150 step 5: joint 0 always in, joint 1 from 100, joint 2 at 150 only.
    expected = sum((1 + (t >= 100) + (t >= 150)) / 4 for t in range(0, 155, 5)) / 31
    assert_close(pck3d_auc(pred, gt), torch.tensor([expected], dtype=torch.float64))


def test_pck2d_counts_visible_only():
    gt = torch.tensor([[[0.0, 0.0, 1.0], [10.0, 0.0, 1.0], [0.0, 0.0, 0.0]]])
    pred = torch.tensor([[[1.0, 0.0], [0.0, 0.0], [50.0, 50.0]]])
    assert_close(pck2d(pred, gt, 5.0), torch.tensor([0.5]))
    assert_close(pck2d(pred.expand(2, -1, -1), gt.expand(2, -1, -1), torch.tensor([5.0, 20.0])), torch.tensor([0.5, 1.0]))


def test_shape_errors_are_named():
    with pytest.raises(ValueError, match=r"\(B, K, 3\); got \(2, 14, 3\) and \(2, 17, 3\)"):
        mpjpe(torch.zeros(2, 14, 3), torch.zeros(2, 17, 3))
    with pytest.raises(ValueError, match=r"gt \(B, K, 3\)"):
        pck2d(torch.zeros(1, 3, 2), torch.zeros(1, 3, 2), 1.0)
