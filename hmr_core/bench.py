"""Benchmarks that print numbers: ``python -m hmr_core.bench smpl|data|synthetic|encoder|train|redraw|gpu``.

``smpl`` times one forward + backward pass (gradients for pose and betas) of ``hmr_core``'s SMPL and of
``smplx``'s SMPL on the same model in the same run. The model has SMPL's sizes (6,890 vertices, 24
joints, 10 betas, 207 pose blend shapes) with random arrays: timing does not depend on the values, and
non-zero pose blend shapes keep the comparison honest (the open body model has none, which would let
any implementation skip a product). Results go to ``docs/benchmarks.md`` by hand, with device and date.

``data`` measures how many augmented training samples per second a torch DataLoader delivers from
data in the standard preprocessed format (``hmr_core.datasets``): random-noise JPEGs and a SPIN-format
``.npz`` written to a temporary folder, read, cropped, augmented and batched as in training.

``synthetic`` measures how many synthetic-world images per second ``synthetic.write_split`` generates,
renders and writes, per generator (one image at a time, or ``synthetic_batch.BatchedWorld``'s batches),
render backend and worker count, all in the same run.

``encoder`` times one forward + backward pass of each image encoder (ResNet-18, ResNet-50,
EfficientNet-Lite0) at several input sizes, in the training's memory layouts, with the first blocks
frozen or not: the levers for the most accuracy per CPU hour. ResNet-18 at 112 pixels (the size of the
earlier CPU model) is the baseline of each run.

``train`` times the full HMR training step as ``hmr_core.train`` runs it (``train.encoder_step`` and
``train.discriminator_step``: ResNet-50, T IEF iterations, one SMPL pass over B·T, 25 discriminators, both
Adam updates, with the trainer's bf16 / channels-last / compile settings) and, in the same run, a
baseline step written the way SPIN trains (fp32, NCHW, batch 64, the same ResNet-50 and regressor, SMPL
on Θ_T only, no discriminator, plain Adam).

``redraw`` times one redraw of the chapters' live sliders (SMPL with random β and joint rotations, the
renderer, PNG encoding, as ``interactive.time_redraw`` measures it) at chapter 1's and chapter 2's image
sizes, for every render backend that starts here; the NumPy rasteriser is the baseline of the run. A
slider feels live below about 200 ms.

``gpu`` runs every measurement a GPU machine must make in one command and writes JSON and Markdown
(``hmr_core.bench_gpu``); ``gpu --quick`` checks that script on a CPU.
"""

import argparse
import datetime
import platform
import statistics
import sys
import time
from typing import NamedTuple

import numpy as np
import torch

from hmr_core import constants
from hmr_core.evaluate import device_name


def random_smpl_arrays(seed: int = 0, num_vertices: int = constants.SMPL_NUM_VERTICES) -> dict[str, np.ndarray]:
    """Arrays with the official SMPL's shapes and plausible structure, filled at random.

    The template is a random blob of about a body's size, the joint regressor averages 20 random
    vertices per joint, each vertex is skinned to up to 4 random joints, and the pose blend shapes
    are non-zero.

    Args:
        seed: random seed.
        num_vertices: V.

    Returns:
        A dict with the keys of an SMPL-format ``.npz`` (float32 arrays, int32 faces).
    """
    rng = np.random.default_rng(seed)
    num_joints = constants.NUM_SMPL_JOINTS
    v_template = rng.normal(scale=[0.15, 0.5, 0.1], size=(num_vertices, 3))
    J_regressor = np.zeros((num_joints, num_vertices))
    for j in range(num_joints):
        J_regressor[j, rng.choice(num_vertices, 20, replace=False)] = 1 / 20
    weights = np.zeros((num_vertices, num_joints))
    for v in range(num_vertices):
        weights[v, rng.choice(num_joints, 4, replace=False)] = rng.dirichlet(np.ones(4))
    kintree = np.stack((np.array(constants.SMPL_PARENTS), np.arange(num_joints)))
    return {
        "v_template": v_template.astype(np.float32),
        "shapedirs": rng.normal(scale=0.01, size=(num_vertices, 3, constants.NUM_BETAS)).astype(np.float32),
        "posedirs": rng.normal(scale=0.005, size=(num_vertices, 3, constants.NUM_POSE_BLEND)).astype(np.float32),
        "J_regressor": J_regressor.astype(np.float32),
        "weights": weights.astype(np.float32),
        "kintree_table": kintree.astype(np.int64),
        "f": rng.integers(0, num_vertices, size=(2 * num_vertices - 4, 3)).astype(np.int32),
    }


