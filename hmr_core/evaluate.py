"""Evaluate a trained HMR: ``python -m hmr_core.evaluate --checkpoint runs/hmr --data synthetic``.

Runs a checkpoint on evaluation data and prints the tables papers report (chapter "Evaluation"; the
reasoning behind every choice is in ``docs/evaluation.md``):

* 3D pose, on the 14 LSP joints, in millimetres: MPJPE after aligning the mid-hip points (HMR's code calls
  the mid-hip point the pelvis; LSP has no pelvis joint), PA-MPJPE after a similarity Procrustes
  alignment ("reconstruction error" in HMR's paper), the error per joint, and PCK3D at 150 mm with its
  AUC over 0-150 mm (MPI-INF-3DHP-style reporting, here on the 14 LSP joints, not the dataset's 17).
* 2D keypoints: PCK of the 14 LSP keypoints at 0.05 and 0.1 of the crop size (the person box), for 2D-only
  datasets such as LSP.
* Plausibility of the predicted θ: the share of poses with at least one joint outside the pose prior's
  anatomical limits (``joint_limits.joint_limit_violations``), the mean share of joints outside them, and
  the share of bodies whose capsules pass through each other (``self_contact.self_penetration``).
* The heading: the angle between the predicted and the true root rotation (geodesic, degrees; median
  and mean), on samples with SMPL labels. PA-MPJPE forgives a body turned the wrong way; MPJPE and this
  angle do not, so a heading failure shows at once.
* Everything for every IEF iteration t = 1…T; the headline table is Θ_T, and a small table per dataset
  shows how the error falls from t = 1 to T (chapter "Iterative error feedback").
* The mean body: the same numbers for Θ_0, the start of the iterations (the mean pose and shape with
  the mean camera), on every sample. A model has learned something only where it beats this row.

Which samples count: 3D metrics use the samples that have 3D joints, or SMPL labels from which the
joints are computed with the evaluated body model (3DPW in SPIN's files); only the joints with
confidence > 0 enter, and a sample without both hips is left out of the 3D metrics. SPIN's Human3.6M
and MPI-INF-3DHP files have no LSP head top in slot 13; their head joint (slot 18) stands in for it, as
in HMR's code (``annotations.spin_to_joints_3d``), so both are measured on 14 joints. 2D metrics use the samples with at least one visible
LSP keypoint. The plausibility measures use every sample.

Human3.6M's protocols. Papers use "protocol 1/2" in two incompatible ways:

* HMR's paper (Kanazawa et al., CVPR 2018, Sec. 4.1 and Tables 1-2), after Bogo et al. (SMPLify) and
  Lassner et al. (UP-3D): both protocols test on subjects S9 and S11 (training on S1, S5-S8). HMR's code
  (``src/benchmark/evaluate_h36m.py``, ``get_h36m_seqs``) defines P1 as all four cameras and both trials
  of every action, and P2 as camera 3 (60457274, the frontal one) and trial 1 only. The names say which
  images are tested, not the metric: HMR reports PA-MPJPE for both and MPJPE for P1 only. SPIN's
  preprocessed files follow this naming: ``h36m_valid_protocol1.npz`` (S9, S11, all four cameras, both
  trials, every 5th frame) and ``h36m_valid_protocol2.npz`` (the same, camera 60457274 only, both trials);
  the split ``test_p2`` keeps its first trials (``datasets.h36m_first_trial``), ``test_p2_all_trials``
  all of it.
* Many other papers (e.g. Martinez et al. 2017 and their successors): "protocol 1" means MPJPE and
  "protocol 2" means PA-MPJPE, often on S9/S11 with every 64th frame or all frames.

This module uses HMR's convention: the row "h36m P1" is the all-camera file, "h36m P2" the frontal
camera's first trials; both MPJPE and PA-MPJPE are printed for every row. Two differences from HMR's
script remain: the mean is over samples, where HMR's averages the mean of each action; and the frames
are SPIN's every 5th (HMR's Human3.6M test files, which fixed its frames, were not released). Numbers here are not directly comparable
with published ones: the predicted 3D joints are the body model's LSP keypoints (as in HMR's code; SPIN
uses the Human3.6M joint regressor on the mesh), and 3DPW's ground truth joints come from the evaluated
(neutral) body model rather than the gendered SMPL models.

``--out results.json`` writes: ``checkpoint`` (path), ``step``, ``model_name`` (body model),
``device``, ``date`` (ISO 8601, UTC), ``protocol`` (the convention above), ``joint_names``, ``units``,
and ``results``: per dataset or split, ``EvalResult.to_dict()`` (``final``: Θ_T's numbers;
``per_iteration``: lists over t = 1…T; ``mean_body``: Θ_0's numbers; ``per_joint_mm``: Θ_T's error per
joint).

This module holds the metrics of a batch and of a dataset and their tables; which data to evaluate,
loading a checkpoint and the command line are in ``evaluate_run``.

Letters in shapes: B batch, N samples, T IEF iterations, K keypoints, J joints (14).
"""

