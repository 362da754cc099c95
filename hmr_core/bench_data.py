"""Data loading's speed: ``python -m hmr_core.bench data``, augmented samples per second.

``data`` measures how many augmented training samples per second a torch DataLoader delivers from
data in the standard preprocessed format (``hmr_core.datasets``): random-noise JPEGs and a SPIN-format
``.npz`` written to a temporary folder, read, cropped, augmented and batched as in training.
"""

import datetime
import time

import torch

from hmr_core import constants
from hmr_core.bench import _cpu_name


def bench_data(num_images=2000, workers=None, batch_size=64, image_size=256, seed=0):
    """Print augmented samples per second from a DataLoader over a fixture dataset, per worker count.

    Args:
        num_images: images written to the temporary dataset (random-noise JPEGs, ``image_size`` square).
        workers: DataLoader worker counts to try; None: ``[os.cpu_count()]``.
        batch_size: samples per batch.
        image_size: side of the images in pixels.
        seed: seed of the fixture data and of the shuffling.

    Returns:
        A list of ``(workers, samples_per_second, startup_seconds)``.
    """
    import os
    import tempfile

    from hmr_core.augment import AugmentConfig
    from hmr_core.datasets import HMRDataset, write_fixture_dataset

    workers = [os.cpu_count() or 1] if workers is None else list(workers)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        path = write_fixture_dataset(tmp, num_images, image_size, with_3d=True, seed=seed)
        written = time.perf_counter() - start
        dataset = HMRDataset(path, os.path.join(tmp, "images"), augment=AugmentConfig())
        print(f"# data loading, {datetime.date.today()}, {_cpu_name()}, {os.cpu_count()} logical CPUs, "
              f"torch {torch.__version__}, torch threads {torch.get_num_threads()}")
        print(f"{num_images} JPEGs of {image_size}x{image_size} (written in {written:.1f} s), crops of "
              f"{constants.IMG_SIZE}, batch {batch_size}, full augmentation (scale, shift, rotation, flip, colour)")
        print(f"{'workers':>7} {'samples/s':>10} {'start-up s':>11}")
        for num_workers in workers:
            loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers,
                                                 generator=torch.Generator().manual_seed(seed))
            start = time.perf_counter()
            batches = iter(loader)
            next(batches)  # the first batch pays for starting the workers
            startup = time.perf_counter() - start
            start, count = time.perf_counter(), 0
            for batch in batches:
                count += batch["img"].shape[0]
            rate = count / (time.perf_counter() - start)
            rows.append((num_workers, rate, startup))
            print(f"{num_workers:>7} {rate:>10.0f} {startup:>11.2f}")
    return rows