def make_smplx_model(arrays: dict[str, np.ndarray], dtype=torch.float32):
    """``smplx.SMPL`` on the given arrays, passed in memory (smplx would otherwise unpickle a file).

    Args:
        arrays: SMPL-format arrays.
        dtype: smplx's dtype.

    Returns:
        An ``smplx.SMPL`` module.
    """
    import contextlib
    import io

    import smplx
    from smplx.utils import Struct

    num_verts = arrays["v_template"].shape[0]
    # smplx selects 21 extra vertices by SMPL's vertex ids; any valid ids serve another mesh.
    vertex_ids = None if num_verts == constants.SMPL_NUM_VERTICES else {
        name: i for i, name in enumerate(["nose", "reye", "leye", "rear", "lear", "LBigToe", "LSmallToe", "LHeel",
                                          "RBigToe", "RSmallToe", "RHeel", "lthumb", "lindex", "lmiddle", "lring",
                                          "lpinky", "rthumb", "rindex", "rmiddle", "rring", "rpinky"])}
    struct = Struct(**{k: np.asarray(arrays[k]) for k in constants.MODEL_REQUIRED_KEYS})
    # smplx prints a warning about having fewer than 300 betas; it is expected here.
    with contextlib.redirect_stdout(io.StringIO()):
        return smplx.SMPL(model_path="", data_struct=struct, vertex_ids=vertex_ids, dtype=dtype,
                          num_betas=arrays["shapedirs"].shape[-1])


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


def bench_smpl(batch_sizes=(64, 192), device="cpu", repeats=20, seed=0):
    """Print forward+backward times of hmr_core's SMPL and smplx's SMPL, and their agreement."""
    from hmr_core.body_model import SMPL

    device = torch.device(device)
    arrays = random_smpl_arrays(seed)
    ours = SMPL(arrays=arrays).to(device)
    theirs = make_smplx_model(arrays).to(device)
    gen = torch.Generator().manual_seed(seed)
    print(f"# SMPL forward+backward, {datetime.date.today()}, device {device_name(device)}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")
    print(f"model: random arrays of SMPL's sizes, V={ours.num_vertices}, pose blend shapes non-zero")
    print(f"{'batch':>6} {'hmr_core ms':>12} {'smplx ms':>10} {'speed-up':>9} {'max |Δv| m':>11}")
    rows = []
    for batch in batch_sizes:
        pose = (torch.rand(batch, constants.POSE_DIM, generator=gen) * 2 - 1).to(device) * 1.0
        betas = (torch.randn(batch, constants.NUM_BETAS, generator=gen)).to(device)
        pose.requires_grad_(True)
        betas.requires_grad_(True)

        def step_ours():
            out = ours(betas=betas, pose=pose)
            (out.vertices.sum() + out.joints.sum()).backward()

        def step_theirs():
            out = theirs(betas=betas, global_orient=pose[:, :3], body_pose=pose[:, 3:])
            (out.vertices.sum() + out.joints.sum()).backward()

        with torch.no_grad():
            a = ours(betas=betas, pose=pose).vertices
            b = theirs(betas=betas, global_orient=pose[:, :3], body_pose=pose[:, 3:]).vertices
            diff = (a - b).abs().max().item()
        t_ours, t_theirs = _time([step_ours, step_theirs], repeats, device)
        rows.append((batch, t_ours, t_theirs))
        print(f"{batch:>6} {t_ours:>12.2f} {t_theirs:>10.2f} {t_theirs / t_ours:>8.2f}x {diff:>11.2e}")
    return rows


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


class EncoderBenchRow(NamedTuple):
    encoder: str
    input_size: int
    channels_last: bool
    frozen_blocks: int
    images_per_s: float


