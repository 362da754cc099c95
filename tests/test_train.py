import contextlib
import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch

from hmr_core import losses, train
from hmr_core.checkpoints import CHECKPOINT_NAME, CheckpointError, read_checkpoint
from hmr_core.config import TrainConfig, make_config
from hmr_core.datasets import HMRDataset, write_fixture_dataset
from hmr_core.loaders import StepBatchSampler, TrainingData
from hmr_core.pose_pool import PosePool

IMG = 64  # small crops keep ResNet-50 quick on a CPU


@pytest.fixture(scope="module")
def fixture_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    path_3d = write_fixture_dataset(root, num_samples=24, with_3d=True, file_name="with3d.npz", seed=1)
    path_2d = write_fixture_dataset(root, num_samples=24, with_3d=False, file_name="only2d.npz", seed=2)
    gen = torch.Generator().manual_seed(0)
    pool = PosePool(torch.randn(200, 72, generator=gen) * 0.2, torch.randn(200, 10, generator=gen))

    def make():
        train_set = torch.utils.data.ConcatDataset([HMRDataset(path_3d, root / "images", out_size=IMG),
                                                    HMRDataset(path_2d, root / "images", out_size=IMG)])
        return TrainingData(train_set, HMRDataset(path_3d, root / "images", augment=None, out_size=IMG), pool)

    return make


def tiny(tmp_path, **overrides):
    values = dict(run_dir=str(tmp_path / "run"), batch_size=4, max_steps=6, log_every=1,
                  ckpt_every=3, eval_every=6, eval_samples=8, num_workers=0, device="cpu", encoder_lr=1e-4)
    values.update(overrides)
    return make_config("tiny_cpu", **values)


def test_tiny_cpu_run_on_the_synthetic_world_lowers_the_loss(tmp_path):
    """The CI run: the tiny_cpu preset, end to end on the synthetic world, fits one batch.

    Four images without augmentation or dropout are seen at every step, so the whole model (encoder,
    IEF, SMPL, camera, losses, discriminator) must lower the reprojection loss steadily; on this CPU it
    fell from 0.175 to 0.023 in 40 steps (about 36 s).
    """
    from hmr_core.synthetic_write import write_split

    data_dir = tmp_path / "synthetic"
    write_split(data_dir, "train", 4, shard_size=4, backend="numpy", progress=False)
    write_split(data_dir, "test", 16, shard_size=16, backend="numpy", progress=False)
    config = make_config("tiny_cpu", run_dir=str(tmp_path / "run"), data_dir=str(data_dir), max_steps=40,
                         log_every=1, eval_every=40, ckpt_every=40, eval_samples=16, pose_pool_size=500,
                         augment=False, dropout=0.0, encoder_lr=3e-4, image_every=40)
    history = train.train(config)
    first = sum(h["kp_2d"] for h in history[:5]) / 5
    last = sum(h["kp_2d"] for h in history[-5:]) / 5
    assert last < 0.5 * first, (first, last)
    assert {"loss", "kp_2d", "joints_3d", "smpl", "adv_encoder", "disc", "d_out_real", "d_out_fake"} <= set(history[-1])
    assert history[-1]["pa_mpjpe_mm"] > 0 and history[-1]["eval_samples"] == 16
    run = tmp_path / "run"
    assert TrainConfig.from_json(run / "config.json") == config
    assert json.loads((run / "history.json").read_text())[-1]["step"] == 40
    ckpt = read_checkpoint(run / CHECKPOINT_NAME)
    assert ckpt["step"] == 40 and "disc_optimizer" in ckpt
    assert ckpt["hmr"]["regressor.init_theta"].shape == (85,)  # Θ_0 travels with the model
    assert any((run / "tensorboard").iterdir())


def test_example_overlays_show_every_iteration(fixture_data):
    import contextlib

    from hmr_core.body_model import SMPL
    from hmr_core.hmr import HMR

    data = fixture_data()
    batch = torch.utils.data.default_collate([data.eval_set[i] for i in range(2)])
    grid = train.example_overlays(HMR(num_iterations=3), SMPL(), batch, contextlib.nullcontext, num=2)
    assert grid.shape == (2 * IMG, 4 * IMG, 3) and grid.dtype.name == "uint8"
    assert grid[:, IMG:].std() > 0  # the mesh panels are drawn


