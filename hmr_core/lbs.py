"""SMPL's forward function, one small pure function per step (Loper et al., SIGGRAPH Asia 2015).

    M(β, θ) = W(T_P(β, θ), J(β), θ, 𝒲)                                   (SMPL eq. 1)
    T_P(β, θ) = T̄ + B_S(β) + B_P(θ)                                      (SMPL eq. 6)
    B_S(β) = Σ_n β_n S_n                                                  (SMPL eq. 8)
    B_P(θ) = Σ_n (R_n(θ) - R_n(θ*)) P_n,   θ* the rest pose (R = I)      (SMPL eq. 9)
    J(β) = 𝒥 (T̄ + B_S(β))                                                (SMPL eq. 10)
    t'_i = Σ_k w_{k,i} G'_k(θ, J) t_i                                     (SMPL eq. 2, linear blend skinning)

Letters in shapes: B batch, V vertices, J joints, S shape coefficients, P = 9·(J-1) pose features.
The chapter "The SMPL body model" builds each function from scratch and checks it against these.
"""

from collections.abc import Sequence
from functools import lru_cache

import torch

from hmr_core.rotation import axis_angle_to_matrix


def blend_shapes(betas: torch.Tensor, shapedirs: torch.Tensor) -> torch.Tensor:
    """Shape blend shapes B_S(β) = Σ_n β_n S_n (SMPL eq. 8).

    Args:
        betas: (B, S) shape coefficients.
        shapedirs: (V, 3, S) shape displacement basis.

    Returns:
        (B, V, 3) per-vertex offsets.
    """
    # B_S[b, v, k] = Σ_s betas[b, s] · shapedirs[v, k, s]
    return torch.einsum("bs,vks->bvk", betas, shapedirs)


def pose_features(rotmats: torch.Tensor) -> torch.Tensor:
    """The pose-blend-shape features R_n(θ) - I for every joint but the root (SMPL eq. 9).

    Args:
        rotmats: (B, J, 3, 3) per-joint rotation matrices.

    Returns:
        (B, 9·(J-1)) features, zero in the rest pose.
    """
    eye = torch.eye(3, dtype=rotmats.dtype, device=rotmats.device)
    return (rotmats[:, 1:] - eye).flatten(1)  # (B, J-1, 3, 3) -> (B, 9·(J-1))


def pose_blend_shapes(rotmats: torch.Tensor, posedirs: torch.Tensor) -> torch.Tensor:
    """Pose blend shapes B_P(θ) = Σ_n (R_n(θ) - I) P_n (SMPL eq. 9).

    Args:
        rotmats: (B, J, 3, 3) per-joint rotation matrices.
        posedirs: (V, 3, P) pose displacement basis, P = 9·(J-1).

    Returns:
        (B, V, 3) per-vertex offsets.
    """
    # B_P[b, v, k] = Σ_p features[b, p] · posedirs[v, k, p]
    return torch.einsum("bp,vkp->bvk", pose_features(rotmats), posedirs)


def vertices_to_joints(regressor: torch.Tensor, vertices: torch.Tensor) -> torch.Tensor:
    """Regress joints (or keypoints) as fixed linear combinations of vertices (SMPL eq. 10).

    Args:
        regressor: (J, V) regression matrix 𝒥.
        vertices: (B, V, 3) vertices.

    Returns:
        (B, J, 3) joints.
    """
    # joints[b, j, k] = Σ_v regressor[j, v] · vertices[b, v, k]
    return torch.einsum("jv,bvk->bjk", regressor, vertices)


