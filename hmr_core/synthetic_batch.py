"""The synthetic world in batches: many bodies drawn at once in torch, for shards or for training on the fly.

``synthetic.SyntheticWorld`` draws one image at a time from one seed, which takes about 75 ms of CPU per
image on the development machine's cores (docs/benchmarks.md): most of it in OpenGL's per-pixel lighting
(Mesa's software renderer), in drawing one pose at a time (the penetration test, forward kinematics) and
in NumPy per-vertex work. ``BatchedWorld`` draws the same world (the same ``WorldConfig`` presets, the
same distributions of bodies, cameras, clothes, light, backgrounds, occluders and camera effects) for a
whole batch, in about 7–9 ms of CPU per image:

1. bodies, cameras, clothes and light for all N images in torch (on the device of the body model: a
   GPU when there is one), with one SMPL pass;
2. the renderer's fixed light and the random light baked into vertex colours (the same Lambert terms
   the renderer and ``synthetic_appearance.light_vertex_colors`` apply), so drawing only interpolates
   colours: no per-pixel lighting;
3. all N bodies drawn over their backgrounds in one call of ``raster.draw_over`` (2 × 2 samples per
   pixel; compiled loops on a CPU, tensor operations on a GPU);
4. backgrounds and occluders per image with the same functions as ``synthetic`` (``random_background``,
   ``draw_occluders``), from a NumPy generator seeded by the image's seed, and the camera effects
   (exposure, white balance, noise) for the whole batch.

Labels are made exactly as ``SyntheticWorld.generate`` makes them: SMPL(θ, β) with cam reproduces
the 2D keypoints, and visibility follows the crop and the occluders.

One batch is one seed range: the images of seeds ``s, ..., s + N - 1`` drawn together. Its random
numbers come from one generator seeded with (s, N), so an image is reproduced by drawing its batch
again (not by its seed alone, as in ``SyntheticWorld``); the images differ from ``SyntheticWorld``'s of
the same seeds, while their distribution is the same (``tests/test_synthetic_batch.py`` compares them).

Letters in shapes: N images, V vertices, F faces, K keypoints (19), J LSP joints (14), H/W image.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from hmr_core import camera, constants, raster, render
from hmr_core.augment import NO_AUGMENTATION, AugmentConfig
from hmr_core.datasets import Sample
from hmr_core.raster import vertex_normals
from hmr_core.rotation import axis_angle_to_matrix, matrix_to_axis_angle
from hmr_core.synthetic import LABEL_SHAPES, SPLIT_CONFIGS, SyntheticWorld, WorldConfig, check_seed, seed_range
from hmr_core.synthetic_appearance import FACE_EYE, FACE_MOUTH, draw_occluders, random_background
from hmr_core.synthetic_camera import keypoint_visibility
from hmr_core.synthetic_shards import SyntheticDataset

BACKENDS = ("auto", "torch", "pyrender", "numpy")
# Samples per pixel side of the batched rasteriser: 2 × 2, as OpenGL's 4× multisampling in ``render``.
SUPERSAMPLE = 2
# Stream of a batch's NumPy generators, so that they never coincide with ``SyntheticWorld``'s per-seed ones.
_IMAGE_STREAM = 1


def batch_generator(first_seed: int, num: int) -> torch.Generator:
    """The CPU generator of the batch of seeds ``first_seed, ..., first_seed + num - 1``."""
    return torch.Generator().manual_seed(hash((int(first_seed), int(num))) % 2**63)


def _uniform(generator: torch.Generator, low: float, high: float, *shape: int) -> torch.Tensor:
    return low + (high - low) * torch.rand(*shape, generator=generator, dtype=torch.float64)


def _bernoulli(generator: torch.Generator, probability: float, num: int) -> torch.Tensor:
    return torch.rand(num, generator=generator, dtype=torch.float64) < probability


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """(..., 3) HSV in [0, 1] → (..., 3) RGB in [0, 1], as ``colorsys.hsv_to_rgb``."""
    h, s, v = hsv.unbind(-1)
    k = torch.stack((h * 6.0 + 5.0, h * 6.0 + 3.0, h * 6.0 + 1.0), dim=-1) % 6.0  # (..., 3)
    weight = (torch.minimum(k, 4.0 - k)).clamp(0.0, 1.0)
    return v[..., None] - v[..., None] * s[..., None] * weight


def random_garment_colors(generator: torch.Generator, num: int) -> torch.Tensor:
    """(N, 3) sRGB garment colours as ``synthetic_appearance._random_garment_color``: any hue, grey to saturated."""
    hue = _uniform(generator, 0.0, 1.0, num)
    sat = _uniform(generator, 0.0, 0.9, num) ** 1.3
    val = _uniform(generator, 0.12, 0.95, num)
    return hsv_to_rgb(torch.stack((hue, sat, val), dim=-1))


def rotation_x(angle: torch.Tensor) -> torch.Tensor:
    """(N,) radians → (N, 3, 3) rotations about x."""
    c, s, one, zero = angle.cos(), angle.sin(), torch.ones_like(angle), torch.zeros_like(angle)
    return torch.stack((one, zero, zero, zero, c, -s, zero, s, c), dim=-1).reshape(-1, 3, 3)


def rotation_z(angle: torch.Tensor) -> torch.Tensor:
    """(N,) radians → (N, 3, 3) rotations about z."""
    c, s, one, zero = angle.cos(), angle.sin(), torch.ones_like(angle), torch.zeros_like(angle)
    return torch.stack((c, -s, zero, s, c, zero, zero, zero, one), dim=-1).reshape(-1, 3, 3)


def camera_global_orient(global_orient_smpl: torch.Tensor, pitch: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """Batched ``synthetic_camera.camera_global_orient``: R = R_z(roll) · R_x(pitch) · R_x(π) · R_smpl.

    Args:
        global_orient_smpl: (N, 3) axis-angle orientations in SMPL's frame.
        pitch, roll: (N,) radians.

    Returns:
        (N, 3) axis-angle global orientations in the camera frame (float64).
    """
    r_smpl = axis_angle_to_matrix(global_orient_smpl.double())
    flip = rotation_x(torch.full_like(pitch, math.pi))
    return matrix_to_axis_angle(rotation_z(roll) @ rotation_x(pitch) @ flip @ r_smpl)


def frame_bodies(vertices_xy: torch.Tensor, generator: torch.Generator, config: WorldConfig,
                 img_size: int = constants.IMG_SIZE) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batched ``synthetic_camera.frame_body``: box diagonal, jittered scale and shift, truncation.

    Args:
        vertices_xy: (N, V, 2) x, y of the bodies in the camera frame, metres (float64).
        generator: CPU generator.
        config: the world's settings.
        img_size: side of the crop in pixels.

    Returns:
        ``(cam, truncated, box_diagonal_px)``: (N, 3) float64 cameras, (N,) bool, (N,) float64 pixels.
    """
    num, half = len(vertices_xy), img_size / 2.0
    low, high = vertices_xy.amin(1).cpu(), vertices_xy.amax(1).cpu()  # (N, 2)
    extent = high - low
    diagonal_px = config.box_diagonal * _uniform(generator, 1.0 - config.scale_jitter, 1.0 + config.scale_jitter, num)
    scale = diagonal_px / (half * extent.norm(dim=1).clamp_min(1e-6))  # (N,) normalised units per metre
    centre = (low + high) / 2.0
    shift = _uniform(generator, -config.translation_max, config.translation_max, num, 2) / half
    truncated = _bernoulli(generator, config.truncation_probability, num)
    axis = torch.randint(2, (num,), generator=generator)
    side = torch.where(_bernoulli(generator, 0.5, num), 1.0, -1.0).double()
    half_extent = scale * extent.gather(1, axis[:, None])[:, 0] / 2.0
    out = _uniform(generator, *config.truncation_range, num) * 2.0 * half_extent
    pushed = shift.scatter(1, axis[:, None], (side * (1.0 + out - half_extent))[:, None])
    shift = torch.where(truncated[:, None], pushed, shift)
    transl = shift / scale[:, None] - centre  # x_n = s (X + t): the box centre lands at ``shift``
    return torch.cat((scale[:, None], transl), dim=1), truncated, diagonal_px