def test_resume_reaches_the_same_state_as_an_uninterrupted_run(tmp_path, fixture_data, ctrl_c_at_step):
    straight = train.train(tiny(tmp_path / "a"), data=fixture_data())

    with ctrl_c_at_step(3), pytest.raises(KeyboardInterrupt, match="stopped at step 3"):
        train.train(tiny(tmp_path / "b"), data=fixture_data())
    assert read_checkpoint(tmp_path / "b" / "run" / CHECKPOINT_NAME)["step"] == 3
    resumed = train.train(tiny(tmp_path / "b"), resume=True, data=fixture_data())

    assert [h["step"] for h in resumed] == [h["step"] for h in straight]
    for a, b in zip(straight, resumed):
        for key in ("loss", "kp_2d", "disc"):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-7), (a["step"], key)
    for key in ("pa_mpjpe_mm", "mpjpe_mm"):
        assert straight[-1][key] == pytest.approx(resumed[-1][key], rel=1e-5)
    sa = read_checkpoint(tmp_path / "a" / "run" / CHECKPOINT_NAME)["hmr"]
    sb = read_checkpoint(tmp_path / "b" / "run" / CHECKPOINT_NAME)["hmr"]
    for key in sa:
        torch.testing.assert_close(sa[key], sb[key], atol=1e-5, rtol=1e-4)


def test_existing_run_is_not_overwritten(tmp_path, fixture_data):
    train.train(tiny(tmp_path, max_steps=1, eval_every=0), data=fixture_data())
    with pytest.raises(FileExistsError, match="--resume"):
        train.train(tiny(tmp_path, max_steps=1, eval_every=0), data=fixture_data())


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_checkpoint(tmp_path, fixture_data, monkeypatch):
    config = tiny(tmp_path, max_steps=6, ckpt_every=2, eval_every=0)
    real_loss = losses.keypoint_reprojection_loss
    calls = {"n": 0}

    def poisoned(*args):
        calls["n"] += 1
        value = real_loss(*args)
        return value * float("nan") if calls["n"] == 4 else value

    monkeypatch.setattr(losses, "keypoint_reprojection_loss", poisoned)
    with pytest.raises(train.TrainingDiverged, match=r"loss is nan.*step 4.*last good checkpoint \(step 2\) is kept"):
        train.train(config, data=fixture_data())
    assert read_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)["step"] == 2


def test_step_batches_are_balanced_disjoint_and_resumable():
    has_3d = [True] * 10 + [False] * 30
    full = list(StepBatchSampler(has_3d, 8, max_steps=12, seed=3))
    assert all(sum(i < 10 for i, _ in b) == 4 for b in full)  # half of each batch from the 3D pool
    assert list(StepBatchSampler(has_3d, 8, max_steps=12, start_step=5, seed=3)) == full[5:]
    # Ranks take disjoint slices of each pool's permutation (pools a multiple of the slices here, so no
    # slice straddles two epochs' permutations).
    has_3d_even = [True] * 16 + [False] * 32
    ranks = [list(StepBatchSampler(has_3d_even, 8, max_steps=4, seed=3, rank=r, world_size=2)) for r in range(2)]
    for step in range(4):
        assert not {i for i, _ in ranks[0][step]} & {i for i, _ in ranks[1][step]}
    # One epoch of the 2D pool (30 samples, 4 per batch) uses each sample once before any repeats.
    seen = [i for b in full[:8] for i, _ in b if i >= 10][:30]
    assert sorted(seen) == list(range(10, 40))


def test_config_presets_and_errors(tmp_path):
    assert make_config("synthetic_h100").batch_size == 256
    with pytest.raises(ValueError, match="unknown preset"):
        make_config("nope")
    with pytest.raises(ValueError, match=r"unknown config field\(s\) \['batchsize'\]"):
        make_config(batchsize=3)
    config = make_config("tiny_cpu", datasets=["lsp"])
    config.to_json(tmp_path / "c.json")
    assert TrainConfig.from_json(tmp_path / "c.json") == config


