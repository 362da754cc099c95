"""Shard files of the synthetic world and the dataset that reads them.

A split of the synthetic world (``synthetic``) is stored as uncompressed ``.npz`` shards,
``{split}_{index:05d}.npz``: "images" (N, H, W, 3) uint8 and the labels of ``synthetic.LABEL_SHAPES``.
``write_shard`` writes one atomically, ``read_shard_labels`` checks one, and ``SyntheticDataset``
memory-maps a split's images and serves them as training samples. ``synthetic_write`` writes a split.

Letters in shapes: N images, H/W image.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from hmr_core import camera, constants
from hmr_core.augment import (
    NO_AUGMENTATION,
    AugmentConfig,
    AugmentParams,
    augment_labels,
    crop_transform,
    image_to_tensor,
    sample_augment_params,
    warp_image,
)
from hmr_core.annotations import DatasetError
from hmr_core.datasets import Sample
from hmr_core.synthetic import LABEL_SHAPES, seed_range

logger = logging.getLogger("hmr_core.synthetic")  # one logger for all of the synthetic world

SHARD_PATTERN = "{split}_{index:05d}.npz"


# --------------------------------------------------------------------------------------------------
# Shards on disk
# --------------------------------------------------------------------------------------------------
class ShardError(DatasetError):
    """A shard file is missing, truncated, corrupt or not what its name says."""


def shard_path(root: str | Path, split: str, index: int) -> Path:
    """The file of shard ``index`` of a split under ``root``."""
    return Path(root) / SHARD_PATTERN.format(split=split, index=index)


def _npy_member(path: Path, key: str) -> tuple[int, tuple[int, ...], np.dtype, bool]:
    """Locate an uncompressed array inside an ``.npz``: (byte offset, shape, dtype, fortran order)."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(f"{key}.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        raise ShardError(f"{path}: '{key}' is compressed and cannot be memory-mapped; rewrite the shard")
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)  # the zip local file header
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            raise ShardError(f"{path}: bad zip entry for '{key}'")
        name_length, extra_length = struct.unpack("<HH", local[26:30])
        f.seek(info.header_offset + 30 + name_length + extra_length)
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        offset = f.tell()
    if dtype.hasobject:
        raise ShardError(f"{path}: '{key}' holds Python objects, which are never unpickled")
    return offset, shape, dtype, fortran


def read_shard_labels(path: str | Path, split: str | None = None) -> dict[str, np.ndarray]:
    """Read and check a shard's labels (everything but the images, which are checked, not read).

    Args:
        path: the shard.
        split: if given, every seed must lie in this split's range.

    Returns:
        The label arrays of ``LABEL_SHAPES``, plus "images_shape".

    Raises:
        ShardError: naming the file, for a missing, truncated or corrupt shard, wrong shapes, or seeds of
            another split.
    """
    path = Path(path)
    if not path.is_file():
        raise ShardError(f"shard {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in ("images", *LABEL_SHAPES) if k not in npz.files]
            if missing:
                raise ShardError(f"shard {path} lacks {missing}; it is not a synthetic-world shard")
            labels = {key: npz[key] for key in LABEL_SHAPES}
        offset, shape, dtype, _ = _npy_member(path, "images")
    except ShardError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError) as err:
        raise ShardError(f"shard {path} is corrupt or truncated ({type(err).__name__}: {err}); delete it and "
                         "rerun 'python -m hmr_core.synthetic write' to redo it") from err
    num = len(labels["seed"])
    size = constants.IMG_SIZE
    if shape != (num, size, size, 3) or dtype != np.uint8:
        raise ShardError(f"shard {path}: images are {dtype} {shape}, expected uint8 {(num, size, size, 3)}")
    if offset + num * size * size * 3 > path.stat().st_size:
        raise ShardError(f"shard {path} is truncated: its images end beyond the file")
    for key, row in LABEL_SHAPES.items():
        if labels[key].shape != (num, *row):
            raise ShardError(f"shard {path}: '{key}' has shape {labels[key].shape}, expected {(num, *row)}")
    if split is not None and num:
        low, high = seed_range(split)
        if labels["seed"].min() < low or labels["seed"].max() >= high:
            raise ShardError(f"shard {path} holds seeds outside split {split!r}'s range [{low}, {high})")
    labels["images_shape"] = np.asarray(shape)
    return labels


