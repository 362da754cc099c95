"""One prepared benchmark of everything that needs a GPU: ``python -m hmr_core.bench gpu --out DIR``.

In one command it measures, each against its baseline in the same run:

1. SMPL forward+backward at batch 192, ``hmr_core`` against ``smplx`` (``bench_smpl.bench_smpl``);
2. the HMR training step (``bench_train.bench_train``: the trainer's encoder and discriminator steps) at
   batch 64 and 256 in fp32, in bf16 + channels-last, and with ``torch.compile`` added, against the
   SPIN-style step that ``bench_train`` times in the same run and a bare encoder step (ResNet-50 forward,
   backward and Adam, with the same precision and memory layout);
3. the synthetic world's images per second: ``synthetic.SyntheticWorld`` (one image at a time) against
   ``synthetic_batch.BatchedWorld`` (batches), in this process;
4. the data loader's samples per second with all cores: the trainer's loader drawing the synthetic world
   on the fly (``data='synthetic_online'``), and ``bench_data.bench_data`` over JPEGs;
5. a short training run on on-the-fly synthetic data, with its evaluation.

It writes ``DIR/gpu_bench.json`` (every number) and ``DIR/gpu_bench.md`` (a table), both with device,
date and versions. ``--quick`` runs every part with tiny sizes on the CPU, to check the script itself in
well under two minutes (CI runs it); its numbers measure nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import io
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hmr_core import constants


@dataclasses.dataclass(frozen=True)
class GpuBenchSizes:
    """How much each part does; ``FULL`` fits in about 8 minutes on one H100 / H200, ``QUICK`` checks the script."""

    smpl_batch: int = 192
    smpl_repeats: int = 20
    train_batches: tuple[int, ...] = (64, 256)
    train_steps: int = 30
    train_warmup: int = 5  # compilation happens here
    train_image_size: int = constants.IMG_SIZE
    train_encoder: str = "resnet50"
    train_pose_pool: int = 1000
    compile: bool = True
    synthetic_old_images: int = 32
    synthetic_batched_images: int = 256
    synthetic_batch: int = 64
    loader_batches: int = 10
    loader_batch_size: int = 64
    loader_workers: int | None = None  # None: os.cpu_count()
    jpeg_images: int = 2000
    run_steps: int = 200
    run_batch_size: int = 64
    run_encoder: str = "resnet50"
    run_input_size: int = constants.IMG_SIZE
    run_eval_samples: int = 256
    run_workers: int | None = None  # None: os.cpu_count()


FULL = GpuBenchSizes()
QUICK = GpuBenchSizes(smpl_batch=8, smpl_repeats=2, train_batches=(2,), train_steps=1, train_warmup=1,
                      train_image_size=64, train_encoder="resnet18", train_pose_pool=64, compile=False,
                      synthetic_old_images=2, synthetic_batched_images=4, synthetic_batch=4, loader_batches=2,
                      loader_batch_size=2, loader_workers=1, jpeg_images=8, run_steps=2, run_batch_size=2,
                      run_encoder="resnet18", run_input_size=64, run_eval_samples=2, run_workers=0)


def versions() -> dict[str, str]:
    """Versions of Python and the packages whose speed is measured."""
    import importlib.metadata

    out = {"python": platform.python_version(), "torch": torch.__version__}
    for name in ("numpy", "smplx", "pyrender", "pyrender-maintained", "PyOpenGL"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    out["cuda"] = torch.version.cuda or "none"
    return out


def bare_encoder_step(batch_size: int, device: torch.device, bf16: bool, channels_last: bool, compile: bool,
                      steps: int, warmup: int, image_size: int, encoder: str = "resnet50") -> float:
    """Images per second of a bare encoder step: forward, a sum as the loss, backward, Adam.

    The ceiling for the full HMR step at the same settings (no regressor, SMPL, losses or discriminator).
    """
    from hmr_core.bench_train import _time_steps
    from hmr_core.encoder import build_encoder

    model = build_encoder(encoder).to(device)
    memory = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    run = torch.compile(model) if compile else model
    images = torch.rand(batch_size, 3, image_size, image_size, device=device).contiguous(memory_format=memory)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if bf16 and device.type == "cuda" else \
        contextlib.nullcontext

    def step():
        with autocast():
            loss = run(images).float().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    seconds, _ = _time_steps(step, warmup, steps, device)
    return batch_size * steps / seconds


def synthetic_rates(sizes: GpuBenchSizes, device: torch.device) -> dict:
    """Images per second of the per-image world and of the batched world, in this process, one after the other.

    The batched world is timed on ``device`` (its tensor rasteriser on a GPU) and, when that is not the
    CPU, also on the CPU (the compiled loops), as a loader worker draws it.
    """
    from hmr_core import synthetic
    from hmr_core.synthetic_batch import BatchedWorld

    low = constants.SYNTHETIC_SPLIT_SEEDS["train"][0]

    def batched_rate(world: BatchedWorld) -> float:
        world.generate(low, min(4, sizes.synthetic_batch), "train")  # first draw: compilation, caches
        start = time.perf_counter()
        for first in range(0, sizes.synthetic_batched_images, sizes.synthetic_batch):
            world.generate(low + first, sizes.synthetic_batch, "train")
        return sizes.synthetic_batched_images / (time.perf_counter() - start)

    old_world = synthetic.SyntheticWorld("auto")
    synthetic.generate_batch(np.arange(low, low + 1), "train", old_world)  # first draw: contexts, caches
    start = time.perf_counter()
    synthetic.generate_batch(np.arange(low, low + sizes.synthetic_old_images), "train", old_world)
    old = sizes.synthetic_old_images / (time.perf_counter() - start)
    new_world = BatchedWorld("auto", device=device)
    new = batched_rate(new_world)
    on_cpu = new if device.type == "cpu" else batched_rate(BatchedWorld("auto", device="cpu"))
    return {"per_image_world_images_per_s": old, "batched_world_images_per_s": new, "speedup": new / old,
            "batched_world_cpu_images_per_s": on_cpu,
            "render_backend": new_world.backend, "torch_threads": torch.get_num_threads()}


def loader_rates(sizes: GpuBenchSizes) -> dict:
    """Samples per second of the trainer's loader drawing the world on the fly with all cores, and over JPEGs."""
    from hmr_core import bench_data, loaders
    from hmr_core.augment import AugmentConfig
    from hmr_core.config import make_config
    from hmr_core.synthetic_batch import OnTheFlySynthetic

    workers = (os.cpu_count() or 1) if sizes.loader_workers is None else sizes.loader_workers
    config = make_config(batch_size=sizes.loader_batch_size, num_workers=workers, max_steps=sizes.loader_batches + 1)
    loader = loaders.make_loader(OnTheFlySynthetic("train", AugmentConfig()), config)
    batches = iter(loader)
    start = time.perf_counter()
    next(batches)  # the first batch pays for starting the workers
    startup = time.perf_counter() - start
    start = time.perf_counter()
    count = sum(len(batch["img"]) for batch in batches)
    online = count / (time.perf_counter() - start)
    del batches, loader
    with contextlib.redirect_stdout(io.StringIO()):
        jpeg = bench_data.bench_data(sizes.jpeg_images, [workers], min(64, sizes.jpeg_images // 2))
    return {"workers": workers, "online_synthetic_samples_per_s": online, "online_startup_s": startup,
            "jpeg_samples_per_s": jpeg[0][1]}


def short_training_run(sizes: GpuBenchSizes, device: torch.device) -> dict:
    """A short run on on-the-fly synthetic data, evaluated at its end on drawn test images."""
    from hmr_core import train
    from hmr_core.config import make_config

    cuda = device.type == "cuda"
    with tempfile.TemporaryDirectory() as tmp:
        config = make_config(run_dir=str(Path(tmp) / "run"), data="synthetic_online", device=device.type,
                             batch_size=sizes.run_batch_size, max_steps=sizes.run_steps, encoder=sizes.run_encoder,
                             input_size=sizes.run_input_size,
                             num_workers=(os.cpu_count() or 1) if sizes.run_workers is None else sizes.run_workers,
                             eval_every=sizes.run_steps, eval_samples=sizes.run_eval_samples,
                             log_every=max(1, sizes.run_steps // 4), ckpt_every=sizes.run_steps, image_every=0,
                             encoder_lr=1e-4, disc_lr=1e-4, bf16=cuda, channels_last=cuda, compile=False,
                             pose_pool_size=max(64, sizes.run_batch_size * 4))
        start = time.perf_counter()
        history = train.train(config)
        seconds = time.perf_counter() - start
    last = history[-1]
    return {"steps": sizes.run_steps, "batch_size": sizes.run_batch_size, "encoder": sizes.run_encoder,
            "seconds": seconds, "images_per_s": last["images_per_s"], "first_loss": history[0]["loss"],
            "last_loss": last["loss"], "eval_samples": last.get("eval_samples"),
            "pa_mpjpe_mm": last.get("pa_mpjpe_mm"), "mpjpe_mm": last.get("mpjpe_mm")}


def run(out: str | Path, quick: bool = False, device: str | None = None) -> dict:
    """Run every part and write ``gpu_bench.json`` and ``gpu_bench.md`` into ``out``.

    Args:
        out: the folder for the results (made if missing).
        quick: tiny sizes on the CPU (checks the script; the numbers mean nothing).
        device: "cuda", "cpu", ...; None: CUDA when available (the CPU with ``quick``).

    Returns:
        The results, as written to the JSON file.

    Raises:
        ValueError: if ``out`` is a file.
    """
    from hmr_core import bench, bench_smpl, bench_train
    from hmr_core.evaluate import device_name

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder for the results")
    out.mkdir(parents=True, exist_ok=True)
    sizes = QUICK if quick else FULL
    device = torch.device(device or ("cpu" if quick or not torch.cuda.is_available() else "cuda"))
    cuda = device.type == "cuda"
    began = time.perf_counter()
    results: dict = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                     "device": device_name(device), "cpu": bench._cpu_name(), "cpu_count": os.cpu_count(),
                     "quick": quick, "versions": versions(), "sizes": dataclasses.asdict(sizes)}

    def part(name: str, fn):
        start = time.perf_counter()
        print(f"[{time.perf_counter() - began:6.1f} s] {name}", flush=True)
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            results[name] = fn()
        results[name + "_log"] = printed.getvalue()
        results[name + "_seconds"] = time.perf_counter() - start

    def smpl():
        (batch, ours, theirs), = bench_smpl.bench_smpl((sizes.smpl_batch,), str(device), sizes.smpl_repeats)
        return {"batch": batch, "hmr_core_ms": ours, "smplx_ms": theirs, "speedup": theirs / ours}

    def train_steps():
        settings = [("fp32", False, False, False), ("bf16 + channels-last", True, True, False)]
        if sizes.compile:
            settings.append(("bf16 + channels-last + compile", True, True, True))
        rows = []
        for label, bf16, channels_last, compile in settings:
            if not cuda and bf16:
                continue  # the trainer applies bf16 and channels-last on CUDA only
            table = bench_train.bench_train(sizes.train_batches, str(device), sizes.train_steps, sizes.train_warmup,
                                            data="random", bf16=bf16, channels_last=channels_last, compile=compile,
                                            image_size=sizes.train_image_size, encoder=sizes.train_encoder,
                                            pose_pool_size=sizes.train_pose_pool,
                                            baseline_batch_size=None if cuda else min(sizes.train_batches))
            for row in table:
                encoder_rate = float("nan")
                if row.step == "HMR":
                    encoder_rate = bare_encoder_step(row.batch, device, bf16, channels_last, compile,
                                                     sizes.train_steps, sizes.train_warmup, sizes.train_image_size,
                                                     sizes.train_encoder)
                rows.append({"setting": label, "step": row.step, "batch": row.batch,
                             "images_per_s": row.images_per_s, "ms_per_step": row.ms_per_step,
                             "speedup_over_spin_style": row.speedup, "bare_encoder_images_per_s": encoder_rate,
                             "share_of_bare_encoder": row.images_per_s / encoder_rate if row.step == "HMR"
                             else float("nan")})
        if not sizes.compile:
            rows.append({"setting": "compile", "skipped": "quick mode: compilation takes minutes on a CPU"})
        return rows

    part("smpl", smpl)
    part("train_step", train_steps)
    part("synthetic_world", lambda: synthetic_rates(sizes, device))
    part("data_loader", lambda: loader_rates(sizes))
    part("training_run", lambda: short_training_run(sizes, device))
    results["total_seconds"] = time.perf_counter() - began
    (out / "gpu_bench.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "gpu_bench.md").write_text(markdown(results))
    print(f"[{results['total_seconds']:6.1f} s] wrote {out / 'gpu_bench.json'} and {out / 'gpu_bench.md'}")
    return results


def markdown(results: dict) -> str:
    """The results as a Markdown report: a header with device, date and versions, then one table per part."""
    v = results["versions"]
    lines = [f"# GPU benchmark{' (quick mode: a check of the script, not a measurement)' if results['quick'] else ''}",
             "", f"{results['date']}, device {results['device']}, CPU {results['cpu']} ({results['cpu_count']} "
             f"logical), " + ", ".join(f"{k} {val}" for k, val in v.items()), "",
             f"Total {results['total_seconds']:.0f} s.", "", "## SMPL forward+backward", "",
             "| batch | hmr_core ms | smplx ms | speed-up |", "|---|---|---|---|"]
    s = results["smpl"]
    lines.append(f"| {s['batch']} | {s['hmr_core_ms']:.2f} | {s['smplx_ms']:.2f} | {s['speedup']:.2f}x |")
    lines += ["", "## Training step (random tensors on the device)", "",
              "| setting | step | batch | images/s | ms/step | × SPIN-style | bare encoder images/s | share of it |",
              "|---|---|---|---|---|---|---|---|"]
    for row in results["train_step"]:
        if "skipped" in row:
            lines.append(f"| {row['setting']} | skipped: {row['skipped']} | | | | | | |")
            continue
        lines.append(f"| {row['setting']} | {row['step']} | {row['batch']} | {row['images_per_s']:.1f} | "
                     f"{row['ms_per_step']:.1f} | {row['speedup_over_spin_style']:.2f} | "
                     f"{row['bare_encoder_images_per_s']:.1f} | {row['share_of_bare_encoder']:.2f} |")
    w = results["synthetic_world"]
    d = results["data_loader"]
    r = results["training_run"]
    lines += ["", "## Synthetic world and data loading", "",
              "| what | per second |", "|---|---|",
              f"| synthetic world, per image (SyntheticWorld), one process | {w['per_image_world_images_per_s']:.1f} |",
              f"| synthetic world, batched (BatchedWorld), one process | {w['batched_world_images_per_s']:.1f} "
              f"({w['speedup']:.1f}x) |",
              f"| synthetic world, batched, one process on the CPU | {w['batched_world_cpu_images_per_s']:.1f} |",
              f"| trainer's loader on the fly, {d['workers']} workers | {d['online_synthetic_samples_per_s']:.1f} |",
              f"| JPEG loader (bench data), {d['workers']} workers | {d['jpeg_samples_per_s']:.1f} |",
              "", "## Short training run on on-the-fly synthetic data", "",
              f"{r['steps']} steps of batch {r['batch_size']} ({r['encoder']}) in {r['seconds']:.1f} s, "
              f"{r['images_per_s']:.1f} images/s; loss {r['first_loss']:.2f} → {r['last_loss']:.2f}; evaluation on "
              f"{r['eval_samples']} drawn test images: PA-MPJPE {r['pa_mpjpe_mm']:.1f} mm, "
              f"MPJPE {r['mpjpe_mm']:.1f} mm.",
              ""]
    return "\n".join(lines)


def add_parser(sub) -> None:
    """The ``gpu`` subcommand of ``python -m hmr_core.bench``."""
    gpu = sub.add_parser("gpu", help="everything a GPU run must measure, in one command; writes JSON and Markdown")
    gpu.add_argument("--out", required=True, help="folder for gpu_bench.json and gpu_bench.md")
    gpu.add_argument("--quick", action="store_true", help="tiny sizes on the CPU: checks the script in < 2 minutes")
    gpu.add_argument("--device", default=None, help="default: cuda when available (cpu with --quick)")


def main_from_args(args) -> int:
    try:
        run(args.out, args.quick, args.device)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