def bench_encoder(configs=(("resnet18", 112, False, 0), ("resnet18", 128, True, 0), ("resnet50", 128, True, 0),
                           ("efficientnet_lite0", 128, False, 0), ("efficientnet_lite0", 128, True, 0),
                           ("efficientnet_lite0", 128, True, 3), ("efficientnet_lite0", 160, True, 3),
                           ("efficientnet_lite0", 224, True, 3)),
                  batch_size=32, repeats=5, device="cpu") -> list[EncoderBenchRow]:
    """Images per second of an encoder's forward + backward pass in training mode.

    Args:
        configs: (encoder, input size, channels-last, frozen first blocks (Lite0 only)) per row.
        batch_size: images per pass.
        repeats: timed passes per row (the median counts, after three untimed ones).
        device: "cpu" or "cuda".

    Returns:
        one ``EncoderBenchRow`` per config, also printed.
    """
    from hmr_core.encoder import build_encoder

    device = torch.device(device)
    print(f"encoder forward+backward, batch {batch_size}, {device_name(device)}, torch {torch.__version__}, "
          f"{datetime.date.today().isoformat()}")
    print(f"{'encoder':>20} {'size':>5} {'layout':>13} {'frozen':>6} {'img/s':>8} {'vs r18@112':>11}")
    rows, baseline = [], None
    for arch, size, channels_last, frozen in configs:
        torch.manual_seed(0)
        encoder = build_encoder(arch).to(device).train()
        if frozen:
            encoder.freeze_first_blocks(frozen)
        images = torch.randn(batch_size, 3, size, size, device=device)
        if channels_last:
            encoder, images = encoder.to(memory_format=torch.channels_last), images.contiguous(
                memory_format=torch.channels_last)

        def step():
            encoder.zero_grad(set_to_none=True)
            encoder(images).square().mean().backward()

        seconds = _time([step], repeats, device)[0] / 1e3  # median, after warm-up
        rate = batch_size / seconds
        baseline = rate if baseline is None else baseline
        rows.append(EncoderBenchRow(arch, size, channels_last, frozen, rate))
        print(f"{arch:>20} {size:>5} {'channels-last' if channels_last else 'NCHW':>13} {frozen:>6} {rate:>8.1f} "
              f"{rate / baseline:>10.2f}x", flush=True)
    return rows


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
    add_synthetic_parser(sub)
    add_train_parser(sub)
    add_redraw_parser(sub)
    from hmr_core import bench_gpu

    bench_gpu.add_parser(sub)
    args = parser.parse_args(argv)
    check_args(parser, args)
    if args.what == "gpu":
        return bench_gpu.main_from_args(args)
    if args.what == "encoder":
        bench_encoder(batch_size=args.batch_size, repeats=args.repeats, device=args.device)
    if args.what == "synthetic":
        bench_synthetic(args.num_images, args.workers, args.backends, generators=args.generators,
                        chunk_size=args.chunk_size)
    if args.what == "smpl":
        bench_smpl(args.batch_sizes, args.device, args.repeats)
    if args.what == "data":
        bench_data(args.num_images, args.workers, args.batch_size, args.image_size)
    if args.what == "train":
        bench_train_from_args(args)
    if args.what == "redraw":
        bench_redraw(args.sizes, args.backends, args.redraws, args.repeats)


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