from __future__ import annotations

import math
import platform
import sys
from dataclasses import dataclass
from typing import Iterable, NamedTuple

import numpy as np
import torch

from hmr_core import constants
from hmr_core.body_model import SMPL
from hmr_core.camera import normalized_to_pixel
from hmr_core.hmr import HMR, BodyPrediction, eval_mode, predict_bodies
from hmr_core.rotation import axis_angle_to_matrix
from hmr_core.metrics import (
    AUC_THRESHOLDS_MM,
    PCK3D_THRESHOLD_MM,
    mpjpe,
    pa_mpjpe,
    pck2d,
    pck3d,
    pck3d_auc,
    per_joint_error,
)

METRIC_MM = 1000.0  # metres → millimetres
# Mid-hip root of the 14 LSP joints, as in HMR's ``align_by_pelvis``.
LSP_HIPS = (constants.LSP_JOINT_NAMES.index("right_hip"), constants.LSP_JOINT_NAMES.index("left_hip"))
PCK2D_FRACTIONS = (0.05, 0.1)  # 2D PCK thresholds as fractions of the crop side
PROTOCOL_CONVENTION = (
    "Human3.6M protocols as HMR's code defines them: P1 = S9+S11, all 4 cameras, both trials; P2 = S9+S11, "
    "frontal camera, trial 1 only (from SPIN's h36m_valid_protocol1/2.npz: every 5th frame). Both MPJPE "
    "(mid-hip aligned) and PA-MPJPE are given for each; in many other papers 'protocol 1' means MPJPE and "
    "'protocol 2' PA-MPJPE instead."
)
# Real datasets: name → [(split in ``datasets.DATASETS``, row label, protocol note)].
REAL_TEST_SPLITS = {
    "h36m": [("test_p1", "h36m P1", "Human3.6M P1 (HMR's code): S9, S11, all 4 cameras, both trials"),
             ("test_p2", "h36m P2", "Human3.6M P2 (HMR's code): S9, S11, frontal camera, trial 1")],
    "mpi_inf_3dhp": [("test", "mpi_inf_3dhp", "MPI-INF-3DHP test set (SPIN's mpi_inf_3dhp_valid.npz), 14 LSP joints")],
    "3dpw": [("test", "3dpw", "3DPW test; GT joints from the evaluated body model on the GT θ, β")],
    "lsp": [("test", "lsp", "LSP test (2D keypoints only)")],
}
SYNTHETIC_PROTOCOL = "synthetic world split {split!r}: exact labels, every sample has 3D joints"


