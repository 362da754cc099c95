import pytest
import torch

from hmr_core.discriminator import NUM_DISCRIMINATORS, FactorizedDiscriminator
from hmr_core.rotation import axis_angle_to_matrix


def test_25_outputs_from_axis_angle_or_rotmats():
    torch.manual_seed(0)
    disc = FactorizedDiscriminator()
    pose, betas = torch.randn(5, 72) * 0.3, torch.randn(5, 10)
    scores = disc(pose, betas)
    assert scores.shape == (5, NUM_DISCRIMINATORS) == (5, 25)
    torch.testing.assert_close(disc(axis_angle_to_matrix(pose.view(5, 24, 3)), betas), scores)


def test_global_rotation_is_ignored():
    disc = FactorizedDiscriminator()
    pose, betas = torch.randn(2, 72) * 0.3, torch.randn(2, 10)
    turned = pose.clone()
    turned[:, :3] = torch.tensor([1.0, -2.0, 0.5])
    torch.testing.assert_close(disc(turned, betas), disc(pose, betas))


def test_per_joint_heads_see_only_their_joint():
    torch.manual_seed(1)
    disc = FactorizedDiscriminator()
    pose, betas = torch.randn(1, 72) * 0.3, torch.randn(1, 10)
    moved = pose.clone()
    moved[0, 3 * 5: 3 * 6] += 0.7  # joint 5 (right knee) is body joint index 4
    diff = (disc(moved, betas) - disc(pose, betas)).abs()[0]
    assert diff[4] > 0 and diff[23] > 0  # its own head and the all-joints head change
    assert torch.all(diff[[i for i in range(23) if i != 4]] == 0)
    assert diff[24] == 0  # the shape head sees only β


def test_bad_betas_shape_is_named():
    with pytest.raises(ValueError, match=r"betas must have shape \(B=2, 10\), got \(2, 9\)"):
        FactorizedDiscriminator()(torch.zeros(2, 72), torch.zeros(2, 9))


def test_shape_head_is_the_official_codes():
    # HMR's code: slim.stack(shapes, fully_connected, [10, 5]) then a linear output: 10 → 10 → 5 → 1.
    head = FactorizedDiscriminator().shape
    widths = [layer.out_features for layer in head if isinstance(layer, torch.nn.Linear)]
    assert widths == [10, 5, 1]
    assert sum(p.numel() for p in head.parameters()) == (10 * 10 + 10) + (10 * 5 + 5) + (5 + 1)
