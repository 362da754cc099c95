from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.testing import assert_close

from hmr_core import constants
from hmr_core.augment import NO_AUGMENTATION, AugmentConfig, AugmentParams
from hmr_core.annotations import DatasetError, load_annotations, spin_to_joints_3d, spin_to_keypoints
from hmr_core.datasets import DATASETS, HMRDataset, h36m_first_trial, open_dataset, write_fixture_dataset


@pytest.fixture()
def fixture_3d(tmp_path):
    return write_fixture_dataset(tmp_path, num_samples=6, image_size=96, with_3d=True, seed=0), tmp_path / "images"


def spin_arrays(n=4, **overrides):
    """Valid SPIN-format arrays, written by hand (not by write_fixture_dataset) to test the reader."""
    arrays = dict(imgname=np.array([f"im{i}.jpg" for i in range(n)]), center=np.full((n, 2), 48.0),
                  scale=np.full(n, 0.4), part=np.zeros((n, 24, 3)))
    arrays.update(overrides)
    return arrays


def write_images(folder, names, size=96):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.fromarray(np.zeros((size, size, 3), dtype=np.uint8)).save(folder / name)


# --------------------------------------------------------------------------------------------------
# Joint maps
# --------------------------------------------------------------------------------------------------
def test_spin_joints_map_to_hmr_keypoints_by_name():
    part = np.arange(24, dtype=float)[None, :, None].repeat(3, axis=2)  # each row holds its SPIN index
    keypoints = spin_to_keypoints(part)[0, :, 0].astype(int)
    for k, name in enumerate(constants.KEYPOINT_NAMES):
        assert constants.SPIN_JOINT_NAMES[keypoints[k]] == name
    joints = spin_to_joints_3d(np.concatenate((part, part[..., :1]), axis=2))
    assert joints.shape == (1, 14, 4) and joints[0, :, 0].tolist() == list(range(14))
    assert (spin_to_joints_3d(part)[..., 3] == 1).all()  # (N, 24, 3): confidence 1


def test_h36m_head_comes_from_slot_18_when_slot_13_is_empty(tmp_path):
    """SPIN's Human3.6M and MPI-INF-3DHP files fill slot 18 ("Head (H36M)"), never slot 13 (the LSP
    head top); HMR's code and SPIN's J24_TO_J14 use that head as the 14th joint, in 2D and 3D."""
    n = 3
    rng = np.random.default_rng(0)
    h36m_slots = [14, 3, 4, 5, 2, 1, 0, 16, 12, 17, 18, 9, 10, 11, 8, 7, 6]  # SPIN's preprocess/h36m.py
    part, joints = np.zeros((n, 24, 3)), np.zeros((n, 24, 4))
    part[:, h36m_slots] = np.concatenate((rng.uniform(10, 80, (n, 17, 2)), np.ones((n, 17, 1))), axis=-1)
    joints[:, h36m_slots] = np.concatenate((rng.normal(size=(n, 17, 3)), np.ones((n, 17, 1))), axis=-1)
    path = tmp_path / "h36m_like.npz"
    np.savez(path, **spin_arrays(n, part=part, S=joints))
    ann = load_annotations(path)
    head = constants.LSP_JOINT_NAMES.index("head_top")
    assert (ann.keypoints_2d[:, :14, 2] > 0).all() and (ann.joints_3d[..., 3] > 0).all()  # 14 joints, not 13
    np.testing.assert_allclose(ann.keypoints_2d[:, head, :2], part[:, 18, :2] + 0.5)  # + half a pixel
    np.testing.assert_allclose(ann.joints_3d[:, head], joints[:, 18].astype(np.float32))
    # Where slot 13 is labelled (LSP, MPII, COCO), slot 18 is not used.
    both = part.copy()
    both[:, 13] = (5.0, 6.0, 1.0)
    np.testing.assert_array_equal(spin_to_keypoints(both)[:, head], both[:, 13])
    # Through the dataset: all 14 LSP joints reach the sample, the head inside the crop.
    write_images(tmp_path / "images", [f"im{i}.jpg" for i in range(n)])
    sample = HMRDataset(path, tmp_path / "images", augment=NO_AUGMENTATION)[0]
    assert sample["joints_3d"][:, 3].sum() == 14 and sample["keypoints_2d"][head, 2] == 1


