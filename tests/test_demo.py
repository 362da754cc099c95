import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from hmr_core import constants, demo
from hmr_core.body_model import SMPL
from hmr_core.hmr import HMR

SIZE = constants.IMG_SIZE


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return HMR().eval(), SMPL()


def photo(path, width=300, height=200, seed=0):
    """A random-noise JPEG standing in for a photograph."""
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path, quality=90)
    return path


def write_png(path, array, color_type, bit_depth):
    """A PNG written byte by byte (Pillow cannot write 16-bit gray+alpha): spec sections 5 and 11.2.2."""
    height, width = array.shape[:2]
    dtype = ">u2" if bit_depth == 16 else "u1"
    raw = b"".join(b"\x00" + array[y].astype(dtype).tobytes() for y in range(height))  # filter type 0 per row

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    path.write_bytes(demo.PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))
    return path


def read_obj(path):
    """An independent OBJ reader: (V, 3) vertices and (F, 3) faces as written (1-based)."""
    vertices, faces = [], []
    for line in path.read_text().splitlines():
        if line.startswith("v "):
            vertices.append([float(x) for x in line.split()[1:]])
        elif line.startswith("f "):
            faces.append([int(x) for x in line.split()[1:]])
    return np.array(vertices), np.array(faces)


def test_demo_writes_an_overlay_and_an_obj_that_round_trips(tmp_path, model):
    hmr, smpl = model
    out = demo.run_demo(photo(tmp_path / "person.jpg"), tmp_path / "out", hmr, smpl, backend="numpy")
    overlay = np.asarray(Image.open(out.overlay_path))
    assert out.overlay_path.name == "person_overlay.png" and overlay.shape == (SIZE, 2 * SIZE, 3)
    vertices, faces = read_obj(out.obj_path)
    assert vertices.shape == (smpl.num_vertices, 3) and faces.shape == tuple(smpl.faces.shape)
    assert faces.min() == 1 and faces.max() == smpl.num_vertices  # 1-based
    np.testing.assert_array_equal(faces - 1, smpl.faces.numpy())
    expected = demo.camera_to_upright(out.prediction.vertices[0, -1].double().numpy())
    np.testing.assert_allclose(vertices, expected, atol=1e-6, rtol=0)  # metres, 6 decimals
    assert out.prediction.vertices.shape[:2] == (1, 3)


