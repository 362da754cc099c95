import math

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from hmr_core import constants, pose_prior, self_contact
from hmr_core.archetypes import ARCHETYPES
from hmr_core.augment import flip_pose
from hmr_core.body_model import SMPL
from hmr_core.joint_limits import (
    JOINT_LIMITS,
    anatomical_frames,
    anatomical_to_pose,
    anatomical_to_rotmat,
    clamp_to_limits,
    inside_polygon,
    joint_limit_table,
    joint_limit_violations,
    nearest_on_polygon,
    pose_to_anatomical,
    rotmat_to_anatomical,
    within_limits,
)
from hmr_core.lbs import forward_kinematics
from hmr_core.model_files import OPEN_MODEL_PATH
from hmr_core.pose_pool import PosePoolError, load_pose_pool
from hmr_core.pose_prior import PosePriorConfig, sample_poses
from hmr_core.rotation import axis_angle_to_matrix
from hmr_core.self_contact import body_capsules, segment_distance, self_penetration

needs_open_model = pytest.mark.skipif(not OPEN_MODEL_PATH.is_file(), reason="the open body model file is not built yet")
J = {name: j for j, name in enumerate(constants.SMPL_JOINT_NAMES)}


def one_joint_pose(joint: str, angles_deg) -> torch.Tensor:
    """θ (1, 72) with one joint set from anatomical angles (degrees), everything else at rest."""
    angles = torch.zeros(1, 24, 3, dtype=torch.float64)
    angles[0, J[joint]] = torch.deg2rad(torch.tensor(angles_deg, dtype=torch.float64))
    return anatomical_to_pose(angles)


def template_joints(pose: torch.Tensor) -> torch.Tensor:
    rest = torch.tensor(constants.TEMPLATE_REST_JOINTS, dtype=torch.float64)[None].expand(pose.shape[0], -1, -1)
    rotmats = axis_angle_to_matrix(pose.reshape(-1, 24, 3))
    return forward_kinematics(rotmats, rest, constants.SMPL_PARENTS)[0]


@pytest.fixture(scope="module")
def capsules():
    """Capsules of the open model when it is built, else of the template skeleton."""
    return self_contact.default_capsules()


# --------------------------------------------------------------------------------------------------
# Frames and coordinates
# --------------------------------------------------------------------------------------------------
def test_frames_are_rotations_and_the_right_side_mirrors_the_left():
    frames = anatomical_frames(torch.float64)
    assert_close(frames @ frames.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(24, 3, 3), atol=1e-12, rtol=0)
    assert_close(torch.linalg.det(frames), torch.ones(24, dtype=torch.float64), atol=1e-12, rtol=0)
    table = joint_limit_table()
    assert table[0] is None and all(limit is not None for limit in table[1:])
    for j, k in enumerate(constants.SMPL_FLIP_PERMUTATION):
        if j != k:
            assert_close(frames[k], frames[j] * torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64), atol=0, rtol=0)


def test_central_joints_have_symmetric_limits():
    """Lateral flexion and rotation of the spine, neck and head must allow as much to the left as to the right."""
    for limit in JOINT_LIMITS:
        if limit.joint in J:  # central joints
            swing = np.array(limit.swing)
            mirrored = swing * [1, -1]
            assert {tuple(p) for p in swing.tolist()} == {tuple(p) for p in mirrored.tolist()}, limit.joint
            assert limit.twist[0] == -limit.twist[1], limit.joint


def test_anatomical_round_trip():
    gen = torch.Generator().manual_seed(0)
    angles = (torch.rand(200, 24, 3, generator=gen, dtype=torch.float64) * 2 - 1) * 2.0  # swings and twists < 180°
    assert_close(rotmat_to_anatomical(anatomical_to_rotmat(angles)), angles, atol=1e-10, rtol=0)
    pose = anatomical_to_pose(angles)
    assert_close(anatomical_to_pose(pose_to_anatomical(pose)), pose, atol=1e-10, rtol=0)


def test_single_axis_movement_is_a_plain_rotation():
    """90° of left-hip flexion is a rotation of -90° about x (SMPL's T-pose frame)."""
    pose = one_joint_pose("left_hip", [90.0, 0.0, 0.0]).reshape(24, 3)
    assert_close(pose[J["left_hip"]], torch.tensor([-math.pi / 2, 0.0, 0.0], dtype=torch.float64), atol=1e-12, rtol=0)


