"""The image encoder: ResNet-50 (He et al., CVPR 2016), average-pooled to φ ∈ R^2048 (HMR, Sec. 3.2).

Defined here rather than taken from torchvision so the package installs anywhere. Parameter names match
torchvision's ``resnet50`` so its ImageNet state dict (e.g. ``resnet50-0676ba61.pth``, downloaded where
there is internet) loads with strict key checking; the classifier (``fc.*``) is not part of the encoder.

ResNet-18 (φ ∈ R^512, torchvision's ``resnet18`` layout) is the one other choice: about a third of
ResNet-50's compute, for models trained on a CPU (the book's small model) or on small GPUs. HMR uses
ResNet-50, and so does every preset but ``book_cpu``.
"""

from pathlib import Path

import torch
from torch import nn

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
ARCHITECTURES = {"resnet18": (BasicBlock, (2, 2, 2, 2)), "resnet50": (Bottleneck, (3, 4, 6, 3))}


class ResNetEncoder(nn.Module):
    """A ResNet without its classifier: images (B, 3, H, W) → features φ (B, feature_dim).

    Args:
        arch: "resnet50" (HMR; φ ∈ R^2048) or "resnet18" (φ ∈ R^512).
    """

    def __init__(self, arch: str = "resnet50"):
        super().__init__()
        if arch not in ARCHITECTURES:
            raise ValueError(f"unknown encoder {arch!r}; choose one of {sorted(ARCHITECTURES)}")
        self.arch = arch
        block, depths = ARCHITECTURES[arch]
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


def load_imagenet_weights(encoder: ResNetEncoder, path: str | Path) -> None:
    """Load torchvision's ImageNet ResNet weights from a local file, checking every key.

    Args:
        encoder: the encoder to fill.
        path: a ``.pth`` state dict of torchvision's ``resnet50`` (or ``resnet18`` for that encoder; the
            ``fc.*`` classifier is dropped).

    Raises:
        FileNotFoundError: if the file does not exist (the message says how to get one).
        ValueError: if keys are missing or unexpected, or shapes differ, naming them.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"ImageNet weights {path} not found. Where there is internet, save them with "
            f"torch.save(torchvision.models.{encoder.arch}(weights='IMAGENET1K_V1').state_dict(), "
            f"'{encoder.arch}_imagenet.pth'); "
            "without them the encoder trains from scratch."
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict")
    state = {k.removeprefix("module."): v for k, v in state.items() if not k.removeprefix("module.").startswith("fc.")}
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