@lru_cache(maxsize=16)
def kinematic_levels(parents: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """Group the joints of a kinematic tree by depth, so each depth is one batched product.

    Args:
        parents: parent index of each joint; the root has -1 and every parent precedes its children.

    Returns:
        Joint indices per depth, the root first. SMPL's 24 joints have 9 depths.

    Raises:
        ValueError: if the tree has not exactly one root at index 0 or a parent follows its child.
    """
    if not parents or parents[0] != -1 or any(p == -1 for p in parents[1:]):
        raise ValueError(f"kinematic tree must have exactly one root at index 0, got parents {parents}")
    depth = [0] * len(parents)
    for j, p in enumerate(parents[1:], start=1):
        if not 0 <= p < j:
            raise ValueError(f"joint {j} has parent {p}; parents must precede their children")
        depth[j] = depth[p] + 1
    return tuple(tuple(j for j in range(len(parents)) if depth[j] == d) for d in range(max(depth) + 1))


@lru_cache(maxsize=32)
def _kinematic_plan(parents: tuple[int, ...], device: torch.device):
    """Index tensors for ``forward_kinematics``, made once per tree and device (no host copies per call)."""
    levels = kinematic_levels(parents)
    plan = []
    for depth, level in enumerate(levels):
        prev = levels[depth - 1] if depth else ()
        plan.append((
            torch.tensor(level, device=device),  # joints of this level
            torch.tensor([prev.index(parents[j]) for j in level] if depth else [], dtype=torch.long, device=device),
            torch.tensor([parents[j] for j in level] if depth else [], dtype=torch.long, device=device),
        ))
    level_order = [j for level in levels for j in level]
    back = torch.tensor([level_order.index(j) for j in range(len(parents))], device=device)
    return plan, back


def forward_kinematics(
    rotmats: torch.Tensor, joints: torch.Tensor, parents: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward kinematics along the tree, and the transforms used for skinning.

    Each joint's world transform is its parent's composed with its own rotation
    about its rest position: G_k = G_parent(k) · [R_k | J_k - J_parent(k)]
    (SMPL eq. 3). Skinning needs the transform from the rest pose,
    G'_k = G_k · [I | -J_k] (SMPL eq. 4). All joints of one depth are composed
    in one batched product, so SMPL needs 8 sequential steps rather than 23.

    Args:
        rotmats: (B, J, 3, 3) local joint rotations.
        joints: (B, J, 3) rest-pose joint locations J(β).
        parents: (J,) parent of each joint, -1 for the root.

    Returns:
        A tuple ``(posed_joints, rel_rotmats, rel_transl)``: posed_joints
        (B, J, 3) world joint locations; rel_rotmats (B, J, 3, 3) and
        rel_transl (B, J, 3), the rotation and translation of G'_k, which
        moves a rest-pose point rigidly with joint k.
    """
    plan, back = _kinematic_plan(tuple(int(p) for p in parents), joints.device)
    world_rot: list[torch.Tensor] = []  # per level, (B, n_level, 3, 3)
    world_pos: list[torch.Tensor] = []  # per level, (B, n_level, 3)
    for depth, (level, parent_slot, parent) in enumerate(plan):
        local_rot = rotmats[:, level]  # (B, n, 3, 3)
        if depth == 0:
            rot, pos = local_rot, joints[:, level]
        else:
            par_rot = world_rot[-1][:, parent_slot]
            par_pos = world_pos[-1][:, parent_slot]
            # (B, n, 3) bone vectors in the rest pose
            bone = joints[:, level] - joints[:, parent]
            rot = par_rot @ local_rot
            pos = (par_rot @ bone[..., None])[..., 0] + par_pos
        world_rot.append(rot)
        world_pos.append(pos)
    # Back from level order to joint order.
    rot = torch.cat(world_rot, dim=1)[:, back]  # (B, J, 3, 3)
    posed_joints = torch.cat(world_pos, dim=1)[:, back]  # (B, J, 3)
    # t of G_k · [I | -J_k]
    rel_transl = posed_joints - (rot @ joints[..., None])[..., 0]
    return posed_joints, rot, rel_transl


# On the CPU, temporaries above ~32 MB are fresh memory maps from the system allocator, and filling
# their pages costs more than the arithmetic. Skinning therefore works through the batch in chunks whose
# (chunk, V, 12) blended transforms stay well below that, and recomputes them in the backward pass
# instead of keeping them. GPUs have a caching allocator and take the whole batch at once.
_SKINNING_CHUNK_BYTES = 4 * 2**20


class _LinearBlendSkinning(torch.autograd.Function):
    """t'_i = Σ_k w_{k,i} (R_k t_i + τ_k), with a hand-written backward that needs no (B, V, 12) buffers.

    Inside, the blended transforms are kept planar, (b, 12, V), so each of the 12 numbers is a
    contiguous row over the vertices and every step is a long vectorised operation.
    """

    @staticmethod
    def forward(ctx, weights, transforms, vertices):
        # weights (V, J), transforms (B, J, 12) = [R_k row-major | τ_k], vertices (B, V, 3)
        ctx.save_for_backward(weights, transforms, vertices)
        weights_t = weights.T.contiguous()  # (J, V)
        out = torch.empty_like(vertices)
        for rows in _batch_chunks(vertices):
            blended = torch.matmul(transforms[rows].transpose(1, 2), weights_t)  # (b, 12, J) @ (J, V) -> (b, 12, V)
            v = vertices[rows].transpose(1, 2)  # (b, 3, V)
            # out_i = τ_i + Σ_k R_ik v_k; blended[:, k::3] holds R_0k, R_1k, R_2k
            acc = torch.addcmul(blended[:, 9:], blended[:, 0:9:3], v[:, 0:1])
            acc.addcmul_(blended[:, 1:9:3], v[:, 1:2]).addcmul_(blended[:, 2:9:3], v[:, 2:3])
            out[rows] = acc.transpose(1, 2)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        weights, transforms, vertices = ctx.saved_tensors
        if ctx.needs_input_grad[0]:
            raise NotImplementedError("skin_vertices does not differentiate with respect to the skinning weights")
        weights_t = weights.T.contiguous()  # (J, V)
        grad_transforms = torch.empty_like(transforms) if ctx.needs_input_grad[1] else None
        grad_vertices = torch.empty_like(vertices) if ctx.needs_input_grad[2] else None
        for rows in _batch_chunks(vertices):
            g = grad_out[rows].transpose(1, 2)  # (b, 3, V)
            if grad_vertices is not None:
                blended = torch.matmul(transforms[rows].transpose(1, 2), weights_t)  # (b, 12, V), recomputed
                # ∂out_i/∂v_k = R_ik, so grad_v = Σ_i g_i · (R_i0, R_i1, R_i2)
                acc = blended[:, 0:3] * g[:, 0:1]
                acc.addcmul_(blended[:, 3:6], g[:, 1:2]).addcmul_(blended[:, 6:9], g[:, 2:3])
                grad_vertices[rows] = acc.transpose(1, 2)
            if grad_transforms is not None:
                # ∂out_i/∂R_ik = v_k and ∂out_i/∂τ_i = 1, then back through the blend with Wᵀ
                v = vertices[rows].transpose(1, 2)  # (b, 3, V)
                grad_blended = torch.empty(g.shape[0], 4, 3, g.shape[2], dtype=g.dtype, device=g.device)
                torch.mul(g[:, :, None], v[:, None], out=grad_blended[:, :3])  # (b, 3, 3, V): g_i v_k
                grad_blended[:, 3] = g
                grad = torch.matmul(grad_blended.view(g.shape[0], 12, -1), weights)  # (b, 12, V) @ (V, J)
                grad_transforms[rows] = grad.transpose(1, 2)
        return None, grad_transforms, grad_vertices


def _batch_chunks(vertices: torch.Tensor) -> list[slice]:
    """Slices of the batch for ``_LinearBlendSkinning``: all of it on a GPU, small pieces on the CPU."""
    batch, num_verts = vertices.shape[:2]
    if vertices.device.type != "cpu":
        return [slice(0, batch)]
    per_sample = num_verts * 12 * vertices.element_size()
    size = max(1, _SKINNING_CHUNK_BYTES // per_sample)
    return [slice(i, min(i + size, batch)) for i in range(0, batch, size)]


def skin_vertices(
    weights: torch.Tensor, rel_rotmats: torch.Tensor, rel_transl: torch.Tensor, vertices: torch.Tensor
) -> torch.Tensor:
    """Linear blend skinning: t'_i = Σ_k w_{k,i} G'_k t_i (SMPL eq. 2).

    The per-joint transforms are blended first (one matrix product), then applied once per vertex:
    the same as ``(weights @ G').apply(t)`` written out, without materialising (B, V, 4, 4) matrices.

    Args:
        weights: (V, J) skinning weights, rows summing to 1.
        rel_rotmats: (B, J, 3, 3) rotations of the rest-to-posed transforms G'_k.
        rel_transl: (B, J, 3) translations of G'_k.
        vertices: (B, V, 3) rest-pose vertices T_P(β, θ).

    Returns:
        (B, V, 3) posed vertices.
    """
    batch, num_joints = rel_rotmats.shape[:2]
    transforms = torch.cat((rel_rotmats.reshape(batch, num_joints, 9), rel_transl), dim=-1)  # (B, J, 12)
    return _LinearBlendSkinning.apply(weights, transforms, vertices)


def lbs(
    betas: torch.Tensor,
    rotmats: torch.Tensor,
    v_template: torch.Tensor,
    shapedirs: torch.Tensor,
    posedirs: torch.Tensor,
    J_regressor: torch.Tensor,
    parents: Sequence[int],
    weights: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole SMPL function M(β, θ), step by step as in the paper (SMPL eqs. 1-10).

    This is the reference composition of the functions above. ``hmr_core.body_model.SMPL`` computes
    the same thing faster by folding 𝒥 into the shape basis and fusing the two blend-shape products.

    Args:
        betas: (B, S) shape coefficients.
        rotmats: (B, J, 3, 3) local joint rotations (the first is the global orientation).
        v_template: (V, 3) mean template T̄.
        shapedirs: (V, 3, S) shape basis.
        posedirs: (V, 3, 9·(J-1)) pose basis.
        J_regressor: (J, V) joint regressor 𝒥.
        parents: (J,) kinematic tree.
        weights: (V, J) skinning weights 𝒲.

    Returns:
        ``(vertices, joints)``: (B, V, 3) posed vertices and (B, J, 3) posed joints.
    """
    v_shaped = v_template + blend_shapes(betas, shapedirs)  # (B, V, 3)
    rest_joints = vertices_to_joints(J_regressor, v_shaped)  # (B, J, 3)
    v_posed = v_shaped + pose_blend_shapes(rotmats, posedirs)  # (B, V, 3)
    joints, rel_rot, rel_transl = forward_kinematics(rotmats, rest_joints, parents)
    return skin_vertices(weights, rel_rot, rel_transl, v_posed), joints


def pose_to_rotmats(pose: torch.Tensor, num_joints: int) -> torch.Tensor:
    """Accept θ as axis-angle (B, 3J) or (B, J, 3), or as rotation matrices (B, J, 3, 3).

    Args:
        pose: the pose in one of the three layouts.
        num_joints: J, the number of joints the model has.

    Returns:
        (B, J, 3, 3) rotation matrices.

    Raises:
        ValueError: for any other shape.
    """
    shape = tuple(pose.shape)
    if pose.dim() == 2 and shape[1] == 3 * num_joints:
        return axis_angle_to_matrix(pose.reshape(shape[0], num_joints, 3))
    if pose.dim() == 3 and shape[1:] == (num_joints, 3):
        return axis_angle_to_matrix(pose)
    if pose.dim() == 4 and shape[1:] == (num_joints, 3, 3):
        return pose
    raise ValueError(
        f"pose must be axis-angle of shape (B, {3 * num_joints}) or (B, {num_joints}, 3), or rotation "
        f"matrices of shape (B, {num_joints}, 3, 3); got {shape}"
    )
