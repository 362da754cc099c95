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

Letters in shapes: N images, K keypoints (19), J LSP joints (14), V vertices, F faces, H/W image.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing
import os
import struct
import sys
import zipfile
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from hmr_core import camera, constants, render
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
from hmr_core.datasets import DatasetError, Sample
from hmr_core.pose_prior import PosePriorConfig
from hmr_core.rotation import axis_angle_to_matrix, matrix_to_axis_angle

logger = logging.getLogger(__name__)

SPLITS = tuple(constants.SYNTHETIC_SPLIT_SEEDS)  # ("train", "test", "ood")
SHARD_PATTERN = "{split}_{index:05d}.npz"
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
    low, high = _seed_range(split)
    if start < 0 or num < 0 or low + start + num > high:
        raise ValueError(f"split {split!r} has {high - low} images; indices [{start}, {start + num}) are outside it")
    return np.arange(low + start, low + start + num, dtype=np.int64)


def _seed_range(split: str) -> tuple[int, int]:
    if split not in constants.SYNTHETIC_SPLIT_SEEDS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return constants.SYNTHETIC_SPLIT_SEEDS[split]


def _check_seed(seed: int, split: str) -> None:
    low, high = _seed_range(split)
    if not low <= seed < high:
        raise ValueError(f"seed {seed} is not in split {split!r}'s range [{low}, {high}); use split_seeds({split!r}, ...)")


# --------------------------------------------------------------------------------------------------
# Clothes and skin
# --------------------------------------------------------------------------------------------------
class BodyRegions(NamedTuple):
    """Which garment region each vertex belongs to (``constants.SYNTHETIC_GARMENT_REGIONS``).

    Attributes:
        region: (V,) index into ``names``.
        names: region names.
        hair: (V,) bool, head vertices above the eyes or behind the head (hair, unless bald).
        height: (V,) the vertex's height in the rest pose, metres (for stripes).
        face: (V,) ``FACE_NONE``, ``FACE_EYE`` (eyes and brows) or ``FACE_MOUTH``: the features that
            tell a face from the back of a head.
        neckline: (V,) bool, front torso vertices a V-neck leaves bare.
        chest: (V,) bool, front torso vertices of a print on the shirt's front.
    """

    region: np.ndarray
    names: tuple[str, ...]
    hair: np.ndarray
    height: np.ndarray
    face: np.ndarray
    neckline: np.ndarray
    chest: np.ndarray


FACE_NONE, FACE_EYE, FACE_MOUTH = 0, 1, 2


def body_regions(weights: np.ndarray, rest_vertices: np.ndarray, rest_keypoints: np.ndarray,
                 rest_joints: np.ndarray) -> BodyRegions:
    """Assign each vertex to a garment region by its largest skinning weight.

    Args:
        weights: (V, 24) skinning weights (``SMPL().weights``).
        rest_vertices: (V, 3) vertices in the rest pose, SMPL's frame (y up, facing +z).
        rest_keypoints: (19, 3) keypoints in the rest pose.
        rest_joints: (24, 3) joints in the rest pose.

    Returns:
        ``BodyRegions``.
    """
    names = tuple(sorted(set(constants.SYNTHETIC_GARMENT_REGIONS.values())))
    joint_region = np.array([names.index(constants.SYNTHETIC_GARMENT_REGIONS[j]) for j in constants.SMPL_JOINT_NAMES])
    part = np.asarray(weights).argmax(axis=1)  # (V,) strongest joint
    eye_y = rest_keypoints[[constants.KEYPOINT_NAMES.index("left_eye"), constants.KEYPOINT_NAMES.index("right_eye")],
                           1].mean()
    head = rest_joints[constants.SMPL_JOINT_NAMES.index("head")]
    is_head = part == constants.SMPL_JOINT_NAMES.index("head")
    # Hair covers the skull above the brow and the back of the head down to about the ears.
    above_brow = rest_vertices[:, 1] > eye_y + 0.03
    behind = (rest_vertices[:, 2] < head[2] - 0.01) & (rest_vertices[:, 1] > eye_y - 0.05)
    # Front and back differ on real people: a face (eyes, brows, mouth), a neckline and prints on the
    # front of a shirt. Without them a body seen from behind looks like its mirror image from the front.
    x, y, z = rest_vertices.T
    kp = {name: rest_keypoints[constants.KEYPOINT_NAMES.index(name)] for name in ("nose", "left_eye", "right_eye")}
    front_of_face = is_head & (z > kp["left_eye"][2] - 0.015)
    face = np.full(len(rest_vertices), FACE_NONE, dtype=np.int8)
    for eye in (kp["left_eye"], kp["right_eye"]):
        near_eye = np.hypot(x - eye[0], y - eye[1]) < 0.012
        brow = (np.abs(x - eye[0]) < 0.02) & (y > eye[1] + 0.014) & (y < eye[1] + 0.022)
        face[front_of_face & (near_eye | brow)] = FACE_EYE
    mouth = (np.abs(x) < 0.022) & (y > kp["nose"][1] - 0.047) & (y < kp["nose"][1] - 0.033)
    face[front_of_face & mouth] = FACE_MOUTH
    neck = rest_joints[constants.SMPL_JOINT_NAMES.index("neck")]
    spine3 = rest_joints[constants.SMPL_JOINT_NAMES.index("spine3")]
    torso = np.isin(part, [constants.SMPL_JOINT_NAMES.index(j) for j in ("spine1", "spine2", "spine3",
                                                                          "left_collar", "right_collar")])
    front = torso & (z > spine3[2] + 0.05)
    neckline = front & (y > neck[1] - 0.16 + 1.6 * np.abs(x))
    chest = front & (np.abs(x) < 0.08) & (y > spine3[1] - 0.12) & (y < spine3[1] + 0.02)
    return BodyRegions(joint_region[part], names, is_head & (above_brow | behind), y.copy(), face, neckline, chest)


