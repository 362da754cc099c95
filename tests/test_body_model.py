import math

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from hmr_core import SMPL, constants
from hmr_core.bench_smpl import make_smplx_model, random_smpl_arrays
from hmr_core.lbs import lbs
from hmr_core.model_files import OPEN_MODEL_PATH, load_model_arrays

from numpy_smpl import smpl as numpy_smpl

needs_open_model = pytest.mark.skipif(not OPEN_MODEL_PATH.exists(), reason="the open body model is not built yet")


def random_inputs(batch, seed, dtype=torch.float32, max_angle=math.pi):
    gen = torch.Generator().manual_seed(seed)
    axis = torch.nn.functional.normalize(torch.randn(batch, 24, 3, generator=gen, dtype=torch.float64), dim=-1)
    pose = (axis * torch.rand(batch, 24, 1, generator=gen, dtype=torch.float64) * max_angle).reshape(batch, 72)
    betas = torch.rand(batch, 10, generator=gen, dtype=torch.float64) * 6 - 3  # β in [-3, 3]
    return betas.to(dtype), pose.to(dtype)


@pytest.fixture(scope="module")
def model_arrays():
    """Two models: random arrays of SMPL's sizes (non-zero pose blend shapes) and the open body model."""
    out = {"smpl_sized": random_smpl_arrays(seed=1)}
    if OPEN_MODEL_PATH.exists():
        out["open"] = {k: v for k, v in load_model_arrays(OPEN_MODEL_PATH).items() if k != "model_name"}
    return out


@pytest.mark.parametrize("which", ["smpl_sized", pytest.param("open", marks=needs_open_model)])
def test_matches_smplx_float32(model_arrays, which, device):
    arrays = model_arrays[which]
    ours = SMPL(arrays=arrays).to(device)
    theirs = make_smplx_model(arrays).to(device)
    for seed in range(3):
        betas, pose = random_inputs(64, seed)
        betas, pose = betas.to(device), pose.to(device)
        with torch.no_grad():
            out = ours(betas=betas, pose=pose)
            ref = theirs(betas=betas, global_orient=pose[:, :3], body_pose=pose[:, 3:])
        assert_close(out.vertices, ref.vertices, atol=1e-5, rtol=0)
        assert_close(out.joints, ref.joints[:, :24], atol=1e-5, rtol=0)


@pytest.mark.parametrize("which", ["smpl_sized", pytest.param("open", marks=needs_open_model)])
def test_matches_numpy_reference_float64(model_arrays, which):
    arrays = model_arrays[which]
    model = SMPL(arrays=arrays, dtype=torch.float64)
    betas, pose = random_inputs(3, seed=7, dtype=torch.float64)
    out = model(betas=betas, pose=pose)
    for b in range(3):
        ref_v, ref_j = numpy_smpl(arrays, betas[b].numpy(), pose[b].reshape(24, 3).numpy())
        assert_close(out.vertices[b], torch.from_numpy(ref_v), atol=1e-10, rtol=0)
        assert_close(out.joints[b], torch.from_numpy(ref_j), atol=1e-10, rtol=0)


def test_fast_path_equals_step_by_step_lbs(model_arrays, device):
    arrays = model_arrays["smpl_sized"]
    model = SMPL(arrays=arrays, dtype=torch.float64).to(device)
    betas, pose = random_inputs(5, seed=3, dtype=torch.float64)
    betas, pose = betas.to(device), pose.to(device)
    out = model(betas=betas, pose=pose)
    verts, joints = lbs(betas, out.rotmats, model.v_template, model.shapedirs, model.posedirs, model.J_regressor,
                        model.parents, model.weights)
    assert_close(out.vertices, verts, atol=1e-12, rtol=0)
    assert_close(out.joints, joints, atol=1e-12, rtol=0)


def test_output_shapes_and_batch_of_one(model_arrays):
    model = SMPL(arrays=model_arrays["smpl_sized"])
    betas, pose = random_inputs(1, seed=0)
    out = model(betas=betas, pose=pose)
    assert out.vertices.shape == (1, 6890, 3)
    assert out.joints.shape == (1, 24, 3)
    assert out.rotmats.shape == (1, 24, 3, 3)
    assert out.keypoints.shape == (1, constants.NUM_KEYPOINTS, 3)