def bench_synthetic(num_images=96, workers=(1, 2), backends=("numpy", "pyrender"), seed_start=0,
                    generators=("per_image", "batched"), chunk_size=32):
    """Print synthetic-world images generated and written per second, per generator, render backend and workers.

    Runs ``synthetic.write_split`` (generation, rendering and shard writing, worker start-up included)
    into a temporary folder for each setting: "per_image" is ``synthetic.SyntheticWorld``, "batched" is
    ``synthetic_batch.BatchedWorld`` (``write_split(batched=True)``). Settings take turns in one run, so
    a change in the machine's load touches them alike. A backend that cannot start here is reported and
    skipped. The load average before and after is printed: on a shared machine it says how far the
    numbers are from an idle one.

    Args:
        num_images: images per setting.
        workers: worker-process counts to try.
        backends: render backends to try.
        seed_start: index in the train split of the first image.
        generators: "per_image" and / or "batched".
        chunk_size: images per task (per batch for "batched").

    Returns:
        A list of ``(generator, backend, workers, images_per_second)``.
    """
    import os
    import tempfile

    from hmr_core import render, synthetic

    print(f"# synthetic world, {datetime.date.today()}, {_cpu_name()}, {os.cpu_count()} logical CPUs, "
          f"torch {torch.__version__}, load average {os.getloadavg()[0]:.1f}")
    print(f"{num_images} train images of {constants.IMG_SIZE}x{constants.IMG_SIZE} per setting, shards of 32, "
          f"tasks of {chunk_size} images, worker start-up included")
    print(f"{'generator':>9} {'backend':>9} {'workers':>7} {'images/s':>9}")
    rows = []
    for backend in backends:
        try:
            render.available_backend(backend)
        except RuntimeError as err:
            print(f"{backend:>9} unavailable: {err}")
            continue
        for num_workers in workers:
            for generator in generators:
                with tempfile.TemporaryDirectory() as tmp:
                    report = synthetic.write_split(tmp, "train", num_images, shard_size=32, workers=num_workers,
                                                   backend=backend, start=seed_start, progress=False,
                                                   chunk_size=chunk_size, batched=generator == "batched")
                rate = report.num_images / report.seconds
                rows.append((generator, backend, num_workers, rate))
                print(f"{generator:>9} {backend:>9} {num_workers:>7} {rate:>9.1f}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return rows


def add_synthetic_parser(sub) -> None:
    """The ``synthetic`` subcommand of ``python -m hmr_core.bench``."""
    synthetic = sub.add_parser("synthetic", help="synthetic-world images generated per second")
    synthetic.add_argument("--num-images", type=int, default=96)
    synthetic.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    synthetic.add_argument("--backends", nargs="+", default=["numpy", "pyrender"])
    synthetic.add_argument("--generators", nargs="+", choices=["per_image", "batched"],
                           default=["per_image", "batched"])
    synthetic.add_argument("--chunk-size", type=int, default=32, help="images per worker task (per batch if batched)")



# --------------------------------------------------------------------------------------------------
# The training step
# --------------------------------------------------------------------------------------------------
SPIN_BATCH_SIZE = 64  # SPIN's training batch (Kolotouros et al., ICCV 2019; its default --batch_size)
# Bodies in the discriminator's pool of real poses. The step only indexes the pool, so its size does not
# change the timing; drawing the trainer's 20,000 from the pose prior takes 14 s on a laptop CPU.
BENCH_POSE_POOL_SIZE = 1000


class TrainBenchRow(NamedTuple):
    """One row of ``bench_train``'s table.

    Attributes:
        step: "HMR" (the trainer's step) or "baseline" (SPIN-style).
        batch: B.
        images_per_s: training images per second over the timed steps.
        ms_per_step: milliseconds per step.
        peak_memory_gib: peak allocated GPU memory over the timed steps; NaN off CUDA.
        speedup: images per second over the baseline's (1 for the baseline).
    """

    step: str
    batch: int
    images_per_s: float
    ms_per_step: float
    peak_memory_gib: float
    speedup: float


def random_training_batch(batch_size: int, pose_pool, device: torch.device, generator: torch.Generator,
                          image_size: int = constants.IMG_SIZE) -> dict:
    """A training batch of random tensors with the shapes and ranges of ``datasets.Sample``.

    Poses and shapes are rows of the pose pool, every sample has 3D and SMPL labels (as the synthetic
    world's), keypoints are visible and inside the crop.

    Args:
        batch_size: B.
        pose_pool: ``PosePool`` to draw θ (B, 72) and β (B, 10) from.
        device: where the tensors go.
        generator: CPU generator for the draws.
        image_size: H = W.

    Returns:
        A dict with ``img`` (B, 3, H, W), ``keypoints_2d`` (B, K, 3), ``joints_3d`` (B, J, 4), ``pose``,
        ``betas``, ``has_smpl`` (B,) and ``has_3d`` (B,), on ``device``.
    """
    size = image_size
    rows = torch.randint(len(pose_pool.pose), (batch_size,), generator=generator)
    ones = torch.ones(batch_size)
    keypoints = torch.rand(batch_size, constants.NUM_KEYPOINTS, 2, generator=generator) * 2 - 1  # in the crop
    joints = torch.randn(batch_size, constants.NUM_LSP_JOINTS, 3, generator=generator) * 0.3  # metres
    batch = {
        "img": torch.rand(batch_size, 3, size, size, generator=generator),
        "keypoints_2d": torch.cat((keypoints, torch.ones(batch_size, constants.NUM_KEYPOINTS, 1)), dim=-1),
        "joints_3d": torch.cat((joints, torch.ones(batch_size, constants.NUM_LSP_JOINTS, 1)), dim=-1),
        "pose": pose_pool.pose[rows],
        "betas": pose_pool.shape[rows],
        "has_smpl": ones,
        "has_3d": ones.clone(),
    }
    return {key: value.to(device) for key, value in batch.items()}


def spin_style_step(model, smpl, batch: dict, optimizer, config) -> float:
    """One update written the way SPIN trains: fp32, NCHW, SMPL on the final iterate only, no prior.

    The same model and supervised losses as ``train.encoder_step``, without autocast, channels-last,
    compile or discriminator; SPIN reads its losses back as Python numbers every step, as this does.

    Args:
        model: ``HMR``.
        smpl: the body model.
        batch: the batch (see ``hmr_core.datasets``).
        optimizer: Adam over ``model``'s parameters.
        config: the loss weights.

    Returns:
        The loss.
    """
    from hmr_core import train
    from hmr_core.hmr import predict_bodies

    model.train()
    thetas = model(batch["img"])  # (B, T, 85)
    pred = predict_bodies(thetas[:, -1:], smpl)  # one SMPL pass, on Θ_T: leading axes (B, 1)
    loss = train.weighted_encoder_loss(train.encoder_losses(pred, batch, config), config)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def _time_steps(step, warmup: int, steps: int, device: torch.device) -> tuple[float, float]:
    """Seconds for ``steps`` calls of ``step`` after ``warmup`` discarded ones, and peak GPU memory in GiB."""
    cuda = device.type == "cuda"
    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if cuda:
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else float("nan")
    return seconds, peak


def _training_batches(data: str, config, device: torch.device, pose_pool, train_set, generator, image_size: int):
    """Batches as the trainer's loop makes them (loader, ``to_device``, channels-last), or one random batch."""
    from hmr_core import loaders, train

    if data == "random":
        batch = train.prepare_batch(random_training_batch(config.batch_size, pose_pool, device, generator, image_size),
                                    device, config)
        while True:
            yield batch
    for batch in loaders.make_loader(train_set, config):
        yield train.prepare_batch(batch, device, config)


def _trainer_step(config, init_theta: torch.Tensor, smpl, pose_pool, device: torch.device, batches,
                  fixed_real: tuple[torch.Tensor, torch.Tensor] | None):
    """One call of the returned function is one step of ``train.train``'s loop, on models built as it builds them.

    Args:
        config: the ``TrainConfig``.
        init_theta: (85,) Θ_0.
        smpl: the body model on ``device``.
        pose_pool: the discriminator's real bodies.
        device: where the models live.
        batches: iterator of batches on ``device``.
        fixed_real: real (pose (B·T, 72), betas (B·T, 10)) on ``device`` to use at every step; None draws
            them from the pool each step, as the trainer does.
    """
    from hmr_core import loaders, train

    models = train.build_models(config, init_theta, device)
    disc, enc_opt, disc_opt = models.disc, models.encoder_optimizer, models.disc_optimizer
    train_model = models.hmr
    if config.compile:
        torch._dynamo.reset()  # compile for this batch size alone, as a training process does
        train_model = torch.compile(train_model)
    autocast = train.autocast_context(config, device)
    step = 0

    def run_step() -> None:
        nonlocal step
        _, fake_rot, fake_betas = train.encoder_step(train_model, disc, smpl, next(batches), enc_opt, autocast, config)
        if fixed_real is None:
            real_pose, real_betas = loaders.sample_pose_pool(pose_pool, len(fake_rot),
                                                             train.step_generator(config.seed, step, 0))
            real_pose, real_betas = real_pose.to(device), real_betas.to(device)
        else:
            real_pose, real_betas = fixed_real
        train.discriminator_step(disc, real_pose, real_betas, fake_rot, fake_betas, disc_opt, config)
        step += 1

    return run_step


def _baseline_step(config, init_theta: torch.Tensor, smpl, device: torch.device, batches):
    """One call of the returned function is one ``spin_style_step``: fp32, NCHW, not compiled, plain Adam."""
    from hmr_core.hmr import HMR

    model = HMR(init_theta, config.num_iterations, config.dropout, config.encoder, config.input_size).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.encoder_lr)
    return lambda: spin_style_step(model, smpl, next(batches), optimizer, config)


