"""The synthetic world's speed: ``python -m hmr_core.bench synthetic``, images per second.

``synthetic`` measures how many synthetic-world images per second ``synthetic_write.write_split`` generates,
renders and writes, per generator (one image at a time, or ``synthetic_batch.BatchedWorld``'s batches),
render backend and worker count, all in the same run.
"""

import datetime

import torch

from hmr_core import constants
from hmr_core.bench import _backend_starts, _cpu_name


def bench_synthetic(num_images=96, workers=(1, 2), backends=("numpy", "pyrender", "torch"), seed_start=0,
                    generators=("per_image", "batched"), chunk_size=32):
    """Print synthetic-world images generated and written per second, per generator, render backend and workers.

    Runs ``synthetic_write.write_split`` (generation, rendering and shard writing, worker start-up included)
    into a temporary folder for each setting: "per_image" is ``synthetic.SyntheticWorld``, "batched" is
    ``synthetic_batch.BatchedWorld`` (``write_split(batched=True)``). The "torch" backend (``raster``,
    whole batches at once) is the batched world's only; it skips the per-image generator. A second rate
    counts from the moment every worker has delivered its first task (``WriteReport.started_seconds``).
    Settings take turns in one run, so a change in the machine's load touches them alike. A backend that
    cannot start here is reported and skipped. The load average before and after is printed: on a shared
    machine it says how far the numbers are from an idle one.

    Args:
        num_images: images per setting.
        workers: worker-process counts to try.
        backends: render backends to try ("numpy", "pyrender", "torch").
        seed_start: index in the train split of the first image.
        generators: "per_image" and / or "batched".
        chunk_size: images per task (per batch for "batched").

    Returns:
        A list of ``(generator, backend, workers, images_per_second)``.
    """
    import os
    import tempfile

    from hmr_core import synthetic_write

    print(f"# synthetic world, {datetime.date.today()}, {_cpu_name()}, {os.cpu_count()} logical CPUs, "
          f"torch {torch.__version__}, load average {os.getloadavg()[0]:.1f}")
    print(f"{num_images} train images of {constants.IMG_SIZE}x{constants.IMG_SIZE} per setting, shards of 32, "
          f"tasks of {chunk_size} images, worker start-up included")
    print(f"{'generator':>9} {'backend':>9} {'workers':>7} {'images/s':>9} {'after start-up':>14}")
    rows = []
    for backend in backends:
        if backend != "torch" and not _backend_starts(backend):  # "torch" needs nothing to start
            continue
        for num_workers in workers:
            for generator in generators:
                if backend == "torch" and generator == "per_image":
                    continue
                with tempfile.TemporaryDirectory() as tmp:
                    report = synthetic_write.write_split(tmp, "train", num_images, shard_size=32, workers=num_workers,
                                                         backend=backend, start=seed_start, progress=False,
                                                         chunk_size=chunk_size, batched=generator == "batched")
                rate = report.num_images / report.seconds
                steady = report.images_per_second_after_start_up
                rows.append((generator, backend, num_workers, rate))
                start_up = "" if report.started_seconds is None else f"  (start-up {report.started_seconds:.1f} s)"
                print(f"{generator:>9} {backend:>9} {num_workers:>7} {rate:>9.1f} "
                      f"{'-' if steady is None else f'{steady:.1f}':>14}{start_up}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return rows


def add_synthetic_parser(sub) -> None:
    """The ``synthetic`` subcommand of ``python -m hmr_core.bench``."""
    synthetic = sub.add_parser("synthetic", help="synthetic-world images generated per second")
    synthetic.add_argument("--num-images", type=int, default=96)
    synthetic.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    synthetic.add_argument("--backends", nargs="+", choices=["numpy", "pyrender", "torch"],
                           default=["numpy", "pyrender", "torch"])
    synthetic.add_argument("--generators", nargs="+", choices=["per_image", "batched"],
                           default=["per_image", "batched"])
    synthetic.add_argument("--chunk-size", type=int, default=32, help="images per worker task (per batch if batched)")