@pytest.mark.parametrize("joint, angles, moved, axis, sign", [
    ("left_hip", [60, 0, 0], "left_knee", 2, +1),  # hip flexion: the knee comes forward
    ("right_hip", [60, 0, 0], "right_knee", 2, +1),
    ("left_hip", [0, 30, 0], "left_knee", 0, +1),  # abduction: the left knee goes out to +x
    ("right_hip", [0, 30, 0], "right_knee", 0, -1),
    ("left_knee", [90, 0, 0], "left_ankle", 2, -1),  # knee flexion: the foot goes back
    ("left_ankle", [20, 0, 0], "left_foot", 1, +1),  # dorsiflexion: the toes go up
    ("spine1", [20, 0, 0], "neck", 2, +1),  # trunk flexion: forward
    ("spine2", [0, 10, 0], "neck", 0, -1),  # right lateral flexion: towards -x (the subject's right)
    ("neck", [20, 0, 0], "head", 2, +1),
    ("left_shoulder", [40, 0, 0], "left_elbow", 1, +1),  # elevation: the arm goes up
    ("left_shoulder", [0, 60, 0], "left_elbow", 2, +1),  # horizontal flexion: forward
    ("right_shoulder", [0, 60, 0], "right_elbow", 2, +1),
    ("left_elbow", [90, 0, 0], "left_wrist", 2, +1),  # elbow flexion: the hand comes forward
    ("right_elbow", [90, 0, 0], "right_wrist", 2, +1),
    ("left_wrist", [60, 0, 0], "left_hand", 1, -1),  # wrist flexion: towards the palm, down in the T-pose
])
def test_anatomical_directions_move_the_skeleton_as_named(joint, angles, moved, axis, sign):
    rest = template_joints(torch.zeros(1, 72, dtype=torch.float64))[0]
    posed = template_joints(one_joint_pose(joint, angles))[0]
    delta = posed[J[moved], axis] - rest[J[moved], axis]
    assert sign * delta > 0.02, (joint, angles, moved, float(delta))


@needs_open_model
def test_elbow_flexion_on_the_open_model_brings_the_hand_to_the_shoulder():
    model = SMPL(dtype=torch.float64)
    out = model(pose=one_joint_pose("left_elbow", [150.0, 0.0, 0.0]))
    wrist, shoulder = out.joints[0, J["left_wrist"]], out.joints[0, J["left_shoulder"]]
    assert wrist[2] > shoulder[2]  # in front
    assert (wrist - shoulder).norm() < 0.2


# --------------------------------------------------------------------------------------------------
# Limits
# --------------------------------------------------------------------------------------------------
def test_polygon_helpers_on_a_square():
    square = torch.tensor([[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]])
    points = torch.tensor([[1.0, 1.0], [3.0, 1.0], [-1.0, -1.0], [1.0, 2.5]])
    assert inside_polygon(points, square).tolist() == [True, False, False, False]
    assert_close(nearest_on_polygon(points, square), torch.tensor([[1.0, 0.0], [2.0, 1.0], [0.0, 0.0], [1.0, 2.0]]),
                 atol=1e-6, rtol=0)


def test_rest_pose_is_inside_and_extremes_are_outside():
    assert joint_limit_violations(torch.zeros(3, 72)).tolist() == [0.0, 0.0, 0.0]
    knee_170 = one_joint_pose("left_knee", [170.0, 0.0, 0.0])
    knee_back = one_joint_pose("right_knee", [-30.0, 0.0, 0.0])
    elbow_side = one_joint_pose("left_elbow", [0.0, 60.0, 0.0])  # an elbow does not bend sideways
    head_turn = one_joint_pose("head", [0.0, 0.0, 80.0])
    pose = torch.cat((knee_170, knee_back, elbow_side, head_turn))
    assert_close(joint_limit_violations(pose), torch.full((4,), 1 / 23, dtype=torch.float64), atol=1e-12, rtol=0)
    # The root is the global orientation: no limit.
    root = torch.zeros(1, 72, dtype=torch.float64)
    root[0, :3] = torch.tensor([3.0, 0.0, 0.0])
    assert joint_limit_violations(root).item() == 0
    with pytest.raises(ValueError, match=r"\(B, 72\)"):
        joint_limit_violations(torch.zeros(2, 69))


def test_clamping_lands_inside_and_keeps_inside_poses():
    gen = torch.Generator().manual_seed(1)
    wild = (torch.rand(500, 24, 3, generator=gen, dtype=torch.float64) * 2 - 1) * 2.5
    clamped = clamp_to_limits(wild)
    assert within_limits(clamped).all()
    assert within_limits(rotmat_to_anatomical(anatomical_to_rotmat(clamped))).all()
    assert_close(clamp_to_limits(clamped), clamped, atol=1e-12, rtol=0)
    assert_close(clamped[:, 0], wild[:, 0], atol=0, rtol=0)  # the root is left alone


def test_violations_are_mirror_invariant():
    gen = torch.Generator().manual_seed(2)
    pose = (torch.rand(300, 72, generator=gen, dtype=torch.float64) * 2 - 1) * 1.2
    assert_close(joint_limit_violations(flip_pose(pose)), joint_limit_violations(pose), atol=1e-12, rtol=0)


