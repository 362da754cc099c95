import dataclasses
import json

import pytest
import torch
from torch.testing import assert_close

from hmr_core import constants, evaluate, evaluate_run
from hmr_core.body_model import SMPL
from hmr_core.checkpoints import CHECKPOINT_NAME, CheckpointError, load_model
from hmr_core.camera import normalized_to_pixel
from hmr_core.config import make_config
from hmr_core.hmr import HMR, predict_bodies
from hmr_core.joint_limits import joint_limit_violations
from hmr_core.metrics import mpjpe, pa_mpjpe, pck2d, pck3d, pck3d_auc, per_joint_error, root_align
from hmr_core.rotation import axis_angle_to_matrix
from hmr_core.self_contact import body_capsules, self_penetration

NUM = 8  # test images; ResNet-50 on 8 crops takes a few seconds on a CPU


def save_checkpoint(path, hmr, model_name, config=None, drop=()):
    """A checkpoint with the keys ``hmr_core.train`` writes (an untrained network: no training here)."""
    config = config or make_config("tiny_cpu")
    state = {"hmr": hmr.state_dict(), "disc": {}, "encoder_optimizer": {}, "disc_optimizer": {},
             "config": json.dumps(dataclasses.asdict(config)), "step": 7, "rng": [], "history": "[]",
             "model_name": model_name}
    torch.save({k: v for k, v in state.items() if k not in drop}, path)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from hmr_core.synthetic_write import write_split

    root = tmp_path_factory.mktemp("eval")
    torch.manual_seed(0)
    smpl = SMPL()
    hmr = HMR(num_iterations=3)
    (root / "run").mkdir()
    save_checkpoint(root / "run" / CHECKPOINT_NAME, hmr, smpl.model_name)
    write_split(root / "synthetic", "test", NUM, shard_size=NUM, backend="numpy", progress=False)
    return root


@pytest.fixture(scope="module")
def loaded(run):
    return load_model(run / "run", "cpu")


def test_load_model_restores_the_checkpoint(run, loaded):
    assert loaded.step == 7 and loaded.path == run / "run" / CHECKPOINT_NAME
    assert loaded.model_name == loaded.smpl.model_name and loaded.config.num_iterations == 3
    assert not loaded.hmr.training
    saved = torch.load(loaded.path, weights_only=True)["hmr"]
    for key, value in loaded.hmr.state_dict().items():
        assert torch.equal(value, saved[key]), key


def test_numbers_equal_a_direct_computation_with_metrics(run, loaded):
    from hmr_core.synthetic_shards import SyntheticDataset

    dataset = SyntheticDataset(run / "synthetic", "test")
    capsules = body_capsules(loaded.smpl)
    loader = torch.utils.data.DataLoader(dataset, batch_size=4)  # two batches: accumulation is tested too
    result = evaluate.evaluate_dataset(loaded.hmr, loaded.smpl, loader, "test", capsules=capsules)
    assert (result.num_samples, result.num_3d, result.num_2d) == (NUM, NUM, NUM)

    batch = torch.utils.data.default_collate([dataset[i] for i in range(NUM)])
    with torch.no_grad():
        pred = predict_bodies(loaded.hmr(batch["img"]), loaded.smpl)
    gt = batch["joints_3d"][..., :3] * 1000.0
    kp_gt = batch["keypoints_2d"][:, :14]
    kp_gt_px = torch.cat((normalized_to_pixel(kp_gt[..., :2]), kp_gt[..., 2:]), dim=-1)
    tol = dict(atol=2e-2, rtol=1e-4)  # batches of 4 and of 8 round differently in the convolutions
    for t in range(3):
        joints = pred.joints_3d[:, t] * 1000.0
        hips = evaluate.LSP_HIPS
        assert_close(result.mpjpe_mm[t], mpjpe(joints, gt, root=hips).mean().item(), **tol)
        assert_close(result.pa_mpjpe_mm[t], pa_mpjpe(joints, gt).mean().item(), **tol)
        direct_per_joint = per_joint_error(root_align(joints, hips), root_align(gt, hips)).mean(0)
        assert_close(torch.from_numpy(result.per_joint_mm[t]).float(), direct_per_joint, **tol)
        assert_close(result.pck3d[t], pck3d(joints, gt, 150.0, root=hips).mean().item(), atol=1e-6, rtol=0)
        assert_close(result.pck3d_auc[t], pck3d_auc(joints, gt, root=hips).mean().item(), atol=1e-6, rtol=0)
        keypoints = normalized_to_pixel(pred.keypoints_2d[:, t, :14])
        assert_close(result.pck2d_010[t], pck2d(keypoints, kp_gt_px, 0.1 * constants.IMG_SIZE).mean().item(),
                     atol=1e-6, rtol=0)
        assert_close(result.pck2d_005[t], pck2d(keypoints, kp_gt_px, 0.05 * constants.IMG_SIZE).mean().item(),
                     atol=1e-6, rtol=0)
        outside = joint_limit_violations(pred.pose[:, t])
        assert_close(result.limit_violation_rate[t], (outside > 0).double().mean().item(), atol=1e-9, rtol=0)
        assert_close(result.joints_outside_limits[t], outside.double().mean().item(), atol=1e-6, rtol=0)
        penetrating = self_penetration(pred.pose[:, t], capsules)
        assert_close(result.self_penetration_rate[t], penetrating.double().mean().item(), atol=1e-9, rtol=0)
        root_angle = evaluate.rotation_angle_deg(pred.rotmats[:, t, 0], axis_angle_to_matrix(batch["pose"][:, :3]))
        assert_close(result.root_angle_median_deg[t], root_angle.median().item(), atol=1e-2, rtol=0)
        assert_close(result.root_angle_mean_deg[t], root_angle.mean().item(), atol=1e-2, rtol=0)
    assert (result.sample_pa_mpjpe_mm <= result.sample_mpjpe_mm + 1e-3).all()
    assert (result.pa_mpjpe_mm <= result.mpjpe_mm + 1e-3).all()
    assert result.final()["mpjpe_mm"] == pytest.approx(float(result.mpjpe_mm[-1]))
    # The mean body Θ_0: the same numbers for the regressor's starting point, on every image.
    theta_0 = loaded.hmr.regressor.init_theta.expand(NUM, 1, -1)
    mean_body = predict_bodies(theta_0, loaded.smpl)
    joints = mean_body.joints_3d[:, 0] * 1000.0
    assert result.mean_body["pa_mpjpe_mm"] == pytest.approx(pa_mpjpe(joints, gt).mean().item(), abs=2e-2)
    assert result.mean_body["mpjpe_mm"] == pytest.approx(mpjpe(joints, gt, root=evaluate.LSP_HIPS).mean().item(),
                                                         abs=2e-2)
    assert set(result.mean_body) == set(evaluate.EvalResult.PER_ITERATION)