def test_truncated_keypoints_stay_visible_unless_switched_off(tmp_path):
    """A labelled wrist outside the person box reaches the sample visible (HMR's code supervises
    truncated bodies); AugmentConfig(keep_outside_keypoints=False) drops it."""
    part = np.zeros((1, 24, 3))
    part[0, :14] = (48.0, 48.0, 1.0)
    part[0, 6] = (95.0, 48.0, 1.0)  # right wrist, beyond the 80-pixel box around (48, 48)
    path = tmp_path / "lsp_like.npz"
    np.savez(path, **spin_arrays(1, part=part))
    write_images(tmp_path / "images", ["im0.jpg"])
    kept = HMRDataset(path, tmp_path / "images", augment=NO_AUGMENTATION)[0]["keypoints_2d"]
    assert kept[6, 2] == 1 and kept[6, 0] > 1
    strict = AugmentConfig(scale_min=1.0, scale_max=1.0, translation_max=0.0, rotation_probability=0.0,
                           flip_probability=0.0, color_noise=0.0, keep_outside_keypoints=False)
    dropped = HMRDataset(path, tmp_path / "images", augment=strict)[0]["keypoints_2d"]
    assert (dropped[6] == 0).all() and dropped[0, 2] == 1


def test_every_dataset_names_its_files_and_terms():
    assert set(DATASETS) == {"h36m", "mpi_inf_3dhp", "lsp", "lsp_ext", "mpii", "coco", "3dpw"}
    for info in DATASETS.values():
        assert info.files and info.url.startswith("http") and info.terms and info.image_folder


# --------------------------------------------------------------------------------------------------
# Samples
# --------------------------------------------------------------------------------------------------
def test_sample_has_every_label_and_mask(fixture_3d):
    path, images = fixture_3d
    dataset = HMRDataset(path, images, augment=AugmentConfig())
    torch.manual_seed(0)
    sample = dataset[2]
    assert sample["img"].shape == (3, constants.IMG_SIZE, constants.IMG_SIZE) and sample["img"].dtype == torch.float32
    assert 0 <= sample["img"].min() and sample["img"].max() <= 1
    assert sample["keypoints_2d"].shape == (19, 3) and sample["joints_3d"].shape == (14, 4)
    assert sample["pose"].shape == (72,) and sample["betas"].shape == (10,)
    assert sample["has_smpl"] == 1 and sample["has_3d"] == 1 and sample["index"] == 2
    visible = sample["keypoints_2d"][:, 2] > 0
    assert (sample["keypoints_2d"][visible, :2].abs() <= 1).all()
    assert len(dataset) == 6 and dataset.has_3d.all()


def test_plain_crop_puts_keypoints_where_the_maths_says(fixture_3d):
    path, images = fixture_3d
    dataset = HMRDataset(path, images, augment=NO_AUGMENTATION)
    raw = np.load(path)
    sample = dataset[1]
    box = 200 * raw["scale"][1]
    expected = (raw["part"][1, list(constants.SPIN_TO_KEYPOINT), :2] + 0.5 - raw["center"][1]) / box * 2
    assert_close(sample["keypoints_2d"][:, :2].double(), torch.from_numpy(expected), atol=1e-5, rtol=0)
    assert_close(sample["pose"].double(), torch.from_numpy(raw["pose"][1]), atol=1e-6, rtol=0)
    assert_close(sample["joints_3d"][:, :3].double(), torch.from_numpy(raw["S"][1, :14, :3]), atol=1e-6, rtol=0)


def test_flipped_sample_mirrors_every_label(fixture_3d):
    path, images = fixture_3d
    dataset = HMRDataset(path, images, augment=NO_AUGMENTATION)
    plain = dataset.load_sample(0, AugmentParams())
    flipped = dataset.load_sample(0, AugmentParams(flip=True))
    assert_close(flipped["img"], plain["img"].flip(-1), atol=1.5 / 255, rtol=0)
    perm = list(constants.KEYPOINT_FLIP_PERMUTATION)
    assert_close(flipped["keypoints_2d"][:, 0], -plain["keypoints_2d"][perm, 0], atol=1e-5, rtol=0)
    assert_close(flipped["joints_3d"][:, 0], -plain["joints_3d"][list(constants.LSP_FLIP_PERMUTATION), 0])
    assert_close(flipped["pose"].reshape(24, 3)[19], plain["pose"].reshape(24, 3)[18] * torch.tensor([1.0, -1.0, -1.0]))