# --------------------------------------------------------------------------------------------------
# Capsules
# --------------------------------------------------------------------------------------------------
def test_segment_distance_known_values_and_brute_force():
    z = torch.zeros(3, dtype=torch.float64)
    x, y = torch.tensor([1.0, 0, 0], dtype=torch.float64), torch.tensor([0, 1.0, 0], dtype=torch.float64)
    up = torch.tensor([0, 0, 1.0], dtype=torch.float64)
    one = torch.tensor(1.0, dtype=torch.float64)
    assert_close(segment_distance(z, x, up + y * 0.5, up + x), one, atol=1e-12, rtol=0)
    assert_close(segment_distance(z, x, z + y, x + y), one, atol=1e-12, rtol=0)  # parallel
    assert_close(segment_distance(z, x, 2 * x, 3 * x), one, atol=1e-12, rtol=0)  # collinear
    gen = torch.Generator().manual_seed(3)
    p0, p1, q0, q1 = torch.randn(4, 200, 3, generator=gen, dtype=torch.float64)
    t = torch.linspace(0, 1, 401, dtype=torch.float64)
    a = p0[:, None] + t[None, :, None] * (p1 - p0)[:, None]  # (200, 401, 3)
    b = q0[:, None] + t[None, :, None] * (q1 - q0)[:, None]
    brute = torch.cdist(a, b).amin((1, 2))
    exact = segment_distance(p0, p1, q0, q1)
    assert (exact <= brute + 1e-12).all() and (brute - exact).max() < 0.02


def test_template_capsules_fall_back_to_joint_positions():
    capsules = body_capsules(None)
    assert capsules.radii_from == "joints"
    assert capsules.radius.shape == (len(self_contact.CAPSULES),) and (capsules.radius > 0).all()
    assert not self_penetration(torch.zeros(1, 72), capsules).any()


@needs_open_model
def test_mesh_capsules_have_body_sized_radii():
    capsules = body_capsules(SMPL())
    assert capsules.radii_from == "mesh"
    radius = {spec.name: float(r) for spec, r in zip(self_contact.CAPSULES, capsules.radius)}
    assert 0.03 < radius["left_thigh"] < 0.1 and 0.01 < radius["left_forearm"] < 0.05
    assert 0.04 < radius["head"] < 0.12 and 0.04 < radius["chest"] < 0.2
    assert radius["left_thigh"] == pytest.approx(radius["right_thigh"], abs=1e-3)


def test_crossed_legs_and_arm_through_the_body_penetrate(capsules):
    standing = torch.zeros(1, 24, 3, dtype=torch.float64)
    standing[0, J["left_shoulder"]] = torch.deg2rad(torch.tensor([-75.0, 0.0, 0.0], dtype=torch.float64))
    standing[0, J["right_shoulder"]] = standing[0, J["left_shoulder"]]
    crossed = standing.clone()
    crossed[0, J["left_hip"]] = torch.deg2rad(torch.tensor([0.0, -30.0, 0.0], dtype=torch.float64))
    crossed[0, J["right_hip"]] = crossed[0, J["left_hip"]]
    # The left arm hanging, turned inwards, the elbow bent 90°: the forearm goes through the belly.
    through = standing.clone()
    through[0, J["left_shoulder"]] = torch.deg2rad(torch.tensor([-90.0, 0.0, 90.0], dtype=torch.float64))
    through[0, J["left_elbow"]] = torch.deg2rad(torch.tensor([90.0, 0.0, 0.0], dtype=torch.float64))
    pose = anatomical_to_pose(torch.cat((standing, crossed, through)))
    hits = self_penetration(pose, capsules)
    assert hits.tolist() == [False, True, True]


# --------------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pool(capsules):
    return sample_poses(1500, torch.Generator().manual_seed(0), capsules=capsules)


def test_samples_are_plausible(pool, capsules):
    assert pool.pose.shape == (1500, 72) and pool.pose.dtype == torch.float32
    assert pool.global_orient.shape == (1500, 3) and pool.archetype.shape == (1500,)
    assert (pool.pose[:, :3] == 0).all()  # the prior leaves the global orientation to global_orient
    assert torch.isfinite(pool.pose).all()
    assert joint_limit_violations(pool.pose.double(), tolerance_deg=0.5).max() == 0
    assert not self_penetration(pool.pose.double(), capsules).any()
    assert 0 < pool.rejection_rate < 0.5
    assert pool.num_drawn - pool.num_rejected >= 1500
    full = pool.pose_with_global_orient()
    assert_close(full[:, :3], pool.global_orient) and (full[:, 3:] == pool.pose[:, 3:]).all()
    # Every archetype is drawn.
    assert set(pool.archetype.tolist()) == set(range(len(ARCHETYPES)))