def test_losses_follow_the_official_code():
    # compute_3d_loss: 0.5 · mean over the present numbers; no ground truth gives 0.
    pred, gt = torch.zeros(2, 14, 3), torch.ones(2, 14, 3)
    gt[:, [2, 3]] = 0  # hips at the origin: the pelvis alignment leaves the others at 1
    assert losses.joints_3d_loss(pred, gt, torch.tensor([1.0, 0.0])) == pytest.approx(0.5 * 12 / 14)
    assert losses.joints_3d_loss(pred, gt, torch.zeros(2)) == 0
    rot = torch.eye(3).expand(2, 24, 3, 3)
    assert losses.smpl_param_loss(rot, torch.zeros(2, 10), torch.zeros(2, 72), torch.ones(2, 10),
                                  torch.ones(2)) == pytest.approx(0.5 * 10 / 226)
    d = torch.full((3, 25), 0.5)
    assert losses.encoder_adversarial_loss(d) == pytest.approx(25 * 0.25)
    real, fake = losses.discriminator_adversarial_losses(torch.ones(3, 25), torch.zeros(3, 25))
    assert real == 0 and fake == 0


def test_two_process_ddp_on_cpu(tmp_path, fixture_data):
    """torchrun with the gloo backend: both ranks train and rank 0 writes the run."""
    data_root = tmp_path / "fx"
    write_fixture_dataset(data_root, num_samples=16, with_3d=True, file_name="with3d.npz", seed=1)
    script = tmp_path / "ddp_run.py"
    script.write_text(f"""
import torch
from hmr_core import train
from hmr_core.config import make_config
from hmr_core.datasets import HMRDataset
from hmr_core.loaders import TrainingData
from hmr_core.pose_pool import PosePool
ds = HMRDataset({str(data_root / 'with3d.npz')!r}, {str(data_root / 'images')!r}, out_size={IMG})
pool = PosePool(torch.zeros(50, 72), torch.zeros(50, 10))
config = make_config("tiny_cpu", run_dir={str(tmp_path / 'ddp')!r}, batch_size=2, max_steps=2,
                     log_every=1, eval_every=0, num_workers=0, device="cpu")
train.train(config, data=TrainingData(ds, None, pool))
""")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                             "--master_port", "29517", str(script)], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    history = json.loads((tmp_path / "ddp" / "history.json").read_text())
    assert [h["step"] for h in history] == [1, 2]


def test_resume_from_a_corrupt_checkpoint_says_so(tmp_path, fixture_data):
    config = tiny(tmp_path, max_steps=1, eval_every=0)
    train.train(config, data=fixture_data())
    (tmp_path / "run" / CHECKPOINT_NAME).write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="checkpoint.pt is not a readable checkpoint"):
        train.train(config, resume=True, data=fixture_data())


def test_resume_without_a_checkpoint_says_what_to_do(tmp_path, fixture_data):
    config = tiny(tmp_path, max_steps=1, eval_every=0)
    (tmp_path / "run").mkdir()
    config.to_json(tmp_path / "run" / "config.json")
    with pytest.raises(FileNotFoundError, match="start the run without --resume"):
        train.train(config, resume=True, data=fixture_data())


def test_defaults_are_the_papers_setting():
    config = TrainConfig()
    # do_train.sh: --e_3d_weight 60 (both 3D terms); e_loss_weight 60; no weight decay in the losses.
    assert (config.kp_2d_weight, config.joints_3d_weight, config.smpl_weight, config.adv_weight) == (60, 60, 60, 1)
    assert config.encoder_weight_decay == 0 and config.disc_weight_decay == 0
    assert (config.encoder_lr, config.disc_lr, config.batch_size) == (1e-5, 1e-4, 64)


def test_initial_theta_is_hmrs_mean_param():
    gen = torch.Generator().manual_seed(0)
    pool = PosePool(torch.randn(50, 72, generator=gen), torch.randn(50, 10, generator=gen))
    theta = train.initial_theta(pool)
    assert_close = torch.testing.assert_close
    assert_close(theta[:3], torch.tensor([0.9, 0.0, 0.0]))
    assert_close(theta[3:6], torch.tensor([torch.pi, 0.0, 0.0]))
    assert_close(theta[6:75], pool.pose[:, 3:].mean(0))
    assert_close(theta[75:], pool.shape.mean(0))