def bench_train(batch_sizes=(64, 256), device=None, steps=50, warmup=10, data="synthetic", data_dir=None,
                bf16=None, channels_last=None, compile=None, baseline_batch_size=None, num_workers=None,
                num_images=256, seed=0, image_size=constants.IMG_SIZE, encoder="resnet50",
                pose_pool_size=None) -> list[TrainBenchRow]:
    """Print images per second of HMR's training step and of a SPIN-style baseline, timed in the same run.

    The HMR step is the trainer's: ``train.encoder_step`` (ResNet-50, T IEF iterations, one SMPL pass over
    B·T, the losses, the adversarial term, an Adam update) then ``train.discriminator_step`` (25
    discriminators on B·T real and B·T fake bodies, an Adam update), on models and optimisers built as
    ``train.train`` builds them, with its bf16 autocast, channels-last and ``torch.compile``. The baseline
    is ``spin_style_step``. Each row gets fresh models (and, compiled, a fresh compilation, as a training
    process of that batch size would).

    Args:
        batch_sizes: B of the HMR step, one row each.
        device: "cuda", "cpu", ...; None: CUDA when available.
        steps: timed steps per row.
        warmup: steps run first and discarded (compilation and autotuning happen there).
        data: "synthetic": batches from the trainer's DataLoader over synthetic-world shards, loading
            included in the time; "random": tensors made once on the device (compute only).
        data_dir: synthetic shards with "train" and "test" splits; None writes ``num_images`` to a temporary
            folder.
        bf16, channels_last, compile: the trainer's speed settings; None: on for CUDA, off otherwise.
        baseline_batch_size: the baseline's B; None: SPIN's 64 on CUDA, elsewhere at most the smallest of
            ``batch_sizes`` so that small CPU runs stay quick.
        num_workers: DataLoader processes for "synthetic"; None: ``os.cpu_count()``.
        num_images: images written when ``data_dir`` is None.
        seed: seed of the models, data and pool.
        image_size: crop side of the "random" data (smaller only to make tests quick); synthetic crops are
            always ``constants.IMG_SIZE``.
        encoder: the image encoder of both steps (HMR: "resnet50").
        pose_pool_size: bodies in the discriminator's pool; None: ``BENCH_POSE_POOL_SIZE``.

    Returns:
        ``TrainBenchRow`` for the baseline, then one per batch size.

    Raises:
        ValueError: for an unknown ``data``, non-positive sizes, or an ``image_size`` synthetic data lacks.
    """
    import contextlib
    import os
    import tempfile

    from hmr_core import loaders, train
    from hmr_core.body_model import SMPL
    from hmr_core.config import make_config
    from hmr_core.discriminator import NUM_DISCRIMINATORS

    if data not in ("synthetic", "random"):
        raise ValueError(f"data must be 'synthetic' or 'random', got {data!r}")
    if steps < 1 or warmup < 0 or not batch_sizes or min(batch_sizes) < 1:
        raise ValueError(f"need steps ≥ 1, warmup ≥ 0 and batch sizes ≥ 1; got {steps}, {warmup}, {list(batch_sizes)}")
    if data == "synthetic" and image_size != constants.IMG_SIZE:
        raise ValueError(f"synthetic crops are {constants.IMG_SIZE} pixels; image_size={image_size} needs data='random'")
    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = device.type == "cuda"
    if cuda and device.index is not None:
        torch.cuda.set_device(device)
    if baseline_batch_size is None:
        baseline_batch_size = SPIN_BATCH_SIZE if cuda else min(SPIN_BATCH_SIZE, min(batch_sizes))
    settings = dict(device=device.type, seed=seed, encoder=encoder, max_steps=warmup + steps,
                    pose_pool_size=BENCH_POSE_POOL_SIZE if pose_pool_size is None else pose_pool_size,
                    bf16=cuda if bf16 is None else bf16, channels_last=cuda if channels_last is None else channels_last,
                    compile=cuda if compile is None else compile,
                    num_workers=(os.cpu_count() or 1) if num_workers is None else num_workers)
    train.seed_everything(seed)
    generator = torch.Generator().manual_seed(seed)
    rows: list[TrainBenchRow] = []
    with contextlib.ExitStack() as stack:
        written = ""
        if data == "synthetic" and data_dir is None:
            from hmr_core.synthetic import write_split

            data_dir = stack.enter_context(tempfile.TemporaryDirectory())
            start = time.perf_counter()
            write_split(data_dir, "train", num_images, shard_size=num_images, workers=settings["num_workers"],
                        progress=False)
            write_split(data_dir, "test", 1, progress=False)  # build_data opens the test split too
            written = f"{num_images} images written to a temporary folder in {time.perf_counter() - start:.1f} s"
        if data == "synthetic":
            settings["data_dir"] = str(data_dir)
        base = make_config(**settings)
        if data == "synthetic":
            training_data = loaders.build_data(base)
            pose_pool, train_set = training_data.pose_pool, training_data.train_set
        else:
            pose_pool, train_set = loaders.build_pose_pool(base), None
        smpl = SMPL(base.model_path).to(device)
        init_theta = train.initial_theta(pose_pool)

        def on_off(flag: bool) -> str:
            return "on" if flag else "off"

        print(f"# training step, {datetime.date.today()}, device {device_name(device)}, torch {torch.__version__}")
        # The trainer applies bf16 and channels-last on CUDA only; the line says what ran.
        print(f"HMR step: train.encoder_step + train.discriminator_step ({encoder}, T={base.num_iterations} IEF, one "
              f"SMPL pass over B·T, {NUM_DISCRIMINATORS} discriminators, encoder and discriminator Adam); "
              f"bf16 {on_off(cuda and base.bf16)}, channels-last {on_off(cuda and base.channels_last)}, "
              f"compile {on_off(base.compile)}")
        spin_note = "" if baseline_batch_size == SPIN_BATCH_SIZE else f" (SPIN trains at {SPIN_BATCH_SIZE})"
        print(f"baseline: SPIN-style step (fp32, NCHW, same ResNet-50 + regressor, SMPL on Θ_T only, no "
              f"discriminator, plain Adam), batch {baseline_batch_size}{spin_note}")
        if data == "synthetic":
            print(f"data: synthetic shards ({written or data_dir}) through the trainer's DataLoader, workers "
                  f"{base.num_workers}, augmentation on; loading included in the times")
        else:
            print("data: random tensors made once on the device (compute only, no loading)")
        print(f"body model {smpl.model_name} (V={smpl.num_vertices}), crops {image_size}x{image_size}, "
              f"{warmup} warm-up steps discarded, {steps} timed")
        print(f"{'step':>8} {'batch':>6} {'images/s':>9} {'ms/step':>9}" + (f" {'peak GiB':>9}" if cuda else "")
              + f" {'speed-up':>9}")

        runs = [("baseline", baseline_batch_size)] + [("HMR", batch_size) for batch_size in batch_sizes]
        for name, batch_size in runs:
            if name == "baseline":
                config = make_config(**{**settings, "batch_size": batch_size, "bf16": False, "channels_last": False,
                                        "compile": False})
            else:
                config = make_config(**{**settings, "batch_size": batch_size})
            if cuda:
                torch.cuda.empty_cache()
            batches = _training_batches(data, config, device, pose_pool, train_set, generator, image_size)
            if name == "baseline":
                step = _baseline_step(config, init_theta, smpl, device, batches)
            else:
                fixed_real = None
                if data == "random":  # the discriminator's real half is made once as well
                    fixed_real = tuple(t.to(device) for t in loaders.sample_pose_pool(
                        pose_pool, batch_size * config.num_iterations, generator))
                step = _trainer_step(config, init_theta, smpl, pose_pool, device, batches, fixed_real)
            seconds, peak = _time_steps(step, warmup, steps, device)
            batches.close()  # stops the loader's workers
            del step, batches
            rate = batch_size * steps / seconds
            speedup = rate / rows[0].images_per_s if rows else 1.0
            rows.append(TrainBenchRow(name, batch_size, rate, seconds / steps * 1e3, peak, speedup))
            print(f"{name:>8} {batch_size:>6} {rate:>9.1f} {seconds / steps * 1e3:>9.1f}"
                  + (f" {peak:>9.2f}" if cuda else "") + f" {speedup:>8.2f}x", flush=True)
    return rows