def test_sampling_is_seeded(capsules):
    a = sample_poses(50, torch.Generator().manual_seed(5), capsules=capsules)
    b = sample_poses(50, torch.Generator().manual_seed(5), capsules=capsules)
    assert_close(a.pose, b.pose, atol=0, rtol=0)


def test_archetypes_correlate_joints_like_mocap(capsules):
    """Walking: one hip flexes while the other extends, and the arms swing against the legs."""
    names = [a.name for a in ARCHETYPES]
    config = PosePriorConfig(archetype_weights={n: float(n == "walking") for n in names}, blend_probability=0.0,
                             mirror_probability=0.0)
    walk = sample_poses(400, torch.Generator().manual_seed(6), config, capsules=capsules)
    angles = pose_to_anatomical(walk.pose.double())
    left_hip, right_hip = angles[:, J["left_hip"], 0], angles[:, J["right_hip"], 0]
    left_arm = angles[:, J["left_shoulder"], 1]
    corr = np.corrcoef(torch.stack((left_hip, right_hip, left_arm)).numpy())
    assert corr[0, 1] < -0.5 and corr[0, 2] < -0.5


def test_lying_bodies_lie_down(capsules):
    names = [a.name for a in ARCHETYPES]
    config = PosePriorConfig(archetype_weights={n: float(n == "lying") for n in names}, blend_probability=0.0)
    lying = sample_poses(100, torch.Generator().manual_seed(7), config, capsules=capsules)
    up = axis_angle_to_matrix(lying.global_orient.double())[:, :, 1]  # the body's long axis in the world
    assert (up[:, 1].abs() < math.sin(math.radians(35))).all()


def test_unknown_archetype_is_named(capsules):
    with pytest.raises(KeyError, match="dancing"):
        sample_poses(5, config=PosePriorConfig(archetype_weights={"dancing": 1.0}), capsules=capsules)


def test_rejection_rates_report_every_archetype(capsules):
    rates = pose_prior.rejection_rates(600, torch.Generator().manual_seed(8), capsules=capsules)
    assert set(rates) == {"all"} | {a.name for a in ARCHETYPES}
    assert 0 <= rates["all"] < 0.5


# --------------------------------------------------------------------------------------------------
# Pools on disk
# --------------------------------------------------------------------------------------------------
def test_pose_pool_round_trip_and_cli(tmp_path, capsys):
    out = tmp_path / "pool.npz"
    pose_prior.main(["--num", "300", "--out", str(out), "--seed", "1"])
    printed = capsys.readouterr().out
    assert "rejection rate" in printed and "walking" in printed
    pool = load_pose_pool(out)
    assert pool.pose.shape == (300, 72) and pool.shape.shape == (300, 10)
    assert torch.isfinite(pool.pose).all()


def test_load_pose_pool_reads_a_mocap_style_file(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "cmu.npz"
    np.savez(path, pose=rng.normal(size=(20, 72)), shape=rng.normal(size=(20, 16)))  # more betas than needed
    pool = load_pose_pool(path)
    assert pool.pose.dtype == torch.float32 and pool.shape.shape == (20, 10)


@pytest.mark.parametrize("arrays, message", [
    ({"pose": np.zeros((4, 72))}, r"missing key\(s\) \['shape'\]"),
    ({"pose": np.zeros((4, 69)), "shape": np.zeros((4, 10))}, r"'pose' has shape \(4, 69\)"),
    ({"pose": np.zeros((4, 72)), "shape": np.zeros((3, 10))}, r"'shape' has shape \(3, 10\)"),
    ({"pose": np.zeros((4, 72)), "shape": np.zeros((4, 5))}, r"'shape' has shape \(4, 5\)"),
])
def test_load_pose_pool_names_bad_keys_and_shapes(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(PosePoolError, match=message) as err:
        load_pose_pool(path)
    assert str(path) in str(err.value)


def test_load_pose_pool_names_the_first_non_finite_row(tmp_path):
    pose = np.zeros((5, 72))
    pose[3, 10] = np.nan
    path = tmp_path / "nan.npz"
    np.savez(path, pose=pose, shape=np.zeros((5, 10)))
    with pytest.raises(PosePoolError, match=r"'pose' row 3 holds NaN"):
        load_pose_pool(path)


def test_load_pose_pool_refuses_pickles_and_missing_files(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, pose=np.array([object()] * 3, dtype=object), shape=np.zeros((3, 10)))
    with pytest.raises(PosePoolError, match="stores an array as Python objects"):
        load_pose_pool(path)
    with pytest.raises(PosePoolError, match="does not exist"):
        load_pose_pool(tmp_path / "nothing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(PosePoolError, match="junk.npz"):
        load_pose_pool(tmp_path / "junk.npz")
