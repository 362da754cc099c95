"""The synthetic world: rendered bodies with exact ground truth, generated anywhere from a seed.

HMR (Kanazawa et al., CVPR 2018, Sec. 4) learns from in-the-wild images with 2D keypoints, some of them
with 3D labels. The real datasets need registration, so the book also trains and tests on images it
can make itself (chapter "Data"; design and conventions in ``docs/synthetic_world.md``). One image is
one seed:

1. a body: β ~ N(0, I), a pose from ``pose_prior.sample_poses`` and its global orientation (every
   heading, the archetype's tilt), turned into the camera frame by π about x and tilted by a moderate
   random camera pitch and roll;
2. a weak-perspective camera placed as HMR's crops are: the body's tight box about 150 pixels across
   its diagonal (±15%), shifted by up to 15 pixels, and for some images pushed partly out of the crop;
3. clothes (shirt, trousers or shorts, shoes, skin and hair, by each vertex's strongest skinning
   weight), light of random strength, colour and direction, a random background (procedural
   textures, or the photographs matplotlib ships), occluders over part of the body, camera
   exposure and noise;
4. exact labels: θ with its global orientation in the camera frame, β, cam, the 19 keypoints projected
   with ``camera.weak_perspective_project`` (so SMPL(θ, β) with cam reproduces them exactly), their
   visibility, and the 14 LSP joints in 3D.

``python -m hmr_core.synthetic write --out DIR --split train --num 10000`` writes a split to shards that
``SyntheticDataset`` reads; ``generate_batch`` makes images in memory.

This module holds the world's configuration, its seeds and the generator; the rest lives in
``synthetic_appearance`` (clothes, light, backgrounds, occluders, camera exposure), ``synthetic_camera``
(orientation in the camera frame, framing, keypoint visibility), ``synthetic_shards`` (shard files and
``SyntheticDataset``) and ``synthetic_write`` (writing a split, and this command line).

Letters in shapes: N images, K keypoints (19), J LSP joints (14), V vertices, F faces, H/W image.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from hmr_core import camera, constants, render
from hmr_core.pose_prior import PosePriorConfig
from hmr_core.synthetic_appearance import (
    body_regions,
    camera_effects,
    draw_occluders,
    light_vertex_colors,
    random_background,
    vertex_colors,
)
from hmr_core.synthetic_camera import camera_global_orient, frame_body, keypoint_visibility

SPLITS = tuple(constants.SYNTHETIC_SPLIT_SEEDS)  # ("train", "test", "ood")
# Arrays of a shard besides the images: name -> shape of one row (() for a number).
LABEL_SHAPES = {
    "keypoints_2d": (constants.NUM_KEYPOINTS, 3),
    "joints_3d": (constants.NUM_LSP_JOINTS, 4),
    "pose": (constants.POSE_DIM,),
    "betas": (constants.NUM_BETAS,),
    "cam": (constants.CAM_DIM,),
    "seed": (),
    "archetype": (),
    "num_occluders": (),
    "truncated": (),
}
_HIP_ROWS = (constants.KEYPOINT_NAMES.index("left_hip"), constants.KEYPOINT_NAMES.index("right_hip"))
_HALF = constants.IMG_SIZE / 2.0  # pixels per normalised unit


# --------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorldConfig:
    """How one split's images are drawn (``SPLIT_CONFIGS`` holds the presets)."""

    # Bodies
    betas_std: float = 1.0  # β ~ N(0, betas_std² I)
    pose_prior: PosePriorConfig = field(default_factory=PosePriorConfig)  # poses and their heading / tilt
    view_pitch_std: float = 10.0  # camera pitch about its x axis, degrees (normal, clipped at ±max)
    view_pitch_max: float = 25.0
    view_roll_std: float = 8.0  # camera roll about its optical axis, degrees (normal, clipped at ±max)
    view_roll_max: float = 20.0
    # Camera, in pixels of the IMG_SIZE crop (HMR's crops: a person of about 150 pixels)
    box_diagonal: float = 150.0  # diagonal of the body's tight 2D box
    scale_jitter: float = 0.15  # the diagonal times a factor uniform in [1 - jitter, 1 + jitter]
    translation_max: float = 15.0  # box centre shifted uniformly by up to this, in x and in y
    truncation_probability: float = 0.1  # images pushed so that part of the body leaves the crop
    truncation_range: tuple[float, float] = (0.15, 0.45)  # share of the box's extent pushed out
    # Occluders drawn over the body
    occluder_probability: float = 0.25
    max_occluders: int = 2
    occluder_size: tuple[float, float] = (0.15, 0.4)  # size, as a share of the box diagonal
    # Appearance
    photo_probability: float = 0.3  # backgrounds from photographs / real rasters; the rest procedural
    long_sleeve_probability: float = 0.5
    long_trousers_probability: float = 0.65
    bald_probability: float = 0.1
    neckline_probability: float = 0.5  # shirts with a V-neck (bare skin on the front only)
    chest_print_probability: float = 0.5  # shirts with a print on the front
    light_brightness: tuple[float, float] = (0.7, 1.25)  # multiplies the body's albedo
    light_tint: float = 0.12  # per-channel light colour in [1 - tint, 1 + tint]
    light_directional: tuple[float, float] = (0.0, 0.6)  # weight of a second, randomly placed light
    exposure_gamma: tuple[float, float] = (0.8, 1.25)  # whole-image gamma (camera exposure)
    white_balance: float = 0.08  # whole-image per-channel gain in [1 - wb, 1 + wb]
    noise_probability: float = 0.5  # images with Gaussian sensor noise
    noise_std: float = 4.0  # its largest standard deviation, in 0-255 levels