def write_shard(path: str | Path, arrays: dict[str, np.ndarray], config: dict | None = None) -> Path:
    """Write a shard atomically: a temporary file in the same folder, then ``os.replace``.

    Arrays are stored uncompressed, so ``SyntheticDataset`` can memory-map the images.

    Args:
        path: the shard's file.
        arrays: "images" and the labels (``generate_batch``).
        config: the world's settings, stored as JSON under "config".

    Returns:
        The path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    payload = {key: arrays[key] for key in ("images", *LABEL_SHAPES)}
    payload["config"] = np.array(json.dumps(config or {}, default=str))
    try:
        with open(temporary, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


def shard_is_complete(path: Path, seeds: np.ndarray, split: str) -> bool:
    """Whether ``path`` is a valid shard holding exactly ``seeds`` (so a resumed run can skip it).

    A shard holding the first of ``seeds`` only (written by a run with a smaller ``num``: the split grows)
    is not complete, and is redone whole.

    Raises:
        ShardError: if the file is a valid shard of other seeds (a run with another --shard-size or
            --start wrote it): the run refuses to overwrite it.
    """
    if not path.exists():
        return False
    try:
        labels = read_shard_labels(path, split)
    except ShardError as err:
        logger.warning("redoing %s: %s", path, err)
        return False
    if np.array_equal(labels["seed"], seeds):
        return True
    if len(labels["seed"]) < len(seeds) and np.array_equal(labels["seed"], seeds[:len(labels["seed"])]):
        logger.info("growing %s from %d to %d images", path, len(labels["seed"]), len(seeds))
        return False
    raise ShardError(f"{path} holds other seeds than this run would write there (another --shard-size or --start?); "
                     "move it away or write to another folder")


# --------------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------------
class SyntheticDataset(Dataset):
    """A split of the synthetic world from its shards, as the ``Sample`` dicts that training consumes.

    Labels are read into memory at construction; images are memory-mapped from the (uncompressed)
    shards in each process on first use, so DataLoader workers share the page cache and nothing large is
    pickled. Augmentation goes through ``hmr_core.augment`` (crop jitter, rotation, flip that mirrors θ,
    keypoints and 3D joints together, colour noise), exactly as for the real datasets.

    Args:
        root: the folder of the shards (``write_split``'s ``out``).
        split: "train", "test" or "ood".
        augment: the augmentation; None (or ``NO_AUGMENTATION``) for evaluation.

    Raises:
        ShardError: naming the file, for no shards or a corrupt, truncated or foreign shard.
    """

    def __init__(self, root: str | Path, split: str = "train", augment: AugmentConfig | None = None):
        seed_range(split)
        self.root = Path(root)
        self.split = split
        self.augment = NO_AUGMENTATION if augment is None else augment
        self.paths = sorted(self.root.glob(SHARD_PATTERN.replace("{index:05d}", "[0-9]*").format(split=split)))
        if not self.paths:
            raise ShardError(f"no {split!r} shards ({SHARD_PATTERN.format(split=split, index=0)}, ...) in {self.root}")
        labels = [read_shard_labels(path, split) for path in self.paths]
        self.labels = {key: np.concatenate([lab[key] for lab in labels]) for key in LABEL_SHAPES}
        self.image_offsets = [int(_npy_member(path, "images")[0]) for path in self.paths]
        counts = [len(lab["seed"]) for lab in labels]
        self.shard_start = np.concatenate(([0], np.cumsum(counts)))  # (shards + 1,)
        self._images: dict[int, np.memmap] = {}

    def __len__(self) -> int:
        return int(self.shard_start[-1])

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_images"] = {}  # memory maps are reopened in each worker process
        return state

    def image(self, index: int) -> np.ndarray:
        """(H, W, 3) uint8 image ``index`` of the split (a view into the memory-mapped shard)."""
        shard = int(np.searchsorted(self.shard_start, index, side="right") - 1)
        if shard not in self._images:
            size = constants.IMG_SIZE
            count = int(self.shard_start[shard + 1] - self.shard_start[shard])
            self._images[shard] = np.memmap(self.paths[shard], dtype=np.uint8, mode="r",
                                            offset=self.image_offsets[shard], shape=(count, size, size, 3))
        return self._images[shard][index - self.shard_start[shard]]

    def load_sample(self, index: int, params: AugmentParams | None = None) -> Sample:
        """Build sample ``index``, with ``params`` or freshly drawn augmentation.

        Invisible keypoints come out all zero, as from ``augment.transform_keypoints`` for the real
        datasets (the shards keep their exact positions).
        """
        from PIL import Image

        params = sample_augment_params(self.augment) if params is None else params
        size = constants.IMG_SIZE
        # The stored crop is the box: centre (size/2, size/2), side size; keypoints to crop pixels.
        matrix = crop_transform((size / 2.0, size / 2.0), float(size), params, size)
        keypoints = self.labels["keypoints_2d"][index].astype(np.float64)
        keypoints_px = np.concatenate((camera.normalized_to_pixel(torch.from_numpy(keypoints[:, :2]), size).numpy(),
                                       keypoints[:, 2:]), axis=1)
        labels = augment_labels(keypoints_px, self.labels["joints_3d"][index], self.labels["pose"][index], matrix,
                                params, size)
        image = Image.fromarray(np.asarray(self.image(index)))
        if params[:4] != AugmentParams()[:4]:  # geometry changes: resample; else the stored crop as it is
            image = warp_image(image, matrix, size)
        return Sample(
            img=image_to_tensor(image, params.color_gain),
            keypoints_2d=torch.from_numpy(labels.keypoints_2d),
            joints_3d=torch.from_numpy(labels.joints_3d),
            pose=torch.from_numpy(labels.pose),
            betas=torch.from_numpy(self.labels["betas"][index].copy()),
            has_smpl=torch.tensor(1.0),
            has_3d=torch.tensor(1.0),
            index=torch.tensor(index, dtype=torch.int64),
            dataset="synthetic",
        )

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for synthetic {self.split!r} with {len(self)} samples")
        return self.load_sample(int(index))
