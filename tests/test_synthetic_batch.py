"""The batched synthetic world: labels, distribution against the per-image world, shards, training on the fly."""

import colorsys
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from hmr_core import camera, constants, synthetic, synthetic_batch, synthetic_camera, synthetic_shards, synthetic_write
from hmr_core.body_model import SMPL


@pytest.fixture(scope="module")
def world():
    return synthetic_batch.BatchedWorld("auto")


@pytest.fixture(scope="module")
def batch(world):
    return world.generate(int(synthetic.split_seeds("train", 1, 500)[0]), 8, "train")


def test_shapes_and_dtypes_are_a_shards(batch):
    reference = synthetic.stack_samples([])
    assert set(batch) == set(reference)
    for key, value in batch.items():
        assert value.dtype == reference[key].dtype, key
        assert value.shape[1:] == reference[key].shape[1:] and len(value) == 8, key


def test_labels_reproduce_the_keypoints_and_joints(batch):
    """SMPL(θ, β) with cam gives the stored 2D keypoints; the 3D joints are its keypoints about the hips."""
    out = SMPL()(betas=torch.from_numpy(batch["betas"]), pose=torch.from_numpy(batch["pose"]))
    projected = camera.weak_perspective_project(out.keypoints, torch.from_numpy(batch["cam"]))
    torch.testing.assert_close(projected, torch.from_numpy(batch["keypoints_2d"][..., :2]), atol=1e-4, rtol=0)
    kp = out.keypoints.double()
    hips = [constants.KEYPOINT_NAMES.index("left_hip"), constants.KEYPOINT_NAMES.index("right_hip")]
    joints = kp[:, :constants.NUM_LSP_JOINTS] - kp[:, hips].mean(1, keepdim=True)
    torch.testing.assert_close(joints.float(), torch.from_numpy(batch["joints_3d"][..., :3]), atol=1e-4, rtol=0)
    outside = (np.abs(batch["keypoints_2d"][..., :2]) > 1).any(-1)
    assert (batch["keypoints_2d"][..., 2][outside] == 0).all()  # outside the crop is never visible


def test_the_body_is_drawn_where_its_keypoints_are(world, monkeypatch):
    """On a flat black background without occluders or camera effects, the body covers its visible hips."""
    first = int(synthetic.split_seeds("test", 1, 40)[0])
    black = lambda rng, size, config: np.zeros((size, size, 3), np.uint8)  # noqa: E731
    monkeypatch.setattr(synthetic_batch, "random_background", black)
    monkeypatch.setattr(synthetic_batch, "camera_effects", lambda images, generator, config: images)
    arrays = world.generate(first, 6, "test")
    size = constants.IMG_SIZE
    hips = [constants.KEYPOINT_NAMES.index("left_hip"), constants.KEYPOINT_NAMES.index("right_hip")]
    checked = 0
    for i in range(6):
        if arrays["num_occluders"][i]:
            continue
        covered = arrays["images"][i].max(-1) > 0  # (H, W) the body's pixels
        pixels = camera.normalized_to_pixel(torch.from_numpy(arrays["keypoints_2d"][i, hips, :2]), size).numpy()
        for x, y in np.floor(pixels).astype(int):
            if 0 <= x < size and 0 <= y < size:
                assert covered[max(0, y - 2):y + 3, max(0, x - 2):x + 3].any(), (i, x, y)
                checked += 1
        assert covered.sum() > 500  # a body, not a speck
    assert checked >= 4


def test_a_batch_is_reproduced_by_its_seeds_and_differs_from_the_next(world):
    first = int(synthetic.split_seeds("test", 1, 10)[0])
    a, b = world.generate(first, 3, "test"), world.generate(first, 3, "test")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    c = world.generate(first + 3, 3, "test")
    assert not np.array_equal(a["pose"], c["pose"]) and not np.array_equal(a["images"], c["images"])
    np.testing.assert_array_equal(a["seed"], np.arange(first, first + 3))


def test_the_tensor_rasteriser_draws_the_same_batch(world, monkeypatch):
    """Where numba is missing (and on a GPU) the batch is drawn by tensor operations: the same images."""
    first = int(synthetic.split_seeds("test", 1, 60)[0])
    loops = world.generate(first, 4, "test")
    monkeypatch.setattr(synthetic_batch.raster, "_numba_available", lambda: False)
    tensors = world.generate(first, 4, "test")
    for key in loops:
        if key != "images":
            np.testing.assert_array_equal(loops[key], tensors[key], err_msg=key)
    differ = np.abs(loops["images"].astype(int) - tensors["images"].astype(int)).max(-1) > 2
    assert differ.sum() <= 40, differ.sum()  # a few outline pixels where a sample sits on an edge


def test_a_batch_outside_the_split_is_refused(world):
    low, high = constants.SYNTHETIC_SPLIT_SEEDS["test"]
    with pytest.raises(ValueError, match="not in split 'test'"):
        world.generate(high - 2, 4, "test")
    with pytest.raises(ValueError, match="num must be ≥ 1"):
        world.generate(low, 0, "test")


