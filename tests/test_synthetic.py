"""Tests of the synthetic world: determinism, exact labels, visibility, shards, the dataset."""

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from hmr_core import camera, constants, synthetic, synthetic_camera, synthetic_shards, synthetic_write
from hmr_core.augment import AugmentConfig, AugmentParams


@pytest.fixture(scope="module")
def world():
    return synthetic.SyntheticWorld(backend="numpy")


@pytest.fixture(scope="module")
def batch(world):
    return synthetic.generate_batch(synthetic.split_seeds("train", 6), "train", world, with_mask=True)


def test_same_seed_same_image_and_labels(world, batch):
    again = synthetic.generate_batch(synthetic.split_seeds("train", 2), "train", world)
    for key in ("images", *synthetic.LABEL_SHAPES):
        np.testing.assert_array_equal(again[key], batch[key][:2], err_msg=key)
    assert not np.array_equal(batch["images"][0], batch["images"][1])
    assert not np.array_equal(batch["pose"][0], batch["pose"][1])


def test_shapes_and_dtypes(batch):
    size = constants.IMG_SIZE
    assert batch["images"].shape == (6, size, size, 3) and batch["images"].dtype == np.uint8
    for key, shape in synthetic.LABEL_SHAPES.items():
        assert batch[key].shape == (6, *shape), key


def test_keypoints_are_the_projection_of_smpl(world, batch):
    out = world.model(betas=torch.from_numpy(batch["betas"]), pose=torch.from_numpy(batch["pose"]))
    projected = camera.weak_perspective_project(out.keypoints, torch.from_numpy(batch["cam"]))
    assert_close(projected, torch.from_numpy(batch["keypoints_2d"][..., :2]), atol=1e-4, rtol=0)
    # the 3D joints are the same keypoints, relative to the midpoint of the hips, with confidence 1
    joints = out.keypoints[:, : constants.NUM_LSP_JOINTS] - out.keypoints[:, [3, 2]].mean(1, keepdim=True)
    assert_close(torch.from_numpy(batch["joints_3d"][..., :3]), joints, atol=1e-5, rtol=0)
    assert (batch["joints_3d"][..., 3] == 1).all()


def test_upright_in_the_camera_frame(batch):
    """Standing-like bodies (not lying, not bending) have the head above the ankles in the image (y down)."""
    from hmr_core.archetypes import ARCHETYPES

    names = [a.name for a in ARCHETYPES]
    upright = np.isin(batch["archetype"], [names.index(n) for n in ("standing", "walking", "running", "reaching",
                                                                     "arms_raised")])
    head_y = batch["keypoints_2d"][:, constants.KEYPOINT_NAMES.index("head_top"), 1]
    ankle_y = batch["keypoints_2d"][:, [0, 5], 1].mean(1)
    assert upright.any() and (head_y[upright] < ankle_y[upright]).all()


def test_visibility_rules():
    keypoints = np.array([[0.0, 0.0], [0.5, -0.5], [1.2, 0.0], [0.0, -1.01], [-0.9, 0.9]])
    occluded = np.zeros((constants.IMG_SIZE, constants.IMG_SIZE), dtype=bool)
    occluded[100:124, 100:124] = True  # covers the centre (0, 0)
    vis = synthetic_camera.keypoint_visibility(keypoints, occluded)
    np.testing.assert_array_equal(vis, [0, 1, 0, 0, 1])
    np.testing.assert_array_equal(synthetic_camera.keypoint_visibility(keypoints, None), [1, 1, 0, 0, 1])


def test_generated_visibility(batch):
    kp = batch["keypoints_2d"]
    inside = (np.abs(kp[..., :2]) <= 1).all(-1)
    assert (kp[..., 2][~inside] == 0).all()  # outside the crop: invisible
    unoccluded = batch["num_occluders"] == 0
    assert (kp[unoccluded][..., 2] == inside[unoccluded]).all()  # no occluder: visible iff inside


def test_occlusion_and_truncation_hide_keypoints(world):
    """Find an occluded and a truncated image among a few seeds; their keypoints lose visibility."""
    seeds = synthetic.split_seeds("ood", 10)
    b = synthetic.generate_batch(seeds, "ood", world)
    truncated = b["truncated"]
    assert truncated.any() and (b["keypoints_2d"][truncated][..., 2] == 0).any(1).all()
    assert (b["num_occluders"] > 0).any()


def test_image_not_blank_and_body_large_enough(batch):
    for image, mask in zip(batch["images"], batch["mask"]):
        assert image.std() > 5
        assert mask.mean() > 0.03


