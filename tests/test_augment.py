import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch.testing import assert_close

from hmr_core import constants
from hmr_core.augment import (
    NO_AUGMENTATION,
    AugmentConfig,
    AugmentParams,
    apply_affine,
    augment_labels,
    crop_transform,
    flip_points,
    flip_pose,
    image_to_tensor,
    invert_affine,
    rotate_global_orient,
    rotation_about_z,
    sample_augment_params,
    transform_keypoints,
    warp_image,
)
from hmr_core.body_model import SMPL
from hmr_core.model_files import OPEN_MODEL_PATH

SIZE = constants.IMG_SIZE
MIRROR = torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)


def symmetric_toy_arrays(seed: int = 0, half: int = 300, midline: int = 60) -> dict[str, np.ndarray]:
    """A small SMPL-format model that is exactly left-right symmetric (x -> -x), without pose blend shapes.

    Vertex i of the first half mirrors vertex i + half; the midline vertices lie on x = 0. Each
    joint's regressor, skinning weights and keypoints are the mirror of its partner's.
    """
    rng = np.random.default_rng(seed)
    flip = np.array(constants.SMPL_FLIP_PERMUTATION)
    left = rng.normal(scale=[0.2, 0.5, 0.1], size=(half, 3))
    left[:, 0] = np.abs(left[:, 0]) + 0.01
    mid = rng.normal(scale=[0.0, 0.5, 0.1], size=(midline, 3))
    verts = np.concatenate((left, left * [-1, 1, 1], mid))
    num_v = len(verts)
    mirror_v = np.concatenate((np.arange(half, 2 * half), np.arange(half), np.arange(2 * half, num_v)))

    def symmetrize(matrix, row_flip):  # rows indexed by joints/keypoints, columns by vertices
        return 0.5 * (matrix + matrix[row_flip][:, mirror_v])

    num_j = constants.NUM_SMPL_JOINTS
    regressor = np.zeros((num_j, num_v))
    for j in range(num_j):
        regressor[j, rng.choice(num_v, 12, replace=False)] = 1.0
    regressor = symmetrize(regressor, flip)
    regressor /= regressor.sum(1, keepdims=True)
    weights = symmetrize(rng.dirichlet(np.ones(num_j) * 0.3, size=num_v).T, flip).T  # (V, J)
    shapedirs = rng.normal(scale=0.01, size=(num_v, 3, constants.NUM_BETAS))
    shapedirs = 0.5 * (shapedirs + shapedirs[mirror_v] * np.array([-1, 1, 1])[:, None])
    kp_flip = np.array(constants.LSP_FLIP_PERMUTATION)
    lsp = np.zeros((constants.NUM_LSP_JOINTS, num_v))
    for k in range(constants.NUM_LSP_JOINTS):
        lsp[k, rng.choice(num_v, 6, replace=False)] = 1.0
    lsp = symmetrize(lsp, kp_flip)
    lsp /= lsp.sum(1, keepdims=True)
    # Face points: nose on the midline, the eyes and the ears mirrored pairs.
    face = np.array([2 * half, 0, half, 1, half + 1])
    return {
        "v_template": verts, "shapedirs": shapedirs,
        "posedirs": np.zeros((num_v, 3, constants.NUM_POSE_BLEND)),
        "J_regressor": regressor, "weights": weights,
        "kintree_table": np.stack((np.array(constants.SMPL_PARENTS), np.arange(num_j))),
        "f": np.array([[0, 1, 2]]), "J_regressor_lsp": lsp, "face_vertex_ids": face,
    }


def flip_keypoints_2d(keypoints: np.ndarray) -> np.ndarray:
    return flip_points(keypoints, constants.KEYPOINT_FLIP_PERMUTATION)


def random_pose(batch: int, seed: int, scale: float = 0.6) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, constants.POSE_DIM, generator=gen, dtype=torch.float64) * 2 - 1) * scale


# --------------------------------------------------------------------------------------------------
# Flips
# --------------------------------------------------------------------------------------------------
def test_flip_pose_twice_is_identity_and_keeps_shape():
    pose = random_pose(5, 0)
    assert_close(flip_pose(flip_pose(pose)), pose, atol=0, rtol=0)
    assert flip_pose(pose.reshape(5, 24, 3)).shape == (5, 24, 3)
    with pytest.raises(ValueError, match=r"\(\.\.\., 72\)"):
        flip_pose(torch.zeros(2, 70))