def bench_train_from_args(args) -> list[TrainBenchRow]:
    """``bench_train`` with the options of ``python -m hmr_core.bench train``."""
    return bench_train(args.batch_sizes, args.device, args.steps, args.warmup, args.data, args.data_dir, args.bf16,
                       args.channels_last, args.compile, args.baseline_batch_size, args.num_workers,
                       args.num_images, args.seed)


def add_train_parser(sub) -> None:
    """The ``train`` subcommand of ``python -m hmr_core.bench``."""
    bench = sub.add_parser("train", help="HMR's training step vs a SPIN-style baseline, images per second")
    bench.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    bench.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256], help="HMR step batch sizes")
    bench.add_argument("--steps", type=int, default=50, help="timed steps per row")
    bench.add_argument("--warmup", type=int, default=10, help="discarded steps first (compile needs several)")
    bench.add_argument("--data", choices=["synthetic", "random"], default="synthetic",
                       help="synthetic: shards through the trainer's DataLoader; random: tensors on the device")
    bench.add_argument("--data-dir", default=None, help="synthetic shards (train and test); default: write a few")
    bench.add_argument("--num-images", type=int, default=256, help="images written when --data-dir is not given")
    bench.add_argument("--num-workers", type=int, default=None, help="DataLoader workers (default: os.cpu_count())")
    speed = "default: on with CUDA, off otherwise"
    bench.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None, help=f"bf16 autocast; {speed}")
    bench.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                       help=f"channels-last encoder; {speed}")
    bench.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                       help=f"torch.compile the encoder and regressor; {speed}")
    bench.add_argument("--baseline-batch-size", type=int, default=None,
                       help=f"default: {SPIN_BATCH_SIZE} (SPIN's) on CUDA, else at most the smallest --batch-sizes")
    bench.add_argument("--seed", type=int, default=0)