def choose_device(name: str = "auto") -> torch.device:
    """"auto" → CUDA when visible, else the CPU; "cpu"/"cuda" as asked.

    Raises:
        ValueError: for "cuda" without a GPU.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda, but no GPU is visible; use --device cpu")
    return torch.device(name)


# --------------------------------------------------------------------------------------------------
# Metrics of one batch (pure functions of tensors)
# --------------------------------------------------------------------------------------------------
class JointErrors(NamedTuple):
    """3D errors of the samples with 3D ground truth, for every iteration; lengths in mm.

    Attributes:
        mpjpe: (T, N) mid-hip-aligned MPJPE.
        pa_mpjpe: (T, N) PA-MPJPE.
        per_joint: (T, N, J) mid-hip-aligned error per joint, NaN where a joint has no label.
        pck3d: (T, N) PCK at ``PCK3D_THRESHOLD_MM``.
        auc: (T, N) PCK3D's AUC over ``AUC_THRESHOLDS_MM``.
    """

    mpjpe: torch.Tensor
    pa_mpjpe: torch.Tensor
    per_joint: torch.Tensor
    pck3d: torch.Tensor
    auc: torch.Tensor


def joint_errors(pred_joints_3d: torch.Tensor, gt_joints_3d: torch.Tensor, confidence: torch.Tensor) -> JointErrors:
    """MPJPE, PA-MPJPE, per-joint error and PCK3D/AUC of every iteration, with ``hmr_core.metrics``.

    Samples are grouped by which joints are labelled; each group is measured on its labelled joints
    (all 14 on the 3D datasets; fewer where a file leaves joints unlabelled).

    Args:
        pred_joints_3d: (N, T, J, 3) predicted LSP joints, metres.
        gt_joints_3d: (N, J, 3) ground-truth joints, metres.
        confidence: (N, J) > 0 where a joint is labelled; every sample must label both hips.

    Returns:
        ``JointErrors`` in millimetres, samples in the order given.
    """
    num, iters, joints = pred_joints_3d.shape[:3]
    labelled = confidence > 0  # (N, J)
    out = {name: pred_joints_3d.new_full((iters, num), math.nan) for name in ("mpjpe", "pa_mpjpe", "pck3d", "auc")}
    per_joint = pred_joints_3d.new_full((iters, num, joints), math.nan)
    for pattern in torch.unique(labelled, dim=0):
        rows = (labelled == pattern).all(dim=1).nonzero()[:, 0]  # samples with this labelling
        cols = pattern.nonzero()[:, 0]  # their labelled joints
        root = tuple(int((cols == hip).nonzero()[0, 0]) for hip in LSP_HIPS)  # hips' positions in ``cols``
        gt = gt_joints_3d[rows][:, cols] * METRIC_MM  # (n, j, 3)
        for t in range(iters):
            pred = pred_joints_3d[rows, t][:, cols] * METRIC_MM  # (n, j, 3)
            out["mpjpe"][t, rows] = mpjpe(pred, gt, root=root)
            out["pa_mpjpe"][t, rows] = pa_mpjpe(pred, gt)
            out["pck3d"][t, rows] = pck3d(pred, gt, PCK3D_THRESHOLD_MM, root=root)
            out["auc"][t, rows] = pck3d_auc(pred, gt, AUC_THRESHOLDS_MM, root=root)
            aligned_pred = pred - pred[:, list(root)].mean(1, keepdim=True)
            aligned_gt = gt - gt[:, list(root)].mean(1, keepdim=True)
            per_joint[t, rows[:, None], cols[None]] = per_joint_error(aligned_pred, aligned_gt)
    return JointErrors(out["mpjpe"], out["pa_mpjpe"], per_joint, out["pck3d"], out["auc"])


def rotation_angle_deg(rot_a: torch.Tensor, rot_b: torch.Tensor) -> torch.Tensor:
    """Geodesic angle between rotation matrices (..., 3, 3), degrees in [0, 180]."""
    cos = ((rot_a.transpose(-1, -2) @ rot_b).diagonal(dim1=-2, dim2=-1).sum(-1) - 1.0) / 2.0
    return torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0)))


def root_rotation_error(pred_rotmats: torch.Tensor, gt_pose: torch.Tensor, has_smpl: torch.Tensor) -> torch.Tensor:
    """The angle between predicted and true root rotations of every iteration.

    Args:
        pred_rotmats: (B, T, 24, 3, 3) predicted rotations.
        gt_pose: (B, 72) ground-truth θ (axis-angle; the first three are the root).
        has_smpl: (B,) > 0 where θ is labelled.

    Returns:
        (T, B) degrees; NaN for samples without SMPL labels.
    """
    gt_root = axis_angle_to_matrix(gt_pose[:, :3].float())  # (B, 3, 3)
    angle = rotation_angle_deg(pred_rotmats[:, :, 0], gt_root[:, None]).transpose(0, 1)  # (T, B)
    return torch.where((has_smpl > 0)[None], angle, torch.full_like(angle, math.nan))


def keypoint_pck(pred_keypoints_2d: torch.Tensor, gt_keypoints_2d: torch.Tensor,
                 fractions=PCK2D_FRACTIONS, crop_size: int = constants.IMG_SIZE) -> torch.Tensor:
    """2D PCK of the 14 LSP keypoints at fractions of the crop side, for every iteration.

    Args:
        pred_keypoints_2d: (N, T, K, 2) predicted keypoints, normalised crop coordinates.
        gt_keypoints_2d: (N, K, 3) ground truth, normalised, and visibility.
        fractions: thresholds as fractions of the crop side.
        crop_size: the crop side in pixels.

    Returns:
        (len(fractions), T, N): NaN for a sample with no visible LSP keypoint.
    """
    lsp = slice(0, constants.NUM_LSP_JOINTS)
    gt = gt_keypoints_2d[:, lsp]
    gt_px = torch.cat((normalized_to_pixel(gt[..., :2], crop_size), gt[..., 2:]), dim=-1)  # (N, 14, 3)
    per_iteration = [
        torch.stack([pck2d(normalized_to_pixel(pred_keypoints_2d[:, t, lsp], crop_size), gt_px, f * crop_size)
                     for t in range(pred_keypoints_2d.shape[1])])
        for f in fractions
    ]
    return torch.stack(per_iteration)


def plausibility(pose: torch.Tensor, capsules) -> tuple[torch.Tensor, torch.Tensor]:
    """Joint-limit violations and self-penetration of predicted poses.

    Args:
        pose: (N, T, 72) axis-angle θ.
        capsules: ``self_contact.BodyCapsules`` of the body model.

    Returns:
        ``(outside, penetrating)``: (T, N) share of the 23 body joints outside their limits, and (T, N)
        bool whether the body passes through itself.
    """
    from hmr_core.joint_limits import joint_limit_violations
    from hmr_core.self_contact import self_penetration

    num, iters = pose.shape[:2]
    flat = pose.transpose(0, 1).reshape(iters * num, constants.POSE_DIM)  # (T·N, 72), iteration-major
    outside = joint_limit_violations(flat).view(iters, num)
    penetrating = self_penetration(flat, capsules).view(iters, num)
    return outside, penetrating


# --------------------------------------------------------------------------------------------------
# A whole dataset
# --------------------------------------------------------------------------------------------------
@dataclass
class EvalResult:
    """The numbers of one dataset or split. Arrays have the iteration axis first (T: t = 1…T).

    Attributes:
        name: the row label (e.g. "test", "h36m P1").
        protocol: what the data and protocol are.
        num_samples: samples evaluated.
        num_3d: samples in the 3D metrics.
        num_2d: samples in the 2D metrics (≥ 1 visible LSP keypoint).
        mpjpe_mm: (T,) mean MPJPE, mid-hip aligned.
        pa_mpjpe_mm: (T,) mean PA-MPJPE.
        per_joint_mm: (T, 14) mean error per LSP joint (mid-hip aligned); NaN for a joint never labelled.
        pck3d: (T,) share of joints within 150 mm.
        pck3d_auc: (T,) AUC of PCK3D over 0-150 mm.
        pck2d_005: (T,) 2D PCK at 0.05 of the crop side.
        pck2d_010: (T,) 2D PCK at 0.1 of the crop side.
        limit_violation_rate: (T,) share of poses with ≥ 1 joint outside the anatomical limits.
        joints_outside_limits: (T,) mean share of the 23 body joints outside them.
        self_penetration_rate: (T,) share of bodies that pass through themselves.
        root_angle_median_deg: (T,) median angle between predicted and true root rotations, degrees.
        root_angle_mean_deg: (T,) its mean.
        sample_mpjpe_mm: (N3,) Θ_T's MPJPE per sample with 3D labels, in loader order.
        sample_pa_mpjpe_mm: (N3,) Θ_T's PA-MPJPE per sample.
        sample_root_angle_deg: (N,) Θ_T's root-rotation error per sample (NaN without SMPL labels).
        mean_body: Θ_0's numbers (the keys of ``final()``): what the model must beat.
    """

    name: str
    protocol: str
    num_samples: int
    num_3d: int
    num_2d: int
    mpjpe_mm: np.ndarray
    pa_mpjpe_mm: np.ndarray
    per_joint_mm: np.ndarray
    pck3d: np.ndarray
    pck3d_auc: np.ndarray
    pck2d_005: np.ndarray
    pck2d_010: np.ndarray
    limit_violation_rate: np.ndarray
    joints_outside_limits: np.ndarray
    self_penetration_rate: np.ndarray
    root_angle_median_deg: np.ndarray
    root_angle_mean_deg: np.ndarray
    sample_mpjpe_mm: np.ndarray
    sample_pa_mpjpe_mm: np.ndarray
    sample_root_angle_deg: np.ndarray
    mean_body: dict

    PER_ITERATION = ("mpjpe_mm", "pa_mpjpe_mm", "pck3d", "pck3d_auc", "pck2d_005", "pck2d_010",
                     "limit_violation_rate", "joints_outside_limits", "self_penetration_rate",
                     "root_angle_median_deg", "root_angle_mean_deg")

    @property
    def num_iterations(self) -> int:
        return len(self.mpjpe_mm)

    def final(self) -> dict[str, float]:
        """Θ_T's numbers (NaN where the data has no such labels)."""
        return {key: float(getattr(self, key)[-1]) for key in self.PER_ITERATION}

    def to_dict(self) -> dict:
        """JSON-ready numbers (NaN becomes None); per-sample arrays are left out."""
        return _json_safe({
            "name": self.name, "protocol": self.protocol, "num_samples": self.num_samples,
            "num_3d": self.num_3d, "num_2d": self.num_2d, "final": self.final(),
            "per_iteration": {key: getattr(self, key).tolist() for key in self.PER_ITERATION},
            "mean_body": self.mean_body,
            "per_joint_mm": dict(zip(constants.LSP_JOINT_NAMES, self.per_joint_mm[-1].tolist())),
        })


