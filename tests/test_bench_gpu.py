"""The prepared GPU benchmark, in its quick mode on the CPU (as CI runs it)."""

import json
import math
import os
import subprocess
import sys

from hmr_core import bench


def test_quick_mode_runs_every_part_and_writes_json_and_markdown(tmp_path):
    out = tmp_path / "results"
    result = subprocess.run([sys.executable, "-m", "hmr_core.bench", "gpu", "--out", str(out), "--quick"],
                            capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((out / "gpu_bench.json").read_text())
    assert results["quick"] and results["device"].startswith("CPU") and results["versions"]["torch"]
    assert results["smpl"]["hmr_core_ms"] > 0 and results["smpl"]["smplx_ms"] > 0
    steps = [row for row in results["train_step"] if "skipped" not in row]
    assert [(row["step"], row["batch"]) for row in steps] == [("baseline", 2), ("HMR", 2)]
    assert steps[1]["bare_encoder_images_per_s"] > 0
    world = results["synthetic_world"]
    assert world["per_image_world_images_per_s"] > 0 and world["batched_world_images_per_s"] > 0
    assert world["batched_world_cpu_images_per_s"] > 0
    assert results["data_loader"]["online_synthetic_samples_per_s"] > 0
    run = results["training_run"]
    assert run["steps"] == 2 and run["eval_samples"] == 2 and math.isfinite(run["pa_mpjpe_mm"])
    report = (out / "gpu_bench.md").read_text()
    assert "quick mode" in report and results["date"] in report and "| fp32 | HMR | 2 |" in report
    assert "Platform import failed" not in result.stdout + result.stderr


def test_bench_refuses_sizes_that_cannot_be_timed(capsys):
    for args, message in ((["smpl", "--batch", "0"], "--batch-sizes must be ≥ 1"),
                          (["train", "--steps", "0"], "--steps must be ≥ 1"),
                          (["train", "--warmup", "-1"], "--warmup must be ≥ 0")):
        try:
            bench.main(args)
        except SystemExit as exit_info:
            assert exit_info.code == 2, args
        else:
            raise AssertionError(f"{args} was accepted")
        assert message in capsys.readouterr().err


def test_gpu_bench_refuses_a_file_as_its_folder(tmp_path):
    file = tmp_path / "file"
    file.write_text("x")
    assert bench.main(["gpu", "--out", str(file), "--quick"]) == 2
