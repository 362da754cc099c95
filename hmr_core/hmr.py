"""HMR as one module: image → ResNet-50 features φ → IEF regressor → Θ_1…Θ_T (HMR, Fig. 2).

``predict`` turns every iterate into a body: SMPL's mesh and joints, the 19 keypoints projected with the
weak-perspective camera, and the 14 LSP joints in 3D, all T iterations in one SMPL pass.
"""

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hmr_core import constants
from hmr_core.body_model import SMPL
from hmr_core.camera import weak_perspective_project
from hmr_core.encoder import PIXEL_NORMALIZATION, build_encoder
from hmr_core.regressor import IEFRegressor, mean_theta, split_theta


class HMR(nn.Module):
    """Encoder and IEF regressor.

    Args:
        init_theta: (85,) Θ_0 (see ``regressor.mean_theta``).
        num_iterations: T.
        dropout: dropout in the regressor.
        encoder: "resnet50" (HMR), "resnet18" or "efficientnet_lite0" (see ``hmr_core.encoder``); each
            gets its input scaled as its ImageNet weights expect (``encoder.PIXEL_NORMALIZATION``).
        input_size: the side the encoder sees. Crops of another size (the data pipeline makes
            ``constants.IMG_SIZE`` = 224) are resized to it first, with antialiasing; 224 in HMR.
        train_init_theta: Θ_0 a trainable parameter (HMR's code) instead of a fixed buffer.
    """

    def __init__(self, init_theta: torch.Tensor | None = None, num_iterations: int = 3, dropout: float = 0.5,
                 encoder: str = "resnet50", input_size: int = constants.IMG_SIZE, train_init_theta: bool = False):
        super().__init__()
        if input_size < 32:
            raise ValueError(f"input_size must be at least 32 pixels (the encoder downsamples 32×), got {input_size}")
        self.input_size = input_size
        self.encoder = build_encoder(encoder)
        self.regressor = IEFRegressor(mean_theta() if init_theta is None else init_theta,
                                      num_iterations=num_iterations, dropout=dropout,
                                      feature_dim=self.encoder.feature_dim, train_init_theta=train_init_theta)
        mean, std = PIXEL_NORMALIZATION[self.encoder.arch]
        self.register_buffer("pixel_mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) in [0, 1] → Θ of every iteration (B, T, 85)."""
        if images.dim() == 4 and images.shape[-2:] != (self.input_size, self.input_size):
            images = F.interpolate(images, size=(self.input_size, self.input_size), mode="bilinear",
                                   align_corners=False, antialias=True)
        return self.regressor(self.encoder((images - self.pixel_mean) / self.pixel_std))


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """Run ``model`` in eval mode (no dropout, BatchNorm's running statistics) and give it back in the
    mode it came in, so a caller's training model is not left changed."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@dataclass
class BodyPrediction:
    """Bodies for Θ of every iteration; leading axes (B, T).

    Attributes:
        cam: (B, T, 3) weak-perspective cameras (s, tx, ty).
        pose: (B, T, 72) axis-angle θ.
        betas: (B, T, 10) β.
        rotmats: (B, T, 24, 3, 3) R(θ).
        vertices: (B, T, V, 3) meshes.
        keypoints_3d: (B, T, 19, 3) HMR's keypoints in 3D.
        keypoints_2d: (B, T, 19, 2) projected keypoints, normalised image coordinates in [-1, 1].
    """

    cam: torch.Tensor
    pose: torch.Tensor
    betas: torch.Tensor
    rotmats: torch.Tensor
    vertices: torch.Tensor
    keypoints_3d: torch.Tensor
    keypoints_2d: torch.Tensor

    @property
    def joints_3d(self) -> torch.Tensor:
        """(B, T, 14, 3) the LSP joints (the first 14 keypoints)."""
        return self.keypoints_3d[..., : constants.NUM_LSP_JOINTS, :]


def predict_bodies(thetas: torch.Tensor, smpl: SMPL) -> BodyPrediction:
    """Run SMPL on Θ of every iteration at once.

    Args:
        thetas: (B, T, 85).
        smpl: the body model.

    Returns:
        ``BodyPrediction`` with (B, T) leading axes.
    """
    batch, iters = thetas.shape[:2]
    parts = split_theta(thetas)
    out = smpl(betas=parts.betas.reshape(batch * iters, -1), pose=parts.pose.reshape(batch * iters, -1))
    keypoints_2d = weak_perspective_project(out.keypoints, parts.cam.reshape(batch * iters, -1))  # (B·T, 19, 2)
    return BodyPrediction(
        cam=parts.cam,
        pose=parts.pose,
        betas=parts.betas,
        rotmats=out.rotmats.view(batch, iters, -1, 3, 3),
        vertices=out.vertices.view(batch, iters, -1, 3),
        keypoints_3d=out.keypoints.view(batch, iters, -1, 3),
        keypoints_2d=keypoints_2d.view(batch, iters, -1, 2),
    )