def test_2d_only_dataset_has_zero_masks(tmp_path):
    path = write_fixture_dataset(tmp_path, num_samples=3, image_size=64, with_3d=False)
    dataset = HMRDataset(path, tmp_path / "images")
    sample = dataset[0]
    assert sample["has_smpl"] == 0 and sample["has_3d"] == 0
    assert (sample["pose"] == 0).all() and (sample["joints_3d"] == 0).all()
    assert not dataset.has_3d.any()


def test_missing_part_means_no_2d_labels_and_3dpw_style_files_load(tmp_path):
    arrays = spin_arrays(2, pose=np.zeros((2, 72)), shape=np.zeros((2, 10)), gender=np.array(["m", "f"]))
    del arrays["part"]
    np.savez(tmp_path / "3dpw_test.npz", **arrays)
    write_images(tmp_path / "img", arrays["imgname"])
    sample = HMRDataset(tmp_path / "3dpw_test.npz", tmp_path / "img")[1]
    assert (sample["keypoints_2d"] == 0).all() and sample["has_smpl"] == 1


def test_open_dataset_reads_the_standard_layout(tmp_path):
    write_fixture_dataset(tmp_path / "dataset_extras", num_samples=2, image_size=64, file_name="hr-lspet_train.npz",
                          image_folder="../hr-lspet")
    dataset = open_dataset("lsp_ext", tmp_path)
    assert len(dataset) == 2 and dataset[0]["dataset"] == "lsp_ext"
    with pytest.raises(DatasetError, match="unknown dataset 'lspx'"):
        open_dataset("lspx", tmp_path)
    with pytest.raises(DatasetError, match="no split 'test'"):
        open_dataset("lsp_ext", tmp_path, split="test")
    with pytest.raises(DatasetError, match="annotation file .*mpii_train.npz does not exist"):
        open_dataset("mpii", tmp_path)


def test_h36m_protocol_2_is_hmrs_frontal_camera_first_trial(tmp_path):
    """HMR's evaluate_h36m.py: protocol 2 is camera 3 and trial 1 only; SPIN's protocol-2 file (its
    names as preprocess/h36m.py writes them) holds both trials."""
    names = ["images/S9_Directions.60457274_000001.jpg", "images/S9_Directions_1.60457274_000001.jpg",
             "images/S11_Discussion_1.60457274_000006.jpg", "images/S11_Discussion_2.60457274_000006.jpg",
             "images/S9_Directions.60457274_000006.jpg", "images/S11_WalkDog.60457274_000001.jpg"]
    np.testing.assert_array_equal(h36m_first_trial(np.array(names)), [1, 0, 1, 0, 1, 1])
    n = len(names)
    joints = np.zeros((n, 24, 4))
    joints[:, [2, 3], 3] = 1.0
    root = tmp_path / "root"
    (root / "dataset_extras").mkdir(parents=True)
    np.savez(root / "dataset_extras" / "h36m_valid_protocol2.npz", imgname=np.array(names),
             center=np.full((n, 2), 48.0), scale=np.full(n, 0.4), S=joints)
    write_images(root / "h36m" / "images", [Path(name).name for name in names])
    p2 = open_dataset("h36m", root, "test_p2", augment=None)
    assert len(p2) == 4 and p2.rows.tolist() == [0, 2, 4, 5]
    assert len(open_dataset("h36m", root, "test_p2_all_trials", augment=None)) == n
    with pytest.raises(DatasetError, match="not a Human3.6M image name"):
        h36m_first_trial(np.array(["frame_0001.jpg"]))


def test_smpl_labels_can_be_ignored(fixture_3d):
    """SPIN's MPI-INF-3DHP file carries SMPLify fits as SMPL labels, which HMR never had."""
    path, images = fixture_3d
    assert HMRDataset(path, images, augment=None)[0]["has_smpl"] == 1
    without = HMRDataset(path, images, augment=None, use_smpl_labels=False)
    assert without[0]["has_smpl"] == 0 and without.has_3d.all()  # the 3D joints stay


