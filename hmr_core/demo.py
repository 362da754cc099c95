"""HMR on one photograph: ``python -m hmr_core.demo photo.jpg --checkpoint runs/hmr --out-dir out``.

Crops the person, predicts Θ with a trained checkpoint, and writes two files to ``--out-dir``:
``<name>_overlay.png`` (the input crop, and next to it the predicted mesh over the crop with the
keypoints drawn) and ``<name>_mesh.obj`` (the mesh of Θ_T as a Wavefront OBJ: vertices in metres, faces
1-based).

The crop follows HMR's demo (chapter "HMR on an image"):

* ``--box x0 y0 x1 y1`` (pixels; x right, y down; continuous coordinates, so a box of the whole
  W × H image is ``0 0 W H``): a square around the box's centre, scaled so that the box's diagonal is
  150 pixels of the 224-pixel crop, as HMR's demo scales a person's OpenPose box (and as the synthetic
  world frames its bodies). A box may reach past the image edge; one entirely outside it, or of zero
  area, is rejected.
* ``--box`` with ``--framing spin``: a square of 1.2 × the box's larger side, the framing of SPIN's
  preprocessed files (``constants.SPIN_BOX_RESCALE``). A model trained on them (``data='real'``) sees
  people framed that way, about 1.3 times larger than HMR's framing makes them, so ``--framing auto``
  (the default) uses it for such a checkpoint and HMR's for the others.
* no box: the whole image, as HMR's demo does without a box: a square of side max(W, H) around the
  image centre, so the aspect ratio is kept and the short side is padded. Padding is black, as in the
  training crops (``augment.warp_image``); HMR's demo repeats the edge pixels instead.

Images: JPEG, PNG and anything else Pillow reads, 8 bits per channel, turned upright as their EXIF
orientation says (as a phone's photo is displayed; a box is given in those displayed pixels). Grayscale, palette, CMYK and
grayscale+alpha or RGBA images are converted to RGB (alpha is composited over white) with a note.
Rejected, with what to do: files that are not images, images with more than 8 bits per channel (16-bit
PNGs and TIFFs, 32-bit integer or float images: their range is not defined, e.g. 12-bit data or depth
maps), arrays with 2 channels, and images smaller than 32 pixels on a side.

``--random-init`` runs an untrained network (a smoke test of the pipeline); it says so on stderr and in
the overlay.

Letters in shapes: B batch, T IEF iterations, V vertices, F faces, K keypoints, H/W image.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from hmr_core import constants
from hmr_core.augment import crop_transform, image_to_tensor, tensor_to_image, warp_image
from hmr_core.body_model import SMPL
from hmr_core.camera import normalized_to_pixel
from hmr_core.hmr import HMR, BodyPrediction, eval_mode, predict_bodies

MIN_IMAGE_SIDE = 32  # pixels; smaller images hold too little of a person to crop
BOX_DIAGONAL_PX = 150.0  # HMR's demo scales a person box so its diagonal spans this many crop pixels
FRAMINGS = ("hmr", "spin")  # how a person box becomes the crop: HMR's demo, or SPIN's preprocessed files
ALPHA_BACKGROUND = (255, 255, 255)  # transparent pixels are composited over white
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_BIT_DEPTH_OFFSET = 24  # signature (8) + IHDR length and type (8) + width and height (8)
UNTRAINED_LABEL = "UNTRAINED NETWORK (--random-init): meaningless output"
# A real photograph to run the demo on: NASA's portrait of astronaut Eileen Collins (public domain), the
# copy scikit-image ships, waist-up; the synthetic world never uses it (its photographs are
# ``constants.SYNTHETIC_PHOTOS``). Provenance: ``hmr_core/data/README.md``.
EXAMPLE_PHOTO = Path(__file__).parent / "data" / "astronaut.jpg"
# Pillow modes converted to RGB, with the note the user sees.
CONVERTIBLE_MODES = {
    "RGB": "",
    "L": "grayscale image: converted to RGB",
    "1": "black-and-white image: converted to RGB",
    "P": "palette image: converted to RGB",
    "PA": "palette image with transparency: converted to RGB over white",
    "LA": "grayscale image with transparency: converted to RGB over white",
    "RGBA": "image with transparency: alpha composited over white",
    "RGBa": "image with transparency: alpha composited over white",
    "CMYK": "CMYK image: converted to RGB",
    "YCbCr": "YCbCr image: converted to RGB",
    "LAB": "Lab image: converted to RGB",
    "HSV": "HSV image: converted to RGB",
}
HIGH_BIT_DEPTH_HINT = ("convert it to an 8-bit RGB or grayscale image first (e.g. ImageMagick: "
                       "`magick in.png -depth 8 out.png`), choosing how its range maps to 0-255")


class ImageError(ValueError):
    """An input image or box the demo cannot use; the message says what to do."""


# --------------------------------------------------------------------------------------------------
# Reading images
# --------------------------------------------------------------------------------------------------
class RGBImage(NamedTuple):
    """An image as the demo uses it.

    Attributes:
        pixels: (H, W, 3) uint8 RGB.
        note: what conversion was made ("" for none).
    """

    pixels: np.ndarray
    note: str


def png_bit_depth(header: bytes) -> int | None:
    """Bits per channel of a PNG from its first bytes (the IHDR chunk), or None if it is not a PNG.

    Pillow opens 16-bit colour PNGs as 8-bit images, so the file's own header is the only place the
    original depth shows.
    """
    if not header.startswith(PNG_SIGNATURE) or len(header) <= PNG_BIT_DEPTH_OFFSET:
        return None
    return header[PNG_BIT_DEPTH_OFFSET]


def to_rgb(image, name: str = "image") -> RGBImage:
    """An 8-bit RGB array from a Pillow image or a NumPy array, converting what has a clear meaning.

    Args:
        image: a ``PIL.Image.Image``, or an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 array.
        name: how to call the image in messages (its file name).

    Returns:
        ``RGBImage``.

    Raises:
        ImageError: for more than 8 bits per channel, 2-channel arrays, unknown modes, or images smaller
            than ``MIN_IMAGE_SIDE``.
    """
    from PIL import Image

    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ImageError(f"{name} has dtype {image.dtype}; the demo takes 8-bit (uint8, 0-255) pixels: "
                             f"{HIGH_BIT_DEPTH_HINT}")
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[..., 0]
        channels = 1 if image.ndim == 2 else (image.shape[2] if image.ndim == 3 else 0)
        if channels not in (1, 3, 4):
            raise ImageError(f"{name} has shape {image.shape}; the demo takes (H, W) grayscale, (H, W, 3) RGB or "
                             "(H, W, 4) RGBA arrays. A 2-channel array has no standard meaning: if it is "
                             "grayscale + alpha, pass PIL's Image.fromarray(array, 'LA') instead")
        image = Image.fromarray(np.ascontiguousarray(image))  # uint8: mode L, RGB or RGBA from the shape
    if not isinstance(image, Image.Image):
        raise ImageError(f"{name} must be a PIL image or a NumPy array, got {type(image).__name__}")
    width, height = image.size
    if min(width, height) < MIN_IMAGE_SIDE:
        raise ImageError(f"{name} is {width}×{height} pixels; the demo needs at least {MIN_IMAGE_SIDE} on each side "
                         "(use a larger photo of the person)")
    if image.mode not in CONVERTIBLE_MODES:
        if image.mode.startswith("I") or image.mode == "F":
            raise ImageError(f"{name} has more than 8 bits per channel (Pillow mode {image.mode!r}); "
                             f"{HIGH_BIT_DEPTH_HINT}")
        raise ImageError(f"{name} has Pillow mode {image.mode!r}, which the demo does not convert; save it as an "
                         "8-bit RGB JPEG or PNG")
    note = CONVERTIBLE_MODES[image.mode]
    if image.mode in ("RGBA", "RGBa", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, ALPHA_BACKGROUND + (255,))
        image = Image.alpha_composite(background, rgba)
        note = note or "palette image with transparency: converted to RGB over white"
    return RGBImage(np.asarray(image.convert("RGB")), note)


def read_image(path: str | Path) -> RGBImage:
    """Read an image file as 8-bit RGB (see ``to_rgb`` for what is converted and what is rejected), turned
    as its EXIF orientation says, so that pixels (and a ``--box``) are those of the image as displayed.

    Args:
        path: the file.

    Returns:
        ``RGBImage``.

    Raises:
        FileNotFoundError: if the file does not exist.
        ImageError: naming the file, if it is not a readable image or cannot be converted sensibly.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no image file at {path}")
    with path.open("rb") as f:
        depth = png_bit_depth(f.read(PNG_BIT_DEPTH_OFFSET + 1))
    if depth is not None and depth > 8:
        raise ImageError(f"{path} is a {depth}-bit PNG; {HIGH_BIT_DEPTH_HINT}")
    try:
        with Image.open(path) as image:
            image.load()  # decode now: a truncated file fails here, not later
            # As displayed: a phone's JPEG stores the sensor's pixels and the turn in its EXIF orientation.
            return to_rgb(ImageOps.exif_transpose(image), str(path))
    except UnidentifiedImageError as err:
        raise ImageError(f"{path} is not an image Pillow can read (is it really a {path.suffix or 'image'} "
                         "file?); give a JPEG or PNG photograph") from err
    except Image.DecompressionBombError as err:
        raise ImageError(f"{path} is too large to decode safely ({err}); downscale it first") from err
    except OSError as err:  # truncated or corrupt data
        raise ImageError(f"{path} cannot be decoded ({err}); re-save it as a JPEG or PNG") from err