# Archetypes the OOD split keeps: the rarest (lying) and the least upright, most compact ones.
OOD_ARCHETYPES = ("lying", "crouching", "bending")
_ALL_ARCHETYPES = ("standing", "walking", "running", "sitting", "crouching", "reaching", "bending", "arms_raised",
                   "lying")

SPLIT_CONFIGS: dict[str, WorldConfig] = {
    "train": WorldConfig(),
    "test": WorldConfig(),  # the same world as train, from seeds train never uses
    # Out of distribution: only lying, crouching and bending bodies with 1.5x pose noise, seen with extreme
    # camera pitch (±60°) and roll (±90°), pushed out of the crop three times as often and further,
    # and occluded more than twice as often.
    "ood": WorldConfig(
        pose_prior=PosePriorConfig(noise_scale=1.5, archetype_weights={
            name: (1.0 if name in OOD_ARCHETYPES else 0.0) for name in _ALL_ARCHETYPES}),
        view_pitch_std=35.0, view_pitch_max=60.0, view_roll_std=50.0, view_roll_max=90.0,
        scale_jitter=0.25, truncation_probability=0.35, truncation_range=(0.25, 0.55),
        occluder_probability=0.6, max_occluders=3, occluder_size=(0.2, 0.5),
    ),
}


def split_seeds(split: str, num: int, start: int = 0) -> np.ndarray:
    """The seeds of images ``start, ..., start + num - 1`` of a split.

    Args:
        split: "train", "test" or "ood".
        num: how many.
        start: index of the first image in the split.

    Returns:
        (num,) int64 seeds.

    Raises:
        ValueError: for an unknown split, or indices beyond the split's seed range.
    """
    low, high = seed_range(split)
    if start < 0 or num < 0 or low + start + num > high:
        raise ValueError(f"split {split!r} has {high - low} images; indices [{start}, {start + num}) are outside it")
    return np.arange(low + start, low + start + num, dtype=np.int64)


def seed_range(split: str) -> tuple[int, int]:
    """``(low, high)``: the seeds of ``split`` are ``low, ..., high - 1``.

    Raises:
        ValueError: for an unknown split.
    """
    if split not in constants.SYNTHETIC_SPLIT_SEEDS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return constants.SYNTHETIC_SPLIT_SEEDS[split]


def check_seed(seed: int, split: str) -> None:
    """Raise a ValueError that says which range to use when ``seed`` is not one of ``split``'s."""
    low, high = seed_range(split)
    if not low <= seed < high:
        raise ValueError(f"seed {seed} is not in split {split!r}'s range [{low}, {high}); use split_seeds({split!r}, ...)")


