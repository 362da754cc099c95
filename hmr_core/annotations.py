"""Annotation files in SPIN's preprocessed format: reading, checking, and SPIN's joints mapped to HMR's.

Every real dataset comes as one ``.npz`` per split (the format is described in ``hmr_core.datasets``).
``load_annotations`` reads one, checks every key, shape and image path, maps SPIN's 24 joints to HMR's
19 keypoints (``spin_to_keypoints``) and to the 14 LSP 3D joints (``spin_to_joints_3d``), and marks
rows with impossible values; ``read_npz`` opens any such file without unpickling. ``DatasetError`` is
the error of every dataset file.

Letters in shapes: N samples, K keypoints (19), J 3D joints (14).
"""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import NamedTuple

import numpy as np

from hmr_core import constants
from hmr_core.model_files import check_shape

# Keypoint annotations count pixels from the centre of the top-left pixel; ``hmr_core.augment`` uses
# continuous coordinates in which that centre is at (0.5, 0.5).
PIXEL_CENTRE = 0.5


class DatasetError(ValueError):
    """A dataset file or sample is missing, unreadable, or not in the expected format."""


# --------------------------------------------------------------------------------------------------
# Annotations
# --------------------------------------------------------------------------------------------------
class Annotations(NamedTuple):
    """A preprocessed annotation file, checked and mapped to HMR's keypoints.

    Attributes:
        path: the ``.npz`` file.
        imgname: (N,) str image paths.
        center: (N, 2) box centres, continuous image coordinates.
        scale: (N,) box sizes / 200.
        keypoints_2d: (N, 19, 3) HMR's keypoints in continuous image coordinates and visibility.
        joints_3d: (N, 14, 4) the LSP joints in 3D and their confidence (0 where unknown).
        pose: (N, 72) SMPL θ (0 where unknown).
        betas: (N, 10) SMPL β (0 where unknown).
        has_smpl: (N,) 1 where θ and β are labels.
        has_3d: (N,) 1 where some 3D joint has confidence > 0.
        bad: (N,) True for rows with non-finite or impossible values (see ``bad_reason``).
        bad_reason: (N,) str, why a row is bad ("" for good rows).
    """

    path: Path
    imgname: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    keypoints_2d: np.ndarray
    joints_3d: np.ndarray
    pose: np.ndarray
    betas: np.ndarray
    has_smpl: np.ndarray
    has_3d: np.ndarray
    bad: np.ndarray
    bad_reason: np.ndarray


HEAD_TOP = constants.LSP_JOINT_NAMES.index("head_top")


def _head_top_fallback(selected: np.ndarray, spin: np.ndarray) -> np.ndarray:
    """Fill an unlabelled head top (last column 0) from SPIN's slot 18, "Head (H36M)".

    Args:
        selected: (N, K, C) joints picked from SPIN's 24 (K ≥ 14, the head top at column 13); changed in place.
        spin: (N, 24, C) SPIN's joints, the last column the visibility or confidence.

    Returns:
        ``selected``.
    """
    empty = selected[:, HEAD_TOP, -1] <= 0  # (N,)
    selected[empty, HEAD_TOP] = spin[empty, constants.SPIN_HEAD_TOP_FALLBACK]
    return selected


def spin_to_keypoints(part: np.ndarray) -> np.ndarray:
    """SPIN's 24 2D joints to HMR's 19 keypoints (the 14 LSP joints, then nose, eyes, ears).

    The LSP head top comes from SPIN's slot 13, or, where that is unlabelled (Human3.6M, MPI-INF-3DHP),
    from slot 18 (``constants.SPIN_HEAD_TOP_FALLBACK``), as SPIN's ``J24_TO_J14`` and HMR's data do.

    Args:
        part: (N, 24, 3) keypoints and visibility in SPIN's order (``constants.SPIN_JOINT_NAMES``).

    Returns:
        (N, 19, 3) in ``constants.KEYPOINT_NAMES`` order (a new array).
    """
    return _head_top_fallback(part[:, list(constants.SPIN_TO_KEYPOINT)], part)


def spin_to_joints_3d(joints: np.ndarray) -> np.ndarray:
    """SPIN's 24 3D joints to the 14 LSP joints HMR's 3D loss uses (head top as in ``spin_to_keypoints``).

    Args:
        joints: (N, 24, 4) joints and confidence (or (N, 24, 3): confidence 1).

    Returns:
        (N, 14, 4) (a new array).
    """
    if joints.shape[-1] == 3:
        joints = np.concatenate((joints, np.ones_like(joints[..., :1])), axis=-1)
    return _head_top_fallback(joints[:, list(constants.SPIN_TO_LSP_3D)], joints)


def _expect(path: Path, key: str, array: np.ndarray, shape: tuple) -> None:
    check_shape(path, key, array, shape, error=DatasetError, any_size="N", hint=" (SPIN's format)")
    if key != "imgname" and not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise DatasetError(f"{path}: '{key}' has dtype {array.dtype}, expected numbers")


