"""Mixed batches: half of every batch from images with 3D labels, half from 2D-only images (HMR, Sec. 4).

HMR's code keeps two input queues and builds each batch from both ("split_balanced": half 3D data,
half in-the-wild 2D data), so the scarce 3D labels weigh the same in every step however many 2D images
there are. ``MixedBatchSampler`` does the same for a ``ConcatDataset`` of ``HMRDataset``s: each batch's
first ``round(fraction_3d · batch_size)`` samples come from the 3D pool and the rest from the 2D pool;
each pool is walked through in a fresh random order, again and again, so every sample is used before
any repeats. The samples themselves say which labels they have (``has_3d``, ``has_smpl``, keypoint
visibility), and the losses mask with them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Sampler


class MixedBatchSampler(Sampler[list[int]]):
    """Batches of indices, a fixed share from the 3D pool and the rest from the 2D pool.

    Args:
        has_3d: (N,) bool per sample of the (concatenated) dataset: True where it has 3D labels.
        batch_size: samples per batch.
        num_batches: batches per epoch; None: enough for one pass over the larger pool.
        fraction_3d: share of each batch taken from the 3D pool (HMR: 0.5).
        seed: seed of the shuffles; ``set_epoch`` varies them per epoch.

    Raises:
        ValueError: for an empty pool that the batches need, or a bad batch size or fraction.
    """

    def __init__(self, has_3d: Sequence[bool] | np.ndarray, batch_size: int, num_batches: int | None = None,
                 fraction_3d: float = 0.5, seed: int = 0):
        has_3d = np.asarray(has_3d, dtype=bool)
        if has_3d.ndim != 1:
            raise ValueError(f"has_3d must be a (N,) array, got shape {has_3d.shape}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
        if not 0.0 <= fraction_3d <= 1.0:
            raise ValueError(f"fraction_3d must be in [0, 1], got {fraction_3d}")
        self.pool_3d = np.flatnonzero(has_3d)
        self.pool_2d = np.flatnonzero(~has_3d)
        self.batch_size = batch_size
        self.num_3d = int(round(fraction_3d * batch_size))
        self.num_2d = batch_size - self.num_3d
        for name, pool, need in (("3D", self.pool_3d, self.num_3d), ("2D-only", self.pool_2d, self.num_2d)):
            if need and len(pool) == 0:
                raise ValueError(f"the {name} pool is empty but each batch needs {need} samples from it; "
                                 "add a dataset with such labels or change fraction_3d")
        if num_batches is None:
            passes = [len(pool) / need for pool, need in ((self.pool_3d, self.num_3d), (self.pool_2d, self.num_2d)) if need]
            num_batches = max(1, int(np.ceil(max(passes))))
        self.num_batches = num_batches
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use a different shuffle for each epoch (call before iterating)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_batches

    def _stream(self, pool: np.ndarray, generator: torch.Generator) -> Iterator[int]:
        while True:
            for i in torch.randperm(len(pool), generator=generator).tolist():
                yield int(pool[i])

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        stream_3d = self._stream(self.pool_3d, generator) if self.num_3d else iter(())
        stream_2d = self._stream(self.pool_2d, generator) if self.num_2d else iter(())
        for _ in range(self.num_batches):
            yield [next(stream_3d) for _ in range(self.num_3d)] + [next(stream_2d) for _ in range(self.num_2d)]


def mixed_dataset(datasets: Sequence, batch_size: int, num_batches: int | None = None, fraction_3d: float = 0.5,
                  seed: int = 0) -> tuple[ConcatDataset, MixedBatchSampler]:
    """Concatenate datasets and make the balanced sampler over them.

    Args:
        datasets: ``HMRDataset``s (anything with ``__len__`` and a ``has_3d`` (len,) bool array).
        batch_size: samples per batch.
        num_batches: batches per epoch (see ``MixedBatchSampler``).
        fraction_3d: share of each batch with 3D labels.
        seed: shuffle seed.

    Returns:
        ``(dataset, sampler)``; use ``DataLoader(dataset, batch_sampler=sampler, ...)``.
    """
    has_3d = np.concatenate([np.asarray(d.has_3d, dtype=bool) for d in datasets])
    return ConcatDataset(datasets), MixedBatchSampler(has_3d, batch_size, num_batches, fraction_3d, seed)