def test_batched_pieces_match_the_per_image_functions():
    generator = torch.Generator().manual_seed(0)
    hsv = torch.rand(200, 3, generator=generator, dtype=torch.float64)
    expected = torch.tensor([colorsys.hsv_to_rgb(*row) for row in hsv.tolist()], dtype=torch.float64)
    torch.testing.assert_close(synthetic_batch.hsv_to_rgb(hsv), expected, atol=1e-12, rtol=0)
    orient = torch.randn(5, 3, generator=generator, dtype=torch.float64)
    pitch, roll = torch.randn(5, generator=generator, dtype=torch.float64), torch.randn(5, generator=generator,
                                                                                      dtype=torch.float64)
    ours = synthetic_batch.camera_global_orient(orient, pitch, roll)
    for i in range(5):
        theirs = synthetic_camera.camera_global_orient(orient[i].numpy(), float(pitch[i]), float(roll[i]))
        torch.testing.assert_close(ours[i], torch.from_numpy(theirs), atol=1e-9, rtol=0)
    vertices = torch.randn(2, 30, 3, generator=generator, dtype=torch.float64)
    faces = torch.randint(30, (40, 3), generator=generator)
    normals = synthetic_batch.vertex_normals(vertices, faces)
    for i in range(2):
        np.testing.assert_allclose(normals[i].numpy(), synthetic.render.vertex_normals(vertices[i].numpy(),
                                                                                       faces.numpy()), atol=1e-12)


def test_camera_effects_on_a_cpu_equal_the_gather():
    generator = torch.Generator().manual_seed(5)
    images = torch.randint(0, 256, (5, 16, 16, 3), generator=generator, dtype=torch.uint8)
    table = torch.rand(5, 256, 3, generator=generator) * 300.0 - 20.0  # past both ends of 0-255
    rows, noise = torch.tensor([1, 3]), torch.randn(2, 16, 16, 3, generator=generator) * 4.0
    for args in ((rows, noise), (rows[:0], None)):
        expected = synthetic_batch._camera_effects_gather(images, table, *args)
        assert torch.equal(synthetic_batch._camera_effects_cpu(images, table, *args), expected)


def test_framing_puts_the_box_diagonal_where_it_says(world):
    generator = torch.Generator().manual_seed(1)
    vertices = torch.randn(64, 100, 2, generator=generator, dtype=torch.float64) * torch.tensor([0.3, 0.8])
    config = synthetic.SPLIT_CONFIGS["train"]
    cam, truncated, diagonal_px = synthetic_batch.frame_bodies(vertices, generator, config)
    projected = camera.weak_perspective_project(torch.cat((vertices, torch.zeros(64, 100, 1, dtype=torch.float64)),
                                                          -1), cam)
    pixels = camera.normalized_to_pixel(projected, constants.IMG_SIZE)
    box = pixels.amax(1) - pixels.amin(1)
    torch.testing.assert_close(box.norm(dim=1), diagonal_px, atol=1e-9, rtol=0)
    centre = (pixels.amax(1) + pixels.amin(1)) / 2 - constants.IMG_SIZE / 2
    assert (centre[~truncated].abs() <= config.translation_max + 1e-9).all()
    assert (centre[truncated].abs().amax(1) > config.translation_max).all()


def test_label_statistics_match_the_per_image_world(world):
    """Same distribution: on 48 images each, the label statistics agree within their sampling error.

    Each mean is compared with a tolerance of 4 standard errors of the difference (for a share p over n
    images, sqrt(2 p (1 - p) / n)); a generator that drew, say, cameras twice as far or no occluders fails.
    """
    num = 48
    old = synthetic.generate_batch(synthetic.split_seeds("train", num, 2000), "train",
                                   synthetic.SyntheticWorld("numpy"))
    new = {key: np.concatenate([world.generate(int(synthetic.split_seeds("train", 1, 3000 + k)[0]), 16, "train")[key]
                                for k in (0, 16, 32)]) for key in ("cam", "betas", "keypoints_2d", "truncated",
                                                                    "num_occluders", "archetype", "images", "pose")}

    def close(a, b, name):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        error = math.sqrt((a.var() + b.var()) / num) + 1e-9
        assert abs(a.mean() - b.mean()) < 4 * error, (name, a.mean(), b.mean(), error)

    close(old["cam"][:, 0], new["cam"][:, 0], "camera scale")
    close(old["betas"].mean(1), new["betas"].mean(1), "mean beta")
    close((old["betas"] ** 2).mean(1), (new["betas"] ** 2).mean(1), "beta variance")
    close(old["keypoints_2d"][..., 2].mean(1), new["keypoints_2d"][..., 2].mean(1), "visibility")
    close(old["truncated"], new["truncated"], "truncated")
    close(old["num_occluders"] > 0, new["num_occluders"] > 0, "occluded")
    close(np.abs(old["pose"][:, 3:]).mean(1), np.abs(new["pose"][:, 3:]).mean(1), "joint angles")
    close(old["images"].reshape(num, -1).mean(1), new["images"].reshape(num, -1).mean(1), "image brightness")
    close(old["images"].reshape(num, -1).std(1), new["images"].reshape(num, -1).std(1), "image contrast")


