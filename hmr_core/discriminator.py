"""The factorized adversarial prior of HMR (Sec. 3.3): K + 2 = 25 discriminators over (θ, β).

A single discriminator over all 85 numbers would be hard to train; HMR factorises it:

* θ's 23 joint rotations (the global rotation excluded) become rotation matrices by Rodrigues, and a
  shared embedding (two 1×1 "convolutions" of 32 units, i.e. the same small MLP applied to each joint's
  9 numbers) maps each to 32 features;
* 23 per-joint heads D_i, each a linear layer on its joint's 32 features, judge one joint at a time,
  learning its angle limits;
* an all-joints head (two layers of 1024 on the 23×32 features, then 1) judges the whole pose;
* a shape head (10 → 10 → 5 → 1, as the official code's ``slim.stack(shapes, fully_connected, [10, 5])``
  and a linear output) judges β.

Each D_i is trained with a least-squares GAN loss (HMR, Sec. 3.3; Mao et al. 2017):

    min_E  L_adv(E) = Σ_i E_Θ~p_E [(D_i(E(I)) - 1)²]
    min_Di L(D_i)  = E_Θ~p_data [(D_i(Θ) - 1)²] + E_Θ~p_E [D_i(E(I))²]
"""

import torch
from torch import nn

from hmr_core import constants
from hmr_core.lbs import pose_to_rotmats

NUM_BODY_JOINTS = constants.NUM_SMPL_JOINTS - 1  # 23: the global rotation is not judged
NUM_DISCRIMINATORS = NUM_BODY_JOINTS + 2  # 25 = 23 joints + all joints + shape


class FactorizedDiscriminator(nn.Module):
    """25 discriminator outputs for poses and shapes.

    Args:
        embed_dim: width of the shared per-joint embedding (32 in HMR).
        hidden: width of the all-joints head's two layers (1024 in HMR).
        shape_hidden: widths of the shape head's hidden layers ((10, 5) in HMR's code).
    """

    def __init__(self, embed_dim: int = 32, hidden: int = 1024, shape_hidden: tuple[int, ...] = (10, 5)):
        super().__init__()
        # Shared over joints: a 1×1 convolution over the joint axis is a per-joint linear layer.
        self.embed = nn.Sequential(nn.Linear(9, embed_dim), nn.ReLU(), nn.Linear(embed_dim, embed_dim), nn.ReLU())
        # 23 independent linear heads, stored as one (23, 32) weight: score_i = w_i · e_i + b_i.
        self.joint_weight = nn.Parameter(torch.empty(NUM_BODY_JOINTS, embed_dim))
        self.joint_bias = nn.Parameter(torch.zeros(NUM_BODY_JOINTS))
        nn.init.kaiming_uniform_(self.joint_weight, a=5**0.5)
        self.all_joints = nn.Sequential(
            nn.Linear(NUM_BODY_JOINTS * embed_dim, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 1),
        )
        layers, width = [], constants.NUM_BETAS
        for size in shape_hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.shape = nn.Sequential(*layers, nn.Linear(width, 1))

    def forward(self, pose: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        """Score poses and shapes.

        Args:
            pose: θ as axis-angle (B, 72) or rotation matrices (B, 24, 3, 3);
                joint 0 (global) is ignored.
            betas: (B, 10) shapes.

        Returns:
            (B, 25) scores: 23 per-joint, then all joints, then shape. Real
            data should score 1, fakes 0.
        """
        # (B, 23, 3, 3): the body joints, without the root
        rotmats = pose_to_rotmats(pose, constants.NUM_SMPL_JOINTS)[:, 1:]
        batch = rotmats.shape[0]
        if betas.dim() != 2 or betas.shape != (batch, constants.NUM_BETAS):
            raise ValueError(
                f"betas must have shape (B={batch}, {constants.NUM_BETAS}), "
                f"got {tuple(betas.shape)}"
            )
        feats = self.embed(rotmats.flatten(2))  # (B, 23, 9) -> (B, 23, 32)
        # per_joint[b, i] = Σ_c feats[b, i, c] · joint_weight[i, c]
        #                   + joint_bias[i]
        per_joint = torch.einsum("bic,ic->bi", feats, self.joint_weight)
        per_joint = per_joint + self.joint_bias  # (B, 23)
        whole = self.all_joints(feats.flatten(1))  # (B, 1)
        shape = self.shape(betas)  # (B, 1)
        return torch.cat((per_joint, whole, shape), dim=1)  # (B, 25)
