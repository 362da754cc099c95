"""The training step's speed: ``python -m hmr_core.bench train``, HMR's step against a SPIN-style one.

``train`` times the full HMR training step as ``hmr_core.train`` runs it (``train.encoder_step`` and
``train.discriminator_step``: ResNet-50, T IEF iterations, one SMPL pass over B·T, 25 discriminators, both
Adam updates, with the trainer's bf16 / channels-last / compile settings) and, in the same run, a
baseline step written the way SPIN trains (fp32, NCHW, batch 64, the same ResNet-50 and regressor, SMPL
on Θ_T only, no discriminator, plain Adam).
"""

import argparse
import datetime
import time
from typing import NamedTuple

import torch

from hmr_core import constants, train_runtime
from hmr_core.evaluate import device_name


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
    autocast = train_runtime.autocast_context(config, device)
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
    train_runtime.seed_everything(seed)
    generator = torch.Generator().manual_seed(seed)
    rows: list[TrainBenchRow] = []
    with contextlib.ExitStack() as stack:
        written = ""
        if data == "synthetic" and data_dir is None:
            from hmr_core.synthetic_write import write_split

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