def _json_safe(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _nanmean(x: torch.Tensor, dim: int) -> np.ndarray:
    """Mean over ``dim`` ignoring NaN; NaN where everything is NaN (no labels), without a warning."""
    valid = ~torch.isnan(x)
    total = torch.where(valid, x, torch.zeros_like(x)).sum(dim)
    count = valid.sum(dim)
    return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, math.nan)).numpy()


def _nanmedian(x: torch.Tensor, dim: int) -> np.ndarray:
    """Median over ``dim`` ignoring NaN; NaN where everything is NaN."""
    valid = (~torch.isnan(x)).any(dim)
    median = torch.nanmedian(x, dim=dim).values if x.shape[dim] else torch.full(valid.shape, math.nan)
    return torch.where(valid, median, torch.full_like(median, math.nan)).double().numpy()


def ground_truth_joints(batch: dict, smpl: SMPL) -> tuple[torch.Tensor, torch.Tensor]:
    """The 3D ground truth of a batch: its 3D joints, or the body model's joints from its SMPL labels.

    Args:
        batch: a collated ``datasets.Sample`` batch on the model's device.
        smpl: the body model.

    Returns:
        ``(joints, confidence)``: (B, 14, 3) metres and (B, 14), confidence 0 for a sample without
        3D labels or without both hips.
    """
    joints = batch["joints_3d"][..., :3].float()
    confidence = batch["joints_3d"][..., 3].float() * (batch["has_3d"] > 0)[:, None]
    from_smpl = (batch["has_3d"] <= 0) & (batch["has_smpl"] > 0)
    if from_smpl.any():
        out = smpl(betas=batch["betas"][from_smpl].float(), pose=batch["pose"][from_smpl].float())
        joints = joints.clone()
        joints[from_smpl] = out.keypoints[:, : constants.NUM_LSP_JOINTS]
        confidence = confidence.clone()
        confidence[from_smpl] = 1.0
    both_hips = (confidence[:, list(LSP_HIPS)] > 0).all(dim=1)
    return joints, confidence * both_hips[:, None]