# --------------------------------------------------------------------------------------------------
# The crop
# --------------------------------------------------------------------------------------------------
class CropInfo(NamedTuple):
    """Where the crop came from.

    Attributes:
        center: (2,) crop centre in image pixels (x, y).
        box_size: side of the square cropped from the image, image pixels.
        matrix: (2, 3) affine map from image to crop pixels (``augment.crop_transform``).
        image_size: (H, W) of the input image.
        box: the person box (x0, y0, x1, y1) given, or None for the whole image.
    """

    center: np.ndarray
    box_size: float
    matrix: np.ndarray
    image_size: tuple[int, int]
    box: tuple[float, float, float, float] | None


class Preprocessed(NamedTuple):
    """``preprocess_image``'s output; unpacks as ``crop, crop_info``.

    Attributes:
        crop: (3, IMG_SIZE, IMG_SIZE) float32 in [0, 1].
        crop_info: ``CropInfo``.
    """

    crop: torch.Tensor
    crop_info: CropInfo


def crop_square(
    image_size: tuple[int, int], box=None, framing: str = "hmr"
) -> tuple[np.ndarray, float]:
    """The square to crop: HMR demo's rule, or SPIN's (see the module
    docstring).

    Args:
        image_size: (H, W) pixels.
        box: (x0, y0, x1, y1) person box in pixels, or None for the whole image.
        framing: "hmr" (the box's diagonal to 150 crop pixels) or "spin"
            (1.2 × its larger side).

    Returns:
        ``(center, side)``: (2,) centre (x, y) and side of the square, image
        pixels.

    Raises:
        ImageError: for a box with non-finite numbers, zero or negative area,
            or entirely outside the image.
    """
    if framing not in FRAMINGS:
        raise ValueError(f"framing must be one of {FRAMINGS}, got {framing!r}")
    height, width = image_size
    if box is None:
        return np.array([width / 2.0, height / 2.0]), float(max(width, height))
    box = np.asarray(box, dtype=np.float64).reshape(-1)
    if box.shape != (4,) or not np.isfinite(box).all():
        raise ImageError(
            "the box must be 4 finite numbers x0 y0 x1 y1, "
            f"got {box.tolist()}"
        )
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        raise ImageError(
            f"the box {box.tolist()} has zero or negative area; give "
            "x0 y0 x1 y1 with x1 > x0 and y1 > y0 (left, top, right, bottom "
            "in pixels)"
        )
    if min(x1, width) <= max(x0, 0.0) or min(y1, height) <= max(y0, 0.0):
        raise ImageError(
            f"the box {box.tolist()} lies outside the {width}×{height} image "
            f"(x in [0, {width}], y in [0, {height}]); is it in this "
            "image's pixels, in the order x0 y0 x1 y1?"
        )
    center = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0])
    if framing == "spin":
        return center, constants.SPIN_BOX_RESCALE * float(max(x1 - x0, y1 - y0))
    diagonal = float(np.hypot(x1 - x0, y1 - y0))
    return center, diagonal * constants.IMG_SIZE / BOX_DIAGONAL_PX


