"""The real datasets HMR trains and tests on, read from the standard preprocessed ``.npz`` annotations.

HMR (Kanazawa et al., CVPR 2018, Sec. 4) trains on in-the-wild images with 2D keypoints (LSP,
LSP-extended, MPII, COCO) and on images with 3D labels (Human3.6M, MPI-INF-3DHP), and tests on
Human3.6M, MPI-INF-3DHP and LSP; 3DPW is the usual in-the-wild 3D test set of its successors. The
de-facto standard form of all of them is the ``.npz`` files of SPIN's ``dataset_extras`` (Kolotouros et
al., ICCV 2019), one per dataset and split:

====================  ============  ==========================================================
key                   shape         meaning
====================  ============  ==========================================================
``imgname``           (N,) str      image path, relative to the dataset's image folder
``center``            (N, 2)        person box centre, pixels
``scale``             (N,)          person box size / 200
``part``              (N, 24, 3)    2D keypoints (pixels) and visibility, SPIN's 24-joint order
``S``                 (N, 24, 4)    3D joints (metres, camera frame) and confidence
``pose``              (N, 72)       SMPL θ (axis-angle, camera frame)
``shape``             (N, 10)       SMPL β
``has_smpl``          (N,)          1 where pose/shape are real labels
====================  ============  ==========================================================

Only ``imgname``, ``center`` and ``scale`` are always there; a missing ``part``, ``S`` or
``pose``/``shape`` means the dataset has no such labels (their ``has_*`` is 0). SPIN's 24 joints map to
HMR's 19 keypoints (``constants.SPIN_TO_KEYPOINT``) and to the 14 LSP 3D joints
(``constants.SPIN_TO_LSP_3D``); the head top falls back to SPIN's slot 18 where slot 13 is empty
(Human3.6M, MPI-INF-3DHP), so those datasets have all 14 joints as in HMR. Reading and checking the files is
``hmr_core.annotations``; this module holds the datasets' registry, their images and the torch
``Dataset``. Where each dataset comes from, its terms, and the folder layout are in ``docs/datasets.md``.

Letters in shapes: N samples, K keypoints (19), J 3D joints (14), H/W image.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TypedDict

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from hmr_core import constants
from hmr_core.annotations import DatasetError, load_annotations
from hmr_core.augment import (
    NO_AUGMENTATION,
    AugmentConfig,
    augment_labels,
    crop_transform,
    image_to_tensor,
    sample_augment_params,
    scale_image_coordinates,
    warp_image,
)

logger = logging.getLogger(__name__)

ANNOTATION_DIR = "dataset_extras"  # where the .npz files live under the data root (as in SPIN)
MAX_LOGGED_SKIPS = 5  # skipped samples logged one by one per process; the rest are only counted


# --------------------------------------------------------------------------------------------------
# The datasets
# --------------------------------------------------------------------------------------------------
class DatasetInfo(NamedTuple):
    """Where a dataset's files are and what it provides.

    Attributes:
        title: the dataset's name.
        image_folder: folder under the data root that ``imgname`` is relative to.
        files: split ("train", "test", ...) -> ``.npz`` file name under ``<root>/dataset_extras``.
        labels: which labels the preprocessed files hold.
        url: the official site.
        terms: licence or terms of use, in short.
    """

    title: str
    image_folder: str
    files: dict[str, str]
    labels: str
    url: str
    terms: str


DATASETS: dict[str, DatasetInfo] = {
    "h36m": DatasetInfo(
        "Human3.6M", "h36m",
        {"train": "h36m_train.npz", "test_p1": "h36m_valid_protocol1.npz", "test_p2": "h36m_valid_protocol2.npz",
         "test_p2_all_trials": "h36m_valid_protocol2.npz"},
        "2D keypoints, 3D joints; SMPL θ/β only where MoSh fits are available",
        "http://vision.imar.ro/human3.6m/", "registration and approval; academic, non-commercial research use"),
    "mpi_inf_3dhp": DatasetInfo(
        "MPI-INF-3DHP", "mpi_inf_3dhp",
        {"train": "mpi_inf_3dhp_train.npz", "test": "mpi_inf_3dhp_valid.npz"},
        "2D keypoints, 3D joints; SPIN's train file also SMPLify fits (HMR had none)",
        "https://vcai.mpi-inf.mpg.de/3dhp-dataset/",
        "licence agreement before download; research use (see the site)"),
    "lsp": DatasetInfo(
        "Leeds Sports Pose", "lsp_dataset_original",
        {"train": "lsp_dataset_original_train.npz", "test": "lsp_dataset_test.npz"},
        "2D keypoints (14 LSP joints)", "http://sam.johnson.io/research/lsp.html",
        "Flickr images, research use (see the site)"),
    "lsp_ext": DatasetInfo(
        "LSP-extended", "hr-lspet", {"train": "hr-lspet_train.npz"},
        "2D keypoints (14 LSP joints)", "http://sam.johnson.io/research/lspet.html",
        "Flickr images, research use (see the site)"),
    "mpii": DatasetInfo(
        "MPII Human Pose", "mpii", {"train": "mpii_train.npz"},
        "2D keypoints (16 MPII joints)", "http://human-pose.mpi-inf.mpg.de/",
        "annotations under the Simplified BSD licence; images are YouTube frames (see the site)"),
    "coco": DatasetInfo(
        "COCO 2014 keypoints", "coco", {"train": "coco_2014_train.npz"},
        "2D keypoints (17 COCO points: limbs and face)", "https://cocodataset.org/",
        "annotations CC BY 4.0; images under their Flickr licences (COCO terms of use)"),
    "3dpw": DatasetInfo(
        "3D Poses in the Wild", "3DPW", {"test": "3dpw_test.npz"},
        "SMPL θ/β (from IMUs and video), no 2D keypoints in SPIN's file", "https://virtualhumans.mpi-inf.mpg.de/3DPW/",
        "non-commercial scientific research (see the site)"),
}
# Test-split image folders that differ from the training one. As in SPIN, LSP trains on the release at
# the original resolution (lsp_dataset_original) and tests on the release rescaled to the person (lsp_dataset).
TEST_IMAGE_FOLDERS = {("lsp", "test"): "lsp_dataset"}


def h36m_first_trial(imgname: np.ndarray) -> np.ndarray:
    """(N,) bool: the rows of each subject's and action's first trial, from SPIN's Human3.6M image names.

    HMR's code defines Human3.6M protocol 2 as subjects S9 and S11, camera 3 (60457274, the frontal one)
    and trial 1 only (``src/benchmark/evaluate_h36m.py``, ``get_h36m_seqs``: ``trial_ids = [0]``,
    ``cam_ids = [3]``); SPIN's ``h36m_valid_protocol2.npz`` has that camera and both trials. Its names are
    ``S<subject>_<sequence>.<camera>_<frame>.jpg``, the sequence Human3.6M's with spaces as underscores;
    an action's two trials are named like "Directions" and "Directions_1", or "Discussion_1" and
    "Discussion_2", and the first in sorted order is taken as trial 1 (HMR's own Human3.6M files, which
    fixed its numbering, were not released).

    Args:
        imgname: (N,) image paths.

    Returns:
        (N,) bool.

    Raises:
        DatasetError: for a name not in that form.
    """
    keys = []
    for name in imgname:
        sequence = Path(str(name)).name.split(".")[0]  # "S9_Directions_1"
        subject, _, trial = sequence.partition("_")
        if not (subject.startswith("S") and trial):
            raise DatasetError(f"{name!r} is not a Human3.6M image name of SPIN's form "
                               "S<subject>_<action>[_<n>].<camera>_<frame>.jpg")
        action = trial.rstrip("0123456789").rstrip("_") if trial[-1].isdigit() else trial
        keys.append((subject, action, trial))
    first = {}
    for subject, action, trial in keys:
        first[subject, action] = min(first.get((subject, action), trial), trial)
    return np.array([first[subject, action] == trial for subject, action, trial in keys], dtype=bool)


# Rows of a split's file that the split keeps: (dataset, split) -> function of ``imgname``.
SPLIT_ROWS = {("h36m", "test_p2"): h36m_first_trial}


# --------------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------------
def read_image(path: Path, zoom: float = 1.0):
    """Open an image as RGB, decoding JPEGs at a reduced size when the crop shrinks them anyway.

    A crop that maps ``zoom`` output pixels to each image pixel (zoom < 1 shrinks) loses nothing if the
    decoder skips detail: JPEG decoders downscale by 2, 4 or 8 for free (PIL's ``draft``), which is
    several times faster on large photographs. The image is turned as its EXIF orientation says (as
    OpenCV's ``imread``, with which SPIN's annotations were made, does).

    Args:
        path: the image file.
        zoom: crop pixels per image pixel.

    Returns:
        ``(image, factor)``: the decoded RGB PIL image and how many full-size pixels one of its
        pixels spans (1, 2, 4 or 8).

    Raises:
        FileNotFoundError: if the file does not exist.
        OSError: if it is not a readable image (PIL's ``UnidentifiedImageError`` is one).
    """
    from PIL import Image, ImageOps

    image = Image.open(path)
    full_width = image.size[0]
    if image.format == "JPEG" and zoom < 0.5:
        # Ask for at least twice the resolution the crop needs.
        image.draft("RGB", (max(1, math.ceil(image.size[0] * zoom * 2)), max(1, math.ceil(image.size[1] * zoom * 2))))
    image.load()  # decode now, so a truncated file fails here
    factor = float(round(full_width / image.size[0]))
    return ImageOps.exif_transpose(image).convert("RGB"), factor


# --------------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------------
class Sample(TypedDict):
    """One training sample (``HMRDataset.__getitem__``); a DataLoader stacks each key over the batch.

    Keys:
        img: (3, H, W) float32 image crop in [0, 1], H = W = ``constants.IMG_SIZE``.
        keypoints_2d: (19, 3) normalised crop coordinates ([-1, 1] in the crop, beyond it for a truncated
            body) and visibility (0: no label).
        joints_3d: (14, 4) LSP joints in 3D (metres, camera frame) and confidence.
        pose: (72,) SMPL θ; ``has_smpl`` says whether it is a label.
        betas: (10,) SMPL β.
        has_smpl: () float32, 1 if θ and β are labels.
        has_3d: () float32, 1 if ``joints_3d`` is a label.
        index: () int64, the row of the annotation file.
        dataset: the dataset's name.
    """

    img: torch.Tensor
    keypoints_2d: torch.Tensor
    joints_3d: torch.Tensor
    pose: torch.Tensor
    betas: torch.Tensor
    has_smpl: torch.Tensor
    has_3d: torch.Tensor
    index: torch.Tensor
    dataset: str


@dataclass
class SkipCounter:
    """Samples skipped for bad data, summed over the main process and the DataLoader workers.

    Each process adds to its own slot of a shared-memory tensor, so workers never race on a slot and
    the main process sees their counts while they run.
    """

    slots: torch.Tensor

    @classmethod
    def create(cls, max_workers: int = 256) -> SkipCounter:
        return cls(torch.zeros(max_workers + 1, dtype=torch.int64).share_memory_())

    def add(self) -> None:
        info = get_worker_info()
        slot = 0 if info is None else 1 + info.id % (self.slots.numel() - 1)
        self.slots[slot] += 1

    @property
    def total(self) -> int:
        return int(self.slots.sum())


class HMRDataset(Dataset):
    """Samples of one preprocessed dataset: the augmented crop and every label, with ``has_*`` masks.

    Args:
        annotation_path: the ``.npz`` annotation file (SPIN's format).
        image_root: the folder that ``imgname`` is relative to.
        augment: the augmentation; ``NO_AUGMENTATION`` (or None) for evaluation.
        skip_bad_samples: if True, a sample with a bad annotation row, or a missing or unreadable image,
            is skipped and counted (``num_skipped``, ``skipped``) and the next one is returned; if False
            (default) it raises ``DatasetError`` naming the file and the index.
        name: the dataset's name in the samples (default: the file's stem).
        out_size: side of the crop in pixels.
        keep: (N,) bool over the file's rows: serve only these (e.g. ``h36m_first_trial``); None: all.
        use_smpl_labels: False ignores the file's θ and β (``has_smpl`` 0 everywhere).

    Raises:
        DatasetError: for a bad annotation file, or a bad row when ``skip_bad_samples`` is False.
    """

    def __init__(self, annotation_path: str | Path, image_root: str | Path, augment: AugmentConfig | None = AugmentConfig(),
                 skip_bad_samples: bool = False, name: str | None = None, out_size: int = constants.IMG_SIZE,
                 keep: np.ndarray | None = None, use_smpl_labels: bool = True):
        self.annotations = load_annotations(annotation_path)
        if not use_smpl_labels:
            self.annotations = self.annotations._replace(has_smpl=np.zeros_like(self.annotations.has_smpl))
        self.image_root = Path(image_root)
        self.augment = NO_AUGMENTATION if augment is None else augment
        self.skip_bad_samples = skip_bad_samples
        self.name = name or self.annotations.path.stem
        self.out_size = out_size
        ann = self.annotations
        keep = np.ones(len(ann.imgname), dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
        if keep.shape != ann.bad.shape:
            raise ValueError(f"keep must have shape {ann.bad.shape} (one per row of {ann.path}), got {keep.shape}")
        bad = ann.bad & keep
        if bad.any() and not skip_bad_samples:
            first = int(np.argmax(bad))
            raise DatasetError(f"{ann.path}: sample {first}: {ann.bad_reason[first]} ({int(bad.sum())} bad rows "
                               "in all); fix the file or pass skip_bad_samples=True to skip them")
        # Rows this dataset serves; bad annotation rows are left out (and counted) up front.
        self.rows = np.flatnonzero(keep & ~ann.bad)
        self.num_bad_annotations = int(bad.sum())
        if self.num_bad_annotations:
            logger.warning("%s: skipping %d rows with bad annotations (first: row %d, %s)", ann.path,
                           self.num_bad_annotations, int(np.argmax(bad)), ann.bad_reason[np.argmax(bad)])
        if len(self.rows) == 0:
            raise DatasetError(f"{ann.path} has no usable samples")
        self._skips = SkipCounter.create()
        self._logged_skips = 0  # in this process

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def has_3d(self) -> np.ndarray:
        """(len,) bool per served sample: it has 3D joints or SMPL labels (what ``sampling`` balances)."""
        ann = self.annotations
        return (ann.has_3d[self.rows] > 0) | (ann.has_smpl[self.rows] > 0)

    @property
    def num_skipped(self) -> int:
        """Samples skipped so far for bad images (all processes), plus the bad annotation rows."""
        return self._skips.total + self.num_bad_annotations

    def image_path(self, row: int) -> Path:
        """The image file of annotation row ``row``."""
        return self.image_root / self.annotations.imgname[row]

    def load_sample(self, row: int, params=None) -> Sample:
        """Build the sample of annotation row ``row``; raise on any problem.

        Args:
            row: index into the annotation file.
            params: ``augment.AugmentParams`` to use instead of random ones.

        Returns:
            ``Sample``.

        Raises:
            DatasetError: naming the annotation file, the row and the image for a missing or unreadable image.
        """
        ann = self.annotations
        params = sample_augment_params(self.augment) if params is None else params
        matrix = crop_transform(ann.center[row], constants.BOX_SCALE_UNIT * ann.scale[row], params, self.out_size)
        path = self.image_path(row)
        zoom = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
        try:
            image, factor = read_image(path, zoom)
        except FileNotFoundError as err:
            raise DatasetError(f"{ann.path}: sample {row}: image {path} does not exist") from err
        except OSError as err:  # PIL.UnidentifiedImageError, truncated files, ...
            raise DatasetError(
                f"{ann.path}: sample {row}: image {path} cannot be read ({type(err).__name__}: {err})") from err
        crop = warp_image(image, scale_image_coordinates(matrix, factor), self.out_size)
        labels = augment_labels(ann.keypoints_2d[row], ann.joints_3d[row], ann.pose[row], matrix, params, self.out_size,
                                self.augment.keep_outside_keypoints)
        # Without an SMPL label θ stays all zero rather than becoming a turned, meaningless orientation.
        pose = labels.pose if ann.has_smpl[row] > 0 else ann.pose[row].copy()
        return Sample(
            img=image_to_tensor(crop, params.color_gain),
            keypoints_2d=torch.from_numpy(labels.keypoints_2d),
            joints_3d=torch.from_numpy(labels.joints_3d),
            pose=torch.from_numpy(pose),
            betas=torch.from_numpy(ann.betas[row].copy()),
            has_smpl=torch.tensor(ann.has_smpl[row]),
            has_3d=torch.tensor(ann.has_3d[row]),
            index=torch.tensor(row, dtype=torch.int64),
            dataset=self.name,
        )

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < len(self.rows):
            raise IndexError(f"index {index} out of range for {self.name} with {len(self.rows)} samples")
        if not self.skip_bad_samples:
            return self.load_sample(int(self.rows[index]))
        first_error = None
        for attempt in range(len(self.rows)):
            row = int(self.rows[(index + attempt) % len(self.rows)])
            try:
                return self.load_sample(row)
            except DatasetError as err:
                self._skips.add()
                first_error = first_error or err
                self._log_skip(err)
        raise DatasetError(f"{self.annotations.path}: no sample could be read: all {len(self.rows)} images failed "
                           f"(the first: {first_error}); is the image folder {self.image_root} right?")

    def _log_skip(self, err: DatasetError) -> None:
        """Log the first ``MAX_LOGGED_SKIPS`` skips of this process one by one, then say the rest are counted."""
        self._logged_skips += 1
        if self._logged_skips <= MAX_LOGGED_SKIPS:
            logger.warning("skipped: %s", err)
        if self._logged_skips == MAX_LOGGED_SKIPS:
            logger.warning("%s: further skipped samples are counted, not logged (num_skipped)", self.annotations.path)


def open_dataset(name: str, root: str | Path, split: str = "train", **kwargs) -> HMRDataset:
    """One of ``DATASETS`` from the standard folder layout under ``root``.

    The layout (as in SPIN): ``<root>/dataset_extras/<file>.npz`` for the annotations and
    ``<root>/<image_folder>/<imgname>`` for the images; see ``docs/datasets.md``.

    Args:
        name: a key of ``DATASETS`` (e.g. "h36m", "lsp_ext").
        root: the data root.
        split: a key of the dataset's ``files`` (e.g. "train", "test"); "test_p2" of "h36m" keeps the rows of
            HMR's protocol 2 (``h36m_first_trial``), "test_p2_all_trials" the whole file, as SPIN does.
        **kwargs: passed on to ``HMRDataset`` (augment, skip_bad_samples, use_smpl_labels, ...).

    Returns:
        ``HMRDataset``.

    Raises:
        DatasetError: for an unknown dataset or split, or a missing/bad annotation file.
    """
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    info = DATASETS[name]
    if split not in info.files:
        raise DatasetError(f"{info.title} has no split {split!r}; it has {sorted(info.files)}")
    root = Path(root)
    folder = TEST_IMAGE_FOLDERS.get((name, split), info.image_folder)
    path = root / ANNOTATION_DIR / info.files[split]
    if (name, split) in SPLIT_ROWS and "keep" not in kwargs:
        kwargs["keep"] = SPLIT_ROWS[name, split](load_annotations(path).imgname)
    return HMRDataset(path, root / folder, name=name, **kwargs)


# --------------------------------------------------------------------------------------------------
# A small dataset in the same format, for tests, benchmarks and the book
# --------------------------------------------------------------------------------------------------
def write_fixture_dataset(root: str | Path, num_samples: int = 8, image_size: int = 256, with_3d: bool = True,
                          seed: int = 0, file_name: str = "fixture.npz", image_folder: str = "images") -> Path:
    """Write random-noise JPEG images and a SPIN-format ``.npz`` that describes them.

    Every image holds one "person": a box around the image centre, 14 LSP keypoints and 5 face points
    spread inside it, 3D joints and SMPL labels if ``with_3d``.

    Args:
        root: folder to write into (``<root>/<file_name>`` and ``<root>/<image_folder>/``).
        num_samples: N.
        image_size: side of the square images, pixels.
        with_3d: include ``S``, ``pose``, ``shape`` and ``has_smpl``.
        seed: random seed.
        file_name: the annotation file's name.
        image_folder: the images' folder, which ``imgname`` is relative to.

    Returns:
        The annotation file's path.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / image_folder).mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(num_samples):
        name = f"im{i:05d}.jpg"
        pixels = rng.integers(0, 256, size=(image_size, image_size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / image_folder / name, quality=90)
        names.append(name)
    half = image_size / 2
    center = half + rng.uniform(-0.05, 0.05, size=(num_samples, 2)) * image_size
    scale = rng.uniform(0.8, 1.0, size=num_samples) * image_size / constants.BOX_SCALE_UNIT
    part = np.zeros((num_samples, constants.NUM_SPIN_JOINTS, 3))
    annotated = list(constants.SPIN_TO_KEYPOINT)
    part[:, annotated, :2] = center[:, None] + rng.uniform(-0.4, 0.4, size=(num_samples, len(annotated), 2)) * (
        constants.BOX_SCALE_UNIT * scale[:, None, None])
    part[:, annotated, 2] = 1.0
    arrays = dict(imgname=np.array(names), center=center, scale=scale, part=part)
    if with_3d:
        joints = np.concatenate((rng.normal(scale=0.3, size=(num_samples, constants.NUM_SPIN_JOINTS, 3)),
                                 np.ones((num_samples, constants.NUM_SPIN_JOINTS, 1))), axis=-1)
        arrays.update(S=joints, pose=rng.normal(scale=0.2, size=(num_samples, constants.POSE_DIM)),
                      shape=rng.normal(size=(num_samples, constants.NUM_BETAS)), has_smpl=np.ones(num_samples))
    path = root / file_name
    np.savez(path, **arrays)
    return path