def test_write_split_batched_writes_shards_the_dataset_reads(tmp_path):
    report = synthetic_write.write_split(tmp_path, "test", 5, shard_size=4, progress=False, batched=True, chunk_size=4)
    assert report.num_images == 5 and len(report.written) == 2
    # one worker: start-up ends with the first task of 4 images; one image comes after it
    assert report.started_images == 4 and 0 < report.started_seconds <= report.seconds
    assert report.images_per_second_after_start_up > 0
    dataset = synthetic_shards.SyntheticDataset(tmp_path, "test")
    assert len(dataset) == 5 and dataset[4]["img"].shape == (3, constants.IMG_SIZE, constants.IMG_SIZE)


def test_on_the_fly_training_resumes_exactly(tmp_path, ctrl_c_at_step):
    """A run on the fly (no shards) stopped after step 3 and resumed ends exactly as a run that never stopped."""
    from hmr_core import train
    from hmr_core.config import make_config

    def config(name):
        return make_config("tiny_cpu", run_dir=str(tmp_path / name), data="synthetic_online", batch_size=2,
                           max_steps=5, log_every=1, ckpt_every=5, eval_every=5, eval_samples=4, num_workers=0,
                           encoder="resnet18", input_size=64, pose_pool_size=64)

    straight = train.train(config("a"))
    with ctrl_c_at_step(3), pytest.raises(KeyboardInterrupt, match="stopped at step 3"):
        train.train(config("b"))
    resumed = train.train(config("b"), resume=True)
    assert [h["step"] for h in resumed] == [h["step"] for h in straight] == [1, 2, 3, 4, 5]
    for a, b in zip(straight, resumed):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5), a["step"]
    assert straight[-1]["eval_samples"] == 4 and math.isfinite(straight[-1]["pa_mpjpe_mm"])
    assert straight[1]["loss"] != straight[2]["loss"]  # new images at every step


def test_write_cli_checks_arguments_before_drawing(tmp_path, capsys):
    file = tmp_path / "file"
    file.write_text("x")
    cases = [(["--out", str(file), "--num", "2"], "is a file"),
             (["--out", str(file / "sub"), "--num", "2"], "is a file"),
             (["--out", str(tmp_path / "a"), "--num", "-1"], "--num must be ≥ 1"),
             (["--out", str(tmp_path / "a"), "--num", "2", "--start", "-5"], "--start must be ≥ 0"),
             (["--out", str(tmp_path / "a"), "--num", "2", "--split", "test", "--start", "9999999"], "beyond"),
             (["--out", str(tmp_path / "a"), "--num", "2", "--backend", "torch"], "add --batched")]
    for args, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            synthetic_write.main(["write", *args])
        assert exit_info.value.code == 2, args
        assert message in capsys.readouterr().err, args
    assert not (tmp_path / "a").exists()
    # From the shell: one line of usage and the error, no traceback.
    result = subprocess.run([sys.executable, "-m", "hmr_core.synthetic", "write", *cases[0][0]], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and "is a file" in result.stderr and "Traceback" not in result.stderr


def test_growing_a_split_redoes_its_last_shard(tmp_path):
    synthetic_write.write_split(tmp_path, "test", 2, shard_size=10, backend="numpy", progress=False)
    first = synthetic_shards.read_shard_labels(tmp_path / "test_00000.npz")["seed"]
    report = synthetic_write.write_split(tmp_path, "test", 3, shard_size=10, backend="numpy", progress=False)
    labels = synthetic_shards.read_shard_labels(tmp_path / "test_00000.npz")
    assert report.num_images == 3 and len(labels["seed"]) == 3
    np.testing.assert_array_equal(labels["seed"][:2], first)


def test_a_killed_writers_temporary_files_are_removed(tmp_path, caplog):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".test_00000.npz.{dead.pid}.tmp"
    stale.write_bytes(b"\0" * 1000)
    alive = tmp_path / f".test_00000.npz.{os.getppid()}.tmp"  # a running process's file stays
    alive.write_bytes(b"\0")
    with caplog.at_level("INFO", logger="hmr_core.synthetic"):
        synthetic_write.write_split(tmp_path, "test", 1, backend="numpy", progress=False)
    assert not stale.exists() and alive.exists()
    assert str(stale) in caplog.text and "interrupted run" in caplog.text


def test_a_write_prints_no_opengl_shutdown_noise(tmp_path):
    result = subprocess.run([sys.executable, "-m", "hmr_core.synthetic", "write", "--out", str(tmp_path), "--num",
                             "1", "--split", "test"], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert "Platform import failed" not in result.stdout + result.stderr
    assert "1 shards written" in result.stdout