def test_pose_as_rotation_matrices_and_as_axis_angle_agree(model_arrays):
    model = SMPL(arrays=model_arrays["smpl_sized"])
    betas, pose = random_inputs(4, seed=5)
    a = model(betas=betas, pose=pose)
    b = model(betas=betas, pose=a.rotmats)
    c = model(betas=betas, pose=pose.reshape(4, 24, 3))
    assert_close(a.vertices, b.vertices, atol=0, rtol=0)
    assert_close(a.vertices, c.vertices, atol=0, rtol=0)


def test_defaults_are_the_rest_pose_and_mean_shape(model_arrays):
    # The random float32 skinning weights sum to 1 only to float32 precision, hence atol 1e-7.
    arrays = model_arrays["smpl_sized"]
    model = SMPL(arrays=arrays, dtype=torch.float64)
    out = model()
    assert_close(out.vertices[0], torch.as_tensor(arrays["v_template"], dtype=torch.float64), atol=1e-7, rtol=0)
    assert_close(out.joints[0], torch.as_tensor(arrays["J_regressor"] @ arrays["v_template"].astype(np.float64)),
                 atol=1e-12, rtol=0)  # joints come from the template directly, not through the weights


def test_fewer_betas_mean_zeros_for_the_rest(model_arrays):
    model = SMPL(arrays=model_arrays["smpl_sized"], dtype=torch.float64)
    betas, pose = random_inputs(2, seed=9, dtype=torch.float64)
    padded = torch.cat((betas[:, :4], torch.zeros(2, 6, dtype=torch.float64)), 1)
    assert_close(model(betas=betas[:, :4], pose=pose).vertices, model(betas=padded, pose=pose).vertices,
                 atol=1e-12, rtol=0)


def test_translation_moves_everything(model_arrays):
    model = SMPL(arrays=model_arrays["smpl_sized"], dtype=torch.float64)
    betas, pose = random_inputs(2, seed=1, dtype=torch.float64)
    transl = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.0, 0.5]], dtype=torch.float64)
    a, b = model(betas=betas, pose=pose), model(betas=betas, pose=pose, transl=transl)
    for name in ("vertices", "joints", "keypoints"):
        assert_close(getattr(b, name), getattr(a, name) + transl[:, None], atol=1e-12, rtol=0)


def test_keypoints_on_smpl_mesh_default_to_joints_and_vertices(model_arrays):
    model = SMPL(arrays=model_arrays["smpl_sized"], dtype=torch.float64)
    out = model()
    kp = out.keypoints[0]
    names = constants.KEYPOINT_NAMES
    # In the rest pose, the J_regressor rows regress the rest joints (up to the float32 weights' sums).
    assert_close(kp[names.index("left_knee")], out.joints[0, constants.SMPL_JOINT_NAMES.index("left_knee")],
                 atol=1e-7, rtol=0)
    assert_close(kp[names.index("head_top")], out.vertices[0, constants.SMPL_HEAD_TOP_VERTEX_ID], atol=0, rtol=0)
    assert_close(kp[names.index("nose")], out.vertices[0, constants.SMPL_FACE_VERTEX_IDS[0]], atol=0, rtol=0)


def test_gradients_flow_to_pose_and_betas(model_arrays, device):
    model = SMPL(arrays=model_arrays["smpl_sized"]).to(device)
    betas, pose = random_inputs(3, seed=2)
    betas, pose = betas.to(device).requires_grad_(True), pose.to(device).requires_grad_(True)
    out = model(betas=betas, pose=pose)
    (out.vertices.square().sum() + out.keypoints.sum()).backward()
    assert torch.isfinite(pose.grad).all() and pose.grad.abs().sum() > 0
    assert torch.isfinite(betas.grad).all() and betas.grad.abs().sum() > 0