def test_cosine_schedule_is_a_function_of_the_step():
    config = make_config(lr_schedule="cosine", max_steps=100, encoder_lr=1e-3)
    assert train.learning_rate_factor(config, 0) == 1.0
    assert train.learning_rate_factor(config, 50) == pytest.approx(0.5)
    assert train.learning_rate_factor(config, 100) == pytest.approx(0.0)
    assert train.learning_rate_factor(make_config(), 12345) == 1.0
    with pytest.raises(ValueError, match="lr_schedule must be"):
        train.learning_rate_factor(make_config(lr_schedule="step"), 1)


def test_discriminator_heads_are_logged_separately():
    scores = torch.cat((torch.full((6, 23), 0.2), torch.full((6, 1), 0.9), torch.full((6, 1), 0.5)), dim=1)
    log = train.discriminator_head_outputs(scores, "fake")
    assert log == pytest.approx({"d_fake_joints": 0.2, "d_fake_all_joints": 0.9, "d_fake_shape": 0.5})


def test_trains_efficientnet_lite0_with_frozen_blocks(tmp_path, fixture_data):
    history = train.train(tiny(tmp_path, encoder="efficientnet_lite0", encoder_frozen_blocks=3, max_steps=2,
                               eval_every=0, ckpt_every=2, train_init_theta=True, lr_schedule="cosine"),
                          data=fixture_data())
    assert len(history) == 2
    assert {"d_real_all_joints", "d_fake_all_joints", "d_real_shape", "d_fake_joints"} <= set(history[-1])
    ckpt = read_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)
    assert "_blocks.15._project_conv.weight" in {k.removeprefix("encoder.") for k in ckpt["hmr"]}
    with pytest.raises(ValueError, match="encoder_frozen_blocks is for encoder='efficientnet_lite0'"):
        train.train(tiny(tmp_path / "r18", encoder="resnet18", encoder_frozen_blocks=2), data=fixture_data())


class _FixedTheta(torch.nn.Module):
    """Stands in for HMR: predicts the same Θ for every image, for every IEF iteration."""

    def __init__(self, theta):
        super().__init__()
        self.register_buffer("theta", theta)

    def forward(self, images):
        return self.theta.expand(len(images), 3, -1)


def test_in_training_evaluation_of_a_perfect_prediction_is_zero_mm():
    """A batch laid out like SPIN's Human3.6M test files: an unlabelled joint sits at (0, 0, 0) with
    confidence 0. Predicting the labelled joints exactly must score 0 mm (the unmasked error was
    59.5 mm MPJPE here); the result matches ``python -m hmr_core.evaluate``'s masking."""
    from hmr_core.body_model import SMPL
    from hmr_core.hmr import predict_bodies
    from hmr_core.regressor import mean_theta

    smpl = SMPL()
    gen = torch.Generator().manual_seed(0)
    theta = mean_theta()
    theta[6:75] = 0.3 * torch.randn(69, generator=gen)
    joints = predict_bodies(theta.expand(4, 1, -1), smpl).joints_3d[:, 0]  # (4, 14, 3)
    gt = torch.cat((joints, torch.ones(4, 14, 1)), dim=-1)
    gt[:, 12] = 0.0  # the neck unlabelled: position 0, confidence 0
    batch = {"img": torch.zeros(4, 3, 8, 8), "joints_3d": gt, "has_3d": torch.ones(4),
             "has_smpl": torch.zeros(4), "pose": torch.zeros(4, 72), "betas": torch.zeros(4, 10)}
    result = train.evaluate(_FixedTheta(theta), smpl, [batch], torch.device("cpu"), contextlib.nullcontext, 8)
    assert result["eval_samples"] == 4
    assert result["mpjpe_mm"] == pytest.approx(0.0, abs=1e-3)
    assert result["pa_mpjpe_mm"] == pytest.approx(0.0, abs=1e-3)
    # The same prediction scored against all 14 joints, the unlabelled one at the origin, is far off.
    batch["joints_3d"] = torch.cat((gt[..., :3], torch.ones(4, 14, 1)), dim=-1)
    assert train.evaluate(_FixedTheta(theta), smpl, [batch], torch.device("cpu"), contextlib.nullcontext,
                          8)["mpjpe_mm"] > 10