@torch.no_grad()
def predict_batch(model: HMR, smpl: SMPL, images: torch.Tensor, with_mean_body: bool = False) -> BodyPrediction:
    """Bodies of every IEF iteration for a batch of crops (B, 3, H, W) in [0, 1]; (B, T) leading axes.

    The model runs in eval mode and is given back in the mode it came in. With ``with_mean_body``, Θ_0
    comes first: (B, T + 1) leading axes, t = 0…T.
    """
    with eval_mode(model):
        thetas = model(images).float()
    if with_mean_body:
        theta_0 = model.regressor.init_theta.float().expand(len(thetas), 1, -1)
        thetas = torch.cat((theta_0, thetas), dim=1)
    return predict_bodies(thetas, smpl)


@torch.no_grad()
def evaluate_dataset(model: HMR, smpl: SMPL, loader: Iterable[dict], name: str = "dataset", protocol: str = "",
                     capsules=None, max_samples: int | None = None, progress: bool = False) -> EvalResult:
    """Run the model over a loader and measure every metric for every IEF iteration.

    Args:
        model: HMR (put in eval mode here).
        smpl: its body model, on the same device.
        loader: batches of ``datasets.Sample`` (a ``DataLoader`` over ``SyntheticDataset`` or
            ``HMRDataset`` without augmentation).
        name: row label.
        protocol: what the data is (printed with the table).
        capsules: ``self_contact.BodyCapsules`` for the self-penetration test; None fits them to ``smpl``.
        max_samples: stop after this many samples (None: all).
        progress: show a progress bar.

    Returns:
        ``EvalResult``.

    Raises:
        ValueError: if the loader yields no samples.
    """
    from tqdm.auto import tqdm

    from hmr_core.self_contact import body_capsules

    device = next(model.parameters()).device
    capsules = body_capsules(smpl) if capsules is None else capsules
    seen = 0
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("mpjpe", "pa", "per_joint", "pck3d", "auc", "pck2d",
                                                            "outside", "penetrating", "root")}
    for batch in tqdm(loader, desc=f"eval {name}", disable=not progress, dynamic_ncols=True):
        if max_samples is not None and seen >= max_samples:
            break
        take = len(batch["img"]) if max_samples is None else min(len(batch["img"]), max_samples - seen)
        batch = {k: v[:take].to(device) if torch.is_tensor(v) else v[:take] for k, v in batch.items()}
        pred = predict_batch(model, smpl, batch["img"], with_mean_body=True)  # t = 0 (Θ_0), 1, …, T
        gt_joints, confidence = ground_truth_joints(batch, smpl)
        has_3d = (confidence > 0).any(dim=1)
        if has_3d.any():
            errors = joint_errors(pred.joints_3d[has_3d], gt_joints[has_3d], confidence[has_3d])
            for key, value in zip(("mpjpe", "pa", "per_joint", "pck3d", "auc"), errors):
                parts[key].append(value.cpu())
        parts["pck2d"].append(keypoint_pck(pred.keypoints_2d, batch["keypoints_2d"].float()).cpu())
        outside, penetrating = plausibility(pred.pose.cpu(), capsules)
        parts["outside"].append(outside)
        parts["penetrating"].append(penetrating)
        parts["root"].append(root_rotation_error(pred.rotmats, batch["pose"], batch["has_smpl"]).cpu())
        seen += take
    if seen == 0:
        raise ValueError(f"{name}: the loader gave no samples; is the dataset empty?")
    iters = parts["outside"][0].shape[0]

    def cat(key: str, dim: int, empty_shape: tuple) -> torch.Tensor:
        return torch.cat(parts[key], dim=dim) if parts[key] else torch.empty(empty_shape)

    mpjpe_all = cat("mpjpe", 1, (iters, 0))  # (T, N3)
    pa_all = cat("pa", 1, (iters, 0))
    per_joint = cat("per_joint", 1, (iters, 0, constants.NUM_LSP_JOINTS))  # (T, N3, 14)
    pck2d_all = torch.cat(parts["pck2d"], dim=2)  # (2, T, N)
    outside = torch.cat(parts["outside"], dim=1)  # (T, N)
    penetrating = torch.cat(parts["penetrating"], dim=1)  # (T, N)
    root = torch.cat(parts["root"], dim=1)  # (T, N)
    per_iteration = dict(
        mpjpe_mm=_nanmean(mpjpe_all, 1), pa_mpjpe_mm=_nanmean(pa_all, 1),
        pck3d=_nanmean(cat("pck3d", 1, (iters, 0)), 1), pck3d_auc=_nanmean(cat("auc", 1, (iters, 0)), 1),
        pck2d_005=_nanmean(pck2d_all[0], 1), pck2d_010=_nanmean(pck2d_all[1], 1),
        limit_violation_rate=(outside > 0).double().mean(1).numpy(),
        joints_outside_limits=outside.double().mean(1).numpy(),
        self_penetration_rate=penetrating.double().mean(1).numpy(),
        root_angle_median_deg=_nanmedian(root, 1), root_angle_mean_deg=_nanmean(root, 1),
    )  # index 0 is Θ_0, the mean body
    return EvalResult(
        name=name, protocol=protocol, num_samples=seen, num_3d=int(mpjpe_all.shape[1]),
        num_2d=int((~torch.isnan(pck2d_all[0, 0])).sum()),
        per_joint_mm=_nanmean(per_joint, 1)[1:], **{k: v[1:] for k, v in per_iteration.items()},
        sample_mpjpe_mm=mpjpe_all[-1].numpy(), sample_pa_mpjpe_mm=pa_all[-1].numpy(),
        sample_root_angle_deg=root[-1].numpy(),
        mean_body=_json_safe({k: float(v[0]) for k, v in per_iteration.items()}),
    )


