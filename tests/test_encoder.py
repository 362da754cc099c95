import pytest
import torch

from hmr_core.encoder import FEATURE_DIM, ResNetEncoder, load_imagenet_weights


@pytest.fixture(scope="module")
def encoder():
    return ResNetEncoder("resnet50").eval()


def test_feature_shape_and_parameter_count(encoder):
    with torch.no_grad():
        phi = encoder(torch.randn(2, 3, 224, 224))
    assert phi.shape == (2, FEATURE_DIM)
    # torchvision's resnet50 has 25,557,032 parameters, of which the classifier has 2048·1000 + 1000.
    assert sum(p.numel() for p in encoder.parameters()) == 25_557_032 - 2_049_000


def test_torchvision_key_layout(encoder):
    keys = encoder.state_dict().keys()
    for key in ("conv1.weight", "bn1.running_mean", "layer1.0.downsample.0.weight", "layer4.2.bn3.weight",
                "layer3.5.conv2.weight"):
        assert key in keys
    assert not any(k.startswith("fc.") for k in keys)


def test_loads_imagenet_style_state_dict_strictly(encoder, tmp_path):
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in encoder.state_dict().items()}
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 2048), torch.zeros(1000)
    path = tmp_path / "resnet50.pth"
    torch.save(state, path)
    fresh = ResNetEncoder("resnet50")
    load_imagenet_weights(fresh, path)
    torch.testing.assert_close(fresh.layer2[1].conv2.weight, state["layer2.1.conv2.weight"], atol=0, rtol=0)


def test_mismatched_weights_are_named(encoder, tmp_path):
    state = dict(encoder.state_dict())
    del state["layer4.2.bn3.weight"]
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"missing keys \['layer4.2.bn3.weight'\].*unexpected keys \['extra.weight'\]"):
        load_imagenet_weights(ResNetEncoder("resnet50"), path)


def test_missing_weights_file_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="trains from scratch"):
        load_imagenet_weights(ResNetEncoder("resnet50"), tmp_path / "none.pth")


def test_wrong_image_shape_is_named(encoder):
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\), got \(2, 224, 224\)"):
        encoder(torch.zeros(2, 224, 224))


def test_resnet18_matches_torchvision_layout_and_size():
    encoder = ResNetEncoder("resnet18").eval()
    with torch.no_grad():
        phi = encoder(torch.randn(2, 3, 112, 112))
    assert phi.shape == (2, 512) and encoder.feature_dim == 512
    # torchvision's resnet18 has 11,689,512 parameters, of which the classifier has 512·1000 + 1000.
    assert sum(p.numel() for p in encoder.parameters()) == 11_689_512 - 513_000
    keys = encoder.state_dict().keys()
    assert {"layer2.0.downsample.0.weight", "layer4.1.bn2.weight"} <= set(keys)
    assert "layer1.0.downsample.0.weight" not in keys  # 64 → 64 channels, stride 1: no projection


def test_unknown_architecture_is_named():
    with pytest.raises(ValueError, match="unknown encoder 'vgg16'.*resnet18"):
        ResNetEncoder("vgg16")
