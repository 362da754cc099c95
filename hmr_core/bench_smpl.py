"""SMPL's speed: ``python -m hmr_core.bench smpl``, ``hmr_core``'s SMPL against ``smplx``'s.

``smpl`` times one forward + backward pass (gradients for pose and betas) of ``hmr_core``'s SMPL and of
``smplx``'s SMPL on the same model in the same run. The model has SMPL's sizes (6,890 vertices, 24
joints, 10 betas, 207 pose blend shapes) with random arrays: timing does not depend on the values, and
non-zero pose blend shapes keep the comparison honest (the open body model has none, which would let
any implementation skip a product). Results go to ``docs/benchmarks.md`` by hand, with device and date.
"""

import datetime

import numpy as np
import torch

from hmr_core import constants
from hmr_core.bench import _time
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