def test_flip_pose_known_value():
    pose = torch.zeros(1, 72, dtype=torch.float64)
    pose[0, 3 * 18: 3 * 18 + 3] = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)  # left elbow
    flipped = flip_pose(pose).reshape(24, 3)
    assert_close(flipped[19], torch.tensor([0.1, -0.2, -0.3], dtype=torch.float64), atol=0, rtol=0)
    assert flipped[18].abs().sum() == 0


@pytest.mark.parametrize("source", ["toy", "open"])
def test_flipped_pose_projects_to_mirrored_swapped_keypoints(source):
    """SMPL(flip θ) = mirror(SMPL(θ)) with left and right names swapped: the flipped label is consistent."""
    if source == "open":
        if not OPEN_MODEL_PATH.is_file():
            pytest.skip("the open body model file is not built yet")
        # A symmetric mesh and joints (to 0.1 mm), but the LSP keypoint regressor is fitted, not
        # symmetrised: its mirror error reaches a few millimetres.
        model, atol, atol_kp = SMPL(dtype=torch.float64), 2e-4, 5e-3
    else:
        model, atol, atol_kp = SMPL(arrays=symmetric_toy_arrays(), dtype=torch.float64), 1e-9, 1e-9
    pose = random_pose(4, 1)
    betas = torch.randn(4, 10, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * (source == "toy")
    out = model(betas=betas, pose=pose)
    out_flip = model(betas=betas, pose=flip_pose(pose))
    expected_kp = out.keypoints[:, list(constants.KEYPOINT_FLIP_PERMUTATION)] * MIRROR
    expected_joints = out.joints[:, list(constants.SMPL_FLIP_PERMUTATION)] * MIRROR
    assert_close(out_flip.keypoints, expected_kp, atol=atol_kp, rtol=0)
    assert_close(out_flip.joints, expected_joints, atol=atol, rtol=0)


def test_keypoint_and_joint_flips_are_involutions():
    rng = np.random.default_rng(0)
    kp = np.concatenate((rng.uniform(-1, 1, (19, 2)), np.ones((19, 1))), axis=1)
    assert_close(flip_keypoints_2d(flip_keypoints_2d(kp)), kp, atol=0, rtol=0)
    joints = rng.normal(size=(14, 4))
    lsp = constants.LSP_FLIP_PERMUTATION
    assert_close(flip_points(flip_points(joints, lsp), lsp), joints, atol=0, rtol=0)
    # The left ankle of the flipped set is the mirrored right ankle.
    assert flip_keypoints_2d(kp)[5, 0] == -kp[0, 0]


def test_flipping_the_crop_mirrors_image_and_keypoints():
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 256, (180, 240, 3), dtype=np.uint8))
    center, size = (130.0, 85.0), 150.0
    plain = AugmentParams(scale=1.1, translation=(5.0, -3.0), rotation=12.0)
    flipped = plain._replace(flip=True)
    a = np.asarray(warp_image(image, crop_transform(center, size, plain))).astype(int)
    b = np.asarray(warp_image(image, crop_transform(center, size, flipped))).astype(int)
    # Bilinear sampling at mirrored positions: equal up to rounding.
    assert np.abs(b[:, ::-1] - a).max() <= 1
    # Flipping the flipped crop again gives the plain crop back.
    mirror = np.array([[-1.0, 0.0, SIZE], [0.0, 1.0, 0.0]])
    twice = np.asarray(warp_image(Image.fromarray(b.astype(np.uint8)), mirror)).astype(int)
    assert np.abs(twice - a).max() <= 1
    kp = np.concatenate((rng.uniform(60, 200, (19, 2)), np.ones((19, 1))), axis=1)
    kp_plain = transform_keypoints(kp, crop_transform(center, size, plain), False)
    kp_flipped = transform_keypoints(kp, crop_transform(center, size, flipped), True)
    assert_close(kp_flipped, flip_keypoints_2d(kp_plain), atol=1e-5, rtol=0)
    assert_close(flip_keypoints_2d(kp_flipped), kp_plain, atol=1e-5, rtol=0)


# --------------------------------------------------------------------------------------------------
# Crop maths
# --------------------------------------------------------------------------------------------------
def test_crop_maps_the_box_onto_the_crop():
    center, size = np.array([300.0, 200.0]), 250.0
    matrix = crop_transform(center, size)
    corners = np.array([center - size / 2, center + size / 2, center])
    assert_close(apply_affine(matrix, corners), np.array([[0.0, 0.0], [SIZE, SIZE], [SIZE / 2, SIZE / 2]]),
                 atol=1e-9, rtol=0)