def test_large_jpegs_are_decoded_at_reduced_size_with_the_same_labels(tmp_path):
    """The decoder's free downscale must not move the crop: the same dot lands in the same place."""
    size = 1600
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    dot = (900.0, 700.0)
    blob = (255 * np.exp(-((xx - dot[0]) ** 2 + (yy - dot[1]) ** 2) / (2 * 12.0**2))).astype(np.uint8)
    (tmp_path / "img").mkdir()
    Image.fromarray(np.repeat(blob[..., None], 3, axis=2)).save(tmp_path / "img" / "big.jpg", quality=95)
    part = np.zeros((1, 24, 3))
    part[0, 0] = (dot[0] - 0.5, dot[1] - 0.5, 1.0)  # pixel-index annotation of the dot's centre
    np.savez(tmp_path / "big.npz", imgname=np.array(["big.jpg"]), center=np.array([[800.0, 800.0]]),
             scale=np.array([1400 / 200]), part=part)
    sample = HMRDataset(tmp_path / "big.npz", tmp_path / "img", augment=NO_AUGMENTATION)[0]
    img = sample["img"][0].double()
    yy, xx = torch.meshgrid(torch.arange(224.0), torch.arange(224.0), indexing="ij")
    centroid = torch.stack(((img * (xx + 0.5)).sum(), (img * (yy + 0.5)).sum())) / img.sum()
    expected = (sample["keypoints_2d"][0, :2].double() + 1) * 112
    assert_close(centroid, expected, atol=0.5, rtol=0)


# --------------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------------
def test_missing_image_names_file_and_index(fixture_3d):
    path, images = fixture_3d
    (images / "im00003.jpg").unlink()
    dataset = HMRDataset(path, images)
    with pytest.raises(DatasetError, match=r"sample 3: image .*im00003.jpg does not exist") as err:
        dataset[3]
    assert str(path) in str(err.value)


@pytest.mark.parametrize("content", [b"this is not a jpeg", b"\xff\xd8\xff\xe0" + b"\x00" * 40])
def test_corrupt_image_names_file_and_index(fixture_3d, content):
    path, images = fixture_3d
    (images / "im00001.jpg").write_bytes(content)
    with pytest.raises(DatasetError, match=r"sample 1: image .*im00001.jpg cannot be read"):
        HMRDataset(path, images)[1]


def test_truncated_jpeg_is_an_error(fixture_3d):
    path, images = fixture_3d
    data = (images / "im00002.jpg").read_bytes()
    (images / "im00002.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="sample 2"):
        HMRDataset(path, images)[2]


def test_skip_bad_samples_skips_and_counts(fixture_3d):
    path, images = fixture_3d
    (images / "im00003.jpg").unlink()
    (images / "im00004.jpg").write_bytes(b"junk")
    dataset = HMRDataset(path, images, skip_bad_samples=True)
    indices = [int(dataset[i]["index"]) for i in range(len(dataset))]
    assert 3 not in indices and 4 not in indices
    assert indices[3] == indices[4] == 5  # the next good sample stands in
    assert dataset.num_skipped == 3  # sample 3 once, sample 4 twice (asked for 3 and for 4)


def test_skips_in_dataloader_workers_reach_the_main_process(fixture_3d):
    path, images = fixture_3d
    (images / "im00000.jpg").unlink()
    dataset = HMRDataset(path, images, skip_bad_samples=True)
    loader = torch.utils.data.DataLoader(dataset, batch_size=3, num_workers=2)
    batches = list(loader)
    assert sum(len(b["index"]) for b in batches) == 6
    assert dataset.num_skipped == 1


@pytest.mark.parametrize("change, message", [
    (lambda a: a.pop("scale"), r"missing key\(s\) \['scale'\]"),
    (lambda a: a.update(part=np.zeros((4, 17, 3))), r"'part' has shape \(4, 17, 3\), expected \(4, 24, 3\)"),
    (lambda a: a.update(center=np.zeros((4, 3))), r"'center' has shape \(4, 3\)"),
    (lambda a: a.update(scale=np.ones(5)), r"'scale' has shape \(5,\)"),
    (lambda a: a.update(S=np.zeros((4, 24, 2))), r"'S' has shape \(4, 24, 2\)"),
    (lambda a: a.update(pose=np.zeros((4, 69)), shape=np.zeros((4, 10))), r"'pose' has shape \(4, 69\)"),
    (lambda a: a.update(pose=np.zeros((4, 72))), "only one of 'pose' and 'shape'"),
    (lambda a: a.update(center=np.array([["a", "b"]] * 4)), "'center' has dtype <U1"),
    (lambda a: a.update(imgname=np.zeros(4)), "'imgname' must be a \\(N,\\) array of strings"),
])
def test_bad_annotation_files_name_the_key_and_shape(tmp_path, change, message):
    arrays = spin_arrays()
    change(arrays)
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DatasetError, match=message) as err:
        load_annotations(path)
    assert str(path) in str(err.value)


