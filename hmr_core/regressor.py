"""Iterative error feedback (IEF): the regressor of HMR (Sec. 3.2; Carreira et al., CVPR 2016).

Starting from the mean Θ_0, each iteration looks at the image features and the current estimate and
predicts a correction:

    Θ_{t+1} = Θ_t + ΔΘ_t,   ΔΘ_t = f([φ, Θ_t])                              (HMR, Sec. 3.2)

with f two fully connected layers of 1024 units with dropout and a linear output of 85 numbers,
Θ = [cam (3), pose θ (72, axis-angle), shape β (10)]. HMR uses T = 3 iterations; its code supervises
only the last one, Θ_T, with the keypoint and 3D losses, while the discriminators judge every one
(``TrainConfig.supervise_all_iterations``, chapter "Iterative error feedback").
"""

from dataclasses import dataclass

import torch
from torch import nn

from hmr_core import constants
from hmr_core.encoder import FEATURE_DIM


@dataclass
class ThetaSplit:
    """Θ split into its parts: cam (..., 3), pose (..., 72), betas (..., 10)."""

    cam: torch.Tensor
    pose: torch.Tensor
    betas: torch.Tensor


def split_theta(theta: torch.Tensor) -> ThetaSplit:
    """Split Θ (..., 85) in HMR's order [cam, pose, betas].

    Args:
        theta: (..., 85) parameters.

    Returns:
        ``ThetaSplit`` of views into ``theta``.
    """
    if theta.shape[-1] != constants.THETA_DIM:
        raise ValueError(f"theta must have {constants.THETA_DIM} numbers in its last axis, got {tuple(theta.shape)}")
    cam, pose, betas = theta.split((constants.CAM_DIM, constants.POSE_DIM, constants.NUM_BETAS), dim=-1)
    return ThetaSplit(cam=cam, pose=pose, betas=betas)


def mean_theta(mean_pose: torch.Tensor | None = None, cam_scale: float = 0.9,
               mean_betas: torch.Tensor | None = None) -> torch.Tensor:
    """Θ_0: the mean pose and shape (of the pose pool), and a typical camera (s, 0, 0).

    HMR's code builds its ``mean_param`` the same way: scale 0.9, root (π, 0, 0), then the mean pose and
    mean shape of its mocap data.

    Args:
        mean_pose: (72,) axis-angle mean pose; None gives the rest pose turned to face the camera
            (a rotation of π about x, since image y points down while SMPL's y points up).
        cam_scale: the weak-perspective scale s of a body that fills the crop (HMR's default 0.9).
        mean_betas: (10,) mean shape; None gives β = 0 (the template).

    Returns:
        (85,) Θ_0.
    """
    if mean_pose is None:
        mean_pose = torch.zeros(constants.POSE_DIM)
        mean_pose[0] = torch.pi
    if mean_pose.shape != (constants.POSE_DIM,):
        raise ValueError(f"mean_pose must have shape ({constants.POSE_DIM},), got {tuple(mean_pose.shape)}")
    if mean_betas is None:
        mean_betas = torch.zeros(constants.NUM_BETAS, dtype=mean_pose.dtype)
    if mean_betas.shape != (constants.NUM_BETAS,):
        raise ValueError(f"mean_betas must have shape ({constants.NUM_BETAS},), got {tuple(mean_betas.shape)}")
    cam = torch.tensor([cam_scale, 0.0, 0.0], dtype=mean_pose.dtype)
    return torch.cat((cam, mean_pose, mean_betas.to(mean_pose.dtype)))


class IEFRegressor(nn.Module):
    """[φ, Θ_t] → FC 1024 → dropout → FC 1024 → dropout → ΔΘ (85), iterated T times.

    Args:
        init_theta: (85,) Θ_0, stored with the model (saved in checkpoints).
        num_iterations: T (3 in HMR).
        hidden: width of the two hidden layers (1024 in HMR).
        dropout: dropout probability after each hidden layer (0.5 in HMR's code).
        feature_dim: size of φ.
        train_init_theta: make Θ_0 a parameter that the optimiser updates, as HMR's code does with its
            ``mean_param`` variable; False keeps it a fixed buffer. Either way its key is ``init_theta``.
    """

    def __init__(self, init_theta: torch.Tensor, num_iterations: int = 3, hidden: int = 1024,
                 dropout: float = 0.5, feature_dim: int = FEATURE_DIM, train_init_theta: bool = False):
        super().__init__()
        if num_iterations < 1:
            raise ValueError(f"num_iterations must be at least 1, got {num_iterations}")
        self.num_iterations = num_iterations
        if train_init_theta:
            self.init_theta = nn.Parameter(init_theta.detach().clone().float())
        else:
            self.register_buffer("init_theta", init_theta.detach().clone().float())
        self.fc1 = nn.Linear(feature_dim + constants.THETA_DIM, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, constants.THETA_DIM)
        self.drop = nn.Dropout(dropout)
        self.relu = nn.ReLU(inplace=True)
        # Small initial corrections, as HMR's code: variance_scaling_initializer(factor=0.01, mode="FAN_AVG",
        # uniform=True) draws from U(±sqrt(3·0.01 / fan_avg)), which is Xavier-uniform with gain sqrt(0.01) = 0.1.
        nn.init.xavier_uniform_(self.out.weight, gain=0.1)
        nn.init.zeros_(self.out.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Run the T feedback iterations.

        Args:
            features: (B, feature_dim) image features φ (2048 for ResNet-50).

        Returns:
            (B, T, 85) Θ_1 … Θ_T, every iteration (the losses choose which
            to supervise).
        """
        feature_dim = self.fc1.in_features - constants.THETA_DIM
        if features.dim() != 2 or features.shape[1] != feature_dim:
            raise ValueError(
                f"features must have shape (B, {feature_dim}), "
                f"got {tuple(features.shape)}"
            )
        batch = features.shape[0]
        theta = self.init_theta.to(features.dtype).expand(batch, -1)
        thetas = []
        for _ in range(self.num_iterations):
            x = torch.cat((features, theta), dim=1)  # (B, 2048 + 85)
            x = self.drop(self.relu(self.fc1(x)))
            x = self.drop(self.relu(self.fc2(x)))
            theta = theta + self.out(x)  # Θ_{t+1} = Θ_t + ΔΘ_t
            thetas.append(theta)
        return torch.stack(thetas, dim=1)  # (B, T, 85)