def test_crop_round_trip_and_aspect_ratio():
    rng = np.random.default_rng(2)
    params = AugmentParams(scale=0.9, translation=(7.0, 11.0), rotation=-23.0, flip=True)
    matrix = crop_transform((410.0, 95.0), 333.0, params)
    points = rng.uniform(0, 500, (50, 2))
    assert_close(apply_affine(invert_affine(matrix), apply_affine(matrix, points)), points, atol=1e-9, rtol=0)
    # A similarity: distances scale by one factor in every direction (no stretching).
    d_img = np.linalg.norm(points[1:] - points[:-1], axis=1)
    d_crop = np.linalg.norm(np.diff(apply_affine(matrix, points), axis=0), axis=1)
    assert_close(d_crop / d_img, np.full(49, SIZE / (333.0 * 0.9)), atol=1e-9, rtol=0)


def test_translation_and_scale_move_the_centre_as_documented():
    params = AugmentParams(scale=2.0, translation=(10.0, -4.0))
    matrix = crop_transform((50.0, 60.0), 100.0, params)
    assert_close(apply_affine(matrix, np.array([50.0, 60.0])), np.array([SIZE / 2 + 10, SIZE / 2 - 4]), atol=1e-9, rtol=0)
    # Scale 2 zooms out: the box is half the crop.
    assert_close(apply_affine(matrix, np.array([100.0, 60.0]))[0] - (SIZE / 2 + 10), SIZE / 4, atol=1e-9, rtol=0)


def test_bad_box_raises():
    with pytest.raises(ValueError, match="positive box size"):
        crop_transform((10.0, 10.0), 0.0)
    with pytest.raises(ValueError, match="finite centre"):
        crop_transform((np.nan, 10.0), 50.0)


def _blob_image(width, height, x, y, sigma=2.0):
    yy, xx = np.mgrid[0:height, 0:width] + 0.5  # pixel centres in continuous coordinates
    blob = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    return Image.fromarray(np.repeat((255 * blob).astype(np.uint8)[..., None], 3, axis=2))


def _centroid(crop):
    values = np.asarray(crop)[..., 0].astype(float)
    yy, xx = np.mgrid[0:values.shape[0], 0:values.shape[1]] + 0.5
    return np.array([(values * xx).sum(), (values * yy).sum()]) / values.sum()


@pytest.mark.parametrize("params", [
    AugmentParams(rotation=30.0),
    AugmentParams(scale=1.2, translation=(8.0, -6.0), rotation=-17.0),
    AugmentParams(scale=0.9, rotation=45.0, flip=True),
])
def test_keypoints_follow_the_image(params):
    """A rendered dot lands where the keypoint transform says, under rotation, scale, shift and flip."""
    dot = np.array([[150.0, 95.0, 1.0]])
    image = _blob_image(260, 200, *dot[0, :2])
    center, size = (120.0, 110.0), 180.0
    matrix = crop_transform(center, size, params)
    crop = warp_image(image, matrix)
    kp = transform_keypoints(np.repeat(dot, 19, axis=0), matrix, flip=False)[0]
    expected_px = (kp[:2].astype(np.float64) + 1) * SIZE / 2
    assert_close(_centroid(crop), expected_px, atol=0.35, rtol=0)


def test_keypoints_outside_the_crop_keep_their_visibility_as_in_hmr():
    """HMR's image_preprocessing carries the visibility through the crop: a truncated body is still
    supervised, its keypoints beyond [-1, 1]; keep_outside=False (a switch) makes them invisible."""
    kp = np.array([[50.0, 50.0, 1.0], [500.0, 50.0, 1.0], [60.0, 60.0, 0.0]] + [[55.0, 55.0, 1.0]] * 16)
    matrix = crop_transform((50.0, 50.0), 100.0)
    out = transform_keypoints(kp, matrix, flip=False)
    assert out[0, 2] == 1 and np.abs(out[0, :2]).max() <= 1
    assert out[1, 2] == 1 and out[1, 0] == pytest.approx(2 * 500.0 / 100.0 - 1)  # x = 9: outside, visible
    assert (out[2] == 0).all()  # unlabelled stays unlabelled
    strict = transform_keypoints(kp, matrix, flip=False, keep_outside=False)
    assert (strict[1] == 0).all()  # outside: invisible and zeroed
    np.testing.assert_array_equal(np.delete(strict, 1, 0), np.delete(out, 1, 0))
    # augment_labels passes the choice on.
    labels = augment_labels(kp, np.zeros((14, 4)), np.zeros(72), matrix, AugmentParams())
    assert labels.keypoints_2d[1, 2] == 1
    labels = augment_labels(kp, np.zeros((14, 4)), np.zeros(72), matrix, AugmentParams(), keep_outside_keypoints=False)
    assert labels.keypoints_2d[1, 2] == 0


