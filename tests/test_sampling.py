import numpy as np
import pytest
import torch

from hmr_core.datasets import HMRDataset, write_fixture_dataset
from hmr_core.sampling import MixedBatchSampler, mixed_dataset


def test_each_batch_is_half_3d_half_2d():
    has_3d = np.array([True] * 10 + [False] * 30)
    sampler = MixedBatchSampler(has_3d, batch_size=8, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 8  # one pass over the 30 2D samples, 4 per batch
    for batch in batches:
        assert len(batch) == 8
        assert has_3d[batch[:4]].all() and not has_3d[batch[4:]].any()


def test_every_sample_is_used_before_any_repeats():
    has_3d = np.array([True] * 6 + [False] * 12)
    batches = list(MixedBatchSampler(has_3d, batch_size=4, num_batches=6, seed=1))
    first_2d = [i for b in batches[:6] for i in b[2:]]
    assert sorted(first_2d) == list(range(6, 18))  # 12 draws cover the 12 2D samples once
    first_3d = [i for b in batches[:3] for i in b[:2]]
    assert sorted(first_3d) == list(range(6))


def test_epochs_shuffle_differently_and_reproducibly():
    has_3d = np.arange(40) % 3 == 0
    sampler = MixedBatchSampler(has_3d, batch_size=6, seed=3)
    first = list(sampler)
    assert list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_fraction_and_empty_pools():
    has_3d = np.array([True] * 5 + [False] * 5)
    batch = next(iter(MixedBatchSampler(has_3d, batch_size=10, fraction_3d=0.2)))
    assert has_3d[batch].sum() == 2
    only_2d = next(iter(MixedBatchSampler(np.zeros(5, bool), batch_size=4, fraction_3d=0.0)))
    assert len(only_2d) == 4
    with pytest.raises(ValueError, match="3D pool is empty"):
        MixedBatchSampler(np.zeros(5, bool), batch_size=4)
    with pytest.raises(ValueError, match="fraction_3d"):
        MixedBatchSampler(has_3d, batch_size=4, fraction_3d=1.5)


def test_mixed_datasets_in_a_dataloader(tmp_path):
    path_3d = write_fixture_dataset(tmp_path, num_samples=4, image_size=64, with_3d=True, file_name="a.npz",
                                    image_folder="a")
    path_2d = write_fixture_dataset(tmp_path, num_samples=6, image_size=64, with_3d=False, file_name="b.npz",
                                    image_folder="b", seed=1)
    datasets = [HMRDataset(path_3d, tmp_path / "a", name="h36m"), HMRDataset(path_2d, tmp_path / "b", name="lsp")]
    dataset, sampler = mixed_dataset(datasets, batch_size=4, num_batches=3)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler)
    for batch in loader:
        assert batch["img"].shape == (4, 3, 224, 224)
        assert batch["has_3d"].tolist() == [1.0, 1.0, 0.0, 0.0]
        assert batch["has_smpl"].tolist() == [1.0, 1.0, 0.0, 0.0]
        assert batch["dataset"] == ["h36m", "h36m", "lsp", "lsp"]