class BatchedWorld:
    """Draws batches of the synthetic world: bodies and labels in torch, all bodies in one rasterisation.

    Args:
        backend: "torch" (or "auto") draws the whole batch at once with ``raster`` (antialiased by 2 × 2
            supersampling, as OpenGL's 4× multisampling); "pyrender" and "numpy" draw one body at a time
            with ``render``'s backends (for comparison).
        model_path: SMPL model file; None for ``$HMR_SMPL_MODEL`` or the open body model.
        device: where the body model, colours and camera effects are computed ("cpu", "cuda", ...).
    """

    def __init__(self, backend: str | None = "auto", model_path: str | Path | None = None,
                 device: str | torch.device = "cpu"):
        backend = "auto" if backend is None else backend
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
        # "torch" draws the whole batch with ``raster``; the others draw one body at a time.
        world = SyntheticWorld("numpy" if backend in ("auto", "torch") else backend, model_path)
        self.device = torch.device(device)
        self.backend = "torch" if backend in ("auto", "torch") else world.backend
        self.capsules = world.capsules
        self.model = world.model.to(self.device)
        self.faces_np = world.faces
        self.faces = torch.as_tensor(world.faces, dtype=torch.int64, device=self.device)
        # A closed mesh is drawn without its back faces (raster.closed_mesh_winding).
        self.cull = raster.closed_mesh_winding(self.model.v_template.cpu().numpy(), world.faces)
        regions = world.regions
        self.region_names = regions.names
        as_tensor = lambda a: torch.as_tensor(np.asarray(a), device=self.device)  # noqa: E731
        self.region = as_tensor(regions.region).long()
        self.hair, self.height = as_tensor(regions.hair).bool(), as_tensor(regions.height).double()
        self.eye, self.mouth = as_tensor(regions.face == FACE_EYE), as_tensor(regions.face == FACE_MOUTH)
        self.neckline, self.chest = as_tensor(regions.neckline).bool(), as_tensor(regions.chest).bool()

    # ----------------------------------------------------------------------------------------------
    def vertex_colors(self, generator: torch.Generator, num: int, config: WorldConfig) -> torch.Tensor:
        """(N, V, 3) clothing-like albedo (float32), as ``synthetic_appearance.vertex_colors`` draws it for each
        image."""
        names, dev = self.region_names, self.device
        skin_tones = torch.tensor(constants.SKIN_TONES, dtype=torch.float64)
        hair_colors = torch.tensor(constants.HAIR_COLORS, dtype=torch.float64)
        skin = skin_tones[torch.randint(len(skin_tones), (num,), generator=generator)] * _uniform(generator, 0.95, 1.05,
                                                                                                  num, 3)
        shirt, trousers = random_garment_colors(generator, num), random_garment_colors(generator, num)
        shoes = random_garment_colors(generator, num) * _uniform(generator, 0.3, 1.0, num, 1)
        long_sleeves = _bernoulli(generator, config.long_sleeve_probability, num)[:, None]
        long_trousers = _bernoulli(generator, config.long_trousers_probability, num)[:, None]
        palette = {"shirt": shirt, "sleeve": torch.where(long_sleeves, shirt, skin), "trousers": trousers,
                   "leg": torch.where(long_trousers, trousers, skin), "shoes": shoes, "skin": skin}
        striped = _bernoulli(generator, 0.3, num)
        second = random_garment_colors(generator, num)
        frequency = _uniform(generator, 40.0, 120.0, num)
        hair = hair_colors[torch.randint(len(hair_colors), (num,), generator=generator)]
        has_hair = ~_bernoulli(generator, config.bald_probability, num)
        neckline = _bernoulli(generator, config.neckline_probability, num)
        printed = _bernoulli(generator, config.chest_print_probability, num)
        print_color = random_garment_colors(generator, num)
        jitter = _uniform(generator, 0.93, 1.07, num, len(self.region), 1)
        to = lambda t: t.to(dev)  # noqa: E731  (draws on the CPU generator, arithmetic on the device)
        # Each vertex takes one colour of its image's table: its region's, or one that overrides it (the
        # later rules win, as in the per-image function), then a per-vertex jitter.
        mouth = skin * torch.tensor((0.8, 0.45, 0.45), dtype=torch.float64)
        extra = {"stripe": second, "hair": hair, "skin": skin, "print": print_color, "eye": hair * 0.5,
                 "mouth": mouth}
        table = to(torch.stack([palette[name] for name in names] + list(extra.values()), dim=1).float())  # (N, R+6, 3)
        slot = {name: len(names) + k for k, name in enumerate(extra)}
        choice = self.region[None].expand(num, -1)  # (N, V) index into the table
        shirt_like = (self.region == names.index("shirt"))[None] | (
            (self.region == names.index("sleeve"))[None] & to(long_sleeves))  # (N, V)
        stripes = torch.sin(self.height[None] * to(frequency)[:, None]) > 0
        chest = self.chest & ~self.neckline
        for mask, name in ((stripes & shirt_like & to(striped)[:, None], "stripe"),
                           (self.hair[None] & to(has_hair)[:, None], "hair"),
                           (self.neckline[None] & to(neckline)[:, None], "skin"),
                           (chest[None] & to(printed)[:, None], "print"),
                           (self.eye[None], "eye"), (self.mouth[None], "mouth")):
            choice = torch.where(mask, slot[name], choice)
        colors = table.gather(1, choice[..., None].expand(-1, -1, 3))  # (N, V, 3)
        return (colors * to(jitter).float()).clamp(0.02, 1.0)

    def lit_colors(self, colors: torch.Tensor, normals: torch.Tensor, generator: torch.Generator,
                   config: WorldConfig) -> torch.Tensor:
        """Batched ``synthetic_appearance.light_vertex_colors``: c' = c · b · tint · (1 - k + k · |n·l|), (N, V, 3)."""
        num = len(colors)
        brightness = _uniform(generator, *config.light_brightness, num)
        tint = 1.0 + config.light_tint * _uniform(generator, -1.0, 1.0, num, 3)
        k = _uniform(generator, *config.light_directional, num)
        toward = torch.randn(num, 3, generator=generator, dtype=torch.float64)
        toward[:, 2] = -toward[:, 2].abs()  # on the camera's side of the body (camera looks along +z)
        toward = (toward / toward.norm(dim=1, keepdim=True)).to(self.device, normals.dtype)
        lambert = torch.einsum("nvc,nc->nv", normals, toward).abs()  # (N, V)
        factor = (brightness[:, None, None] * tint[:, None]).to(self.device, colors.dtype)
        k = k.to(self.device, colors.dtype)[:, None]
        return (colors * factor * (1.0 - k + k * lambert)[..., None]).clamp(0.0, 1.0)

    @staticmethod
    def shaded_colors(lit: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
        """The renderer's own light baked per vertex, as ``render``'s NumPy backend shades per pixel.

        shade = AMBIENT + (1 - AMBIENT) · max(0, n·l) with the normal turned towards the viewer (both sides
        of the surface are drawn); colours are sRGB, so the shade enters with gamma 1/2.2.

        Args:
            lit: (N, V, 3) sRGB colours in [0, 1].
            normals: (N, V, 3) unit normals in the camera frame.

        Returns:
            (N, V, 3) sRGB colours as they appear in the image.
        """
        light = -torch.tensor(render.LIGHT_DIRECTION, dtype=normals.dtype, device=normals.device)
        light = light / light.norm()
        facing = normals * -torch.sign(normals[..., 2:3] + 1e-12)
        shade = render.AMBIENT + (1.0 - render.AMBIENT) * (facing @ light).clamp(0.0, 1.0)  # (N, V)
        return shade[..., None] ** (1.0 / 2.2) * lit

    # ----------------------------------------------------------------------------------------------
    def draw(self, vertices: torch.Tensor, cam: torch.Tensor, shaded: torch.Tensor,
             backgrounds: np.ndarray) -> np.ndarray:
        """N bodies over their backgrounds.

        Args:
            vertices: (N, V, 3) camera-frame vertices.
            cam: (N, 3) weak-perspective cameras.
            shaded: (N, V, 3) sRGB vertex colours as they appear in the image.
            backgrounds: (N, H, W, 3) uint8.

        Returns:
            (N, H, W, 3) uint8 images (a new array).
        """
        size = backgrounds.shape[1]
        if self.backend == "torch":
            dev = self.device
            pixels = camera.normalized_to_pixel(camera.weak_perspective_project(vertices.float(), cam.float().to(dev)),
                                                size)  # (N, V, 2)
            images = raster.draw_over(pixels, vertices[..., 2].float(), self.faces, shaded.float(),
                                      torch.from_numpy(backgrounds), SUPERSAMPLE, self.cull)
            return images.cpu().numpy()
        draw = render_flat if self.backend == "pyrender" else rasterize_flat
        images = np.empty_like(backgrounds)
        vertices_np, cam_np, shaded_np = vertices.cpu().numpy(), cam.double().cpu().numpy(), shaded.cpu().numpy()
        for i in range(len(images)):
            rgb, coverage = draw(vertices_np[i], self.faces_np, cam_np[i], shaded_np[i], size)
            out = backgrounds[i].astype(np.float64) / 255.0 * (1.0 - coverage[..., None]) + rgb
            images[i] = (out.clip(0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        return images

    def generate(self, first_seed: int, num: int, split: str = "train") -> dict[str, np.ndarray]:
        """Draw the batch of seeds ``first_seed, ..., first_seed + num - 1`` of ``split``.

        Args:
            first_seed: the first image's seed, inside the split's range (``synthetic.split_seeds``).
            num: N, images in the batch.
            split: "train", "test" or "ood" (chooses the ``WorldConfig``).

        Returns:
            A shard's arrays, as ``synthetic.generate_batch`` returns them: "images" (N, H, W, 3) uint8 and
            the labels of ``synthetic.LABEL_SHAPES``.

        Raises:
            ValueError: for seeds outside the split's range or num < 1.
        """
        from hmr_core.pose_prior import sample_poses

        if num < 1:
            raise ValueError(f"num must be ≥ 1, got {num}")
        check_seed(first_seed, split)
        check_seed(first_seed + num - 1, split)
        config, size, dev = SPLIT_CONFIGS[split], constants.IMG_SIZE, self.device
        generator = batch_generator(first_seed, num)
        drawn = sample_poses(num, generator, config.pose_prior, capsules=self.capsules)
        pitch = (torch.randn(num, generator=generator, dtype=torch.float64) * config.view_pitch_std).clamp(
            -config.view_pitch_max, config.view_pitch_max).deg2rad()
        roll = (torch.randn(num, generator=generator, dtype=torch.float64) * config.view_roll_std).clamp(
            -config.view_roll_max, config.view_roll_max).deg2rad()
        pose = drawn.pose.double().clone()
        pose[:, :3] = camera_global_orient(drawn.global_orient, pitch, roll)
        pose = pose.float()
        betas = (torch.randn(num, constants.NUM_BETAS, generator=generator, dtype=torch.float64)
                 * config.betas_std).float()
        with torch.no_grad():
            out = self.model(betas=betas.to(dev), pose=pose.to(dev))
        vertices = out.vertices.double()  # (N, V, 3) camera frame
        cam, truncated, diagonal_px = frame_bodies(vertices[..., :2], generator, config, size)
        cam = cam.float()
        keypoints = camera.weak_perspective_project(out.keypoints, cam.to(dev)).cpu()  # (N, K, 2)
        normals = vertex_normals(vertices.float(), self.faces)  # (N, V, 3) float32, as the colours
        lit = self.lit_colors(self.vertex_colors(generator, num, config), normals, generator, config)
        shaded = self.shaded_colors(lit, normals)
        occluded_images = _bernoulli(generator, config.occluder_probability, num)
        num_occluders = torch.where(occluded_images, torch.randint(1, config.max_occluders + 1, (num,),
                                                                   generator=generator), 0)
        keypoints_px = camera.normalized_to_pixel(keypoints, size).numpy()
        rngs = [np.random.default_rng((first_seed + i, _IMAGE_STREAM)) for i in range(num)]
        backgrounds = np.stack([random_background(rng, size, config) for rng in rngs])  # (N, H, W, 3) uint8
        images = self.draw(vertices, cam, shaded, backgrounds)
        visibility = np.empty((num, constants.NUM_KEYPOINTS), dtype=np.float32)
        for i in range(num):
            occluded = None
            if num_occluders[i]:
                images[i], occluded = draw_occluders(images[i], keypoints_px[i], float(diagonal_px[i]), rngs[i], config,
                                                     int(num_occluders[i]))
            visibility[i] = keypoint_visibility(keypoints[i].numpy(), occluded, size)
        images = camera_effects(torch.from_numpy(images).to(dev), generator, config).cpu().numpy()
        kp = out.keypoints.double().cpu()  # (N, K, 3)
        root = kp[:, [constants.KEYPOINT_NAMES.index("left_hip"), constants.KEYPOINT_NAMES.index("right_hip")]].mean(1)
        joints = kp[:, : constants.NUM_LSP_JOINTS] - root[:, None]
        joints_3d = torch.cat((joints, torch.ones(num, constants.NUM_LSP_JOINTS, 1, dtype=joints.dtype)), dim=-1)
        arrays = {
            "images": images,
            "keypoints_2d": np.concatenate((keypoints.numpy(), visibility[..., None]), axis=-1).astype(np.float32),
            "joints_3d": joints_3d.float().numpy(),
            "pose": pose.numpy(),
            "betas": betas.numpy(),
            "cam": cam.numpy(),
            "seed": np.arange(first_seed, first_seed + num, dtype=np.int64),
            "archetype": drawn.archetype.numpy().astype(np.int64),
            "num_occluders": num_occluders.numpy().astype(np.int64),
            "truncated": truncated.numpy(),
        }
        assert set(arrays) == {"images", *LABEL_SHAPES}
        return arrays


def camera_effects(images: torch.Tensor, generator: torch.Generator, config: WorldConfig) -> torch.Tensor:
    """Batched ``synthetic_appearance.camera_effects``: exposure (gamma), white balance and sensor noise.

    Args:
        images: (N, H, W, 3) uint8 images on any device.
        generator: CPU generator (the noise itself is drawn on the images' device from a seed it gives).
        config: the world's settings.

    Returns:
        (N, H, W, 3) uint8 images.
    """
    num, dev = len(images), images.device
    gamma = _uniform(generator, *config.exposure_gamma, num).to(dev)
    gain = (1.0 + config.white_balance * _uniform(generator, -1.0, 1.0, num, 3)).to(dev)
    noisy = _bernoulli(generator, config.noise_probability, num)
    std = _uniform(generator, 0.0, config.noise_std, num) * noisy
    noise_seed = int(torch.randint(2**62, (1,), generator=generator))
    # Exposure and white balance map each of the 256 levels the same way in a whole image: a table per
    # image and channel, (N, 256, 3), looked up instead of raising every pixel to a power.
    levels = torch.arange(256, dtype=torch.float64, device=dev) / 255.0
    table = (levels[None, :, None] ** gamma[:, None, None] * gain[:, None] * 255.0).float()  # (N, 256, 3)
    rows = noisy.nonzero()[:, 0].to(dev)
    noise = None
    if len(rows):
        noise = torch.randn((len(rows), *images.shape[1:]), generator=torch.Generator(dev).manual_seed(noise_seed),
                            device=dev) * std[noisy].float().to(dev)[:, None, None, None]
    return (_camera_effects_cpu if dev.type == "cpu" else _camera_effects_gather)(images, table, rows, noise)


def _camera_effects_gather(images: torch.Tensor, table: torch.Tensor, rows: torch.Tensor,
                           noise: torch.Tensor | None) -> torch.Tensor:
    """``camera_effects``' lookup (``table``: (N, 256, 3)) and noise (for the images ``rows``), any device."""
    x = torch.gather(table, 1, images.reshape(len(images), -1, 3).long()).reshape(images.shape)
    if noise is not None:
        x[rows] = x[rows] + noise
    return (x.clamp(0.0, 255.0) + 0.5).to(torch.uint8)


def _camera_effects_cpu(images: torch.Tensor, table: torch.Tensor, rows: torch.Tensor,
                        noise: torch.Tensor | None) -> torch.Tensor:
    """``camera_effects``' lookup and noise with NumPy's ``take``, image by image and channel by channel.

    The same numbers as the gather on other devices, several times faster on a CPU. Images without noise
    are looked up in the rounded table directly: rounding each level once gives what rounding each
    pixel gives.
    """
    pixels = images.numpy()
    rounded = (table.clamp(0.0, 255.0) + 0.5).to(torch.uint8).numpy()  # (N, 256, 3)
    out = np.empty(pixels.shape, dtype=np.uint8)
    for n in range(len(pixels)):
        for c in range(3):
            np.take(rounded[n, :, c], pixels[n, ..., c], out=out[n, ..., c])
    if noise is not None:
        values, noise = table.numpy(), noise.numpy()
        for k, n in enumerate(rows.tolist()):
            x = np.empty(pixels.shape[1:], dtype=np.float32)
            for c in range(3):
                np.take(values[n, :, c], pixels[n, ..., c], out=x[..., c])
            out[n] = ((x + noise[k]).clip(0.0, 255.0) + 0.5).astype(np.uint8)
    return torch.from_numpy(out)


def rasterize_flat(vertices: np.ndarray, faces: np.ndarray, cam: np.ndarray, colors: np.ndarray,
                   size: int) -> tuple[np.ndarray, np.ndarray]:
    """``render_flat`` with ``render``'s NumPy rasteriser (no OpenGL; edges are not antialiased).

    Returns:
        ``(rgb, coverage)``: (H, W, 3) colour in [0, 1] (zero where no face is seen) and the (H, W) 0/1
        coverage.
    """
    face_id, bary = render.rasterize(render._to_pixels(vertices, cam, size), vertices[:, 2], faces, size)
    mask = face_id >= 0
    rgb = np.zeros((size, size, 3))
    rgb[mask] = np.einsum("nk,nkc->nc", bary[mask], colors[faces[face_id[mask]]])  # interpolated colours
    return rgb, mask.astype(np.float64)


def render_flat(vertices: np.ndarray, faces: np.ndarray, cam: np.ndarray, colors: np.ndarray,
                size: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw a mesh with its colours as they are (no lighting), with pyrender's orthographic camera.

    The geometry is ``render``'s pyrender backend's (the same weak-perspective camera, antialiased
    edges); its flat shader skips the per-pixel lighting, which the colours already hold.

    Args:
        vertices: (V, 3) camera-frame vertices.
        faces: (F, 3) faces.
        cam: (3,) weak-perspective camera.
        colors: (V, 3) sRGB colours in [0, 1].
        size: side of the square image.

    Returns:
        ``(rgb, coverage)``: (H, W, 3) colour in [0, 1] premultiplied by the (H, W) coverage.
    """
    pyrender = render._import_pyrender()
    renderer = render._offscreen_renderer(size)
    s, tx, ty = (float(v) for v in cam)
    gl = np.empty_like(vertices, dtype=np.float32)  # camera frame → OpenGL axes: π about x
    gl[:, 0] = vertices[:, 0] + tx
    gl[:, 1] = -(vertices[:, 1] + ty)
    gl[:, 2] = -vertices[:, 2]
    rgba = np.concatenate((colors, np.ones((len(colors), 1))), axis=1).astype(np.float32)
    material = pyrender.MetallicRoughnessMaterial(baseColorFactor=(1.0, 1.0, 1.0, 1.0), doubleSided=True)
    primitive = pyrender.Primitive(positions=gl, color_0=rgba, indices=faces.astype(np.uint32), material=material)
    scene = pyrender.Scene(bg_color=(0.0, 0.0, 0.0, 0.0))
    scene.add(pyrender.Mesh([primitive]))
    distance = 100.0
    pose = np.eye(4)
    pose[2, 3] = float(gl[:, 2].max()) + distance
    scene.add(pyrender.OrthographicCamera(xmag=1.0 / s, ymag=1.0 / s, znear=distance - 1.0,
                                          zfar=distance + float(np.ptp(gl[:, 2])) + 1.0), pose=pose)
    image, _ = renderer.render(scene, flags=pyrender.RenderFlags.RGBA | pyrender.RenderFlags.FLAT)
    image = image.astype(np.float64) / 255.0
    return image[..., :3], image[..., 3]


# --------------------------------------------------------------------------------------------------
# Training on the fly
# --------------------------------------------------------------------------------------------------
class OnTheFlySynthetic(SyntheticDataset):
    """Training images drawn from ``BatchedWorld`` as the loader asks for them: no shards on disk.

    The trainer's loader (``loaders.make_loader``) asks for a whole step's samples at once, as
    ``(index, seed)`` pairs whose seeds depend only on (run seed, step, rank, slot). The batch is drawn
    from a seed range chosen by the first of those seeds, so the images of a step are the same in a run
    resumed at that step, and every step sees new images. Augmentation is ``SyntheticDataset``'s.

    Args:
        split: the world's split, "train" for training.
        augment: the augmentation; None for none.
        length: how many indices the loader may draw from (an epoch's size for ``StepBatchSampler``; the
            images do not depend on the index).
        backend: render backend of the worker's ``BatchedWorld``.
    """

    # Loader workers are spawned, never forked: a forked worker would inherit the parent's OpenGL context
    # (with the pyrender backend) and torch's threads.
    spawn_workers = True

    def __init__(self, split: str = "train", augment: AugmentConfig | None = None, length: int = 100_000,
                 backend: str = "auto"):
        seed_range(split)  # raises for an unknown split
        if length < 1:
            raise ValueError(f"length must be ≥ 1, got {length}")
        self.split, self.backend, self.length = split, backend, int(length)
        self.augment = NO_AUGMENTATION if augment is None else augment
        self.labels: dict[str, np.ndarray] = {}
        self._images = None
        self._world: BatchedWorld | None = None

    def __len__(self) -> int:
        return self.length

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_world"], state["labels"], state["_images"] = None, {}, None  # each worker builds its own
        return state

    def image(self, index: int) -> np.ndarray:
        return self._images[index]

    def draw(self, batch_seed: int, num: int) -> dict[str, np.ndarray]:
        """The arrays of the ``num`` images whose batch is chosen by ``batch_seed`` (any integer)."""
        low, high = seed_range(self.split)
        first = low + int(batch_seed) % (high - low - num)
        # Nothing here may draw from torch's global generator, whose state a resumed run restores (dropout).
        with torch.random.fork_rng(devices=[]):
            if self._world is None:
                self._world = BatchedWorld(self.backend)
            return self._world.generate(first, num, self.split)

    def getitems_seeded(self, keys: list[tuple[int, int]]) -> list[Sample]:
        """The samples of one step: ``keys`` are the loader's (index, seed) pairs (``loaders.SeededSamples``)."""
        arrays = self.draw(keys[0][1], len(keys))
        self._images = arrays.pop("images")
        self.labels = arrays
        samples = []
        for slot, (_, seed) in enumerate(keys):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                samples.append(self.load_sample(slot))
        self._images, self.labels = None, {}
        return samples

    def __getitem__(self, index: int) -> Sample:
        raise TypeError("OnTheFlySynthetic draws whole steps; read it through loaders.make_loader")


class GeneratedSplit(SyntheticDataset):
    """A split drawn once in memory with ``BatchedWorld`` (the evaluation set of a run on the fly).

    Args:
        split: "train", "test" or "ood".
        num: images, drawn from the split's first seeds.
        batch_size: images per batch while drawing.
        backend: render backend.
    """

    def __init__(self, split: str = "test", num: int = 256, batch_size: int = 64, backend: str = "auto"):
        if num < 1 or batch_size < 1:
            raise ValueError(f"need num ≥ 1 and batch_size ≥ 1, got {num} and {batch_size}")
        low, _ = seed_range(split)
        world = BatchedWorld(backend)
        parts = [world.generate(low + first, min(batch_size, num - first), split)
                 for first in range(0, num, batch_size)]
        self.split, self.augment = split, NO_AUGMENTATION
        self.images = np.concatenate([p.pop("images") for p in parts])
        self.labels = {key: np.concatenate([p[key] for p in parts]) for key in LABEL_SHAPES}

    def __len__(self) -> int:
        return len(self.images)

    def __getstate__(self):
        return self.__dict__.copy()

    def image(self, index: int) -> np.ndarray:
        return self.images[index]
