"""Benchmarks that print numbers: ``python -m hmr_core.bench smpl|data|synthetic|encoder|train|redraw|gpu``.

This module is the command line and what the benchmarks share (the CPU's name, interleaved timing);
each benchmark lives in its own module:

- ``smpl`` (``bench_smpl``): one forward + backward pass of ``hmr_core``'s SMPL against ``smplx``'s;
- ``data`` (``bench_data``): augmented training samples per second from a DataLoader;
- ``synthetic`` (``bench_synthetic``): synthetic-world images generated and written per second;
- ``encoder`` (``bench_encoder``): forward + backward of each image encoder, images per second;
- ``train`` (``bench_train``): HMR's full training step against a SPIN-style baseline;
- ``redraw`` (``bench_redraw``): one redraw of the chapters' live sliders, in milliseconds;
- ``gpu`` (``bench_gpu``): every measurement a GPU machine must make, in one command.

Results go to ``docs/benchmarks.md`` by hand, with device and date.
"""

import argparse
import platform
import statistics
import sys
import time

import torch


def _time(fns, repeats: int, device: torch.device) -> list[float]:
    """Median wall time in milliseconds of each function, after warm-up.

    The functions take turns, repeat after repeat, so a change in machine load during the run (other
    processes on a shared machine) affects all of them alike and their ratio stays fair.
    """
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for fn in fns:
        for _ in range(3):
            fn()
    sync()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times):
            start = time.perf_counter()
            fn()
            sync()
            out.append((time.perf_counter() - start) * 1e3)
    return [statistics.median(t) for t in times]


def _cpu_name() -> str:
    """The CPU's model name (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _backend_starts(backend: str) -> bool:
    """Whether ``render``'s backend can start here; if not, print a line that says why (a benchmark skips it)."""
    from hmr_core import render

    try:
        render.available_backend(backend)
    except RuntimeError as err:
        print(f"{backend:>9} unavailable: {err}")
        return False
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m hmr_core.bench", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    smpl = sub.add_parser("smpl", help="SMPL forward+backward: hmr_core vs smplx")
    smpl.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    smpl.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 192])
    smpl.add_argument("--repeats", type=int, default=20)
    data = sub.add_parser("data", help="augmented samples per second from a DataLoader over fixture data")
    data.add_argument("--num-images", type=int, default=2000)
    data.add_argument("--workers", type=int, nargs="+", default=None, help="worker counts (default: os.cpu_count())")
    data.add_argument("--batch-size", type=int, default=64)
    data.add_argument("--image-size", type=int, default=256)
    encoder = sub.add_parser("encoder", help="image encoders' forward+backward, images per second")
    encoder.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    encoder.add_argument("--batch-size", type=int, default=32)
    encoder.add_argument("--repeats", type=int, default=5)
    from hmr_core import bench_data, bench_encoder, bench_gpu, bench_redraw, bench_smpl, bench_synthetic, bench_train

    bench_synthetic.add_synthetic_parser(sub)
    bench_train.add_train_parser(sub)
    bench_redraw.add_redraw_parser(sub)
    bench_gpu.add_parser(sub)
    args = parser.parse_args(argv)
    check_args(parser, args)
    if args.what == "gpu":
        return bench_gpu.main_from_args(args)
    if args.what == "encoder":
        bench_encoder.bench_encoder(batch_size=args.batch_size, repeats=args.repeats, device=args.device)
    if args.what == "synthetic":
        bench_synthetic.bench_synthetic(args.num_images, args.workers, args.backends, generators=args.generators,
                        chunk_size=args.chunk_size)
    if args.what == "smpl":
        bench_smpl.bench_smpl(args.batch_sizes, args.device, args.repeats)
    if args.what == "data":
        bench_data.bench_data(args.num_images, args.workers, args.batch_size, args.image_size)
    if args.what == "train":
        bench_train.bench_train_from_args(args)
    if args.what == "redraw":
        bench_redraw.bench_redraw(args.sizes, args.backends, args.redraws, args.repeats)


def check_args(parser: argparse.ArgumentParser, args) -> None:
    """Refuse sizes that cannot be timed before any work starts (``parser.error`` exits with status 2)."""
    positive = {"batch_sizes": "--batch-sizes", "repeats": "--repeats", "num_images": "--num-images",
                "workers": "--workers", "batch_size": "--batch-size", "image_size": "--image-size", "steps": "--steps",
                "num_workers": "--num-workers", "baseline_batch_size": "--baseline-batch-size",
                "chunk_size": "--chunk-size", "redraws": "--redraws", "sizes": "--sizes"}
    for name, flag in positive.items():
        value = getattr(args, name, None)
        values = value if isinstance(value, list) else [value]
        if value is not None and any(v < 1 for v in values):
            if name == "workers" and args.what == "data" and all(v >= 0 for v in values):
                continue  # the data loader may run in the main process
            if name == "num_workers" and value >= 0:
                continue
            parser.error(f"{flag} must be ≥ 1, got {value}")
    if getattr(args, "warmup", 0) < 0:
        parser.error(f"--warmup must be ≥ 0, got {args.warmup}")


if __name__ == "__main__":
    sys.exit(main())