def test_rotation_angle_is_the_geodesic_distance():
    axis = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    angles = torch.tensor([0.0, 90.0, 180.0])
    rot = axis_angle_to_matrix(axis * torch.deg2rad(angles)[:, None])
    base = axis_angle_to_matrix(torch.tensor([[0.3, -0.2, 0.5]])).expand(3, 3, 3)
    assert_close(evaluate.rotation_angle_deg(base, base @ rot), angles, atol=1e-3, rtol=0)
    # Samples without SMPL labels have no root error.
    pose = torch.zeros(2, 72)
    errors = evaluate.root_rotation_error(torch.eye(3).expand(2, 1, 24, 3, 3), pose, torch.tensor([1.0, 0.0]))
    assert errors.shape == (1, 2) and errors[0, 0] == 0 and torch.isnan(errors[0, 1])


def test_partially_labelled_joints_are_measured_on_the_labelled_ones():
    """A joint with confidence 0 is left out: those samples are measured on 13 joints, the others 14."""
    gen = torch.Generator().manual_seed(0)
    pred = torch.randn(5, 2, 14, 3, generator=gen)  # (N, T, J, 3)
    gt = torch.randn(5, 14, 3, generator=gen)
    confidence = torch.ones(5, 14)
    confidence[:2, 13] = 0  # no head top in the first two samples
    errors = evaluate.joint_errors(pred, gt, confidence)
    hips = evaluate.LSP_HIPS
    assert_close(errors.mpjpe[1, :2], mpjpe(pred[:2, 1, :13] * 1000, gt[:2, :13] * 1000, root=hips))
    assert_close(errors.pa_mpjpe[1, :2], pa_mpjpe(pred[:2, 1, :13] * 1000, gt[:2, :13] * 1000))
    assert_close(errors.mpjpe[0, 2:], mpjpe(pred[2:, 0] * 1000, gt[2:] * 1000, root=hips))
    assert torch.isnan(errors.per_joint[:, :2, 13]).all() and not torch.isnan(errors.per_joint[:, 2:]).any()


def test_ground_truth_from_smpl_labels_when_there_are_no_3d_joints(loaded):
    """3DPW in SPIN's files has θ, β but no 3D joints: the body model gives them."""
    pose = torch.zeros(2, 72)
    pose[:, 0] = torch.pi
    batch = {"joints_3d": torch.zeros(2, 14, 4), "has_3d": torch.zeros(2), "has_smpl": torch.tensor([1.0, 0.0]),
             "pose": pose, "betas": torch.zeros(2, 10)}
    joints, confidence = evaluate.ground_truth_joints(batch, loaded.smpl)
    with torch.no_grad():
        expected = loaded.smpl(betas=batch["betas"][:1], pose=pose[:1]).keypoints[0, :14]
    assert_close(joints[0], expected)
    assert (confidence[0] == 1).all() and (confidence[1] == 0).all()