def test_object_arrays_are_refused_without_unpickling(tmp_path):
    arrays = spin_arrays()
    arrays["imgname"] = np.array(["a.jpg", "b.jpg", "c.jpg", "d.jpg"], dtype=object)
    np.savez(tmp_path / "objects.npz", **arrays)
    with pytest.raises(DatasetError, match="Python objects"):
        load_annotations(tmp_path / "objects.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK not really")
    with pytest.raises(DatasetError, match="junk.npz is not a readable .npz"):
        load_annotations(tmp_path / "junk.npz")


def test_bad_rows_raise_with_their_index_or_are_skipped(tmp_path):
    arrays = spin_arrays(5)
    arrays["scale"][2] = 0.0
    arrays["center"][4, 0] = np.nan
    np.savez(tmp_path / "rows.npz", **arrays)
    write_images(tmp_path / "img", arrays["imgname"])
    with pytest.raises(DatasetError, match=r"sample 2: scale is not a positive finite number \(2 bad rows"):
        HMRDataset(tmp_path / "rows.npz", tmp_path / "img")
    dataset = HMRDataset(tmp_path / "rows.npz", tmp_path / "img", skip_bad_samples=True)
    assert len(dataset) == 3 and dataset.num_skipped == 2
    assert [int(dataset[i]["index"]) for i in range(3)] == [0, 1, 3]


@pytest.mark.parametrize("name", ["../../../secret.jpg", "/etc/secret.jpg", "sub/../../secret.jpg",
                                  "..\\secret.jpg", "C:\\secret.jpg"])
def test_image_names_that_leave_the_image_folder_are_refused(tmp_path, name):
    arrays = spin_arrays()
    arrays["imgname"] = np.array(["im0.jpg", name, "im2.jpg", "im3.jpg"])
    np.savez(tmp_path / "escape.npz", **arrays)
    with pytest.raises(DatasetError, match=r"escape\.npz: 'imgname' of sample 1 is .*which leads outside the image "
                                           r"folder \(1 such rows\)"):
        load_annotations(tmp_path / "escape.npz")


def test_a_dataset_whose_images_are_all_missing_logs_a_summary(tmp_path, caplog):
    path = write_fixture_dataset(tmp_path, num_samples=40, image_size=64, seed=0)
    for image in (tmp_path / "images").iterdir():
        image.unlink()
    dataset = HMRDataset(path, tmp_path / "nowhere", skip_bad_samples=True)
    with caplog.at_level("WARNING", logger="hmr_core.datasets"):
        with pytest.raises(DatasetError, match=r"no sample could be read: all 40 images failed \(the first: .*"
                                               r"im00000\.jpg does not exist\); is the image folder .*nowhere right\?"):
            dataset[0]
    assert len(caplog.records) == 6  # five skips, then a line saying the rest are counted
    assert "counted, not logged" in caplog.records[-1].getMessage()
    assert dataset.num_skipped == 40


def _exif_rotated_jpeg(path):
    """A 96×64 (W×H) JPEG whose EXIF orientation 6 says: turn it 90° clockwise to display it (64×96).

    The stored image is black with a white top-left quarter, which the display puts at the top right.
    """
    pixels = np.zeros((64, 96, 3), np.uint8)
    pixels[:32, :48] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(path, exif=exif, quality=95)
    return path


def test_images_are_read_as_their_exif_orientation_says(tmp_path):
    from hmr_core.datasets import read_image

    image, factor = read_image(_exif_rotated_jpeg(tmp_path / "phone.jpg"))
    pixels = np.asarray(image)
    assert pixels.shape == (96, 64, 3) and factor == 1.0
    assert pixels[:40, 36:].mean() > 240 and pixels[56:, :].mean() < 15  # white at the top right
