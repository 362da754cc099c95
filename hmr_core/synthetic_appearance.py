"""The synthetic world's appearance: clothes and skin, light, backgrounds, occluders, camera exposure.

Step 3 of an image of the synthetic world (``synthetic``; design in ``docs/synthetic_world.md``):
clothes (shirt, trousers or shorts, shoes, skin and hair, by each vertex's strongest skinning weight),
light of random strength, colour and direction, a random background (procedural textures, or the
photographs matplotlib ships), occluders over part of the body, camera exposure and noise. Every
function draws from the image's NumPy generator, so an image stays a function of its seed.

Letters in shapes: K keypoints (19), V vertices, H/W image.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from hmr_core import constants

if TYPE_CHECKING:
    from hmr_core.synthetic import WorldConfig


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


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """x, y: (H, W) float32 centred pixel coordinates in [-0.5, 0.5] (kept per size; read-only)."""
    coords = ((np.arange(size) + 0.5) / size - 0.5).astype(np.float32)
    x, y = np.meshgrid(coords, coords)
    x.flags.writeable = y.flags.writeable = False
    return x, y


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(1 - t) a + t b: (3,) or (H, W, 3) colours a and b, (H, W) weights t → (H, W, 3) float32."""
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    return a + (b - a) * np.asarray(t, dtype=np.float32)[..., None]


def gradient_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A linear or radial gradient between two colours, (H, W, 3) in [0, 1]."""
    x, y = _grid(size)
    a, b = _two_colors(rng)
    if rng.random() < 0.5:
        angle = rng.uniform(0, 2 * math.pi)
        t = (x * np.float32(math.cos(angle)) + y * np.float32(math.sin(angle))) + np.float32(0.5)
    else:
        cx, cy = rng.uniform(-0.5, 0.5, 2).astype(np.float32)
        t = np.hypot(x - cx, y - cy) * np.float32(rng.uniform(0.8, 2.0))
    return _mix(a, b, t.clip(0.0, 1.0))


def stripe_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """Hard or soft stripes at a random angle and frequency, (H, W, 3)."""
    x, y = _grid(size)
    a, b = _two_colors(rng)
    angle = rng.uniform(0, math.pi)
    frequency, phase = np.float32(rng.uniform(8.0, 60.0)), np.float32(rng.uniform(0, 6.3))
    wave = np.sin((x * np.float32(math.cos(angle)) + y * np.float32(math.sin(angle))) * frequency + phase)
    t = (wave > rng.uniform(-0.5, 0.5)).astype(np.float32) if rng.random() < 0.6 else 0.5 + 0.5 * wave
    return _mix(a, b, t)


def checker_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A (possibly rotated) checkerboard, like tiles or a chessboard, (H, W, 3)."""
    x, y = _grid(size)
    a, b = _two_colors(rng)
    angle = rng.uniform(0, math.pi / 2)
    cells = rng.uniform(3.0, 16.0)
    cos, sin, cells = np.float32(math.cos(angle)), np.float32(math.sin(angle)), np.float32(cells)
    u = (x * cos + y * sin) * cells
    v = (-x * sin + y * cos) * cells
    return _mix(a, b, (np.floor(u).astype(np.int32) + np.floor(v).astype(np.int32)) & 1)  # the cell's parity


def noise_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth multi-octave value noise mapped between two or three colours, (H, W, 3)."""
    from PIL import Image

    total = np.zeros((size, size), dtype=np.float32)
    for octave, cells in enumerate((3, 6, 12, 24)):
        grid = (rng.random((cells, cells)) * 255).astype(np.uint8)
        smooth = np.asarray(Image.fromarray(grid).resize((size, size), Image.BICUBIC), dtype=np.float32)
        total += smooth * np.float32(0.5 ** octave / 255.0)
    total = (total - total.min()) / max(np.ptp(total), 1e-6)
    a, b = _two_colors(rng)
    image = _mix(a, b, total)
    if rng.random() < 0.5:
        image = _mix(image, _random_garment_color(rng), np.sin(total * 12.0) > 0.7)  # contour bands
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
    return np.asarray(_draw_shapes(rng, size, int(rng.integers(5, 25)), base), dtype=np.float32) / 255.0


def clutter_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """Many shapes blurred as an out-of-focus cluttered room, (H, W, 3)."""
    from PIL import ImageFilter

    base = gradient_texture(rng, size)
    pil = _draw_shapes(rng, size, int(rng.integers(20, 60)), base)
    pil = pil.filter(ImageFilter.GaussianBlur(rng.uniform(2.0, 7.0)))
    return np.asarray(pil, dtype=np.float32) / 255.0


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


@lru_cache(maxsize=None)
def _sample_image_uint8(name: str) -> np.ndarray:
    """``_sample_image`` as (H, W, 3) uint8, truncated as ``(x * 255).astype(np.uint8)`` does (once per process)."""
    return (_sample_image(name) * 255).astype(np.uint8)


def photo_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random crop of a shipped photograph or terrain raster, flipped and tinted at random, (H, W, 3)."""
    from PIL import Image

    names = constants.SYNTHETIC_PHOTOS + constants.SYNTHETIC_ELEVATION_MAPS
    source = _sample_image_uint8(names[rng.integers(len(names))])
    height, width = source.shape[:2]
    side = int(min(height, width) * rng.uniform(0.25, 0.8))  # parts of the photo, rarely all of it
    top, left = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
    crop = source[top:top + side, left:left + side]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    pil = Image.fromarray(np.ascontiguousarray(crop)).resize((size, size), Image.BILINEAR)
    tint = (1.0 + 0.15 * rng.uniform(-1.0, 1.0, 3)) / 255.0
    return (np.asarray(pil, dtype=np.float32) * tint.astype(np.float32)).clip(0.0, 1.0)


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