def _random_garment_color(rng: np.random.Generator) -> np.ndarray:
    """An sRGB garment colour: any hue, from grey to saturated, from near-black to near-white."""
    import colorsys

    hue, sat, val = rng.random(), rng.uniform(0.0, 0.9) ** 1.3, rng.uniform(0.12, 0.95)
    return np.array(colorsys.hsv_to_rgb(hue, sat, val))


def vertex_colors(regions: BodyRegions, rng: np.random.Generator, config: WorldConfig) -> np.ndarray:
    """Clothing-like albedo per vertex: shirt, trousers or shorts, shoes, skin tone and hair.

    Args:
        regions: the body's regions (``body_regions``).
        rng: NumPy random generator.
        config: the world's settings.

    Returns:
        (V, 3) sRGB colours in [0, 1].
    """
    skin = np.asarray(constants.SKIN_TONES[rng.integers(len(constants.SKIN_TONES))]) * rng.uniform(0.95, 1.05, 3)
    shirt, trousers = _random_garment_color(rng), _random_garment_color(rng)
    shoes = _random_garment_color(rng) * rng.uniform(0.3, 1.0)  # shoes are mostly dark
    long_sleeves = rng.random() < config.long_sleeve_probability
    long_trousers = rng.random() < config.long_trousers_probability
    palette = {"shirt": shirt, "sleeve": shirt if long_sleeves else skin, "trousers": trousers,
               "leg": trousers if long_trousers else skin, "shoes": shoes, "skin": skin}
    table = np.stack([palette[name] for name in regions.names])  # (regions, 3)
    colors = table[regions.region]  # (V, 3)
    if rng.random() < 0.3:  # a striped shirt
        second = _random_garment_color(rng)
        stripes = np.sin(regions.height * rng.uniform(40.0, 120.0)) > 0
        shirt_like = np.isin(regions.region, [regions.names.index("shirt")] + (
            [regions.names.index("sleeve")] if long_sleeves else []))
        colors = np.where((stripes & shirt_like)[:, None], second, colors)
    hair = np.asarray(constants.HAIR_COLORS[rng.integers(len(constants.HAIR_COLORS))])
    if rng.random() >= config.bald_probability:
        colors = np.where(regions.hair[:, None], hair, colors)
    if rng.random() < config.neckline_probability:
        colors = np.where(regions.neckline[:, None], skin, colors)
    if rng.random() < config.chest_print_probability:
        colors = np.where((regions.chest & ~regions.neckline)[:, None], _random_garment_color(rng), colors)
    colors = np.where((regions.face == FACE_EYE)[:, None], hair * 0.5, colors)
    colors = np.where((regions.face == FACE_MOUTH)[:, None], skin * (0.8, 0.45, 0.45), colors)
    # A little per-vertex variation reads as fabric texture and shading detail.
    colors = colors * rng.uniform(0.93, 1.07, size=(len(colors), 1))
    return colors.clip(0.02, 1.0)