def test_real_preset_trains_the_papers_55_epochs():
    from hmr_core.config import HMR_TRAIN_IMAGES, paper_steps

    config = make_config("real")
    # src/data_loader.py num_examples: 1,000 + 10,000 + 20,000 + 312,188 + 79,344 + 147,221 images.
    assert sum(HMR_TRAIN_IMAGES[d] for d in config.datasets) == 569_753
    assert config.max_steps == paper_steps(config.datasets) == 489_632  # ⌈55 · 569,753 / 64⌉
    assert config.max_steps * config.batch_size / 569_753 == pytest.approx(55, abs=1e-3)
    assert paper_steps(config.datasets, epochs=75) == 667_680  # do_train.sh's --epoch 75
    with pytest.raises(ValueError, match=r"no image count for \['3dpw'\]"):
        paper_steps(["lsp", "3dpw"])


def test_real_preset_refuses_to_start_without_imagenet_weights_and_a_pose_pool(tmp_path, capsys):
    config = make_config("real", run_dir=str(tmp_path / "run"))
    with pytest.raises(ValueError) as err:
        train.train(config)
    message = str(err.value)
    assert "imagenet_weights=" in message and "pose_pool=" in message
    assert "--set paper_inputs_required=false" in message
    assert not (tmp_path / "run").exists()  # refused before anything was written
    # The command line says the same and exits.
    with pytest.raises(SystemExit, match="paper_inputs_required=false"):
        train.main(["--preset", "real", "--run-dir", str(tmp_path / "run"), "--set", "pose_pool=pool.npz"])
    # With one input given, only the other is named.
    with pytest.raises(ValueError) as err:
        train.train(make_config("real", run_dir=str(tmp_path / "run"), pose_pool="pool.npz"))
    assert "imagenet_weights=" in str(err.value) and "pose_pool=" not in str(err.value)
    # Overridden, a real-data run warns on stderr and goes on (here, to the missing data).
    config = make_config("real", run_dir=str(tmp_path / "run2"), data_dir=str(tmp_path / "none"),
                         paper_inputs_required=False, pose_pool_size=10, device="cpu")
    with pytest.raises(ValueError, match="does not exist"):
        train.train(config)
    stderr = capsys.readouterr().err
    assert "WARNING: this real-data run lacks ImageNet weights for the resnet50 encoder" in stderr
    assert "WARNING: this real-data run lacks a mocap pose pool" in stderr


def test_real_data_ignores_spins_mpi_inf_3dhp_smpl_fits_unless_asked(tmp_path):
    """HMR had no SMPL labels for MPI-INF-3DHP; SPIN's file carries SMPLify fits as has_smpl."""
    from hmr_core.loaders import build_data

    extras = tmp_path / "dataset_extras"
    write_fixture_dataset(extras, num_samples=2, image_size=64, file_name="mpi_inf_3dhp_train.npz",
                          image_folder="../mpi_inf_3dhp")
    write_fixture_dataset(extras, num_samples=2, image_size=64, file_name="coco_2014_train.npz", image_folder="../coco")
    config = make_config(data="real", data_dir=str(tmp_path), datasets=["mpi_inf_3dhp", "coco"], pose_pool_size=8)
    mpi, other = build_data(config).train_set.datasets
    assert (mpi.annotations.has_smpl == 0).all() and mpi.has_3d.all()  # its 3D joints stay
    assert (other.annotations.has_smpl == 1).all()  # only MPI-INF-3DHP's fits are set aside
    mpi = build_data(dataclasses.replace(config, mpi_inf_3dhp_smpl_fits=True)).train_set.datasets[0]
    assert (mpi.annotations.has_smpl == 1).all()


def fast(tmp_path, **overrides):
    """``tiny`` with ResNet-18 and no evaluation: a step takes about a second on a CPU."""
    return tiny(tmp_path, **{"encoder": "resnet18", "eval_every": 0, "ckpt_every": 1, **overrides})


