import json

import numpy as np
import pytest
import torch

from hmr_core import ablate
from hmr_core.checkpoints import export_weights, load_model, read_checkpoint
from hmr_core.config import make_config


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from hmr_core.synthetic_write import write_split

    root = tmp_path_factory.mktemp("synthetic")
    write_split(root, "train", 8, shard_size=8, backend="numpy", progress=False)
    write_split(root, "test", 4, shard_size=4, backend="numpy", progress=False)
    write_split(root, "ood", 4, shard_size=4, backend="numpy", progress=False)
    return root


def small_base(data_dir, **overrides):
    settings = dict(data_dir=str(data_dir), encoder="resnet18", input_size=64, batch_size=4, max_steps=2,
                    log_every=1, eval_every=0, ckpt_every=2, pose_pool_size=200)
    return make_config("tiny_cpu", **{**settings, **overrides})


def test_variants_differ_from_the_base_in_what_they_name(tmp_path):
    base = make_config("synthetic_h100")
    two_d = ablate.variant_config(base, "2d_only", tmp_path)
    # the 3D labels are hidden in the data; the objective's weights stay those of the base
    assert (two_d.hide_3d_fraction, two_d.adversarial) == (1.0, True)
    assert (two_d.joints_3d_weight, two_d.smpl_weight) == (base.joints_3d_weight, base.smpl_weight)
    assert ablate.variant_config(base, "single_iteration", tmp_path).num_iterations == 1
    assert not ablate.variant_config(base, "no_adversarial", tmp_path).adversarial
    for name in ablate.VARIANTS:
        config = ablate.variant_config(base, name, tmp_path)
        assert (config.max_steps, config.batch_size, config.encoder) == (base.max_steps, base.batch_size, base.encoder)
        assert config.run_dir == str(tmp_path / name)
    with pytest.raises(ValueError, match="unknown variant 'no_prior'"):
        ablate.variant_config(base, "no_prior", tmp_path)


def test_ablation_trains_evaluates_writes_results_and_resumes(tmp_path, data_dir):
    out = tmp_path / "ablations"
    summary = ablate.run_ablation(small_base(data_dir), out, ["full", "single_iteration"], eval_workers=0)
    assert [(r["variant"], r["split"]) for r in summary["rows"]] == [
        ("full", "test"), ("full", "ood"), ("single_iteration", "test"), ("single_iteration", "ood")]
    assert summary["budget"] == {"steps": 2, "batch_size": 4, "images": 8}
    for row in summary["rows"]:
        assert row["pa_mpjpe_mm"] > 0 and 0 <= row["limit_violation_rate"] <= 1
    record = json.loads((out / "single_iteration.json").read_text())
    assert record["overrides"] == {"num_iterations": 1}
    assert len(record["results"]["test"]["per_iteration"]["pa_mpjpe_mm"]) == 1  # T = 1
    assert read_checkpoint(out / "full")["step"] == 2
    assert json.loads((out / "summary.json").read_text())["rows"] == summary["rows"]
    table = ablate.format_summary(summary)
    assert "| full | test |" in table and "| Θ_0 (mean body) | ood |" in table
    assert summary["command"] is None and all(r["steps"] == 2 for r in summary["rows"])
    log = summary["late_training_log"]
    assert set(log["full"]) == set(ablate.LOG_FIELDS) and log["full"]["joints_3d"] > 0
    for row in summary["rows"]:  # per image, in split order, averaging to the row's numbers
        assert len(row["samples"]["pa_mpjpe_mm"]) == row["num_samples"] == 4
        assert abs(np.mean(row["samples"]["pa_mpjpe_mm"]) - row["pa_mpjpe_mm"]) < 0.1
    assert all(len(r["per_iteration"]["pa_mpjpe_mm"]) == (1 if r["variant"] == "single_iteration" else 3)
               for r in summary["rows"])
    sessions = record["train_sessions"]
    assert [(s["from_step"], s["to_step"]) for s in sessions] == [(0, 2)] and record["train_seconds"] > 0
    # A second call finds both variants trained: nothing is trained again, the numbers are the same.
    mtime = (out / "full" / "checkpoint.pt").stat().st_mtime_ns
    again = ablate.run_ablation(small_base(data_dir), out, ["full", "single_iteration"], eval_workers=0)
    assert (out / "full" / "checkpoint.pt").stat().st_mtime_ns == mtime
    assert json.loads((out / "full.json").read_text())["train_seconds"] == summary["train_seconds"]["full"]
    assert again["rows"] == summary["rows"]
    # The chapter's figure: per image a row over the crop and a row of side views, a column per variant.
    grid = ablate.prediction_grid(out, data_dir, ["full", "single_iteration"], indices=(0, 1), size=32)
    assert grid.shape == (4 * 32, 3 * 32, 3) and grid.dtype == np.uint8
    crop = grid[:32, :32]
    for column in (1, 2):
        assert (grid[:32, 32 * column: 32 * (column + 1)] != crop).any()  # a mesh over the crop
        assert (grid[32:64, 32 * column: 32 * (column + 1)] != 255).any()  # a body seen from the side