# --------------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------------
class SyntheticSample(NamedTuple):
    """One generated image and its exact labels.

    Attributes:
        image: (H, W, 3) uint8 RGB image, H = W = ``constants.IMG_SIZE``.
        keypoints_2d: (19, 3) float32: normalised (x, y) of every keypoint, exact even where invisible
            (outside the crop or occluded), and the visibility.
        joints_3d: (14, 4) float32 LSP joints in the camera frame, metres, relative to the midpoint of
            the hips (LSP has no pelvis joint), and confidence 1.
        pose: (72,) float32 θ, global orientation in the camera frame.
        betas: (10,) float32 β.
        cam: (3,) float32 weak-perspective camera (s, tx, ty).
        seed: the image's seed.
        archetype: index into ``pose_prior.ARCHETYPES`` of the pose's main archetype.
        num_occluders: occluders drawn over the body.
        truncated: whether the body was pushed partly out of the crop.
        mask: (H, W) bool pixels the body covers (before occluders), or None when not asked for.
    """

    image: np.ndarray
    keypoints_2d: np.ndarray
    joints_3d: np.ndarray
    pose: np.ndarray
    betas: np.ndarray
    cam: np.ndarray
    seed: int
    archetype: int
    num_occluders: int
    truncated: bool
    mask: np.ndarray | None = None


class SyntheticWorld:
    """What drawing images needs once per process: the body model, its regions, the penetration test.

    Args:
        backend: render backend, "auto", "pyrender" or "numpy" (``render.available_backend``). Labels
            do not depend on it; pixels do (pyrender antialiases edges).
        model_path: SMPL model file; None for ``$HMR_SMPL_MODEL`` or the open body model.
    """

    def __init__(self, backend: str | None = "auto", model_path: str | Path | None = None):
        from hmr_core.body_model import SMPL
        from hmr_core.self_contact import body_capsules

        self.model = SMPL(model_path)
        self.backend = render.available_backend(backend)
        self.faces = self.model.faces.numpy()
        self.capsules = body_capsules(self.model)
        with torch.no_grad():
            rest = self.model()
        self.regions = body_regions(self.model.weights.numpy(), rest.vertices[0].numpy(), rest.keypoints[0].numpy(),
                                    rest.joints[0].numpy())

    def body(self, pose: np.ndarray, betas: np.ndarray):
        """SMPL(θ, β) with float32 inputs, exactly as a test or a training step would compute it."""
        with torch.no_grad():
            return self.model(betas=torch.from_numpy(betas)[None], pose=torch.from_numpy(pose)[None])

    def generate(self, seed: int, split: str = "train", with_mask: bool = False) -> SyntheticSample:
        """Draw the image of ``seed`` in ``split``: the same seed always gives the same image and labels.

        Args:
            seed: the image's seed, inside the split's range (``split_seeds``).
            split: "train", "test" or "ood" (chooses the ``WorldConfig``).
            with_mask: also return the body's pixel mask (a second rasterisation).

        Returns:
            ``SyntheticSample``.

        Raises:
            ValueError: for a seed outside the split's range.
        """
        from hmr_core.pose_prior import sample_poses

        check_seed(seed, split)
        config = SPLIT_CONFIGS[split]
        size = constants.IMG_SIZE
        rng = np.random.default_rng(seed)
        generator = torch.Generator().manual_seed(int(seed))
        drawn = sample_poses(1, generator, config.pose_prior, capsules=self.capsules)
        pitch = math.radians(np.clip(rng.normal(0.0, config.view_pitch_std), -config.view_pitch_max,
                                     config.view_pitch_max))
        roll = math.radians(np.clip(rng.normal(0.0, config.view_roll_std), -config.view_roll_max,
                                    config.view_roll_max))
        pose = drawn.pose[0].numpy().astype(np.float64)
        pose[:3] = camera_global_orient(drawn.global_orient[0].numpy(), pitch, roll)
        pose = pose.astype(np.float32)
        betas = (rng.normal(0.0, config.betas_std, constants.NUM_BETAS)).astype(np.float32)
        out = self.body(pose, betas)
        vertices = out.vertices[0].numpy().astype(np.float64)  # (V, 3) camera frame
        framing = frame_body(vertices[:, :2], rng, config, size)
        cam = framing.cam.astype(np.float32)
        keypoints = camera.weak_perspective_project(out.keypoints, torch.from_numpy(cam)[None])[0].numpy()  # (K, 2)

        colors = light_vertex_colors(vertex_colors(self.regions, rng, config),
                                     render.vertex_normals(vertices, self.faces), rng, config)
        background = random_background(rng, size, config)
        image = render.render_mesh(vertices, self.faces, cam.astype(np.float64), image=background,
                                   vertex_colors=colors, backend=self.backend)
        num_occluders = int(rng.integers(1, config.max_occluders + 1)) if rng.random() < config.occluder_probability else 0
        keypoints_px = camera.normalized_to_pixel(torch.from_numpy(keypoints), size).numpy()
        occluded = None
        if num_occluders:
            image, occluded = draw_occluders(image, keypoints_px, framing.box_diagonal_px, rng, config, num_occluders)
        image = camera_effects(image, rng, config)

        visibility = keypoint_visibility(keypoints, occluded, size)
        kp = out.keypoints[0].numpy().astype(np.float64)  # (K, 3)
        root = kp[list(_HIP_ROWS)].mean(0)
        joints_3d = np.concatenate((kp[: constants.NUM_LSP_JOINTS] - root, np.ones((constants.NUM_LSP_JOINTS, 1))), 1)
        mask = body_mask(vertices, self.faces, cam, size) if with_mask else None
        return SyntheticSample(
            image=image, keypoints_2d=np.concatenate((keypoints, visibility[:, None]), 1).astype(np.float32),
            joints_3d=joints_3d.astype(np.float32), pose=pose, betas=betas, cam=cam, seed=int(seed),
            archetype=int(drawn.archetype[0]), num_occluders=num_occluders, truncated=framing.truncated, mask=mask)