# --------------------------------------------------------------------------------------------------
# 3D labels turn and mirror with the image
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("params", [AugmentParams(rotation=25.0), AugmentParams(rotation=-40.0, flip=True, scale=1.1)])
def test_3d_joints_stay_consistent_with_2d_keypoints(params):
    """Keypoints made by orthographic projection of the 3D joints are still their projection afterwards."""
    rng = np.random.default_rng(3)
    joints = np.concatenate((rng.normal(scale=0.25, size=(14, 3)), np.ones((14, 1))), axis=1)
    focal, center = 150.0, np.array([200.0, 180.0])
    kp = np.zeros((19, 3))
    kp[:14, :2] = focal * joints[:, :2] + center  # camera frame: x right, y down, like the image
    kp[:14, 2] = 1
    matrix = crop_transform(center, 300.0, params)
    labels = augment_labels(kp, joints, np.zeros(72), matrix, params)
    visible = labels.keypoints_2d[:14, 2] > 0
    assert visible.sum() >= 10
    x2d, x3d = labels.keypoints_2d[:14][visible, :2], labels.joints_3d[visible, :2]
    # Fit one scale and offset (weak perspective): the residual must vanish.
    design = np.concatenate((x3d.reshape(-1, 1), np.tile(np.eye(2), (len(x3d), 1))), axis=1)
    fit, *_ = np.linalg.lstsq(design, x2d.reshape(-1), rcond=None)
    assert fit[0] > 0
    assert_close(design @ fit, x2d.reshape(-1).astype(np.float64), atol=1e-5, rtol=0)


def test_rotated_global_orientation_turns_the_body_about_the_camera_axis():
    model = SMPL(arrays=symmetric_toy_arrays(), dtype=torch.float64)
    pose = random_pose(1, 4)[0].numpy()
    turned = rotate_global_orient(pose, 33.0)
    a = model(pose=torch.from_numpy(pose)[None]).joints[0]
    b = model(pose=torch.from_numpy(turned)[None]).joints[0]
    root = a[0]  # the root joint stays put; everything turns about it
    expected = (a - root) @ torch.from_numpy(rotation_about_z(33.0)).T + root
    assert_close(b, expected, atol=1e-9, rtol=0)
    assert_close(rotate_global_orient(pose, 0.0), pose, atol=0, rtol=0)


# --------------------------------------------------------------------------------------------------
# Colour and random draws
# --------------------------------------------------------------------------------------------------
def test_color_gain_scales_channels_and_clips():
    image = Image.fromarray(np.full((4, 4, 3), 200, dtype=np.uint8))
    out = image_to_tensor(image, (0.5, 1.0, 1.4))
    assert out.shape == (3, 4, 4) and out.dtype == torch.float32
    assert_close(out[:, 0, 0], torch.tensor([100 / 255, 200 / 255, 1.0]), atol=1e-6, rtol=0)


def test_sampled_params_stay_in_range_and_are_seeded():
    config = AugmentConfig()
    draws = [sample_augment_params(config, torch.Generator().manual_seed(s)) for s in range(200)]
    assert all(config.scale_min <= p.scale <= config.scale_max for p in draws)
    assert all(abs(t) <= config.translation_max for p in draws for t in p.translation)
    assert all(abs(p.rotation) <= config.rotation_max for p in draws)
    assert all(1 - config.color_noise <= g <= 1 + config.color_noise for p in draws for g in p.color_gain)
    flips = sum(p.flip for p in draws)
    assert 60 < flips < 140
    rotated = sum(p.rotation != 0 for p in draws)
    assert 90 < rotated < 150  # 60% of 200
    again = sample_augment_params(config, torch.Generator().manual_seed(7))
    assert again == draws[7]
    neutral = sample_augment_params(NO_AUGMENTATION, torch.Generator().manual_seed(0))
    assert neutral == AugmentParams()
    assert math.isclose(neutral.scale, 1.0)