def test_resume_applies_the_changes_a_resume_may_make_and_refuses_the_rest(tmp_path, fixture_data):
    train.train(fast(tmp_path, max_steps=2), data=fixture_data())
    with pytest.raises(ValueError, match=r"already reached step 2 \(max_steps=2\).*--set max_steps=N"):
        train.train(fast(tmp_path), resume=True, data=fixture_data())
    with pytest.raises(ValueError, match=r"--resume cannot change \['encoder', 'seed'\]: they define the run"):
        train.train(fast(tmp_path), resume=True, data=fixture_data(), changes={"encoder": "resnet50", "seed": 3})
    with pytest.raises(ValueError, match=r"config field max_steps must be an integer"):
        train.train(fast(tmp_path), resume=True, data=fixture_data(), changes={"max_steps": "abc"})
    history = train.train(fast(tmp_path), resume=True, data=fixture_data(),
                          changes={"max_steps": 3, "encoder_lr": 2e-6, "encoder_weight_decay": 0.5})
    assert [h["step"] for h in history] == [1, 2, 3]
    saved = TrainConfig.from_json(tmp_path / "run" / "config.json")
    assert (saved.max_steps, saved.encoder_lr, saved.encoder_weight_decay) == (3, 2e-6, 0.5)
    groups = read_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)["encoder_optimizer"]["param_groups"]
    assert all(g["lr"] == 2e-6 and g["weight_decay"] == 0.5 for g in groups)


def test_resume_on_the_command_line_refuses_a_preset_and_fields_it_may_not_change(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    fast(tmp_path).to_json(run / "config.json")
    with pytest.raises(SystemExit, match="--preset has no effect with --resume"):
        train.main(["--preset", "tiny_cpu", "--run-dir", str(run), "--resume"])
    with pytest.raises(SystemExit, match=r"--resume cannot change \['batch_size'\]"):
        train.main(["--run-dir", str(run), "--resume", "--set", "batch_size=8"])
    with pytest.raises(SystemExit):  # the help lists the fields a resume may change
        train.main(["--help"])
    assert "may then change only max_steps, encoder_lr" in " ".join(capsys.readouterr().out.split())


def test_no_checkpoint_is_written_from_exploded_weights_and_the_advice_works(tmp_path, fixture_data):
    train.train(fast(tmp_path, max_steps=1), data=fixture_data())
    good = read_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)
    # Adam moves each weight by about the learning rate: 1e6 makes them explode in one update, while the
    # loss of that step (computed before the update) is still fine.
    with pytest.raises(train.TrainingDiverged, match=r"weights exploded.*after the update of step 2.*"
                                                     r"last good checkpoint \(step 1\) is kept.*--resume --set "
                                                     r"encoder_lr=100000 disc_lr=1e-05"):
        train.train(fast(tmp_path), resume=True, data=fixture_data(), changes={"max_steps": 3, "encoder_lr": 1e6})
    kept = read_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)
    assert kept["step"] == 1
    for key, value in kept["hmr"].items():
        torch.testing.assert_close(value, good["hmr"][key], atol=0, rtol=0)
    # What the message advises (a lower rate, through --resume --set) does take effect.
    history = train.train(fast(tmp_path), resume=True, data=fixture_data(), changes={"max_steps": 3, "encoder_lr": 1e-5})
    assert history[-1]["step"] == 3 and all(torch.isfinite(torch.tensor(h["loss"])) for h in history)
    ckpt = read_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)
    assert max(float(v.abs().max()) for v in ckpt["hmr"].values() if v.is_floating_point()) < 1e3


def test_divergence_before_any_checkpoint_says_to_start_again(tmp_path, fixture_data):
    with pytest.raises(train.TrainingDiverged, match=r"weights exploded.*step 1\. No checkpoint was written yet"):
        train.train(fast(tmp_path, max_steps=2, encoder_lr=1e6), data=fixture_data())
    assert not (tmp_path / "run" / CHECKPOINT_NAME).exists()


def test_a_run_directory_is_used_by_one_process_at_a_time(tmp_path, fixture_data):
    run = tmp_path / "run"
    with train.run_directory_lock(run):
        with pytest.raises(train.RunDirectoryBusy, match=rf"{run} is in use by a training process \(pid {os.getpid()}\)"):
            train.train(fast(tmp_path, max_steps=1), data=fixture_data())
    assert not (run / CHECKPOINT_NAME).exists()
    train.train(fast(tmp_path, max_steps=1), data=fixture_data())  # free again once the holder is done
    assert read_checkpoint(run / CHECKPOINT_NAME)["step"] == 1


class _PoisonedSample(torch.utils.data.Dataset):
    """A dataset whose sample 2 has a NaN keypoint, as a broken label file would give."""

    def __init__(self, dataset):
        self.dataset, self.has_3d = dataset, dataset.has_3d

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        sample = dict(self.dataset[index])
        if index == 2:
            sample["keypoints_2d"] = sample["keypoints_2d"].clone()
            sample["keypoints_2d"][0, 0] = float("nan")
        return sample