def light_vertex_colors(colors: np.ndarray, normals: np.ndarray, rng: np.random.Generator,
                        config: WorldConfig) -> np.ndarray:
    """Bake random lighting into vertex colours (the renderer's own light is fixed).

    A light of random strength and colour multiplies the albedo, and a second light from a random
    direction in front of the body adds Lambert shading: c' = c · b · tint · (1 - k + k · max(0, n·l)).

    Args:
        colors: (V, 3) albedo.
        normals: (V, 3) unit normals in the camera frame.
        rng: NumPy random generator.
        config: the world's settings.

    Returns:
        (V, 3) lit colours in [0, 1].
    """
    brightness = rng.uniform(*config.light_brightness)
    tint = 1.0 + config.light_tint * rng.uniform(-1.0, 1.0, 3)
    k = rng.uniform(*config.light_directional)
    toward_light = rng.normal(size=3)
    toward_light[2] = -abs(toward_light[2])  # on the camera's side of the body (camera looks along +z)
    toward_light /= np.linalg.norm(toward_light)
    # Both sides of a thin surface are drawn, so shade by |n·l| as the renderer does with flipped normals.
    lambert = np.abs(normals @ toward_light)  # (V,)
    return (colors * brightness * tint * (1.0 - k + k * lambert)[:, None]).clip(0.0, 1.0)