def read_npz(path: str | Path, error: type[ValueError] = DatasetError, what: str = "file") -> dict[str, np.ndarray]:
    """Read every array of a user's ``.npz``, never unpickling anything, with errors that name the file.

    Args:
        path: the ``.npz`` file.
        error: the exception class to raise (e.g. ``DatasetError``, ``pose_pool.PosePoolError``).
        what: what the file is, for the messages ("annotation file", "pose pool").

    Returns:
        key -> array.

    Raises:
        error: for a missing file, a file that is not an ``.npz``, or arrays stored as Python objects.
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except ValueError as err:
        if "Object arrays" in str(err):
            raise error(
                f"{path} stores an array as Python objects, which is not read (unpickling runs code); re-save it "
                "with plain arrays, e.g. strings as np.array(names, dtype=str)") from err
        raise error(f"{path} is not a readable .npz ({err})") from err
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise error(f"{path} is not a readable .npz ({type(err).__name__}: {err})") from err


def _leaves_image_folder(name: str) -> bool:
    """Whether an ``imgname`` is absolute or climbs out of its folder ('..'), with / or \\ separators."""
    posix = PurePosixPath(name.replace("\\", "/"))
    return posix.is_absolute() or ".." in posix.parts or bool(PureWindowsPath(name).drive)


def load_annotations(path: str | Path) -> Annotations:
    """Read and check one preprocessed annotation file (SPIN's ``dataset_extras`` format).

    Structural problems (a missing key, a wrong shape or dtype) raise. Row problems (a non-finite
    number, a box of non-positive size) mark the row in ``bad`` so the dataset can raise or skip it.

    Args:
        path: the ``.npz`` file.

    Returns:
        ``Annotations`` with the labels mapped to HMR's 19 keypoints and 14 3D joints.

    Raises:
        DatasetError: naming the file and the offending key or shape.
    """
    path = Path(path)
    data = read_npz(path, DatasetError, "annotation file")
    missing = [k for k in ("imgname", "center", "scale") if k not in data]
    if missing:
        raise DatasetError(f"{path} is missing key(s) {missing}; SPIN-format annotations need 'imgname', 'center', "
                           f"'scale' (and optionally 'part', 'S', 'pose', 'shape', 'has_smpl'); it has {sorted(data)}")
    imgname = data["imgname"]
    if imgname.ndim != 1 or imgname.dtype.kind not in "US":
        raise DatasetError(f"{path}: 'imgname' must be a (N,) array of strings, got shape {imgname.shape} "
                           f"dtype {imgname.dtype}")
    imgname = imgname.astype(str)
    outside = [i for i, name in enumerate(imgname) if _leaves_image_folder(name)]
    if outside:
        raise DatasetError(f"{path}: 'imgname' of sample {outside[0]} is {imgname[outside[0]]!r}, which leads outside "
                           f"the image folder ({len(outside)} such rows); image names must be relative paths inside "
                           "it (no leading '/', drive or '..')")
    n = imgname.shape[0]
    expected = {"center": (n, 2), "scale": (n,), "part": (n, constants.NUM_SPIN_JOINTS, 3),
                "pose": (n, constants.POSE_DIM), "shape": (n, None), "has_smpl": (n,)}
    for key, shape in expected.items():
        if key in data:
            _expect(path, key, data[key], shape)
    if "S" in data:
        joints = data["S"]
        if joints.ndim != 3 or joints.shape[:2] != (n, constants.NUM_SPIN_JOINTS) or joints.shape[2] not in (3, 4):
            raise DatasetError(f"{path}: 'S' has shape {joints.shape}, expected ({n}, {constants.NUM_SPIN_JOINTS}, 4) "
                               "(SPIN's format: 3D joints and confidence)")
        _expect(path, "S", joints, (n, None, None))
    if ("pose" in data) != ("shape" in data):
        raise DatasetError(f"{path} has only one of 'pose' and 'shape'; SMPL labels need both")
    if "shape" in data and data["shape"].shape[1] < constants.NUM_BETAS:
        raise DatasetError(f"{path}: 'shape' has {data['shape'].shape[1]} coefficients, expected ≥ {constants.NUM_BETAS}")

    center = data["center"].astype(np.float64)
    scale = data["scale"].astype(np.float64)
    part = data["part"].astype(np.float32) if "part" in data else np.zeros((n, constants.NUM_SPIN_JOINTS, 3), np.float32)
    keypoints = spin_to_keypoints(part).copy()
    keypoints[..., :2] += PIXEL_CENTRE
    if "S" in data:
        joints_3d = spin_to_joints_3d(data["S"].astype(np.float32))
    else:
        joints_3d = np.zeros((n, constants.NUM_LSP_JOINTS, 4), np.float32)
    if "pose" in data:
        pose = data["pose"].astype(np.float32)
        betas = data["shape"][:, : constants.NUM_BETAS].astype(np.float32)
        has_smpl = data["has_smpl"].astype(np.float32) if "has_smpl" in data else np.ones(n, np.float32)
    else:
        pose = np.zeros((n, constants.POSE_DIM), np.float32)
        betas = np.zeros((n, constants.NUM_BETAS), np.float32)
        has_smpl = np.zeros(n, np.float32)
    has_3d = (joints_3d[..., 3] > 0).any(axis=1).astype(np.float32)

    reason = np.full(n, "", dtype=object)
    checks = (
        ("center is not finite", ~np.isfinite(center).all(1)),
        ("scale is not a positive finite number", ~(np.isfinite(scale) & (scale > 0))),
        ("2D keypoints are not finite", ~np.isfinite(keypoints).all((1, 2))),
        ("3D joints are not finite", ~np.isfinite(joints_3d).all((1, 2))),
        ("SMPL pose or shape is not finite", (has_smpl > 0) & ~(np.isfinite(pose).all(1) & np.isfinite(betas).all(1))),
    )
    for why, rows in checks:
        reason[rows & (reason == "")] = why
    bad = reason != ""
    # Labels of a bad row are never used; zero them so no NaN can leak into a batch.
    for array in (keypoints, joints_3d, pose, betas):
        array[~np.isfinite(array)] = 0
    return Annotations(path, imgname, center, scale, keypoints, joints_3d, pose, betas, has_smpl, has_3d,
                       bad, reason.astype(str))
