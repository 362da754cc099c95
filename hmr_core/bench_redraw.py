"""The sliders' speed: ``python -m hmr_core.bench redraw``, milliseconds per redraw.

``redraw`` times one redraw of the chapters' live sliders (SMPL with random β and joint rotations, the
renderer, PNG encoding, as ``interactive.time_redraw`` measures it) at chapter 1's and chapter 2's image
sizes, for every render backend that starts here; the NumPy rasteriser is the baseline of the run. A
slider feels live below about 200 ms.
"""

import datetime

import numpy as np
import torch

from hmr_core import constants
from hmr_core.bench import _backend_starts, _cpu_name


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
        if not _backend_starts(backend):
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
