import math

import pytest

from hmr_core import bench_train


def test_train_bench_times_the_hmr_step_and_the_baseline_on_the_cpu(capsys, monkeypatch):
    """Tiny settings (batch 2, one warm-up and one timed step, random 64-pixel crops): both rows come back and print."""
    monkeypatch.setattr(bench_train, "BENCH_POSE_POOL_SIZE", 64)  # drawing the pool is set-up, not timed
    rows = bench_train.bench_train(batch_sizes=(2,), device="cpu", steps=1, warmup=1, data="random",
                                   baseline_batch_size=2, seed=0, image_size=64)  # small crops: quick on a CPU
    assert [(row.step, row.batch) for row in rows] == [("baseline", 2), ("HMR", 2)]
    for row in rows:
        assert math.isfinite(row.images_per_s) and row.images_per_s > 0, row
        assert math.isfinite(row.ms_per_step) and row.ms_per_step > 0, row
        assert math.isfinite(row.speedup) and row.speedup > 0, row
        assert math.isnan(row.peak_memory_gib)  # GPU memory only on CUDA
    assert rows[0].speedup == 1.0
    assert rows[1].speedup == pytest.approx(rows[1].images_per_s / rows[0].images_per_s, rel=1e-9)
    printed = capsys.readouterr().out
    assert "torch" in printed and "device CPU" in printed and "random tensors" in printed and "crops 64x64" in printed
    table = [words for words in map(str.split, printed.splitlines())
             if words[:1] in (["baseline"], ["HMR"]) and words[1].isdigit()]
    assert [line[:2] for line in table] == [["baseline", "2"], ["HMR", "2"]]
    assert all(float(line[2]) > 0 and float(line[3]) > 0 for line in table)


def test_train_bench_rejects_unknown_data():
    with pytest.raises(ValueError, match="'synthetic' or 'random'"):
        bench_train.bench_train(batch_sizes=(2,), device="cpu", data="imagenet")


def test_train_bench_keeps_synthetic_crops_at_their_size():
    with pytest.raises(ValueError, match="needs data='random'"):
        bench_train.bench_train(batch_sizes=(2,), device="cpu", data="synthetic", image_size=64)
