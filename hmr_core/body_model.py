"""The SMPL body model as a module: buffers from a model file, the maths from ``hmr_core.lbs``.

``SMPL()`` loads the open body model that ships with ``hmr_core``; ``SMPL("SMPL_NEUTRAL.pkl")`` or
``$HMR_SMPL_MODEL`` loads the official one. Either way the forward pass is M(β, θ) of the SMPL paper,
plus HMR's 19 keypoints regressed from the posed mesh (chapter "The SMPL body model").
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hmr_core import constants
from hmr_core.lbs import forward_kinematics, pose_features, pose_to_rotmats, skin_vertices
from hmr_core.model_files import load_model_arrays, validate_model_arrays


@dataclass
class SMPLOutput:
    """What one SMPL forward pass returns.

    Attributes:
        vertices: (B, V, 3) posed mesh vertices, metres.
        joints: (B, J, 3) posed joints (J = 24 for SMPL).
        rotmats: (B, J, 3, 3) the local joint rotations R(θ) that posed them.
        keypoints: (B, 19, 3) HMR's keypoints (``constants.KEYPOINT_NAMES``) regressed from the vertices.
    """

    vertices: torch.Tensor
    joints: torch.Tensor
    rotmats: torch.Tensor
    keypoints: torch.Tensor


def keypoint_regressor(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """HMR's 19-keypoint regressor (19, V): 14 LSP joints as regressed rows, 5 face points as vertices.

    Uses the model's ``J_regressor_lsp`` and ``J_regressor_face`` (or ``face_vertex_ids``) when it has them
    (HMR's ``cocoplus_regressor`` becomes both, ``model_files.with_cocoplus_keypoints``). For the official
    SMPL mesh without them, the LSP joints fall back to SMPL's own joint rows and the head-top vertex,
    and the face points to the standard vertex ids (``constants.SMPL_FACE_VERTEX_IDS``).

    Args:
        arrays: checked model arrays (``model_files.validate_model_arrays``).

    Returns:
        (19, V) float64 matrix whose rows sum to 1.

    Raises:
        ValueError: if the model has no keypoint regressors and is not the 6,890-vertex SMPL mesh.
    """
    num_verts = arrays["v_template"].shape[0]
    if "J_regressor_lsp" in arrays:
        lsp = arrays["J_regressor_lsp"]
    elif num_verts == constants.SMPL_NUM_VERTICES:
        rows = [constants.SMPL_JOINT_NAMES.index(n) if n in constants.SMPL_JOINT_NAMES else None
                for n in constants.LSP_JOINT_NAMES]
        lsp = np.zeros((constants.NUM_LSP_JOINTS, num_verts))
        for k, row in enumerate(rows):
            if row is not None:
                lsp[k] = arrays["J_regressor"][row]
        lsp[constants.LSP_JOINT_NAMES.index("head_top"), constants.SMPL_HEAD_TOP_VERTEX_ID] = 1.0
    else:
        raise ValueError(
            f"the model has {num_verts} vertices and no 'J_regressor_lsp'; add a (14, {num_verts}) LSP regressor "
            "and 'face_vertex_ids' to the .npz (see 'python -m hmr_core.model_files convert --help')"
        )
    if "J_regressor_face" in arrays:
        return np.concatenate((lsp, arrays["J_regressor_face"]))
    if "face_vertex_ids" in arrays:
        face_ids = arrays["face_vertex_ids"]
    elif num_verts == constants.SMPL_NUM_VERTICES:
        face_ids = np.asarray(constants.SMPL_FACE_VERTEX_IDS)
    else:
        raise ValueError(f"the model has {num_verts} vertices and no 'face_vertex_ids' for the 5 face keypoints")
    face = np.zeros((len(face_ids), num_verts))
    face[np.arange(len(face_ids)), face_ids] = 1.0
    return np.concatenate((lsp, face))


def sparse_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pack a mostly-zero (K, V) matrix as per-row indices and weights padded to the longest row.

    Args:
        matrix: (K, V) matrix.

    Returns:
        ``(index, weight)``, both (K, N) with N the largest number of non-zeros in a row; padding has
        index 0 and weight 0.
    """
    nnz = (matrix != 0).sum(1)
    width = max(int(nnz.max()), 1)
    index = np.zeros((matrix.shape[0], width), dtype=np.int64)
    weight = np.zeros((matrix.shape[0], width))
    for k, row in enumerate(matrix):
        (cols,) = np.nonzero(row)
        index[k, : len(cols)] = cols
        weight[k, : len(cols)] = row[cols]
    return index, weight


class SMPL(nn.Module):
    """SMPL, M(β, θ) → vertices, joints and HMR's keypoints, batched and differentiable.

    Equal to ``hmr_core.lbs.lbs`` and to ``smplx.SMPL`` on the same arrays, and faster because of two
    exact rewrites: the rest joints J(β) = 𝒥T̄ + (𝒥S)β use a 24-row basis precomputed from 𝒥 and S
    (no regression over all vertices), and the shape and pose blend shapes are one matrix product
    [β, R(θ) - I] · [S; P]. A model whose pose blend shapes are all zero (the open body model) skips
    them.

    Args:
        model_path: an SMPL-format ``.npz`` or the official ``.pkl``; None uses ``$HMR_SMPL_MODEL``,
            else the open body model.
        num_betas: how many shape coefficients to use (at most what the file has).
        arrays: model arrays to use instead of a file (as ``model_files.load_model_arrays`` returns).
        dtype: floating dtype of the buffers; move later with ``.to(...)`` as with any module.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        num_betas: int = constants.NUM_BETAS,
        arrays: dict[str, np.ndarray] | None = None,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        arrays = load_model_arrays(model_path) if arrays is None else validate_model_arrays(arrays)
        self.model_name = str(arrays.get("model_name", "custom"))
        available = arrays["shapedirs"].shape[-1]
        if not 1 <= num_betas <= available:
            raise ValueError(f"num_betas must be in [1, {available}] for this model, got {num_betas}")
        self.num_betas = num_betas
        self.parents = tuple(int(p) for p in arrays["kintree_table"][0])
        self.num_joints = len(self.parents)

        def buffer(name, value, dt=dtype):
            self.register_buffer(name, torch.as_tensor(np.ascontiguousarray(value), dtype=dt))

        v_template = arrays["v_template"]  # (V, 3)
        shapedirs = arrays["shapedirs"][..., :num_betas]  # (V, 3, S)
        posedirs = arrays["posedirs"]  # (V, 3, P)
        J_regressor = arrays["J_regressor"]  # (J, V)
        self.num_vertices = v_template.shape[0]
        self.has_pose_blend_shapes = bool(np.any(posedirs != 0))
        buffer("v_template", v_template)
        buffer("shapedirs", shapedirs)
        buffer("posedirs", posedirs)
        buffer("J_regressor", J_regressor)
        buffer("weights", arrays["weights"])  # (V, J)
        buffer("faces", arrays["f"], torch.long)  # (F, 3)
        # Rows of [S; P] flattened over (V, 3): one GEMM gives both blend shapes.
        basis = [shapedirs.reshape(-1, num_betas).T]  # (S, 3V)
        if self.has_pose_blend_shapes:
            basis.append(posedirs.reshape(-1, posedirs.shape[-1]).T)  # (P, 3V)
        buffer("blend_basis", np.concatenate(basis))  # (S [+ P], 3V)
        # J(β) = 𝒥T̄ + Σ_s β_s 𝒥S_s: the joint regressor folded into the shape basis.
        buffer("joint_template", J_regressor @ v_template)  # (J, 3)
        buffer("joint_shapedirs", np.einsum("jv,vks->sjk", J_regressor, shapedirs).reshape(num_betas, -1))  # (S, 3J)
        index, weight = sparse_rows(keypoint_regressor(arrays))
        buffer("keypoint_index", index, torch.long)  # (19, N)
        buffer("keypoint_weight", weight)  # (19, N)

    @property
    def dtype(self) -> torch.dtype:
        return self.v_template.dtype

    def extra_repr(self) -> str:
        # Two lines, so that the repr a chapter prints fits its text column.
        return (f"model={self.model_name!r}, vertices={self.num_vertices}, joints={self.num_joints},\n"
                f"num_betas={self.num_betas}, pose_blend_shapes={self.has_pose_blend_shapes}")

    def _as_input(self, name: str, x) -> torch.Tensor:
        """A tensor argument as it is (its dtype and device must be the model's), or an array or nested list
        as a tensor of the model's dtype on its device."""
        if not torch.is_tensor(x):
            try:
                x = torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=self.dtype, device=self.v_template.device)
            except (TypeError, ValueError) as err:
                raise ValueError(f"{name} must be a tensor, a NumPy array or a nested list of numbers, got "
                                 f"{type(x).__name__} ({err})") from err
        self._check_input(name, x)
        return x

    def _check_input(self, name: str, x: torch.Tensor) -> None:
        if x.dtype != self.dtype or x.device != self.v_template.device:
            raise ValueError(
                f"{name} is {x.dtype} on {x.device} but the model is {self.dtype} on {self.v_template.device}; "
                f"move one of them, e.g. model.to({x.dtype}) or {name}.to(model.v_template)"
            )

    def forward(
        self,
        betas: torch.Tensor | None = None,
        pose: torch.Tensor | None = None,
        transl: torch.Tensor | None = None,
    ) -> SMPLOutput:
        """Pose and shape the body.

        Args:
            betas: (B, S) shape coefficients, S ≤ ``num_betas`` (missing ones are zero); None is the mean shape.
            pose: θ as axis-angle (B, 72) or (B, 24, 3), or rotation matrices (B, 24, 3, 3); the first
                joint is the global orientation. None is the rest pose (a T-pose) for a batch of 1 or
                of ``betas``' size.
            transl: (B, 3) translation added to vertices, joints and keypoints; None for none.

        Each may also be a NumPy array or a nested list, taken as the model's dtype on its device; a
        tensor must already be of that dtype and device. B may be 0.

        Returns:
            ``SMPLOutput`` with vertices (B, V, 3), joints (B, J, 3), rotmats (B, J, 3, 3) and
            keypoints (B, 19, 3).

        Raises:
            ValueError: for a pose, betas or transl of the wrong shape, batch size, dtype or device.
        """
        if betas is not None:
            betas = self._as_input("betas", betas)
        if pose is None:
            batch = 1 if betas is None else betas.shape[0]
            eye = torch.eye(3, dtype=self.dtype, device=self.v_template.device)
            rotmats = eye.expand(batch, self.num_joints, 3, 3)
        else:
            pose = self._as_input("pose", pose)
            rotmats = pose_to_rotmats(pose, self.num_joints)  # (B, J, 3, 3)
        batch = rotmats.shape[0]
        if betas is None:
            betas = self.v_template.new_zeros(batch, self.num_betas)
        self._check_input("betas", betas)
        if betas.dim() != 2 or betas.shape[0] != batch or betas.shape[1] > self.num_betas:
            raise ValueError(
                f"betas must have shape (B={batch}, S≤{self.num_betas}), got {tuple(betas.shape)}"
            )
        num_betas = betas.shape[1]

        # Shape and pose blend shapes in one product: T_P = T̄ + [β, R(θ) - I] · [S; P]  (SMPL eq. 6)
        if self.has_pose_blend_shapes:
            coeffs = torch.cat((betas, pose_features(rotmats)), dim=1)  # (B, S + P)
            basis = self.blend_basis if num_betas == self.num_betas else torch.cat(
                (self.blend_basis[:num_betas], self.blend_basis[self.num_betas:]))
        else:
            coeffs, basis = betas, self.blend_basis[:num_betas]
        v_posed = torch.addmm(self.v_template.view(1, -1), coeffs, basis).view(batch, self.num_vertices, 3)  # (B, V, 3)
        rest_joints = torch.addmm(self.joint_template.view(1, -1), betas, self.joint_shapedirs[:num_betas])
        rest_joints = rest_joints.view(batch, self.num_joints, 3)  # (B, J, 3)

        joints, rel_rot, rel_transl = forward_kinematics(rotmats, rest_joints, self.parents)
        vertices = skin_vertices(self.weights, rel_rot, rel_transl, v_posed)  # (B, V, 3)
        # keypoints[b, k] = Σ_n weight[k, n] · vertices[b, index[k, n]]
        keypoints = (vertices[:, self.keypoint_index] * self.keypoint_weight[..., None]).sum(-2)  # (B, 19, 3)
        if transl is not None:
            transl = self._as_input("transl", transl)
            if transl.shape != (batch, 3):
                raise ValueError(f"transl must have shape (B={batch}, 3), got {tuple(transl.shape)}")
            offset = transl[:, None, :]
            vertices, joints, keypoints = vertices + offset, joints + offset, keypoints + offset
        return SMPLOutput(vertices=vertices, joints=joints, rotmats=rotmats, keypoints=keypoints)
