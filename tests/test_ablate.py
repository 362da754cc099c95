import json

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
    return make_config("tiny_cpu", data_dir=str(data_dir), encoder="resnet18", input_size=64, batch_size=4,
                       max_steps=2, log_every=1, eval_every=0, ckpt_every=2, pose_pool_size=200, **overrides)


def test_variants_differ_from_the_base_in_what_they_name(tmp_path):
    base = make_config("synthetic_h100")
    two_d = ablate.variant_config(base, "2d_only", tmp_path)
    assert (two_d.joints_3d_weight, two_d.smpl_weight, two_d.adversarial) == (0.0, 0.0, True)
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
    assert "| full | test |" in ablate.format_summary(summary)
    # A second call finds both variants trained: nothing is trained again, the numbers are the same.
    again = ablate.run_ablation(small_base(data_dir), out, ["full", "single_iteration"], eval_workers=0)
    assert json.loads((out / "full.json").read_text())["train_seconds_this_session"] == 0.0
    assert again["rows"] == summary["rows"]


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

