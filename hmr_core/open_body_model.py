"""An open body model in SMPL's format, built from Anny (Apache-2.0).

The official SMPL model (Loper et al., SIGGRAPH Asia 2015) needs a registration, so the book's default
body model is built here from the Anny body model (Brégier et al., ECCV 2026; code Apache-2.0, MakeHuman
assets CC0). The result is a plain SMPL-format ``.npz`` (``v_template``, ``shapedirs``, ``posedirs``,
``J_regressor``, ``weights``, ``kintree_table``, ``f``, plus HMR's keypoint regressors) that any SMPL code
can load: metres, y up, facing +z, the subject's left at +x, a T-pose at θ = 0, SMPL's 24 joints.

The build follows how SMPL's own shape space and joint regressor were trained (SMPL paper, Sec. 4), with
Anny as the "scanner"; the chapter "The SMPL body model" uses the result. This module runs the steps;
their functions live in ``anny_bodies`` (Anny's side), ``anny_to_smpl`` (the correspondence of the two
rigs) and ``open_body_fit`` (the fits):

1. sample adult bodies over Anny's phenotypes and local changes (``anny_bodies.sample_body_parameters``);
2. re-pose each body's arms from Anny's A-pose to a T-pose with Anny's own skinning
   (``anny_bodies.tpose_bodies``) and express it in SMPL's axes (``anny_to_smpl.anny_to_smpl_axes``);
3. PCA of the rest meshes gives ``v_template`` and ``shapedirs`` (``open_body_fit.fit_shape_space``);
4. sparse non-negative regressors from vertices to joints and keypoints are fitted over the sampled
   bodies (``open_body_fit.fit_sparse_regressor``);
5. Anny's 104 bones' skinning weights are summed into SMPL's 24 parts
   (``anny_to_smpl.smpl_skinning_weights``).

Every choice (joint placement, bone → part mapping, inner parts, keypoints) and the measured report are in
``docs/open_body_model.md``. Build with ``python -m hmr_core.open_body_model build``. ``anny`` is an
optional build dependency, imported only inside the functions that need it.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from hmr_core.anny_bodies import (
    coco_regressor,
    face_keypoint_vertex_ids,
    kept_vertex_mask,
    load_anny,
    lsp_keypoint_targets,
    sample_body_parameters,
    segment_faces,
    tpose_bodies,
)
from hmr_core.anny_to_smpl import anny_to_smpl_axes, joints_from_bone_heads, smpl_skinning_weights
from hmr_core.constants import (
    LSP_JOINT_NAMES,
    NUM_BETAS,
    NUM_POSE_BLEND,
    NUM_SMPL_JOINTS,
    OPEN_MODEL_FILENAME,
    SMPL_JOINT_NAMES,
    SMPL_PARENTS,
)
from hmr_core.open_body_fit import (
    fit_joint_regressor,
    fit_shape_space,
    project_to_shape_space,
    regressor_errors_mm,
)

DEFAULT_OUTPUT_PATH = Path(__file__).resolve().parent / "data" / OPEN_MODEL_FILENAME

# --- Keypoints -----------------------------------------------------------------------------------------
# SMPL joints whose neighbourhood holds the candidate vertices for each LSP keypoint's regressor.
LSP_JOINT_TO_SMPL_JOINT = {
    "right_ankle": "right_ankle",
    "right_knee": "right_knee",
    "right_hip": "right_hip",
    "left_hip": "left_hip",
    "left_knee": "left_knee",
    "left_ankle": "left_ankle",
    "right_wrist": "right_wrist",
    "right_elbow": "right_elbow",
    "right_shoulder": "right_shoulder",
    "left_shoulder": "left_shoulder",
    "left_elbow": "left_elbow",
    "left_wrist": "left_wrist",
    "neck": "neck",
    "head_top": "head",
}

_ROOT_PARENT = -1  # kintree_table[0, 0]: the official model stores 2**32 - 1; we store -1 as int64


@dataclasses.dataclass(frozen=True)
class OpenModelConfig:
    """Settings of the build; the defaults make the committed ``hmr_core/data/open_body_model.npz``."""

    num_bodies: int = 2400  # sampled bodies, training and held-out together
    heldout_fraction: float = 0.1  # the last ~10% of the sampled bodies only measure the fit
    seed: int = 0  # seeds every random draw (NumPy's PCG64)
    min_age_years: float = 18.0  # adults: Anny's "morphological age" in years, sampled uniformly
    max_age_years: float = 80.0
    local_change_std: float = 0.1  # std of each local change (Anny's range is [-1, 1]), clipped to ±1
    num_betas: int = NUM_BETAS  # shape components kept
    candidates_per_direction: int = 4  # regressor candidates: nearest vertices per direction bin (14 bins)
    batch_size: int = 200  # bodies per Anny forward pass


class OpenBodyModel(NamedTuple):
    """The built model (the arrays of the ``.npz``) and its measured report."""

    arrays: dict[str, np.ndarray]
    report: dict


def build_open_body_model(
    config: OpenModelConfig = OpenModelConfig(), progress: bool = True
) -> OpenBodyModel:
    """Build the open SMPL-format body model from Anny (see the module docstring for the steps).

    Args:
        config: the build settings.
        progress: show a progress bar on stderr.

    Returns:
        The arrays of the ``.npz`` and the measured report.
    """
    import anny as anny_module
    import torch

    num_heldout = int(round(config.heldout_fraction * config.num_bodies))
    num_train = config.num_bodies - num_heldout
    if num_train <= config.num_betas or num_heldout < 1:
        raise ValueError(
            f"num_bodies={config.num_bodies} leaves no held-out body or too few training bodies "
            f"for {config.num_betas} betas"
        )
    train, heldout = slice(0, num_train), slice(num_train, None)

    started = time.perf_counter()
    # Anny runs single-threaded, so that its results do not depend on the machine's core count; the
    # caller's setting is restored on exit.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = load_anny()
        samples = sample_body_parameters(model, config.num_bodies, config)
        anny_vertices, anny_heads = tpose_bodies(model, samples, config, progress)
        bone_labels = list(model.bone_labels)
        coco_weights, coco_labels = coco_regressor(model)
        segments = {name: segment_faces(model, name) for name in ("head", "eye_front.L", "eye_front.R")}
        keep = kept_vertex_mask(model)
        faces_anny = model.faces.cpu().numpy()
        dropped_faces = ~np.all(keep[faces_anny], axis=1)
        # Anny packs up to 9 (bone, weight) pairs per vertex, padding with zero weights on bone 0:
        # accumulate them into a dense (V, B) array.
        dense_bone_weights = np.zeros((len(keep), len(bone_labels)))
        np.add.at(
            dense_bone_weights,
            (np.arange(len(keep))[:, None], model.vertex_bone_indices.cpu().numpy()),
            model.vertex_bone_weights.cpu().numpy(),
        )
    finally:
        torch.set_num_threads(threads)

    lsp_anny = lsp_keypoint_targets(
        anny_vertices, anny_heads, bone_labels, coco_weights, coco_labels, segments["head"]
    )
    joints = anny_to_smpl_axes(joints_from_bone_heads(anny_heads, bone_labels))  # (N, 24, 3)
    pelvis = joints[:, :1].copy()  # (N, 1, 3): every body is placed with its pelvis at the origin
    joints -= pelvis
    lsp = anny_to_smpl_axes(lsp_anny) - pelvis
    # n: body, k: keypoint, v: vertex, c: coordinate
    coco_train = np.einsum("kv,nvc->nkc", coco_weights, anny_vertices[train])
    coco_mean = (anny_to_smpl_axes(coco_train) - pelvis[train]).mean(axis=0)  # (K, 3) on the mean body
    vertices = anny_to_smpl_axes(anny_vertices[:, keep]) - pelvis  # (N, V, 3)
    del anny_vertices, coco_train

    new_index = np.cumsum(keep) - 1  # Anny vertex id -> open-model vertex id
    faces = new_index[faces_anny[~dropped_faces]].astype(np.int32)
    segments = {name: new_index[np.unique(tris[keep[tris].all(axis=1)])] for name, tris in segments.items()}

    shape_space = fit_shape_space(vertices[train], config.num_betas)
    weights = smpl_skinning_weights(dense_bone_weights[keep], bone_labels)
    dominant_part = weights.argmax(axis=1)

    j_regressor = fit_joint_regressor(
        vertices[train], joints[train], dominant_part, range(NUM_SMPL_JOINTS), config.candidates_per_direction
    )
    lsp_regressor = fit_joint_regressor(
        vertices[train],
        lsp[train],
        dominant_part,
        [SMPL_JOINT_NAMES.index(LSP_JOINT_TO_SMPL_JOINT[name]) for name in LSP_JOINT_NAMES],
        config.candidates_per_direction,
    )
    # The mean body's regressed pelvis is at the origin exactly (it is within a millimetre already).
    pelvis_offset = j_regressor[0] @ shape_space.mean
    v_template = shape_space.mean - pelvis_offset

    coco_points = {name: coco_mean[coco_labels.index(name)] for name in ("left_ear", "right_ear")}
    face_ids = face_keypoint_vertex_ids(
        v_template, segments, {k: p - pelvis_offset for k, p in coco_points.items()}
    )

    kintree_table = np.stack([np.array(SMPL_PARENTS), np.arange(NUM_SMPL_JOINTS)]).astype(np.int64)
    kintree_table[0, 0] = _ROOT_PARENT
    arrays = {
        "v_template": v_template.astype(np.float32),
        "shapedirs": shape_space.shapedirs.astype(np.float32),
        "posedirs": np.zeros((len(v_template), 3, NUM_POSE_BLEND), dtype=np.float32),
        "J_regressor": j_regressor.astype(np.float32),
        "weights": weights.astype(np.float32),
        "kintree_table": kintree_table,
        "f": faces,
        "J_regressor_lsp": lsp_regressor.astype(np.float32),
        "face_vertex_ids": face_ids,
    }

    # --- The report: all measured on float64 arrays, the held-out bodies never seen by any fit.
    betas = project_to_shape_space(vertices[heldout], shape_space)
    reconstruction = shape_space.mean + np.einsum("vck,nk->nvc", shape_space.shapedirs, betas)
    residual = np.linalg.norm(reconstruction - vertices[heldout], axis=-1)  # (n, V)
    per_body_rms = 1000.0 * np.sqrt((residual**2).mean(axis=1))
    # On the training bodies the squared residual is the variance the kept components leave out.
    unexplained = shape_space.total_variance * (1.0 - shape_space.variance_ratio.sum())
    train_rms = np.sqrt(unexplained * (num_train - 1) / num_train / len(v_template))
    joint_errors = regressor_errors_mm(j_regressor, vertices[heldout], joints[heldout])
    lsp_errors = regressor_errors_mm(lsp_regressor, vertices[heldout], lsp[heldout])
    # Joint errors once the held-out bodies are replaced by their shape-space reconstruction: what a user
    # of the model gets for the betas that best fit such a body.
    joint_errors_reconstructed = regressor_errors_mm(j_regressor, reconstruction, joints[heldout])
    heights = vertices[:, :, 1].max(axis=1) - vertices[:, :, 1].min(axis=1)
    is_man = samples.phenotypes[:, samples.phenotype_labels.index("gender")] <= 0.5
    report = {
        "anny_version": anny_module.__version__,
        "seed": config.seed,
        "config": dataclasses.asdict(config),
        "num_bodies": config.num_bodies,
        "num_train": num_train,
        "num_heldout": num_heldout,
        "num_vertices": len(v_template),
        "num_faces": len(faces),
        "variance_explained": [round(float(r), 6) for r in shape_space.variance_ratio],
        "variance_explained_cumulative": [round(float(r), 6) for r in np.cumsum(shape_space.variance_ratio)],
        "heldout_rms_mm": round(float(1000.0 * np.sqrt((residual**2).mean())), 3),
        "heldout_rms_mm_per_body_median": round(float(np.median(per_body_rms)), 3),
        "heldout_rms_mm_per_body_max": round(float(per_body_rms.max()), 3),
        "heldout_max_vertex_error_mm": round(float(1000.0 * residual.max()), 3),
        "train_rms_mm": round(float(1000.0 * train_rms), 3),
        # The population's spread: RMS distance of a training body's vertices from the mean body.
        "shape_spread_rms_mm": round(
            float(1000.0 * np.sqrt(shape_space.total_variance / len(v_template))), 3
        ),
        "joint_regressor_heldout_mean_mm": round(float(joint_errors.mean()), 3),
        "joint_regressor_heldout_max_mm": round(float(joint_errors.max()), 3),
        "joint_regressor_heldout_mean_mm_per_joint": {
            name: round(float(e), 3)
            for name, e in zip(SMPL_JOINT_NAMES, joint_errors.mean(axis=0), strict=True)
        },
        "joint_error_after_shape_projection_mean_mm": round(float(joint_errors_reconstructed.mean()), 3),
        "lsp_regressor_heldout_mean_mm": round(float(lsp_errors.mean()), 3),
        "lsp_regressor_heldout_max_mm": round(float(lsp_errors.max()), 3),
        "lsp_regressor_heldout_mean_mm_per_keypoint": {
            name: round(float(e), 3) for name, e in zip(LSP_JOINT_NAMES, lsp_errors.mean(axis=0), strict=True)
        },
        "regressor_nonzeros_max": int(max((j_regressor > 0).sum(1).max(), (lsp_regressor > 0).sum(1).max())),
        "mean_body_height_m": round(float(v_template[:, 1].max() - v_template[:, 1].min()), 4),
        "sampled_height_m": {
            "men_mean": round(float(heights[is_man].mean()), 4),
            "men_std": round(float(heights[is_man].std()), 4),
            "women_mean": round(float(heights[~is_man].mean()), 4),
            "women_std": round(float(heights[~is_man].std()), 4),
            "min": round(float(heights.min()), 4),
            "max": round(float(heights.max()), 4),
        },
        "pelvis_offset_mm": round(float(1000.0 * np.linalg.norm(pelvis_offset)), 3),
        "face_vertex_ids": face_ids.tolist(),
    }
    arrays["model_name"] = np.array(f"open_body_model (anny {anny_module.__version__})")
    arrays["build_info"] = np.array(json.dumps(report, sort_keys=True))
    report = {**report, "build_seconds": round(time.perf_counter() - started, 1)}
    return OpenBodyModel(arrays=arrays, report=report)


def save_open_body_model(model: OpenBodyModel, path: Path) -> None:
    """Write the arrays with ``np.savez_compressed`` (the zero ``posedirs`` compress to almost nothing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **model.arrays)


