"""Benchmarks that print numbers: ``python -m hmr_core.bench smpl``.

``smpl`` times one forward + backward pass (gradients for pose and betas) of ``hmr_core``'s SMPL and of
``smplx``'s SMPL on the same model in the same run. The model has SMPL's sizes (6,890 vertices, 24
joints, 10 betas, 207 pose blend shapes) with random arrays: timing does not depend on the values, and
non-zero pose blend shapes keep the comparison honest (the open body model has none, which would let
any implementation skip a product). Results go to ``docs/benchmarks.md`` by hand, with device and date.

``data`` measures how many augmented training samples per second a torch DataLoader delivers from
data in the standard preprocessed format (``hmr_core.datasets``): random-noise JPEGs and a SPIN-format
``.npz`` written to a temporary folder, read, cropped, augmented and batched as in training.
"""

import argparse
import datetime
import platform
import statistics
import time

import numpy as np
import torch

from hmr_core import constants


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


def _time(fn, repeats: int, device: torch.device) -> float:
    """Median wall time of ``fn`` in milliseconds, after warm-up."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(3):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def bench_smpl(batch_sizes=(64, 192), device="cpu", repeats=20, seed=0):
    """Print forward+backward times of hmr_core's SMPL and smplx's SMPL, and their agreement."""
    from hmr_core.body_model import SMPL

    device = torch.device(device)
    arrays = random_smpl_arrays(seed)
    ours = SMPL(arrays=arrays).to(device)
    theirs = make_smplx_model(arrays).to(device)
    gen = torch.Generator().manual_seed(seed)
    print(f"# SMPL forward+backward, {datetime.date.today()}, device {_device_name(device)}, torch {torch.__version__}, "
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
        t_ours = _time(step_ours, repeats, device)
        t_theirs = _time(step_theirs, repeats, device)
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


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


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
    add_synthetic_parser(sub)
    args = parser.parse_args(argv)
    if args.what == "synthetic":
        bench_synthetic(args.num_images, args.workers, args.backends)
    if args.what == "smpl":
        bench_smpl(args.batch_sizes, args.device, args.repeats)
    if args.what == "data":
        bench_data(args.num_images, args.workers, args.batch_size, args.image_size)


def bench_synthetic(num_images=96, workers=(1, 2), backends=("numpy", "pyrender"), seed_start=0):
    """Print synthetic-world images generated and written per second, per render backend and worker count.

    Runs ``synthetic.write_split`` (generation, rendering and shard writing, worker start-up included)
    into a temporary folder for each setting. A backend that cannot start here is reported and skipped.

    Args:
        num_images: images per setting.
        workers: worker-process counts to try.
        backends: render backends to try.
        seed_start: index in the train split of the first image.

    Returns:
        A list of ``(backend, workers, images_per_second)``.
    """
    import os
    import tempfile

    from hmr_core import render, synthetic

    print(f"# synthetic world, {datetime.date.today()}, {_cpu_name()}, {os.cpu_count()} logical CPUs, "
          f"torch {torch.__version__}")
    print(f"{num_images} train images of {constants.IMG_SIZE}x{constants.IMG_SIZE} per setting, shards of 32, "
          "worker start-up included")
    print(f"{'backend':>9} {'workers':>7} {'images/s':>9}")
    rows = []
    for backend in backends:
        try:
            render.available_backend(backend)
        except RuntimeError as err:
            print(f"{backend:>9} unavailable: {err}")
            continue
        for num_workers in workers:
            with tempfile.TemporaryDirectory() as tmp:
                report = synthetic.write_split(tmp, "train", num_images, shard_size=32, workers=num_workers,
                                               backend=backend, start=seed_start, progress=False)
            rate = report.num_images / report.seconds
            rows.append((backend, num_workers, rate))
            print(f"{backend:>9} {num_workers:>7} {rate:>9.1f}")
    return rows


def add_synthetic_parser(sub) -> None:
    """The ``synthetic`` subcommand of ``python -m hmr_core.bench``."""
    synthetic = sub.add_parser("synthetic", help="synthetic-world images generated per second")
    synthetic.add_argument("--num-images", type=int, default=96)
    synthetic.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    synthetic.add_argument("--backends", nargs="+", default=["numpy", "pyrender"])


if __name__ == "__main__":
    main()