def body_mask(vertices: np.ndarray, faces: np.ndarray, cam: np.ndarray, size: int = constants.IMG_SIZE) -> np.ndarray:
    """The pixels a body covers, with the renderer's rasteriser (``render.rasterize``).

    Args:
        vertices: (V, 3) camera-frame vertices.
        faces: (F, 3) faces.
        cam: (3,) weak-perspective camera.
        size: side of the image.

    Returns:
        (H, W) bool mask.
    """
    points = torch.as_tensor(vertices, dtype=torch.float64)[None]
    projected = camera.weak_perspective_project(points, torch.as_tensor(cam, dtype=torch.float64)[None])
    pixels = camera.normalized_to_pixel(projected, size)[0].numpy()  # (V, 2)
    face_id, _ = render.rasterize(pixels, np.asarray(vertices)[:, 2], faces, size)
    return face_id >= 0


@lru_cache(maxsize=4)
def default_world(backend: str | None = "auto") -> SyntheticWorld:
    """A ``SyntheticWorld`` made once per process and backend (on first use, not at import)."""
    return SyntheticWorld(backend)


def generate_batch(seeds, split: str = "train", world: SyntheticWorld | None = None,
                   with_mask: bool = False) -> dict[str, np.ndarray]:
    """Generate images in memory, stacked as a shard stores them.

    Args:
        seeds: (N,) seeds inside the split's range (``split_seeds(split, N)``).
        split: "train", "test" or "ood".
        world: the generator; None uses ``default_world()``.
        with_mask: also return the body masks under "mask" (N, H, W).

    Returns:
        "images" (N, H, W, 3) uint8 and the labels of ``LABEL_SHAPES``: keypoints_2d (N, 19, 3),
        joints_3d (N, 14, 4), pose (N, 72), betas (N, 10), cam (N, 3) float32; seed, archetype,
        num_occluders (N,) int64; truncated (N,) bool.
    """
    world = default_world() if world is None else world
    samples = [world.generate(int(seed), split, with_mask) for seed in np.asarray(seeds).reshape(-1)]
    return stack_samples(samples, with_mask)


def stack_samples(samples: list[SyntheticSample], with_mask: bool = False) -> dict[str, np.ndarray]:
    """Stack samples into the arrays of a shard (see ``generate_batch``)."""
    size = constants.IMG_SIZE
    dtypes = {"seed": np.int64, "archetype": np.int64, "num_occluders": np.int64, "truncated": bool}
    out = {"images": np.stack([s.image for s in samples]) if samples else np.zeros((0, size, size, 3), np.uint8)}
    for key, shape in LABEL_SHAPES.items():
        dtype = dtypes.get(key, np.float32)
        out[key] = np.array([getattr(s, key) for s in samples], dtype=dtype).reshape(len(samples), *shape)
    if with_mask:
        out["mask"] = np.stack([s.mask for s in samples])
    return out


if __name__ == "__main__":
    from hmr_core.synthetic_write import main

    sys.exit(main())