def training_framing(config) -> str:
    """The framing a run's training crops had: SPIN's for the real datasets, HMR's for the synthetic world.

    Args:
        config: the run's ``config.TrainConfig``.
    """
    return "spin" if config.data == "real" else "hmr"


def preprocess_image(image, box=None, framing: str = "hmr") -> Preprocessed:
    """Crop a person for HMR: a square of ``constants.IMG_SIZE`` pixels.

    Args:
        image: an image file path, a ``PIL.Image.Image`` or an (H, W[, C])
            uint8 array (see ``to_rgb``).
        box: (x0, y0, x1, y1) person box in pixels, or None for the whole image.
        framing: how the box becomes the crop (``crop_square``).

    Returns:
        ``Preprocessed(crop, crop_info)``: the (3, 224, 224) crop in [0, 1]
        and where it came from.

    Raises:
        FileNotFoundError, ImageError: for an unusable image or box (see
            ``read_image``, ``crop_square``).
    """
    from PIL import Image

    if isinstance(image, (str, Path)):
        rgb = read_image(image)
    else:
        rgb = to_rgb(image)
    height, width = rgb.pixels.shape[:2]
    center, side = crop_square((height, width), box, framing)
    matrix = crop_transform(center, side, out_size=constants.IMG_SIZE)
    crop = warp_image(Image.fromarray(rgb.pixels), matrix, constants.IMG_SIZE)
    box_px = None if box is None else tuple(float(b) for b in box)
    info = CropInfo(center, side, matrix, (height, width), box_px)
    return Preprocessed(image_to_tensor(crop), info)