def test_command_line_prints_tables_and_writes_the_documented_json(run, capsys):
    out = run / "results.json"
    evaluate_run.main(["--checkpoint", str(run / "run"), "--data-dir", str(run / "synthetic"), "--splits", "test",
                   "--device", "cpu", "--workers", "0", "--batch-size", "4", "--max-samples", "4", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "protocol:" in printed and "per IEF iteration: test" in printed and "PA-MPJPE" in printed
    data = json.loads(out.read_text())
    assert {"checkpoint", "step", "model_name", "device", "date", "protocol", "joint_names", "units",
            "results"} <= set(data)
    assert data["step"] == 7 and data["checkpoint"].endswith(CHECKPOINT_NAME)
    test = data["results"]["test"]
    assert test["num_samples"] == 4
    assert set(test["final"]) == set(evaluate.EvalResult.PER_ITERATION)
    assert all(len(v) == 3 for v in test["per_iteration"].values())
    assert list(test["per_joint_mm"]) == list(constants.LSP_JOINT_NAMES)
    assert test["final"]["pa_mpjpe_mm"] <= test["final"]["mpjpe_mm"]
    assert set(test["mean_body"]) == set(evaluate.EvalResult.PER_ITERATION)
    assert "test Θ_0" in printed and "root°" in printed


def test_missing_checkpoint_says_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_model(tmp_path / "nope.pt")
    with pytest.raises(FileNotFoundError, match="has no checkpoint.pt"):
        load_model(tmp_path)
    with pytest.raises(SystemExit, match="error: no checkpoint"):
        evaluate_run.main(["--checkpoint", str(tmp_path / "nope.pt"), "--data-dir", str(tmp_path)])


def test_checkpoint_missing_keys_are_named(tmp_path, loaded):
    path = save_checkpoint(tmp_path / "c.pt", loaded.hmr, loaded.model_name, drop=("config", "model_name"))
    with pytest.raises(CheckpointError, match=r"missing key\(s\) \['config', 'model_name'\]"):
        load_model(path)


def test_checkpoint_of_another_body_model_is_refused(tmp_path, loaded):
    path = save_checkpoint(tmp_path / "c.pt", loaded.hmr, "SMPL_NEUTRAL")
    with pytest.raises(CheckpointError, match="'SMPL_NEUTRAL'.*--model-path"):
        load_model(path)


def test_weights_that_do_not_fit_are_named(tmp_path, loaded):
    torch.save({"hmr": {k: v for k, v in loaded.hmr.state_dict().items() if k != "regressor.fc1.weight"},
                "config": json.dumps(dataclasses.asdict(loaded.config)), "step": 1, "model_name": loaded.model_name},
               tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match=r"missing \['regressor.fc1.weight'\]"):
        load_model(tmp_path / "c.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="text.pt is not a readable checkpoint"):
        load_model(tmp_path / "text.pt")


def test_empty_data_is_an_error(tmp_path, loaded):
    from hmr_core.annotations import DatasetError

    with pytest.raises(ValueError, match="no samples"):
        evaluate.evaluate_dataset(loaded.hmr, loaded.smpl, [], "empty", capsules=body_capsules(None))
    with pytest.raises(DatasetError, match="no 'test' shards"):
        evaluate_run.evaluation_sets("synthetic", tmp_path, ["test"])
    with pytest.raises(ValueError, match="no test protocol for dataset 'mpii'"):
        evaluate_run.evaluation_sets("real", tmp_path, datasets=["mpii"])


def test_command_line_checks_out_before_evaluating(run, tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("the evaluation ran before the arguments were checked")

    monkeypatch.setattr(evaluate_run, "evaluate_checkpoint", never)
    common = ["--checkpoint", str(run / "run"), "--data-dir", str(run / "synthetic"), "--splits", "test"]
    with pytest.raises(SystemExit, match=r"error: --out .* is a directory; give the JSON file to write"):
        evaluate_run.main(common + ["--out", str(tmp_path)])
    with pytest.raises(SystemExit, match=r"error: --batch-size must be ≥ 1, got 0"):
        evaluate_run.main(common + ["--batch-size", "0"])
    with pytest.raises(SystemExit, match=r"error: --workers must be ≥ 0, got -1"):
        evaluate_run.main(common + ["--workers", "-1"])


def test_a_missing_image_read_in_a_worker_is_one_clear_line(run, tmp_path, capsys):
    from hmr_core.datasets import write_fixture_dataset

    root = tmp_path / "real"
    (root / "dataset_extras").mkdir(parents=True)
    write_fixture_dataset(root, num_samples=4, image_size=64, with_3d=False, file_name="dataset_extras/lsp_dataset_test.npz",
                          image_folder="lsp_dataset")
    (root / "lsp_dataset" / "im00002.jpg").unlink()
    with pytest.raises(SystemExit) as caught:
        evaluate_run.main(["--checkpoint", str(run / "run"), "--data", "real", "--data-dir", str(root), "--datasets",
                       "lsp", "--device", "cpu", "--workers", "1", "--batch-size", "2"])
    message = str(caught.value)
    assert message.startswith("error: ") and message.endswith("im00002.jpg does not exist"), message
    assert "Traceback" not in message and "worker" not in message and len(message.splitlines()) == 1