# --------------------------------------------------------------------------------------------------
# Backgrounds and occluders
# --------------------------------------------------------------------------------------------------
def _two_colors(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return _random_garment_color(rng), _random_garment_color(rng)


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    coords = (np.arange(size) + 0.5) / size - 0.5  # (H,) centred pixel coordinates in [-0.5, 0.5]
    return np.meshgrid(coords, coords)  # x, y: (H, W)


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    return a * (1.0 - t[..., None]) + b * t[..., None]  # (H, W, 3)


def gradient_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A linear or radial gradient between two colours, (H, W, 3) in [0, 1]."""
    x, y = _grid(size)
    a, b = _two_colors(rng)
    if rng.random() < 0.5:
        angle = rng.uniform(0, 2 * math.pi)
        t = (x * math.cos(angle) + y * math.sin(angle)) + 0.5
    else:
        cx, cy = rng.uniform(-0.5, 0.5, 2)
        t = np.hypot(x - cx, y - cy) * rng.uniform(0.8, 2.0)
    return _mix(a, b, t.clip(0.0, 1.0))


def stripe_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """Hard or soft stripes at a random angle and frequency, (H, W, 3)."""
    x, y = _grid(size)
    a, b = _two_colors(rng)
    angle = rng.uniform(0, math.pi)
    wave = np.sin((x * math.cos(angle) + y * math.sin(angle)) * rng.uniform(8.0, 60.0) + rng.uniform(0, 6.3))
    t = (wave > rng.uniform(-0.5, 0.5)).astype(float) if rng.random() < 0.6 else 0.5 + 0.5 * wave
    return _mix(a, b, t)


def checker_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A (possibly rotated) checkerboard, like tiles or a chessboard, (H, W, 3)."""
    x, y = _grid(size)
    a, b = _two_colors(rng)
    angle = rng.uniform(0, math.pi / 2)
    cells = rng.uniform(3.0, 16.0)
    u = (x * math.cos(angle) + y * math.sin(angle)) * cells
    v = (-x * math.sin(angle) + y * math.cos(angle)) * cells
    return _mix(a, b, ((np.floor(u) + np.floor(v)) % 2).astype(float))


def noise_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth multi-octave value noise mapped between two or three colours, (H, W, 3)."""
    from PIL import Image

    total = np.zeros((size, size))
    for octave, cells in enumerate((3, 6, 12, 24)):
        grid = (rng.random((cells, cells)) * 255).astype(np.uint8)
        smooth = np.asarray(Image.fromarray(grid).resize((size, size), Image.BICUBIC), dtype=float) / 255.0
        total += smooth * 0.5 ** octave
    total = (total - total.min()) / max(np.ptp(total), 1e-6)
    a, b = _two_colors(rng)
    image = _mix(a, b, total)
    if rng.random() < 0.5:
        image = _mix(image, _random_garment_color(rng), (np.sin(total * 12.0) > 0.7).astype(float))  # contour bands
    return image


def _draw_shapes(rng: np.random.Generator, size: int, count: int, base: np.ndarray):
    from PIL import Image, ImageDraw

    pil = Image.fromarray((base * 255).astype(np.uint8))
    pen = ImageDraw.Draw(pil)
    for _ in range(count):
        fill = tuple(int(c * 255) for c in _random_garment_color(rng))
        x0, y0 = rng.uniform(-0.2, 1.0, 2) * size
        w, h = rng.uniform(0.05, 0.5, 2) * size
        kind = rng.integers(3)
        if kind == 0:
            pen.rectangle([x0, y0, x0 + w, y0 + h], fill=fill)
        elif kind == 1:
            pen.ellipse([x0, y0, x0 + w, y0 + h], fill=fill)
        else:
            pen.polygon([tuple(p) for p in rng.uniform(-0.1, 1.1, (int(rng.integers(3, 7)), 2)) * size], fill=fill)
    return pil


def shapes_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """Random rectangles, ellipses and polygons over a flat colour, (H, W, 3)."""
    base = np.broadcast_to(_random_garment_color(rng), (size, size, 3))
    return np.asarray(_draw_shapes(rng, size, int(rng.integers(5, 25)), base), dtype=float) / 255.0


def clutter_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """Many shapes blurred as an out-of-focus cluttered room, (H, W, 3)."""
    from PIL import ImageFilter

    base = gradient_texture(rng, size)
    pil = _draw_shapes(rng, size, int(rng.integers(20, 60)), base)
    pil = pil.filter(ImageFilter.GaussianBlur(rng.uniform(2.0, 7.0)))
    return np.asarray(pil, dtype=float) / 255.0


@lru_cache(maxsize=None)
def _sample_image(name: str) -> np.ndarray:
    """A photograph or raster that matplotlib ships, as (H, W, 3) float in [0, 1] (read once per process)."""
    import matplotlib.cbook
    from PIL import Image

    path = matplotlib.cbook.get_sample_data(name, asfileobj=False)
    if name.endswith(".npz"):
        import matplotlib.colors
        from matplotlib import colormaps

        elevation = np.asarray(np.load(path, allow_pickle=False)["elevation"], dtype=float)
        # Shaded relief: an aerial view of real terrain, one of matplotlib's own examples.
        shade = matplotlib.colors.LightSource(azdeg=315, altdeg=45)
        return shade.shade(elevation, cmap=colormaps["gist_earth"], blend_mode="soft", vert_exag=0.05)[..., :3]
    with Image.open(path) as image:
        rgba = image.convert("RGBA")
    # Transparent parts of a PNG stand over white, as on a page.
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"), dtype=float) / 255.0


def photo_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random crop of a shipped photograph or terrain raster, flipped and tinted at random, (H, W, 3)."""
    from PIL import Image

    names = constants.SYNTHETIC_PHOTOS + constants.SYNTHETIC_ELEVATION_MAPS
    source = _sample_image(names[rng.integers(len(names))])
    height, width = source.shape[:2]
    side = int(min(height, width) * rng.uniform(0.25, 0.8))  # parts of the photo, rarely all of it
    top, left = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
    crop = source[top:top + side, left:left + side]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    pil = Image.fromarray((crop * 255).astype(np.uint8)).resize((size, size), Image.BILINEAR)
    tint = 1.0 + 0.15 * rng.uniform(-1.0, 1.0, 3)
    return (np.asarray(pil, dtype=float) / 255.0 * tint).clip(0.0, 1.0)


PROCEDURAL_TEXTURES = (gradient_texture, stripe_texture, checker_texture, noise_texture, shapes_texture,
                       clutter_texture)


def random_background(rng: np.random.Generator, size: int, config: WorldConfig) -> np.ndarray:
    """A background: a shipped photograph (``config.photo_probability``) or a procedural texture.

    Args:
        rng: NumPy random generator.
        size: side of the square image.
        config: the world's settings.

    Returns:
        (H, W, 3) uint8 image.
    """
    if rng.random() < config.photo_probability:
        image = photo_texture(rng, size)
    else:
        image = PROCEDURAL_TEXTURES[rng.integers(len(PROCEDURAL_TEXTURES))](rng, size)
    return (np.asarray(image).clip(0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def draw_occluders(image: np.ndarray, keypoints_px: np.ndarray, box_diagonal_px: float, rng: np.random.Generator,
                   config: WorldConfig, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``count`` textured polygons, ellipses or bars over the body.

    Each occluder is centred near a random keypoint, so it covers part of the body.

    Args:
        image: (H, W, 3) uint8 image.
        keypoints_px: (K, 2) keypoints in pixel coordinates.
        box_diagonal_px: the body's box diagonal in pixels (sets the occluders' size).
        rng: NumPy random generator.
        config: the world's settings.
        count: how many occluders.

    Returns:
        ``(image, mask)``: a new (H, W, 3) uint8 image and the (H, W) bool mask of occluded pixels.
    """
    from PIL import Image, ImageDraw

    size = image.shape[0]
    out = Image.fromarray(image)
    covered = np.zeros(image.shape[:2], dtype=bool)
    for _ in range(count):
        mask = Image.new("L", (size, size), 0)
        pen = ImageDraw.Draw(mask)
        centre = keypoints_px[rng.integers(len(keypoints_px))] + rng.normal(0.0, 0.05 * box_diagonal_px, 2)
        radius = 0.5 * box_diagonal_px * rng.uniform(*config.occluder_size)
        kind = rng.integers(3)
        if kind == 0:  # an irregular polygon
            angles = np.sort(rng.uniform(0, 2 * math.pi, int(rng.integers(3, 9))))
            radii = radius * rng.uniform(0.5, 1.2, len(angles))
            points = centre + np.stack((np.cos(angles), np.sin(angles)), 1) * radii[:, None]
            pen.polygon([tuple(p) for p in points], fill=255)
        elif kind == 1:  # an ellipse
            rx, ry = radius * rng.uniform(0.5, 1.2, 2)
            pen.ellipse([centre[0] - rx, centre[1] - ry, centre[0] + rx, centre[1] + ry], fill=255)
        else:  # a bar across the image, like a pole or a railing
            angle = rng.uniform(0, math.pi)
            direction = np.array([math.cos(angle), math.sin(angle)]) * 2 * size
            pen.line([tuple(centre - direction), tuple(centre + direction)], fill=255,
                     width=max(2, int(radius * rng.uniform(0.3, 0.7))))
        if rng.random() < 0.3:
            texture = np.broadcast_to(_random_garment_color(rng), (size, size, 3))
        else:
            texture = PROCEDURAL_TEXTURES[rng.integers(len(PROCEDURAL_TEXTURES))](rng, size)
        texture_pil = Image.fromarray((np.asarray(texture) * 255.0 + 0.5).astype(np.uint8))
        out = Image.composite(texture_pil, out, mask)
        covered |= np.asarray(mask) > 0
    return np.asarray(out), covered


def camera_effects(image: np.ndarray, rng: np.random.Generator, config: WorldConfig) -> np.ndarray:
    """Whole-image exposure (gamma), white balance and sensor noise.

    Args:
        image: (H, W, 3) uint8 image.
        rng: NumPy random generator.
        config: the world's settings.

    Returns:
        A new (H, W, 3) uint8 image.
    """
    x = image.astype(np.float64) / 255.0
    x = x ** rng.uniform(*config.exposure_gamma) * (1.0 + config.white_balance * rng.uniform(-1.0, 1.0, 3))
    x = x * 255.0
    if rng.random() < config.noise_probability:
        x = x + rng.normal(0.0, rng.uniform(0.0, config.noise_std), x.shape)
    return (x.clip(0.0, 255.0) + 0.5).astype(np.uint8)


# --------------------------------------------------------------------------------------------------
# Geometry: orientation, camera, labels
# --------------------------------------------------------------------------------------------------
def _rotation_x(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rotation_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def camera_global_orient(global_orient_smpl: np.ndarray, view_pitch: float, view_roll: float) -> np.ndarray:
    """θ's global orientation in the camera frame: R = R_z(roll) · R_x(pitch) · R_x(π) · R_smpl.

    R_x(π) turns SMPL's y-up body upright in the y-down camera frame (as ``regressor.mean_theta``);
    then the camera's pitch (looking down on or up at the body) and roll (a tilted camera).

    Args:
        global_orient_smpl: (3,) axis-angle orientation in SMPL's frame (``PoseSamples.global_orient``).
        view_pitch: radians, about the camera's x axis.
        view_roll: radians, about the camera's optical axis.

    Returns:
        (3,) axis-angle global orientation in the camera frame.
    """
    r_smpl = axis_angle_to_matrix(torch.as_tensor(global_orient_smpl, dtype=torch.float64)).numpy()
    rotation = _rotation_z(view_roll) @ _rotation_x(view_pitch) @ _rotation_x(math.pi) @ r_smpl
    return matrix_to_axis_angle(torch.from_numpy(rotation)).numpy()


class Framing(NamedTuple):
    """Where the camera puts the body.

    Attributes:
        cam: (3,) weak-perspective camera (s, tx, ty).
        truncated: whether the body was pushed partly out of the crop on purpose.
        box_diagonal_px: the diagonal of the body's tight box in the crop, pixels.
    """

    cam: np.ndarray
    truncated: bool
    box_diagonal_px: float


def frame_body(vertices_xy: np.ndarray, rng: np.random.Generator, config: WorldConfig,
               img_size: int = constants.IMG_SIZE) -> Framing:
    """Place a weak-perspective camera as HMR's crops do: box diagonal, jittered scale and shift, truncation.

    Args:
        vertices_xy: (V, 2) x, y of the body in the camera frame, metres.
        rng: NumPy random generator.
        config: the world's settings.
        img_size: side of the crop in pixels.

    Returns:
        ``Framing``.
    """
    half = img_size / 2.0
    low, high = vertices_xy.min(0), vertices_xy.max(0)
    extent = high - low  # (2,) metres
    diagonal_px = config.box_diagonal * rng.uniform(1.0 - config.scale_jitter, 1.0 + config.scale_jitter)
    scale = diagonal_px / (half * max(float(np.hypot(*extent)), 1e-6))  # normalised units per metre
    centre = (low + high) / 2.0
    shift = rng.uniform(-config.translation_max, config.translation_max, 2) / half  # normalised units
    truncated = bool(rng.random() < config.truncation_probability)
    if truncated:
        axis, side = int(rng.integers(2)), rng.choice((-1.0, 1.0))
        half_extent = scale * extent[axis] / 2.0  # normalised
        out = rng.uniform(*config.truncation_range) * 2.0 * half_extent  # how far the box's edge leaves
        shift[axis] = side * (1.0 + out - half_extent)
    transl = shift / scale - centre  # x_n = s (X + t): the box centre lands at ``shift``
    return Framing(np.array([scale, transl[0], transl[1]]), truncated, float(diagonal_px))


def keypoint_visibility(
    keypoints_2d: np.ndarray,
    occluded: np.ndarray | None,
    img_size: int = constants.IMG_SIZE,
) -> np.ndarray:
    """Visibility of projected keypoints.

    1 inside the crop and not under an occluder, else 0. Self-occluded
    keypoints stay visible, as annotators label them. "Inside" is |x|, |y| ≤ 1
    in normalised coordinates (as ``augment.transform_keypoints``).

    Args:
        keypoints_2d: (K, 2) normalised keypoints.
        occluded: (H, W) bool mask of occluded pixels, or None.
        img_size: side of the crop.

    Returns:
        (K,) float32 visibility.
    """
    inside = (np.abs(keypoints_2d) <= 1.0).all(axis=1)
    visible = inside.copy()
    if occluded is not None:
        pixel = camera.normalized_to_pixel(
            torch.from_numpy(keypoints_2d), img_size
        ).numpy()
        # (K, 2) column, row
        pixel = np.floor(pixel).clip(0, img_size - 1).astype(np.int64)
        visible &= ~(inside & occluded[pixel[:, 1], pixel[:, 0]])
    return visible.astype(np.float32)


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
        from hmr_core.pose_prior import body_capsules

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

        _check_seed(seed, split)
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
        low, high = _seed_range(split)
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


# Worker processes: each builds its own SyntheticWorld (SMPL, OpenGL context) once.
_worker_world: SyntheticWorld | None = None


def _make_world(backend: str, batched: bool):
    if batched:
        from hmr_core.synthetic_batch import BatchedWorld

        return BatchedWorld(backend)
    return SyntheticWorld(backend)


def _generate_with(world, seeds: np.ndarray, split: str) -> dict[str, np.ndarray]:
    """A chunk of images: one batch of a ``synthetic_batch.BatchedWorld``, or image by image."""
    if isinstance(world, SyntheticWorld):
        return generate_batch(seeds, split, world)
    return world.generate(int(seeds[0]), len(seeds), split)


def _init_worker(backend: str, batched: bool = False) -> None:
    global _worker_world
    torch.set_num_threads(1)  # the processes are the parallelism
    _worker_world = _make_world(backend, batched)


def _generate_chunk(task: tuple[str, np.ndarray]) -> dict[str, np.ndarray]:
    split, seeds = task
    return _generate_with(_worker_world, seeds, split)


class WriteReport(NamedTuple):
    """What ``write_split`` did.

    Attributes:
        written: shard files written by this run.
        skipped: shard files already complete and left alone.
        num_images: images generated by this run.
        seconds: wall time of the generation.
    """

    written: list[Path]
    skipped: list[Path]
    num_images: int
    seconds: float


def remove_stale_temporaries(out: str | Path, split: str) -> list[Path]:
    """Delete the temporary files (``.<shard>.<pid>.tmp``) that killed writers of ``split`` left in ``out``.

    A file whose process still runs is left alone (another writer is using it).

    Returns:
        The files removed.
    """
    removed = []
    for path in Path(out).glob(f".{split}_*.npz.*.tmp"):
        pid = path.name.rsplit(".", 2)[-2]
        if pid.isdigit() and int(pid) != os.getpid() and Path(f"/proc/{pid}").exists():
            continue
        size = path.stat().st_size
        path.unlink(missing_ok=True)
        removed.append(path)
        logger.info("removed %s (%.0f MB) left by an interrupted run", path, size / 1e6)
    return removed


def check_write_args(out: str | Path, split: str, num: int, start: int, shard_size: int, workers: int,
                     chunk_size: int) -> None:
    """Check ``write_split``'s arguments before any work; raises ValueError saying what to change."""
    if num < 1:
        raise ValueError(f"--num must be ≥ 1 (images to write), got {num}")
    if start < 0:
        raise ValueError(f"--start must be ≥ 0 (index of the first image in the split), got {start}")
    if shard_size < 1 or workers < 1 or chunk_size < 1:
        raise ValueError(f"need --shard-size ≥ 1, --workers ≥ 1 and chunk size ≥ 1; got {shard_size}, {workers}, "
                         f"{chunk_size}")
    low, high = _seed_range(split)
    if low + start + num > high:
        raise ValueError(f"split {split!r} has {high - low} images; --start {start} --num {num} goes beyond it")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder for the shards")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"--out {out}: {parent} is a file, so the folder cannot be made")
            break


def write_split(out: str | Path, split: str, num: int, shard_size: int = 1000, workers: int = 1,
                backend: str = "auto", start: int = 0, chunk_size: int = 16, progress: bool = True,
                batched: bool = False) -> WriteReport:
    """Write images ``start, ..., start + num - 1`` of a split to shards, resuming an interrupted run.

    Shard i holds images ``start + i · shard_size`` onwards. A shard whose file exists and is valid is
    skipped; a corrupt one is redone. Images are made in chunks by worker processes (the 'spawn'
    context: safe with torch threads and OpenGL), and each shard is written when its chunks are in.

    Args:
        out: the output folder.
        split: "train", "test" or "ood".
        num: images in all.
        shard_size: images per shard.
        workers: processes; 1 generates in this process.
        backend: render backend ("auto", "pyrender", "numpy").
        start: index of the first image in the split.
        chunk_size: images per task handed to a worker.
        progress: show a tqdm progress bar.
        batched: draw each chunk as one batch of ``synthetic_batch.BatchedWorld`` (faster; an image
            then depends on its chunk, not on its seed alone).

    Returns:
        ``WriteReport``.

    Raises:
        ValueError: for arguments that cannot work (checked before any image is drawn).
    """
    import time

    from tqdm import tqdm

    check_write_args(out, split, num, start, shard_size, workers, chunk_size)
    Path(out).mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out, split)
    seeds = split_seeds(split, num, start)
    config = {"split": split, "world": asdict(SPLIT_CONFIGS[split]), "backend": backend, "start": start,
              "shard_size": shard_size, "generator": "batched" if batched else "per_image",
              "chunk_size": chunk_size}
    shards = [(shard_path(out, split, i), seeds[i * shard_size:(i + 1) * shard_size])
              for i in range(math.ceil(num / shard_size))]
    todo = [(path, s) for path, s in shards if not shard_is_complete(path, s, split)]
    skipped = [path for path, _ in shards if all(path != p for p, _ in todo)]
    tasks, owner = [], []
    for k, (_, s) in enumerate(todo):
        for c in range(0, len(s), chunk_size):
            tasks.append((split, s[c:c + chunk_size]))
            owner.append(k)
    remaining = [sum(1 for o in owner if o == k) for k in range(len(todo))]
    parts: list[list[dict[str, np.ndarray]]] = [[] for _ in todo]
    written: list[Path] = []
    began = time.perf_counter()
    bar = tqdm(total=sum(len(s) for _, s in todo), desc=f"synthetic {split}", unit="img", disable=not progress)
    threads = torch.get_num_threads()
    if workers == 1:
        # One image is many small tensor operations: torch's intra-op threads only add overhead
        # (measured 3x slower with 2 threads); the caller's setting is restored below.
        torch.set_num_threads(1)
        world = _make_world(backend, True) if batched else default_world(backend)
        results = (_generate_with(world, seeds_, split_) for split_, seeds_ in tasks)
        pool = None
    else:
        pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker,
                                                        initargs=(backend, batched))
        results = pool.imap(_generate_chunk, tasks)  # in order: chunks of a shard arrive together
    try:
        for k, result in zip(owner, results):
            parts[k].append(result)
            bar.update(len(result["seed"]))
            remaining[k] -= 1
            if remaining[k] == 0:
                arrays = {key: np.concatenate([p[key] for p in parts[k]]) for key in parts[k][0]}
                written.append(write_shard(todo[k][0], arrays, config))
                parts[k] = []
    finally:
        bar.close()
        torch.set_num_threads(threads)
        if pool is not None:
            pool.terminate()
            pool.join()
    return WriteReport(written, skipped, sum(len(s) for _, s in todo), time.perf_counter() - began)


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
        _seed_range(split)
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


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hmr_core.synthetic", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    write = sub.add_parser("write", help="write a split to shards (resumes an interrupted run)")
    write.add_argument("--out", required=True, help="output folder")
    write.add_argument("--split", choices=SPLITS, default="train")
    write.add_argument("--num", type=int, required=True, help="images to write")
    write.add_argument("--start", type=int, default=0, help="index of the first image in the split")
    write.add_argument("--shard-size", type=int, default=1000)
    write.add_argument("--workers", type=int, default=1, help="worker processes")
    write.add_argument("--backend", choices=("auto",) + render.BACKENDS, default="auto")
    write.add_argument("--batched", action="store_true",
                       help="draw chunks as batches (synthetic_batch.BatchedWorld): faster, same distribution")
    write.add_argument("--chunk-size", type=int, default=16, help="images per task (per batch with --batched)")
    args = parser.parse_args(argv)
    try:
        check_write_args(args.out, args.split, args.num, args.start, args.shard_size, args.workers, args.chunk_size)
    except ValueError as err:
        parser.error(str(err))
    # This package's messages only: OpenGL logs at INFO while the interpreter shuts down.
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("hmr_core").setLevel(logging.INFO)
    try:
        report = write_split(args.out, args.split, args.num, args.shard_size, args.workers, args.backend, args.start,
                             args.chunk_size, batched=args.batched)
    except ShardError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    rate = report.num_images / report.seconds if report.seconds > 0 and report.num_images else 0.0
    print(f"{len(report.written)} shards written, {len(report.skipped)} already complete; "
          f"{report.num_images} images in {report.seconds:.1f} s ({rate:.1f} images/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
