import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from hmr_core.hmr import HMR


def test_resnet18_model_resizes_crops_to_its_input_size():
    torch.manual_seed(0)
    model = HMR(num_iterations=2, encoder="resnet18", input_size=96).eval()
    assert model.regressor.fc1.in_features == 512 + 85
    crops = torch.rand(2, 3, 224, 224)
    small = F.interpolate(crops, size=(96, 96), mode="bilinear", align_corners=False, antialias=True)
    with torch.no_grad():
        thetas = model(crops)
        assert thetas.shape == (2, 2, 85)
        # The 224-pixel crop and the crop already at 96 pixels give the same Θ: the resize is the only step.
        assert_close(thetas, model(small), atol=1e-5, rtol=0)


def test_default_model_is_hmrs():
    model = HMR()
    assert model.encoder.arch == "resnet50" and model.input_size == 224
    assert model.regressor.fc1.in_features == 2048 + 85


def test_too_small_input_size_is_refused():
    with pytest.raises(ValueError, match="input_size must be at least 32"):
        HMR(input_size=16)


def test_eval_mode_gives_the_model_back_as_it_came():
    from hmr_core.hmr import eval_mode

    model = HMR(num_iterations=1, encoder="resnet18", input_size=64).train()
    with eval_mode(model):
        assert not model.training and not model.regressor.drop.training
    assert model.training and model.regressor.drop.training
    model.eval()
    with eval_mode(model):
        pass
    assert not model.training