def format_report(report: dict) -> str:
    """The measured report as a few readable lines."""
    r, h = report, report["sampled_height_m"]
    lines = [
        f"anny {r['anny_version']}, seed {r['seed']}: {r['num_train']} training + {r['num_heldout']} "
        f"held-out bodies, {r['num_vertices']} vertices, {r['num_faces']} faces",
        "variance explained (%): " + " ".join(f"{100 * x:.2f}" for x in r["variance_explained"]),
        "cumulative (%):         " + " ".join(f"{100 * x:.2f}" for x in r["variance_explained_cumulative"]),
        f"held-out reconstruction RMS: {r['heldout_rms_mm']:.2f} mm (per body: median "
        f"{r['heldout_rms_mm_per_body_median']:.2f}, max {r['heldout_rms_mm_per_body_max']:.2f}; worst "
        f"vertex {r['heldout_max_vertex_error_mm']:.1f} mm); training {r['train_rms_mm']:.2f} mm; "
        f"spread of the bodies {r['shape_spread_rms_mm']:.1f} mm",
        f"J_regressor held-out error: mean {r['joint_regressor_heldout_mean_mm']:.2f} mm, "
        f"max {r['joint_regressor_heldout_max_mm']:.2f} mm",
        f"J_regressor_lsp held-out error: mean {r['lsp_regressor_heldout_mean_mm']:.2f} mm, "
        f"max {r['lsp_regressor_heldout_max_mm']:.2f} mm",
        f"mean body height {r['mean_body_height_m']:.3f} m; sampled men {h['men_mean']:.3f} ± "
        f"{h['men_std']:.3f} m, women {h['women_mean']:.3f} ± {h['women_std']:.3f} m",
    ]
    if "build_seconds" in report:
        lines.append(f"build time {report['build_seconds']:.1f} s")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m hmr_core.open_body_model build [--out PATH] [--num-bodies N] [--seed S]``."""
    parser = argparse.ArgumentParser(
        prog="python -m hmr_core.open_body_model", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build the model from Anny and write the .npz")
    build.add_argument(
        "--out", type=Path, default=DEFAULT_OUTPUT_PATH, help="output .npz (default: %(default)s)"
    )
    build.add_argument("--num-bodies", type=int, default=OpenModelConfig.num_bodies, help="bodies sampled")
    build.add_argument("--seed", type=int, default=OpenModelConfig.seed, help="random seed")
    args = parser.parse_args(argv)
    config = OpenModelConfig(num_bodies=args.num_bodies, seed=args.seed)
    model = build_open_body_model(config)
    save_open_body_model(model, args.out)
    print(format_report(model.report))
    size_mb = args.out.stat().st_size / 1e6
    print(f"wrote {args.out} ({size_mb:.2f} MB) on {datetime.date.today()}, {platform.node()}")


if __name__ == "__main__":
    main()