REDRAW_GOAL_MS = 200.0  # a slider redraw slower than this no longer feels live


def bench_redraw(sizes=(256, 224), backends=("numpy", "pyrender"), redraws=10, repeats=2, seed=0):
    """Print the milliseconds one slider redraw takes (SMPL, render, PNG), per backend and image size.

    Args:
        sizes: image sides in pixels (chapter 1 draws 256, chapter 2 the 224 crop).
        backends: render backends to try; one that cannot start here is reported and skipped.
        redraws: random slider positions per row.
        repeats: passes over those positions (the first call of a backend is a warm-up, not timed).
        seed: seed of the slider positions.

    Returns:
        A list of ``(backend, size, median_ms, max_ms)``.
    """
    from hmr_core import render
    from hmr_core.body_model import SMPL
    from hmr_core.interactive import time_redraw

    smpl = SMPL()
    faces = smpl.faces.numpy()
    rng = np.random.default_rng(seed)
    values = [{"betas": rng.uniform(-3, 3, constants.NUM_BETAS), "pose": rng.uniform(-0.6, 0.6, (9, 3)),
               "yaw": rng.uniform(-np.pi, np.pi)} for _ in range(redraws)]
    moved = [constants.SMPL_JOINT_NAMES.index(name) for name in (
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_hip", "right_hip", "left_knee",
        "right_knee", "spine1")]

    def draw(betas, pose, yaw, size, backend):
        full = torch.zeros(1, constants.NUM_SMPL_JOINTS, 3)
        full[0, moved] = torch.as_tensor(pose, dtype=torch.float32)
        with torch.no_grad():
            vertices = smpl(betas=torch.as_tensor(betas, dtype=torch.float32)[None], pose=full).vertices[0]
        body = render.body_to_camera(vertices, float(yaw))
        return render.render_mesh(body, faces, render.fit_cam(body), size=size, backend=backend)

    print(f"# slider redraw, {datetime.date.today()}, {_cpu_name()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"SMPL ({smpl.model_name}) + render + PNG, {redraws} random slider positions x {repeats}; "
          f"goal: median under {REDRAW_GOAL_MS:.0f} ms; baseline: the numpy backend")
    print(f"{'backend':>9} {'size':>5} {'median ms':>10} {'max ms':>7}")
    rows = []
    for backend in backends:
        try:
            render.available_backend(backend)
        except RuntimeError as err:
            print(f"{backend:>9} unavailable: {err}")
            continue
        for size in sizes:
            calls = [dict(v, size=size, backend=backend) for v in values]
            draw(**calls[0])  # warm-up: the first call may start an OpenGL context
            times = 1000 * time_redraw(draw, calls, repeats=repeats)
            rows.append((backend, size, float(np.median(times)), float(times.max())))
            print(f"{backend:>9} {size:>5} {np.median(times):>10.0f} {times.max():>7.0f}", flush=True)
    return rows


def add_redraw_parser(sub) -> None:
    """The ``redraw`` subcommand of ``python -m hmr_core.bench``."""
    redraw = sub.add_parser("redraw", help="milliseconds per slider redraw (SMPL, render, PNG)")
    redraw.add_argument("--sizes", type=int, nargs="+", default=[256, 224])
    redraw.add_argument("--backends", nargs="+", default=["numpy", "pyrender"])
    redraw.add_argument("--redraws", type=int, default=10)
    redraw.add_argument("--repeats", type=int, default=2)


if __name__ == "__main__":
    sys.exit(main())
