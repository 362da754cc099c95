import math

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from hmr_core import constants
from hmr_core.lbs import (
    blend_shapes,
    forward_kinematics,
    kinematic_levels,
    lbs,
    pose_blend_shapes,
    pose_features,
    pose_to_rotmats,
    skin_vertices,
    vertices_to_joints,
)
from hmr_core.rotation import axis_angle_to_matrix

from numpy_smpl import smpl as numpy_smpl


def tensors(arrays, dtype=torch.float64, device="cpu"):
    keys = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights")
    return {k: torch.as_tensor(np.asarray(arrays[k]), dtype=dtype, device=device) for k in keys}


def random_pose(batch, max_angle=math.pi, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    axis = torch.nn.functional.normalize(torch.randn(batch, 24, 3, generator=gen, dtype=dtype), dim=-1)
    return axis * torch.rand(batch, 24, 1, generator=gen, dtype=dtype) * max_angle


def test_kinematic_levels_of_smpl():
    levels = kinematic_levels(constants.SMPL_PARENTS)
    assert levels[0] == (0,)
    assert len(levels) == 9  # pelvis … hands
    assert sorted(j for level in levels for j in level) == list(range(24))
    depth = {j: d for d, level in enumerate(levels) for j in level}
    assert all(depth[j] == depth[p] + 1 for j, p in enumerate(constants.SMPL_PARENTS) if p >= 0)


@pytest.mark.parametrize("parents", [(0, 0), (-1, 2, 0), (-1, -1)])
def test_kinematic_levels_rejects_bad_trees(parents):
    with pytest.raises(ValueError, match="parent|root"):
        kinematic_levels(parents)


def test_blend_shapes_is_linear_and_zero_at_zero(smpl_sized_arrays):
    t = tensors(smpl_sized_arrays)
    betas = torch.randn(3, 10, dtype=torch.float64)
    assert_close(blend_shapes(torch.zeros(1, 10, dtype=torch.float64), t["shapedirs"]),
                 torch.zeros(1, 6890, 3, dtype=torch.float64), atol=0, rtol=0)
    assert_close(blend_shapes(2 * betas, t["shapedirs"]), 2 * blend_shapes(betas, t["shapedirs"]), atol=1e-12, rtol=0)
    one_hot = torch.zeros(1, 10, dtype=torch.float64)
    one_hot[0, 4] = 1
    assert_close(blend_shapes(one_hot, t["shapedirs"])[0], t["shapedirs"][..., 4], atol=0, rtol=0)


def test_pose_features_zero_in_rest_pose():
    rest = torch.eye(3, dtype=torch.float64).expand(2, 24, 3, 3)
    feats = pose_features(rest)
    assert feats.shape == (2, constants.NUM_POSE_BLEND)
    assert feats.abs().max() == 0


def test_forward_kinematics_single_joint_rotation():
    # Rotate only the left elbow: the wrist and hand swing about the elbow, nothing else moves.
    rest = torch.randn(1, 24, 3, dtype=torch.float64)
    aa = torch.zeros(1, 24, 3, dtype=torch.float64)
    aa[0, 18] = torch.tensor([0.0, 0.0, math.pi / 2], dtype=torch.float64)
    joints, rot, transl = forward_kinematics(axis_angle_to_matrix(aa), rest, constants.SMPL_PARENTS)
    moved = [20, 22]
    still = [j for j in range(24) if j not in moved]
    assert_close(joints[0, still], rest[0, still], atol=1e-12, rtol=0)
    R = axis_angle_to_matrix(aa[0, 18])
    for j in moved:
        assert_close(joints[0, j], rest[0, 18] + R @ (rest[0, j] - rest[0, 18]), atol=1e-12, rtol=0)
    # G'_k maps each rest joint to its posed place.
    assert_close((rot @ rest[..., None])[..., 0] + transl, joints, atol=1e-12, rtol=0)


def test_skin_vertices_rigid_when_one_joint():
    # With all weight on one joint, skinning is that joint's rigid motion.
    V = 50
    weights = torch.zeros(V, 24, dtype=torch.float64)
    weights[:, 5] = 1
    rot = axis_angle_to_matrix(torch.randn(2, 24, 3, dtype=torch.float64))
    transl = torch.randn(2, 24, 3, dtype=torch.float64)
    verts = torch.randn(2, V, 3, dtype=torch.float64)
    out = skin_vertices(weights, rot, transl, verts)
    expected = (rot[:, 5, None] @ verts[..., None])[..., 0] + transl[:, 5, None]
    assert_close(out, expected, atol=1e-12, rtol=0)


def test_skin_vertices_gradients_match_plain_autograd():
    # The hand-written backward equals autograd on the textbook formula.
    gen = torch.Generator().manual_seed(0)
    V = 300
    weights = torch.rand(V, 24, generator=gen, dtype=torch.float64)
    weights /= weights.sum(1, keepdim=True)
    rot = axis_angle_to_matrix(torch.randn(3, 24, 3, generator=gen, dtype=torch.float64)).requires_grad_(True)
    transl = torch.randn(3, 24, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    verts = torch.randn(3, V, 3, generator=gen, dtype=torch.float64, requires_grad=True)

    def textbook(rot, transl, verts):
        G = torch.cat((torch.cat((rot, transl[..., None]), -1),
                       torch.tensor([0, 0, 0, 1.0], dtype=torch.float64).expand(3, 24, 1, 4)), -2)  # (B, J, 4, 4)
        T = torch.einsum("vj,bjkl->bvkl", weights, G)
        v_h = torch.cat((verts, torch.ones(3, V, 1, dtype=torch.float64)), -1)
        return torch.einsum("bvkl,bvl->bvk", T, v_h)[..., :3]

    assert_close(skin_vertices(weights, rot, transl, verts), textbook(rot, transl, verts), atol=1e-12, rtol=0)
    probe = torch.randn(3, V, 3, generator=gen, dtype=torch.float64)
    ours = torch.autograd.grad((skin_vertices(weights, rot, transl, verts) * probe).sum(), (rot, transl, verts))
    ref = torch.autograd.grad((textbook(rot, transl, verts) * probe).sum(), (rot, transl, verts))
    for a, b in zip(ours, ref):
        assert_close(a, b, atol=1e-12, rtol=0)
    assert torch.autograd.gradcheck(lambda r, t, v: skin_vertices(weights, r, t, v), (rot[:1], transl[:1], verts[:1]))


def test_skin_vertices_chunked_batch_matches_one_at_a_time(smpl_sized_arrays):
    # A batch large enough to be split into several chunks on the CPU.
    t = tensors(smpl_sized_arrays, dtype=torch.float32)
    rot = axis_angle_to_matrix(torch.randn(40, 24, 3))
    transl = torch.randn(40, 24, 3)
    verts = torch.randn(40, 6890, 3)
    batched = skin_vertices(t["weights"], rot, transl, verts)
    single = torch.cat([skin_vertices(t["weights"], rot[i:i + 1], transl[i:i + 1], verts[i:i + 1]) for i in range(40)])
    assert_close(batched, single, atol=1e-6, rtol=0)


@pytest.mark.parametrize("max_angle", [0.0, 1.0, math.pi])
def test_lbs_matches_numpy_reference(smpl_sized_arrays, max_angle):
    t = tensors(smpl_sized_arrays)
    pose = random_pose(3, max_angle=max_angle, seed=2)
    betas = torch.empty(3, 10, dtype=torch.float64).uniform_(-3, 3, generator=torch.Generator().manual_seed(3))
    verts, joints = lbs(betas, axis_angle_to_matrix(pose), t["v_template"], t["shapedirs"], t["posedirs"],
                        t["J_regressor"], constants.SMPL_PARENTS, t["weights"])
    for b in range(3):
        ref_v, ref_j = numpy_smpl(smpl_sized_arrays, betas[b].numpy(), pose[b].numpy())
        assert_close(verts[b], torch.from_numpy(ref_v), atol=1e-10, rtol=0)
        assert_close(joints[b], torch.from_numpy(ref_j), atol=1e-10, rtol=0)


def test_pose_blend_shapes_match_definition(smpl_sized_arrays):
    t = tensors(smpl_sized_arrays)
    rot = axis_angle_to_matrix(random_pose(2))
    expected = torch.einsum("vkp,bp->bvk", t["posedirs"], (rot[:, 1:] - torch.eye(3, dtype=torch.float64)).reshape(2, -1))
    assert_close(pose_blend_shapes(rot, t["posedirs"]), expected, atol=1e-12, rtol=0)


def test_vertices_to_joints_is_the_matrix_product(smpl_sized_arrays):
    t = tensors(smpl_sized_arrays)
    verts = torch.randn(2, 6890, 3, dtype=torch.float64)
    assert_close(vertices_to_joints(t["J_regressor"], verts), t["J_regressor"] @ verts, atol=1e-12, rtol=0)


def test_pose_layouts_agree():
    aa = random_pose(4, dtype=torch.float32)
    R = pose_to_rotmats(aa, 24)
    assert_close(pose_to_rotmats(aa.reshape(4, 72), 24), R, atol=0, rtol=0)
    assert pose_to_rotmats(R, 24) is R


@pytest.mark.parametrize("shape", [(4, 69), (4, 24, 4), (4, 23, 3, 3), (72,)])
def test_pose_of_wrong_size_is_named(shape):
    with pytest.raises(ValueError, match=r"\(B, 72\).*" + re_shape(shape)):
        pose_to_rotmats(torch.zeros(shape), 24)


def re_shape(shape):
    return r"\(" + r", ".join(str(s) for s in shape) + (r",\)" if len(shape) == 1 else r"\)")
