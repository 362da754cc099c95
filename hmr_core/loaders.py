"""What the trainer reads: image batches that survive ``--resume`` exactly, and the pose pool.

Every training batch is a function of (seed, step, rank) alone: ``StepBatchSampler`` walks fixed
per-epoch permutations of each pool (3D-labelled and 2D-only, half of each batch from each as in HMR),
and each sample carries its own augmentation seed. A run resumed at step k therefore sees the very same
batches, augmentations included, as a run that never stopped (chapter "Training").
"""

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from hmr_core import constants
from hmr_core.config import TrainConfig
from hmr_core.pose_pool import PosePool


def _seed(*numbers: int) -> int:
    """A 63-bit seed from integers (Python's tuple hash of ints does not change between runs)."""
    return hash(numbers) % 2**63


class StepBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches of (index, augmentation seed) for steps ``start_step`` … ``max_steps - 1``.

    Each pool is read in a permutation that depends only on (seed, epoch); the batch of step s on rank r
    takes the next ``need`` positions after ``(s · world_size + r) · need``, so ranks never share
    samples in a step, every sample is used once per epoch of its pool, and resuming is exact.

    Args:
        has_3d: (N,) bool, which samples have 3D labels.
        batch_size: samples per batch on this rank.
        max_steps: the last step (exclusive).
        start_step: the first step (a resumed run's step).
        seed: run seed.
        rank: this process's rank.
        world_size: number of processes.
        fraction_3d: share of each batch from the 3D pool when both pools exist (HMR: 0.5).
    """

    def __init__(self, has_3d, batch_size: int, max_steps: int, start_step: int = 0, seed: int = 0,
                 rank: int = 0, world_size: int = 1, fraction_3d: float = 0.5):
        has_3d = np.asarray(has_3d, dtype=bool)
        pools = [np.flatnonzero(has_3d), np.flatnonzero(~has_3d)]
        if len(pools[0]) and len(pools[1]):
            num_3d = int(round(fraction_3d * batch_size))
            self.parts = [(pools[0], num_3d), (pools[1], batch_size - num_3d)]
        else:
            self.parts = [(pools[0] if len(pools[0]) else pools[1], batch_size)]
        if not len(self.parts[0][0]):
            raise ValueError("the dataset is empty")
        self.max_steps, self.start_step = max_steps, start_step
        self.seed, self.rank, self.world_size = seed, rank, world_size

    def __len__(self) -> int:
        return max(0, self.max_steps - self.start_step)

    def _take(self, pool: np.ndarray, start: int, count: int, part: int) -> list[int]:
        out = []
        while count:
            epoch, offset = divmod(start, len(pool))
            order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(_seed(self.seed, part, epoch)))
            chunk = order[offset: offset + count].tolist()
            out += [int(pool[i]) for i in chunk]
            start, count = start + len(chunk), count - len(chunk)
        return out

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start_step, self.max_steps):
            batch = []
            for part, (pool, need) in enumerate(self.parts):
                if need:
                    batch += self._take(pool, (step * self.world_size + self.rank) * need, need, part)
            yield [(index, _seed(self.seed, step, self.rank, slot)) for slot, index in enumerate(batch)]


class SeededSamples(Dataset):
    """Wraps a dataset so ``dataset[(index, seed)]`` augments with its own seed, wherever it runs.

    The datasets draw their augmentation from torch's global generator; here that generator is seeded
    per sample inside ``fork_rng``, so neither the worker nor the main process's state is disturbed.
    """

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        index, seed = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[index]

    def __getitems__(self, keys: list[tuple[int, int]]) -> list:
        """A whole batch at once (torch's loader calls this): a dataset that draws batches gets all keys."""
        if hasattr(self.dataset, "getitems_seeded"):
            return self.dataset.getitems_seeded(keys)
        return [self[key] for key in keys]


def has_3d_labels(dataset: Dataset) -> np.ndarray:
    """(N,) bool per sample: the dataset's ``has_3d`` array, concatenated through ``ConcatDataset``."""
    if hasattr(dataset, "has_3d"):
        return np.asarray(dataset.has_3d, dtype=bool)
    if hasattr(dataset, "datasets"):
        return np.concatenate([has_3d_labels(d) for d in dataset.datasets])
    return np.ones(len(dataset), dtype=bool)


class HiddenLabels(Dataset):
    """A dataset whose samples marked ``hidden`` come without 3D labels: ``has_3d`` and ``has_smpl`` are 0,
    and ``joints_3d``, ``pose`` and ``betas`` are zeros, so no loss can read them. Images and 2D keypoints
    are unchanged (the "unpaired" setting of HMR, Sec. 4.3, on the same images).

    Args:
        dataset: samples as ``hmr_core.datasets.Sample`` dicts.
        hidden: (N,) bool, the samples to serve without 3D labels.
    """

    def __init__(self, dataset: Dataset, hidden: np.ndarray):
        hidden = np.asarray(hidden, dtype=bool)
        if hidden.shape != (len(dataset),):
            raise ValueError(f"hidden must be ({len(dataset)},) for this dataset, got {hidden.shape}")
        self.dataset, self.hidden = dataset, hidden

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def has_3d(self) -> np.ndarray:
        """(N,) bool: the sample still has 3D labels (what the batch sampler balances)."""
        return has_3d_labels(self.dataset) & ~self.hidden

    def __getitem__(self, index: int):
        sample = self.dataset[index]
        if not self.hidden[index]:
            return sample
        return {**sample, "joints_3d": torch.zeros_like(sample["joints_3d"]), "pose": torch.zeros_like(sample["pose"]),
                "betas": torch.zeros_like(sample["betas"]), "has_3d": torch.zeros_like(sample["has_3d"]),
                "has_smpl": torch.zeros_like(sample["has_smpl"])}


def hide_3d_labels(dataset: Dataset, fraction: float, seed: int = 0) -> Dataset:
    """``dataset`` with the 3D labels of ``round(fraction · N)`` samples hidden (``HiddenLabels``).

    Which samples lose them depends only on (seed, N), so every epoch, and a resumed run, hides the same
    ones; a fraction of 0 returns ``dataset`` itself.

    Raises:
        ValueError: for a fraction outside [0, 1].
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"hide_3d_fraction must be in [0, 1], got {fraction}")
    if fraction == 0.0:
        return dataset
    hidden = np.zeros(len(dataset), dtype=bool)
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(_seed(seed, 13))).numpy()
    hidden[order[:round(fraction * len(dataset))]] = True
    return HiddenLabels(dataset, hidden)


def make_loader(dataset: Dataset, config: TrainConfig, start_step: int = 0, rank: int = 0, world_size: int = 1,
                evaluation: bool = False) -> DataLoader:
    """The training loader (resumable batches) or, with ``evaluation``, a plain ordered loader.

    Args:
        dataset: samples as ``hmr_core.datasets.Sample`` dicts.
        config: batch size, workers, seed, number of steps.
        start_step: first step of this (resumed) run.
        rank: this process's rank; world_size: number of processes.
        evaluation: ordered batches of the whole dataset, no per-step seeds.
    """
    workers = config.num_workers
    # A generator of its own: creating the loader's iterator then draws nothing from the global one,
    # whose state a checkpoint restores (dropout uses it).
    common = dict(num_workers=workers, pin_memory=torch.cuda.is_available(), persistent_workers=workers > 0,
                  prefetch_factor=4 if workers > 0 else None, generator=torch.Generator().manual_seed(config.seed))
    if workers > 0 and getattr(dataset, "spawn_workers", False):
        # A dataset that renders with OpenGL: a forked worker would inherit the parent's context and hang.
        common["multiprocessing_context"] = "spawn"
    if evaluation:
        return DataLoader(dataset, batch_size=config.batch_size, shuffle=False, **common)
    sampler = StepBatchSampler(has_3d_labels(dataset), config.batch_size, config.max_steps, start_step,
                               config.seed, rank, world_size)
    return DataLoader(SeededSamples(dataset), batch_sampler=sampler, **common)


@dataclass
class TrainingData:
    """Everything a run reads: the training and evaluation sets and the discriminator's pose pool."""

    train_set: Dataset
    eval_set: Dataset | None
    pose_pool: PosePool


def build_pose_pool(config: TrainConfig) -> PosePool:
    """The "real" poses for the discriminator: a mocap pool file, or the pose prior (synthetic world)."""
    from hmr_core.pose_pool import load_pose_pool
    from hmr_core.pose_prior import sample_poses

    if config.pose_pool:
        return load_pose_pool(config.pose_pool)
    generator = torch.Generator().manual_seed(_seed(config.seed, 7))
    samples = sample_poses(config.pose_pool_size, generator)
    betas = torch.randn(config.pose_pool_size, constants.NUM_BETAS, generator=generator)
    return PosePool(samples.pose_with_global_orient(), betas)


def build_data(config: TrainConfig) -> TrainingData:
    """The datasets and pool that ``config`` names.

    Raises:
        FileNotFoundError: if the synthetic shards or a real dataset are missing (the message says how to
            make or get them).
    """
    pose_pool = build_pose_pool(config)
    if config.data == "synthetic":
        from hmr_core.augment import AugmentConfig
        from hmr_core.synthetic_shards import SyntheticDataset

        augment = AugmentConfig() if config.augment else None
        # The test split is read only when the run evaluates (eval_every > 0).
        evaluation = SyntheticDataset(config.data_dir, "test", augment=None) if config.eval_every else None
        return TrainingData(SyntheticDataset(config.data_dir, "train", augment=augment), evaluation, pose_pool)
    if config.data == "synthetic_online":
        from hmr_core.augment import AugmentConfig
        from hmr_core.synthetic_batch import GeneratedSplit, OnTheFlySynthetic

        augment = AugmentConfig() if config.augment else None
        evaluation = GeneratedSplit("test", config.eval_samples, config.batch_size) if config.eval_every else None
        return TrainingData(OnTheFlySynthetic("train", augment=augment), evaluation, pose_pool)
    if config.data == "real":
        from torch.utils.data import ConcatDataset

        from hmr_core.datasets import open_dataset

        if not config.datasets:
            raise ValueError("data='real' needs datasets=(...), e.g. --set 'datasets=[\"lsp\", \"h36m\"]'")
        augment = {} if config.augment else {"augment": None}
        train = ConcatDataset([open_dataset(name, config.data_dir, "train", skip_bad_samples=True, **augment,
                                            use_smpl_labels=name != "mpi_inf_3dhp" or config.mpi_inf_3dhp_smpl_fits)
                               for name in config.datasets])
        # Human3.6M protocol 2 (S9 and S11, frontal camera, first trial; see docs/evaluation.md) for periodic
        # evaluation.
        evaluation = (open_dataset("h36m", config.data_dir, "test_p2", augment=None)
                      if "h36m" in config.datasets and config.eval_every else None)
        return TrainingData(train, evaluation, pose_pool)
    raise ValueError(f"data must be 'synthetic', 'synthetic_online' or 'real', got {config.data!r}")


class DataError(ValueError):
    """Training data holds values no model can learn from (NaN or infinite labels); the file is named."""


def _check_labels(labels: dict, where) -> None:
    """Raise ``DataError`` for a non-finite value in any float array of ``labels``, naming ``where(row)``."""
    for key, array in labels.items():
        array = np.asarray(array)
        if not np.issubdtype(array.dtype, np.floating):
            continue
        finite = np.isfinite(array.reshape(len(array), -1)).all(axis=1) if len(array) else np.ones(0, bool)
        if not finite.all():
            row = int(np.argmin(finite))
            raise DataError(f"{where(row)}: '{key}' holds NaN or infinite values ({int((~finite).sum())} rows); "
                            "the data is broken, not the training: re-create or remove it")


def check_training_data(data: TrainingData) -> None:
    """Check the labels of the synthetic shards and the pose pool before training starts, so that broken
    data is named instead of showing up as a diverged loss.

    (The real datasets mark rows with non-finite labels when they read them; see ``datasets``.)

    Raises:
        DataError: naming the shard (or pose pool) and the array.
    """
    pool = data.pose_pool
    if len(pool.pose) == 0:
        raise DataError("the pose pool is empty; the discriminator needs real poses (pose_pool_size ≥ 1, or a "
                        "pose_pool file with rows)")
    _check_labels({"pose": pool.pose.numpy(), "shape": pool.shape.numpy()}, lambda row: f"the pose pool (row {row})")
    for dataset in (data.train_set, data.eval_set):
        if dataset is None:
            continue
        parts = dataset.datasets if hasattr(dataset, "datasets") else [dataset]
        for part in parts:
            labels, paths, starts = (getattr(part, k, None) for k in ("labels", "paths", "shard_start"))
            if labels is None or paths is None or starts is None:
                continue
            for shard, path in enumerate(paths):  # synthetic shards: name the file
                rows = slice(int(starts[shard]), int(starts[shard + 1]))
                _check_labels({k: v[rows] for k, v in labels.items()}, lambda row, path=path: f"{path} (sample {row})")


def check_batch_finite(batch: dict, step: int) -> None:
    """Raise ``DataError`` if a batch's images or labels hold NaN or infinite values, naming the samples.

    Args:
        batch: a collated batch (``datasets.Sample`` keys).
        step: the step, for the message.
    """
    for key, value in batch.items():
        if not torch.is_tensor(value) or not value.is_floating_point():
            continue
        finite = torch.isfinite(value.reshape(len(value), -1)).all(dim=1).cpu()
        if not finite.all():
            rows = torch.nonzero(~finite).flatten().tolist()
            index = batch["index"][rows].tolist() if "index" in batch else rows
            names = [batch["dataset"][r] for r in rows] if "dataset" in batch else []
            raise DataError(f"the batch of step {step} holds NaN or infinite values in '{key}' (samples {index} of "
                            f"{sorted(set(names)) or 'the dataset'}); the data is broken, not the training")


def sample_pose_pool(pool: PosePool, num: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``num`` random (pose (num, 72), betas (num, 10)) rows of the pool."""
    rows = torch.randint(len(pool.pose), (num,), generator=generator)
    return pool.pose[rows], pool.shape[rows]