def test_gradcheck_small_batch_float64(model_arrays):
    model = SMPL(arrays=model_arrays["smpl_sized"], dtype=torch.float64)
    betas, pose = random_inputs(1, seed=4, dtype=torch.float64)
    probe = torch.randn(1, 6890, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def f(b, p):
        return (model(betas=b, pose=p).vertices * probe).sum(dim=(1, 2))

    assert torch.autograd.gradcheck(f, (betas.requires_grad_(True), pose.requires_grad_(True)), eps=1e-6, atol=1e-5)


def test_zero_rotation_has_finite_gradient(model_arrays):
    model = SMPL(arrays=model_arrays["smpl_sized"], dtype=torch.float64)
    pose = torch.zeros(1, 72, dtype=torch.float64, requires_grad=True)
    model(pose=pose).vertices.sum().backward()
    assert torch.isfinite(pose.grad).all()


@pytest.mark.parametrize("shape", [(2, 69), (2, 24, 2), (2, 24, 3, 4)])
def test_pose_of_wrong_size_is_rejected(model_arrays, shape):
    model = SMPL(arrays=model_arrays["smpl_sized"])
    with pytest.raises(ValueError, match=r"pose must be .*got \(" + ", ".join(map(str, shape))):
        model(pose=torch.zeros(shape))


def test_betas_of_wrong_size_or_batch_are_rejected(model_arrays):
    model = SMPL(arrays=model_arrays["smpl_sized"])
    with pytest.raises(ValueError, match=r"betas must have shape \(B=2, S≤10\), got \(2, 11\)"):
        model(betas=torch.zeros(2, 11), pose=torch.zeros(2, 72))
    with pytest.raises(ValueError, match=r"got \(3, 10\)"):
        model(betas=torch.zeros(3, 10), pose=torch.zeros(2, 72))
    with pytest.raises(ValueError, match=r"transl must have shape \(B=2, 3\)"):
        model(pose=torch.zeros(2, 72), transl=torch.zeros(2, 2))


def test_dtype_mismatch_says_how_to_fix(model_arrays):
    model = SMPL(arrays=model_arrays["smpl_sized"])
    with pytest.raises(ValueError, match=r"torch.float64.*model.to\(torch.float64\)"):
        model(pose=torch.zeros(1, 72, dtype=torch.float64))


def test_batch_of_zero_gives_empty_outputs(model_arrays):
    model = SMPL(arrays=model_arrays["smpl_sized"])
    num_verts = model.num_vertices
    for kwargs in (dict(pose=torch.zeros(0, 72)), dict(betas=torch.zeros(0, 10)),
                   dict(pose=torch.zeros(0, 24, 3, 3), betas=torch.zeros(0, 10), transl=torch.zeros(0, 3))):
        out = model(**kwargs)
        assert out.vertices.shape == (0, num_verts, 3) and out.joints.shape == (0, 24, 3)
        assert out.rotmats.shape == (0, 24, 3, 3) and out.keypoints.shape == (0, 19, 3)


def test_numpy_arrays_and_lists_are_taken_as_the_models_dtype(model_arrays):
    model = SMPL(arrays=model_arrays["smpl_sized"])
    betas, pose = random_inputs(2, seed=4)
    expected = model(betas=betas, pose=pose).vertices
    for as_input in (lambda t: t.numpy(), lambda t: t.double().numpy(), lambda t: t.tolist()):
        out = model(betas=as_input(betas), pose=as_input(pose), transl=as_input(torch.zeros(2, 3))).vertices
        assert_close(out, expected, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="pose must be a tensor, a NumPy array or a nested list of numbers"):
        model(pose=[["a"] * 72])


def test_float64_model_via_to(model_arrays):
    model = SMPL(arrays=model_arrays["smpl_sized"]).to(torch.float64)
    assert model.dtype == torch.float64
    assert model(pose=torch.zeros(1, 72, dtype=torch.float64)).vertices.dtype == torch.float64


@needs_open_model
def test_default_model_is_the_open_one(monkeypatch):
    monkeypatch.delenv(constants.MODEL_ENV_VAR, raising=False)
    model = SMPL()
    assert "open" in model.model_name
    assert not model.has_pose_blend_shapes
    out = model(pose=torch.zeros(2, 72))
    assert out.keypoints.shape == (2, 19, 3)