def test_broken_data_is_named_before_the_optimiser_is_blamed(tmp_path, fixture_data):
    from hmr_core.loaders import DataError

    data = fixture_data()
    data.train_set = _PoisonedSample(data.eval_set)
    with pytest.raises(DataError, match=r"batch of step \d+ holds NaN or infinite values in 'keypoints_2d' "
                                        r"\(samples \[2\].*the data is broken, not the training"):
        train.train(fast(tmp_path, max_steps=6, batch_size=8), data=data)
    data = fixture_data()
    data.pose_pool = PosePool(data.pose_pool.pose.clone(), data.pose_pool.shape.clone())
    data.pose_pool.pose[5, 7] = float("nan")
    with pytest.raises(DataError, match=r"the pose pool \(row 5\): 'pose' holds NaN"):
        train.train(fast(tmp_path / "pool", max_steps=1), data=data)


def test_nan_labels_in_a_synthetic_shard_name_the_shard(tmp_path):
    from hmr_core.loaders import DataError, TrainingData, check_training_data
    from hmr_core.synthetic_shards import SyntheticDataset
    from hmr_core.synthetic_write import write_split

    write_split(tmp_path, "train", 4, shard_size=2, backend="numpy", progress=False)
    dataset = SyntheticDataset(tmp_path, "train")
    pool = PosePool(torch.zeros(3, 72), torch.zeros(3, 10))
    check_training_data(TrainingData(dataset, None, pool))  # clean shards pass
    dataset.labels["betas"][3, 1] = float("nan")  # in the second shard
    with pytest.raises(DataError, match=rf"{dataset.paths[1]} \(sample 1\): 'betas' holds NaN"):
        check_training_data(TrainingData(dataset, None, pool))


def test_no_test_shards_are_needed_without_evaluation(tmp_path):
    from hmr_core.loaders import build_data
    from hmr_core.synthetic_write import write_split

    write_split(tmp_path / "data", "train", 2, shard_size=2, backend="numpy", progress=False)
    config = make_config("tiny_cpu", data_dir=str(tmp_path / "data"), pose_pool_size=10, eval_every=0)
    data = build_data(config)
    assert data.eval_set is None and len(data.train_set) == 2


@pytest.mark.parametrize("pair, message", [
    ("device=gpu", r"device must be 'auto' or a device such as \['cpu', 'cuda', 'mps'\].*got 'gpu'"),
    ("max_steps=abc", r"max_steps must be an integer ≥ 1.*got 'abc'"),
    ("ckpt_every=0", r"ckpt_every must be an integer ≥ 1, got 0"),
    ("device=[1]", r"device must be 'auto' or a device"),
    ("log_every=0", r"log_every must be an integer ≥ 1, got 0"),
    ("pose_pool_size=0", r"pose_pool_size must be an integer ≥ 1"),
    ("num_iterations=1000000000", r"num_iterations must be an integer ≥ 1 and ≤ 100"),
    ("input_size=200000", r"input_size must be an integer ≥ 32 and ≤ 1024"),
])
def test_bad_config_values_stop_before_any_work(tmp_path, pair, message):
    run = tmp_path / "run"
    with pytest.raises(SystemExit, match="error: config field " + message):
        train.main(["--preset", "tiny_cpu", "--run-dir", str(run), "--set", pair])
    assert not run.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the message on a machine without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match=r"error: device='cuda:0' but no GPU is visible; use --set device=cpu"):
        train.main(["--preset", "tiny_cpu", "--run-dir", str(tmp_path / "run"), "--set", "device=cuda:0"])


@pytest.mark.parametrize("content", [b"PK\x03\x04 truncated", None])
def test_bad_imagenet_weights_stop_before_any_work(tmp_path, content):
    weights = tmp_path / "weights.pth"
    if content is None:
        torch.save([torch.zeros(3)], weights)  # a list, not a state dict
    else:
        weights.write_bytes(content)
    config = make_config("tiny_cpu", run_dir=str(tmp_path / "run"), encoder="resnet18", data_dir=str(tmp_path / "none"),
                         imagenet_weights=str(weights))
    with pytest.raises(ValueError, match=r"weights\.pth (could not be read as a state dict|holds a list)"):
        train.train(config)  # the data directory does not exist either: the weights are checked first
