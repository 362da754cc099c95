import pytest
import torch
from torch.testing import assert_close

from hmr_core.regressor import IEFRegressor, mean_theta, split_theta


def test_mean_theta_layout():
    theta0 = mean_theta()
    parts = split_theta(theta0)
    assert theta0.shape == (85,)
    assert_close(parts.cam, torch.tensor([0.9, 0.0, 0.0]))
    assert parts.pose[0] == pytest.approx(torch.pi) and parts.pose[1:].abs().sum() == 0
    assert parts.betas.abs().sum() == 0


def test_returns_every_iteration_and_starts_from_mean():
    torch.manual_seed(0)
    theta0 = mean_theta()
    reg = IEFRegressor(theta0, num_iterations=3).eval()
    thetas = reg(torch.randn(4, 2048))
    assert thetas.shape == (4, 3, 85)
    # With the small output initialisation, the first iterate stays close to Θ_0.
    assert (thetas[:, 0] - theta0).abs().max() < 0.5
    # Each iterate is the previous one plus a correction computed from [φ, Θ_t].
    assert not torch.allclose(thetas[:, 1], thetas[:, 0])


def test_iteration_is_the_feedback_rule():
    torch.manual_seed(1)
    reg = IEFRegressor(mean_theta(), num_iterations=2).eval()
    phi = torch.randn(3, 2048)
    thetas = reg(phi)
    with torch.no_grad():
        def delta(theta):
            x = torch.relu(reg.fc1(torch.cat((phi, theta), 1)))
            return reg.out(torch.relu(reg.fc2(x)))
        t1 = reg.init_theta.expand(3, -1) + delta(reg.init_theta.expand(3, -1))
        assert_close(thetas[:, 0], t1)
        assert_close(thetas[:, 1], t1 + delta(t1))


def test_init_theta_is_saved_with_the_model():
    theta0 = mean_theta(cam_scale=0.7)
    reg = IEFRegressor(theta0)
    assert_close(reg.state_dict()["init_theta"], theta0)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"\(B, 2048\), got \(2, 1000\)"):
        IEFRegressor(mean_theta())(torch.zeros(2, 1000))
    with pytest.raises(ValueError, match="85 numbers"):
        split_theta(torch.zeros(2, 84))
    with pytest.raises(ValueError, match="at least 1"):
        IEFRegressor(mean_theta(), num_iterations=0)


def test_output_layer_starts_small_as_in_hmrs_code():
    # variance_scaling_initializer(factor=0.01, mode="FAN_AVG", uniform=True): U(±sqrt(3 · 0.01 / fan_avg)).
    torch.manual_seed(0)
    out = IEFRegressor(mean_theta()).out
    limit = (3 * 0.01 / ((out.in_features + out.out_features) / 2)) ** 0.5
    weight, bias = out.weight.detach(), out.bias.detach()
    assert float(weight.abs().max()) <= limit
    assert float(weight.abs().max()) > 0.95 * limit  # drawn over the whole range, not a smaller one
    assert float(bias.abs().max()) == 0.0


def test_mean_theta_takes_the_mean_shape():
    betas = torch.linspace(-1, 1, 10)
    assert_close(split_theta(mean_theta(mean_betas=betas)).betas, betas)
    with pytest.raises(ValueError, match=r"mean_betas must have shape \(10,\)"):
        mean_theta(mean_betas=torch.zeros(3))


def test_trainable_init_theta_is_learned_as_in_hmrs_code():
    torch.manual_seed(0)
    fixed = IEFRegressor(mean_theta(), num_iterations=2)
    learned = IEFRegressor(mean_theta(), num_iterations=2, train_init_theta=True)
    assert "init_theta" not in dict(fixed.named_parameters())
    assert "init_theta" in dict(learned.named_parameters())
    assert set(fixed.state_dict()) == set(learned.state_dict())  # same checkpoint keys either way
    optimizer = torch.optim.SGD(learned.parameters(), lr=0.1)
    learned(torch.randn(4, 2048)).sum().backward()
    optimizer.step()
    assert not torch.equal(learned.init_theta.detach(), mean_theta())
    fixed.load_state_dict(learned.state_dict())  # a learned Θ_0 loads into a fixed one
    assert_close(fixed.init_theta, learned.init_theta.detach())