# --------------------------------------------------------------------------------------------------
# Prediction and outputs
# --------------------------------------------------------------------------------------------------
@torch.no_grad()
def predict(model: HMR, smpl: SMPL, crop: torch.Tensor) -> BodyPrediction:
    """HMR on crops: Θ of every IEF iteration and its bodies.

    Args:
        model: HMR (run in eval mode, and given back in the mode it came in).
        smpl: its body model, on the same device.
        crop: (3, H, W) or (B, 3, H, W) crops in [0, 1],
            H = W = ``constants.IMG_SIZE``.

    Returns:
        ``BodyPrediction`` with (B, T) leading axes (B = 1 for a single
        crop), on the model's device.

    Raises:
        ValueError: for a crop of another shape.
    """
    size = constants.IMG_SIZE
    images = crop[None] if crop.dim() == 3 else crop
    if images.dim() != 4 or tuple(images.shape[1:]) != (3, size, size):
        raise ValueError(
            f"crop must have shape (3, {size}, {size}) or "
            f"(B, 3, {size}, {size}), got {tuple(crop.shape)}"
        )
    device = next(model.parameters()).device
    with eval_mode(model):
        thetas = model(images.to(device, torch.float32))
    return predict_bodies(thetas.float(), smpl)


def camera_to_upright(vertices: np.ndarray) -> np.ndarray:
    """Camera-frame points (x right, y down, z away) to a y-up frame (π about x), for 3D viewers.

    Args:
        vertices: (..., 3) points.

    Returns:
        (..., 3) points with y up and z towards the camera.
    """
    return np.asarray(vertices) * np.array([1.0, -1.0, -1.0])