def test_whole_image_crop_is_a_padded_square_around_the_centre():
    image = np.full((100, 200, 3), 255, np.uint8)  # wide and white: the padding shows as black bands
    crop, info = demo.preprocess_image(image)
    assert crop.shape == (3, SIZE, SIZE) and crop.dtype == torch.float32
    assert info.box_size == 200 and info.center.tolist() == [100.0, 50.0] and info.box is None
    assert crop[:, SIZE // 2].min() == 1.0  # the image fills the middle rows
    assert crop[:, :SIZE // 5].max() == 0.0 and crop[:, -SIZE // 5:].max() == 0.0  # top and bottom padded


def test_box_crop_scales_the_box_diagonal_to_150_pixels():
    image = np.zeros((200, 300, 3), np.uint8)
    _, info = demo.preprocess_image(image, box=(100, 40, 130, 80))
    assert info.center.tolist() == [115.0, 60.0]
    assert info.box_size == pytest.approx(50.0 * SIZE / demo.BOX_DIAGONAL_PX)  # diagonal of 30 × 40 is 50
    corners = np.array([[100.0, 40.0], [130.0, 80.0]]) @ info.matrix[:, :2].T + info.matrix[:, 2]
    assert np.linalg.norm(corners[1] - corners[0]) == pytest.approx(demo.BOX_DIAGONAL_PX)


def test_spin_framing_matches_spins_preprocessed_boxes_and_follows_the_training_data():
    """SPIN's files frame a person as 1.2 × the larger side of the keypoints' box; a model trained on
    them is shown people framed that way (--framing auto), the synthetic world's models HMR's way."""
    from hmr_core.config import make_config

    image = np.zeros((200, 300, 3), np.uint8)
    _, info = demo.preprocess_image(image, box=(100, 40, 130, 80), framing="spin")
    assert info.center.tolist() == [115.0, 60.0] and info.box_size == pytest.approx(1.2 * 40)
    # SPIN's lsp_dataset_original.py: scale = 1.2 · max(box side) / 200; the dataset crops 200 · scale.
    assert info.box_size == pytest.approx(constants.BOX_SCALE_UNIT * (1.2 * 40 / 200))
    # For a standing person's box (here 30 × 80), HMR's framing shows the person smaller by about 1.3.
    hmr = demo.crop_square((200, 300), (100, 0, 130, 80))[1]
    spin = demo.crop_square((200, 300), (100, 0, 130, 80), "spin")[1]
    assert 1.3 < hmr / spin < 1.5
    assert demo.training_framing(make_config("real")) == "spin"
    assert demo.training_framing(make_config("book_cpu")) == "hmr"
    with pytest.raises(ValueError, match="framing must be one of"):
        demo.crop_square((200, 300), (100, 0, 130, 80), "tight")


def test_grayscale_and_transparent_images_are_converted_with_a_note(tmp_path):
    Image.fromarray(np.full((40, 50), 90, np.uint8)).save(tmp_path / "gray.png")
    gray = demo.read_image(tmp_path / "gray.png")
    assert gray.pixels.shape == (40, 50, 3) and (gray.pixels == 90).all() and "grayscale" in gray.note
    rgba = np.zeros((40, 50, 4), np.uint8)  # fully transparent black: becomes white
    Image.fromarray(rgba).save(tmp_path / "clear.png")
    clear = demo.read_image(tmp_path / "clear.png")
    assert (clear.pixels == 255).all() and "transparency" in clear.note


def test_the_example_photo_ships_and_is_outside_the_synthetic_world():
    image = demo.read_image(demo.EXAMPLE_PHOTO)  # package data: found wherever hmr_core is installed
    assert image.pixels.shape == (512, 512, 3) and image.pixels.dtype == np.uint8 and image.note == ""
    assert demo.EXAMPLE_PHOTO.name not in constants.SYNTHETIC_PHOTOS
    assert demo.EXAMPLE_PHOTO.stem not in {name.rsplit(".", 1)[0] for name in constants.SYNTHETIC_PHOTOS}


@pytest.mark.parametrize("case, error, message", [
    ("text.jpg", demo.ImageError, r"text\.jpg is not an image Pillow can read"),
    ("tiny.png", demo.ImageError, r"tiny\.png is 10×10 pixels; the demo needs at least 32"),
    ("la16.png", demo.ImageError, r"la16\.png is a 16-bit PNG; convert it to an 8-bit"),
    ("gray16.png", demo.ImageError, r"gray16\.png is a 16-bit PNG"),
    ("missing.jpg", FileNotFoundError, r"no image file at .*missing\.jpg"),
])
def test_bad_image_files_get_a_clear_error(tmp_path, case, error, message):
    path = tmp_path / case
    if case == "text.jpg":
        path.write_text("this is not a JPEG\n")
    elif case == "tiny.png":
        Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(path)
    elif case == "la16.png":
        write_png(path, np.random.default_rng(0).integers(0, 65535, (40, 50, 2)), color_type=4, bit_depth=16)
    elif case == "gray16.png":
        Image.fromarray(np.zeros((40, 50), np.uint16)).save(path)
    with pytest.raises(error, match=message):
        demo.preprocess_image(path)


@pytest.mark.parametrize("array, message", [
    (np.zeros((40, 50, 2), np.uint8), r"shape \(40, 50, 2\).*2-channel"),
    (np.zeros((40, 50, 3), np.uint16), "dtype uint16; the demo takes 8-bit"),
    (np.zeros((40, 50, 3), np.float32), "dtype float32"),
])
def test_arrays_that_cannot_be_converted_sensibly_are_rejected(array, message):
    with pytest.raises(demo.ImageError, match=message):
        demo.preprocess_image(array)


@pytest.mark.parametrize("box, message", [
    ((500, 500, 600, 600), r"lies outside the 300×200 image"),
    ((-80, 10, -10, 50), r"lies outside"),
    ((50, 50, 50, 120), "zero or negative area"),
    ((120, 50, 60, 100), "zero or negative area"),
    ((0, 0, float("nan"), 10), "4 finite numbers"),
])
def test_bad_boxes_are_rejected(box, message):
    with pytest.raises(demo.ImageError, match=message):
        demo.preprocess_image(np.zeros((200, 300, 3), np.uint8), box=box)


def test_a_box_reaching_past_the_edge_is_padded():
    crop, info = demo.preprocess_image(np.full((200, 300, 3), 255, np.uint8), box=(250, 20, 350, 180))
    assert crop[:, :, -10:].max() == 0.0  # right of the image: black padding
    assert info.box == (250.0, 20.0, 350.0, 180.0)


def test_write_obj_checks_its_input(tmp_path):
    vertices = np.zeros((3, 3))
    with pytest.raises(ValueError, match=r"outside \[0, 3\)"):
        demo.write_obj(tmp_path / "m.obj", vertices, np.array([[0, 1, 3]]))
    with pytest.raises(ValueError, match=r"\(V, 3\)"):
        demo.write_obj(tmp_path / "m.obj", np.zeros((3, 2)), np.array([[0, 1, 2]]))
    demo.write_obj(tmp_path / "m.obj", vertices, np.array([[0, 1, 2]]))
    assert read_obj(tmp_path / "m.obj")[1].tolist() == [[1, 2, 3]]


def test_predict_checks_the_crop_shape(model):
    with pytest.raises(ValueError, match=r"crop must have shape \(3, 224, 224\)"):
        demo.predict(*model, torch.zeros(3, 64, 64))


def test_command_line_random_init_warns_loudly(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HMR_RENDER_BACKEND", "numpy")
    image = photo(tmp_path / "p.jpg", 64, 96)
    demo.main([str(image), "--random-init", "--device", "cpu", "--out-dir", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert "UNTRAINED" in captured.err and "p_overlay.png" in captured.out
    assert (tmp_path / "out" / "p_mesh.obj").is_file()
    with pytest.raises(SystemExit, match="error: .*outside"):
        demo.main([str(image), "--random-init", "--box", "500", "500", "600", "600"])
    with pytest.raises(SystemExit):  # --checkpoint and --random-init exclude each other
        demo.main([str(image), "--random-init", "--checkpoint", str(tmp_path)])


def test_command_line_defaults_to_the_books_model(tmp_path, capsys, monkeypatch):
    from hmr_core.checkpoints import BOOK_MODEL

    monkeypatch.setenv("HMR_RENDER_BACKEND", "numpy")
    image = photo(tmp_path / "p.png", 120, 80)
    demo.main([str(image), "--device", "cpu", "--out-dir", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert f"using the book's small model ({BOOK_MODEL.name}" in captured.err and "UNTRAINED" not in captured.err
    vertices, faces = read_obj(tmp_path / "out" / "p_mesh.obj")
    assert len(vertices) == SMPL().num_vertices and np.isfinite(vertices).all()


def test_a_phone_photo_is_read_upright_and_a_box_in_displayed_pixels_is_accepted(tmp_path):
    stored = np.zeros((200, 300, 3), np.uint8)  # stored 300 wide, 200 tall; displayed turned: 200 × 300
    stored[:50, :50] = 255  # the stored top left is the displayed top right
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    Image.fromarray(stored).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    pixels = demo.read_image(tmp_path / "phone.jpg").pixels
    assert pixels.shape == (300, 200, 3)
    assert pixels[:45, -45:].mean() > 240 and pixels[60:, :].mean() < 15
    crop, info = demo.preprocess_image(pixels, box=(20, 210, 180, 290))  # y > 200: only in the displayed image
    assert crop.shape == (3, 224, 224) and info.image_size == (300, 200)


def test_command_line_checks_its_arguments_before_loading_a_model(tmp_path, monkeypatch):
    from hmr_core import checkpoints

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(checkpoints, "load_model", never)
    image = photo(tmp_path / "p.jpg", 64, 64)
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit, match=r"error: --out-dir .*file is a file; give a folder"):
        demo.main([str(image), "--out-dir", str(tmp_path / "file")])
    with pytest.raises(SystemExit, match=r"error: no image file at .*missing\.jpg"):
        demo.main([str(tmp_path / "missing.jpg"), "--out-dir", str(tmp_path / "out")])