def test_a_rerun_continues_to_a_larger_budget_or_refuses(tmp_path, data_dir):
    out = tmp_path / "ablations"
    ablate.run_ablation(small_base(data_dir), out, ["full"], splits=["test"], eval_workers=0)
    # A constant learning rate: the run is continued to 4 steps, and the summary says 4 because it is 4.
    summary = ablate.run_ablation(small_base(data_dir, max_steps=4), out, ["full"], splits=["test"], eval_workers=0)
    assert summary["budget"]["steps"] == 4 and [r["steps"] for r in summary["rows"]] == [4]
    assert read_checkpoint(out / "full")["step"] == 4
    record = json.loads((out / "full.json").read_text())
    assert record["step"] == 4
    assert [(s["from_step"], s["to_step"]) for s in record["train_sessions"]] == [(0, 2), (2, 4)]
    assert json.loads((out / "full" / "config.json").read_text())["max_steps"] == 4
    # Fewer steps than trained, another setting, or a cosine schedule that ended: refused, nothing touched.
    with pytest.raises(ValueError, match="trained 4 steps, more than the 2 asked"):
        ablate.run_ablation(small_base(data_dir), out, ["full"], splits=["test"], eval_workers=0)
    with pytest.raises(ValueError, match="seed=0 \\(asked: 1\\).*another experiment"):
        ablate.run_ablation(small_base(data_dir, max_steps=4, seed=1), out, ["full"], splits=["test"],
                            eval_workers=0)
    cosine = tmp_path / "cosine"
    ablate.run_ablation(small_base(data_dir, lr_schedule="cosine"), cosine, ["full"], splits=["test"],
                        eval_workers=0)
    with pytest.raises(ValueError, match="cosine schedule ends at its own max_steps \\(2\\)"):
        ablate.run_ablation(small_base(data_dir, lr_schedule="cosine", max_steps=4), cosine, ["full"],
                            splits=["test"], eval_workers=0)
    assert read_checkpoint(cosine / "full")["step"] == 2
    assert json.loads((cosine / "summary.json").read_text())["budget"]["steps"] == 2


def test_2d_only_trains_on_the_same_images_without_their_3d_labels(tmp_path, data_dir):
    from hmr_core.loaders import StepBatchSampler, has_3d_labels, hide_3d_labels
    from hmr_core.synthetic_shards import SyntheticDataset

    train = SyntheticDataset(data_dir, "train")
    hidden = hide_3d_labels(train, 1.0, seed=0)
    assert not has_3d_labels(hidden).any() and has_3d_labels(train).all()
    sample, original = hidden[3], train[3]
    assert (float(sample["has_3d"]), float(sample["has_smpl"])) == (0.0, 0.0)
    for key in ("joints_3d", "pose", "betas"):
        assert not sample[key].any() and original[key].any()
    torch.testing.assert_close(sample["keypoints_2d"], original["keypoints_2d"])
    # the batch sampler draws the same images in the same order with or without the labels
    assert list(StepBatchSampler(has_3d_labels(hidden), 4, 3)) == list(StepBatchSampler(has_3d_labels(train), 4, 3))
    half = hide_3d_labels(train, 0.5, seed=0)
    assert has_3d_labels(half).sum() == 4
    assert hide_3d_labels(train, 0.0) is train
    with pytest.raises(ValueError, match=r"hide_3d_fraction must be in \[0, 1\], got 1.5"):
        hide_3d_labels(train, 1.5)
    # trained, the 2D-only variant's 3D losses are 0 (no sample has a label) while the full model's are not
    out = tmp_path / "ablations"
    for name in ("full", "2d_only"):
        ablate.train_variant(ablate.variant_config(small_base(data_dir), name, out))
    logs = {name: json.loads((out / name / "history.json").read_text()) for name in ("full", "2d_only")}
    assert all(h["joints_3d"] == 0.0 and h["smpl"] == 0.0 and h["kp_2d"] > 0 for h in logs["2d_only"])
    assert all(h["joints_3d"] > 0.0 and h["smpl"] > 0.0 for h in logs["full"])


def test_exported_weights_are_small_and_predict_the_same(tmp_path, data_dir):
    out = tmp_path / "ablations"
    ablate.run_ablation(small_base(data_dir), out, ["full"], splits=["test"], eval_workers=0)
    small = export_weights(out / "full", tmp_path / "small.pt")
    assert small.stat().st_size < 0.4 * (out / "full" / "checkpoint.pt").stat().st_size
    full, half = load_model(out / "full"), load_model(small)
    assert half.step == full.step == 2 and half.config == full.config
    images = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(half.hmr(images), full.hmr(images), atol=2e-2, rtol=0)