def write_obj(path: str | Path, vertices, faces) -> Path:
    """Write a triangle mesh as a Wavefront OBJ: ``v x y z`` lines, then ``f i j k`` lines, 1-based.

    Args:
        path: the ``.obj`` file to write (its folder is created).
        vertices: (V, 3) vertices (the demo writes metres).
        faces: (F, 3) 0-based vertex indices.

    Returns:
        The path written.

    Raises:
        ValueError: for wrong shapes, non-finite vertices, or face indices outside [0, V).
    """
    vertices = vertices.detach().cpu().numpy() if torch.is_tensor(vertices) else np.asarray(vertices)
    faces = faces.detach().cpu().numpy() if torch.is_tensor(faces) else np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or not np.isfinite(vertices).all():
        raise ValueError(f"vertices must be a finite (V, 3) array, got shape {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer):
        raise ValueError(f"faces must be an integer (F, 3) array, got shape {faces.shape} dtype {faces.dtype}")
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError(f"faces index vertices {faces.min()}…{faces.max()}, outside [0, {len(vertices)})")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# {len(vertices)} vertices, {len(faces)} faces; written by hmr_core.demo"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices.tolist()]
    lines += [f"f {a} {b} {c}" for a, b, c in (faces + 1).tolist()]  # OBJ counts vertices from 1
    path.write_text("\n".join(lines) + "\n")
    return path


def overlay_image(crop: torch.Tensor, prediction: BodyPrediction, faces, backend: str | None = None,
                  label: str = "") -> np.ndarray:
    """The input crop, and beside it Θ_T's mesh rendered over the crop with its keypoints drawn.

    Args:
        crop: (3, H, W) crop in [0, 1].
        prediction: ``BodyPrediction`` of this crop, (1, T) leading axes.
        faces: (F, 3) mesh faces.
        backend: render backend (``render.render_mesh``); None: ``$HMR_RENDER_BACKEND`` or automatic.
        label: text written at the top (e.g. that the network is untrained).

    Returns:
        (H, 2 W, 3) uint8 image.
    """
    from PIL import Image, ImageDraw

    from hmr_core.render import draw_keypoints, render_mesh

    image = tensor_to_image(crop)
    size = image.shape[0]
    mesh = render_mesh(prediction.vertices[0, -1].cpu(), faces, prediction.cam[0, -1].cpu(), image=image,
                       alpha=0.8, backend=backend)
    keypoints = normalized_to_pixel(prediction.keypoints_2d[0, -1].float().cpu(), size)  # (K, 2) pixels
    panel = np.concatenate((image, draw_keypoints(mesh, keypoints)), axis=1)
    if label:
        pil = Image.fromarray(panel)
        pen = ImageDraw.Draw(pil)
        pen.rectangle([0, 0, panel.shape[1], 14], fill=(200, 0, 0))
        pen.text((4, 1), label, fill=(255, 255, 255))
        panel = np.asarray(pil)
    return panel


class DemoOutputs(NamedTuple):
    """What ``run_demo`` wrote and computed."""

    overlay_path: Path
    obj_path: Path
    prediction: BodyPrediction
    crop_info: CropInfo
    note: str


def run_demo(
    image_path: str | Path,
    out_dir: str | Path,
    model: HMR,
    smpl: SMPL,
    box=None,
    backend: str | None = None,
    untrained: bool = False,
    framing: str = "hmr",
) -> DemoOutputs:
    """Crop, predict, and write the overlay and the mesh to ``out_dir``.

    The files are ``<name>_overlay.png`` and ``<name>_mesh.obj``.

    Args:
        image_path: the photograph.
        out_dir: the output folder (created).
        model: HMR.
        smpl: its body model.
        box: (x0, y0, x1, y1) person box in pixels, or None for the whole
            image.
        backend: render backend.
        untrained: label the overlay as coming from an untrained network.
        framing: how the box becomes the crop (``crop_square``); use the
            model's training framing.

    Returns:
        ``DemoOutputs``.

    Raises:
        FileNotFoundError, ImageError: for an unusable image or box.
        ValueError: if ``out_dir`` is a file.
    """
    from PIL import Image

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(
            f"the output folder {out_dir} is a file; give a folder for the "
            "PNG and the OBJ"
        )
    rgb = read_image(image_path)
    crop, info = preprocess_image(rgb.pixels, box, framing)
    prediction = predict(model, smpl, crop)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(image_path).stem
    faces = smpl.faces.cpu().numpy()
    label = UNTRAINED_LABEL if untrained else ""
    panel = overlay_image(crop, prediction, faces, backend, label)
    overlay_path = out_dir / f"{stem}_overlay.png"
    Image.fromarray(panel).save(overlay_path)
    # (V, 3) metres, y up
    vertices = prediction.vertices[0, -1].double().cpu().numpy()
    vertices = camera_to_upright(vertices)
    obj_path = write_obj(out_dir / f"{stem}_mesh.obj", vertices, faces)
    return DemoOutputs(overlay_path, obj_path, prediction, info, rgb.note)


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    from hmr_core.checkpoints import BOOK_MODEL, CheckpointError, load_model
    from hmr_core.evaluate import choose_device
    from hmr_core.model_files import ModelFileError

    parser = argparse.ArgumentParser(prog="python -m hmr_core.demo", description=__doc__.split("\n")[0])
    parser.add_argument("image", help="a photograph (JPEG, PNG, ...)")
    parser.add_argument("--box", nargs=4, type=float, metavar=("X0", "Y0", "X1", "Y1"),
                        help="person box in pixels (default: the whole image)")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--checkpoint", help="a run directory or its checkpoint.pt (default: the book's small "
                         "model, trained on a CPU in the synthetic world)")
    weights.add_argument("--random-init", action="store_true", help="an UNTRAINED network: a smoke test only")
    parser.add_argument("--out-dir", default="demo_out", help="where the PNG and OBJ go")
    parser.add_argument("--model-path", help="body-model file (default: the one the run used)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--render-backend", choices=("auto", "pyrender", "numpy"), help="mesh renderer")
    parser.add_argument("--framing", choices=("auto",) + FRAMINGS, default="auto",
                        help="how --box becomes the crop: HMR's demo, or SPIN's files (auto: as the model was trained)")
    args = parser.parse_args(argv)
    try:
        # Arguments first, before a model is loaded.
        if not Path(args.image).is_file():
            raise FileNotFoundError(f"no image file at {args.image}")
        if Path(args.out_dir).exists() and not Path(args.out_dir).is_dir():
            raise ValueError(f"--out-dir {args.out_dir} is a file; give a folder for the PNG and the OBJ")
        device = choose_device(args.device)
        if args.random_init:
            print("WARNING: --random-init: the network is UNTRAINED; the mesh and keypoints are meaningless "
                  "(a smoke test of the pipeline only)", file=sys.stderr)
            model, smpl = HMR().to(device).eval(), SMPL(args.model_path).to(device)
            framing = "hmr" if args.framing == "auto" else args.framing
        else:
            if args.checkpoint is None:
                print(f"note: no --checkpoint: using the book's small model ({BOOK_MODEL.name}, trained on a CPU in "
                      "the synthetic world only); expect rough results on real photographs", file=sys.stderr)
            loaded = load_model(args.checkpoint or BOOK_MODEL, device, args.model_path)
            model, smpl = loaded.hmr, loaded.smpl
            framing = training_framing(loaded.config) if args.framing == "auto" else args.framing
        out = run_demo(args.image, args.out_dir, model, smpl, args.box, args.render_backend, args.random_init, framing)
    except (FileNotFoundError, ImageError, CheckpointError, ModelFileError, ValueError) as err:
        sys.exit(f"error: {err}")
    if out.note:
        print(f"note: {args.image}: {out.note}")
    print(f"wrote {out.overlay_path} and {out.obj_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