# --------------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------------
def _fmt(value: float, kind: str) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{100 * value:.1f}" if kind == "%" else f"{value:.1f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    """Plain-text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]

    def line(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows])


MAIN_COLUMNS = (  # (header, EvalResult field, "mm" or "%")
    ("MPJPE", "mpjpe_mm", "mm"), ("PA-MPJPE", "pa_mpjpe_mm", "mm"), ("PCK3D@150", "pck3d", "%"),
    ("AUC", "pck3d_auc", "%"), ("PCK2D@.05", "pck2d_005", "%"), ("PCK2D@.1", "pck2d_010", "%"),
    ("limits", "limit_violation_rate", "%"), ("penetr.", "self_penetration_rate", "%"),
    ("root°", "root_angle_median_deg", "deg"),
)


def format_report(results: list[EvalResult], info: dict) -> str:
    """The printed report: a header, Θ_T's table, the error per IEF iteration, the error per joint.

    Args:
        results: one ``EvalResult`` per dataset.
        info: ``checkpoint``, ``step``, ``model_name``, ``device``, ``date``.

    Returns:
        Plain text.
    """
    out = [f"checkpoint {info['checkpoint']} (step {info['step']}), body model {info['model_name']}, "
           f"device {info['device']}, {info['date']}",
           f"protocol: {PROTOCOL_CONVENTION}", ""]
    for r in results:
        out.append(f"  {r.name}: {r.protocol} ({r.num_samples} samples, {r.num_3d} with 3D, {r.num_2d} with 2D)")
    out += ["", "Θ_T (last IEF iteration), and Θ_0 (the mean body) below it; errors in mm, root° the median "
                "root-rotation error in degrees, the others in % (limits: poses with a joint outside the prior's "
                "limits; penetr.: self-penetrating bodies)"]
    rows = []
    for r in results:
        rows.append([r.name, str(r.num_samples)] + [_fmt(getattr(r, f)[-1], kind) for _, f, kind in MAIN_COLUMNS])
        rows.append([f"{r.name} Θ_0", str(r.num_samples)] + [_fmt(r.mean_body[f], kind) for _, f, kind in MAIN_COLUMNS])
    out += [_table(["data", "N"] + [h for h, _, _ in MAIN_COLUMNS], rows), ""]
    for r in results:
        out.append(f"per IEF iteration: {r.name}")
        rows = [[f"t={t + 1}"] + [_fmt(getattr(r, f)[t], kind) for _, f, kind in MAIN_COLUMNS]
                for t in range(r.num_iterations)]
        out += [_table(["iter"] + [h for h, _, _ in MAIN_COLUMNS], rows), ""]
    with_3d = [r for r in results if r.num_3d]
    if with_3d:
        out.append("per-joint error of Θ_T, mm (mid-hip aligned)")
        rows = [[joint] + [_fmt(r.per_joint_mm[-1, j], "mm") for r in with_3d]
                for j, joint in enumerate(constants.LSP_JOINT_NAMES)]
        out += [_table(["joint"] + [r.name for r in with_3d], rows), ""]
    return "\n".join(out)


def results_json(results: list[EvalResult], info: dict) -> dict:
    """Everything ``--out`` writes (keys listed in the module docstring)."""
    return {**info, "protocol": PROTOCOL_CONVENTION, "joint_names": list(constants.LSP_JOINT_NAMES),
            "units": {"mpjpe_mm": "mm", "pa_mpjpe_mm": "mm", "per_joint_mm": "mm",
                      "others": "fractions in [0, 1]"},
            "pck3d_threshold_mm": PCK3D_THRESHOLD_MM, "pck2d_fractions_of_crop": list(PCK2D_FRACTIONS),
            "results": {r.name: r.to_dict() for r in results}}


def device_name(device: torch.device) -> str:
    """The GPU's name, or "CPU (processor, N threads)", for result files and benchmark headers."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


if __name__ == "__main__":
    from hmr_core.evaluate_run import main

    sys.exit(main())