def test_split_seed_ranges_do_not_overlap():
    ranges = sorted(constants.SYNTHETIC_SPLIT_SEEDS.values())
    for (_, high), (low, _) in zip(ranges, ranges[1:]):
        assert high <= low
    with pytest.raises(ValueError, match="not in split 'test'"):
        synthetic.generate_batch([0], "test", synthetic.default_world("numpy"))
    with pytest.raises(ValueError, match="outside"):
        synthetic.split_seeds("test", 10**9)


def test_resume_redoes_only_missing_shard(tmp_path):
    first = synthetic_write.write_split(tmp_path, "test", 5, shard_size=2, backend="numpy", progress=False)
    assert [p.name for p in first.written] == ["test_00000.npz", "test_00001.npz", "test_00002.npz"]
    before = {p.name: p.stat().st_mtime_ns for p in first.written}
    (tmp_path / "test_00001.npz").unlink()  # an interrupted run
    second = synthetic_write.write_split(tmp_path, "test", 5, shard_size=2, backend="numpy", progress=False)
    assert [p.name for p in second.written] == ["test_00001.npz"] and second.num_images == 2
    assert len(second.skipped) == 2
    for name in ("test_00000.npz", "test_00002.npz"):
        assert (tmp_path / name).stat().st_mtime_ns == before[name]
    assert not list(tmp_path.glob(".*tmp"))
    # the shards hold what generate_batch makes in memory
    direct = synthetic.generate_batch(synthetic.split_seeds("test", 5), "test", synthetic.default_world("numpy"))
    data = synthetic_shards.SyntheticDataset(tmp_path, "test")
    assert len(data) == 5
    np.testing.assert_array_equal(data.image(3), direct["images"][3])


def test_dataset_samples(tmp_path):
    synthetic_write.write_split(tmp_path, "train", 3, shard_size=2, backend="numpy", progress=False)
    data = synthetic_shards.SyntheticDataset(tmp_path, "train")
    sample = data[2]
    size = constants.IMG_SIZE
    expected = {"img": (3, size, size), "keypoints_2d": (19, 3), "joints_3d": (14, 4), "pose": (72,), "betas": (10,),
                "has_smpl": (), "has_3d": (), "index": ()}
    for key, shape in expected.items():
        assert tuple(sample[key].shape) == shape, key
        assert sample[key].dtype == (torch.int64 if key == "index" else torch.float32), key
    assert sample["dataset"] == "synthetic" and sample["has_smpl"] == 1 and sample["has_3d"] == 1
    assert 0 <= sample["img"].min() and sample["img"].max() <= 1
    assert_close(sample["img"], torch.from_numpy(data.image(2).transpose(2, 0, 1).astype(np.float32) / 255))
    # a flip mirrors image, keypoints, 3D joints and θ together (hmr_core.augment's functions)
    flipped = data.load_sample(2, AugmentParams(flip=True))
    assert_close(flipped["img"], sample["img"].flip(-1))
    perm = list(constants.KEYPOINT_FLIP_PERMUTATION)
    vis = sample["keypoints_2d"][perm, 2] > 0
    assert_close(flipped["keypoints_2d"][vis, 0], -sample["keypoints_2d"][perm][vis, 0])
    assert_close(flipped["joints_3d"][:, 0], -sample["joints_3d"][list(constants.LSP_FLIP_PERMUTATION), 0])
    augmented = synthetic_shards.SyntheticDataset(tmp_path, "train", augment=AugmentConfig())
    assert augmented[0]["img"].shape == (3, size, size)


def test_corrupt_or_truncated_shard_is_named(tmp_path):
    synthetic_write.write_split(tmp_path, "train", 2, shard_size=1, backend="numpy", progress=False)
    path = tmp_path / "train_00001.npz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(synthetic_shards.ShardError, match="train_00001.npz"):
        synthetic_shards.SyntheticDataset(tmp_path, "train")
    path.write_bytes(b"not a zip file at all")
    with pytest.raises(synthetic_shards.ShardError, match="train_00001.npz"):
        synthetic_shards.SyntheticDataset(tmp_path, "train")
    # a resumed run redoes the corrupt shard
    report = synthetic_write.write_split(tmp_path, "train", 2, shard_size=1, backend="numpy", progress=False)
    assert [p.name for p in report.written] == ["train_00001.npz"]
    with pytest.raises(synthetic_shards.ShardError, match="no 'test' shards"):
        synthetic_shards.SyntheticDataset(tmp_path, "test")
