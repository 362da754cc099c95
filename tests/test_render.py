"""Tests for hmr_core.render: the NumPy rasteriser on known shapes, both backends on one mesh, the fallback."""

import warnings

import numpy as np
import pytest
import torch

from hmr_core import camera, render


def uv_sphere(radius=1.0, rings=24, segments=48):
    """A closed, outward-wound sphere mesh ((V, 3), (F, 3)) made with NumPy alone."""
    theta = np.linspace(0, np.pi, rings + 1)[1:-1]
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    ring = np.stack((np.sin(t) * np.cos(p), np.cos(t), np.sin(t) * np.sin(p)), -1).reshape(-1, 3)
    vertices = radius * np.concatenate(([[0, 1, 0]], ring, [[0, -1, 0]]))
    faces = []
    for j in range(segments):
        k = (j + 1) % segments
        faces.append((0, 1 + k, 1 + j))
        bottom = len(vertices) - 1
        faces.append((bottom, 1 + (rings - 2) * segments + j, 1 + (rings - 2) * segments + k))
        for i in range(rings - 2):
            a, b = 1 + i * segments + j, 1 + i * segments + k
            c, d = a + segments, b + segments
            faces += [(a, b, d), (a, d, c)]
    return vertices, np.array(faces)


@pytest.fixture(autouse=True)
def fresh_backend_state(monkeypatch):
    """Each test starts with no remembered pyrender failure and no warning given."""
    monkeypatch.setattr(render, "_pyrender_failure", None)
    monkeypatch.setattr(render, "_warned", False)
    monkeypatch.delenv(render.RENDER_BACKEND_ENV_VAR, raising=False)


def pyrender_or_skip():
    try:
        render.available_backend("pyrender")
    except RuntimeError as err:
        pytest.skip(f"pyrender cannot render offscreen here: {err}")


def test_rasterize_square_covers_exactly_its_pixels():
    # A square from pixel 2 to pixel 6 (corners on pixel edges) covers the 4 × 4 pixel centres inside.
    pixels = np.array([[2.0, 2.0], [6.0, 2.0], [6.0, 6.0], [2.0, 6.0]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    face_id, bary = render.rasterize(pixels, np.zeros(4), faces, 8)
    expected = np.zeros((8, 8), bool)
    expected[2:6, 2:6] = True
    np.testing.assert_array_equal(face_id >= 0, expected)
    np.testing.assert_allclose(bary[expected].sum(-1), 1.0)
    assert (bary[expected] >= -1e-9).all()


def test_rasterize_keeps_the_nearest_face_and_both_windings():
    pixels = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]] * 2)
    depth = np.array([2.0, 2.0, 2.0, 1.0, 1.0, 1.0])  # the second copy is nearer
    faces = np.array([[0, 1, 2], [3, 5, 4]])  # opposite windings
    face_id, _ = render.rasterize(pixels, depth, faces, 8)
    assert set(np.unique(face_id)) == {-1, 1}


def test_fit_cam_frames_points():
    points = np.array([[-1.0, -2.0, 0.0], [3.0, 2.0, 5.0]])
    cam = render.fit_cam(points, margin=0.0)
    projected = camera.weak_perspective_project(torch.tensor(points)[None], torch.tensor(cam)[None])[0].numpy()
    np.testing.assert_allclose(projected[:, 1], [-1.0, 1.0])  # the larger extent fills [-1, 1]
    np.testing.assert_allclose(projected.mean(0), [0.0, 0.0], atol=1e-12)


def test_body_to_camera_turns_y_up_into_y_down():
    head_front = np.array([[0.0, 1.0, 0.5]])  # up and in front (SMPL's axes)
    np.testing.assert_allclose(render.body_to_camera(head_front), [[0.0, -1.0, -0.5]])  # up in the image, nearer
    np.testing.assert_allclose(render.body_to_camera([[1.0, 0.0, 0.0]], yaw=np.pi / 2), [[0.0, 0.0, 1.0]], atol=1e-12)


def test_numpy_render_places_the_mesh_where_the_camera_projects_it():
    vertices, faces = uv_sphere(0.3)
    cam = np.array([1.5, 0.2, -0.1])
    image = render.render_mesh(vertices, faces, cam=cam, size=64, backend="numpy")
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    covered = (image != 255).any(-1)
    centre = camera.normalized_to_pixel(torch.tensor(cam[0] * cam[1:]), 64).numpy()  # the sphere's centre
    rows, cols = np.nonzero(covered)
    np.testing.assert_allclose([cols.mean() + 0.5, rows.mean() + 0.5], centre, atol=0.5)
    # radius 0.3 m · s = 0.45 normalised = 14.4 px: the disc's area
    assert covered.sum() == pytest.approx(np.pi * (0.45 * 32) ** 2, rel=0.05)


def test_overlay_keeps_the_background_outside_the_mesh():
    vertices, faces = uv_sphere(0.2)
    background = np.random.default_rng(0).integers(0, 256, size=(48, 48, 3), dtype=np.uint8)
    out = render.render_mesh(vertices, faces, cam=[1.0, 0.0, 0.0], image=background, backend="numpy")
    assert out.shape == background.shape
    np.testing.assert_array_equal(out[:4], background[:4])  # far from the sphere
    assert not np.array_equal(out[24], background[24])


@pytest.mark.parametrize(
    "kwargs, message",
    [({"vertices": np.zeros((4, 2))}, r"vertices must have shape \(V, 3\), got \(4, 2\)"),
     ({"faces": np.array([[0, 1, 9]])}, r"faces index vertices outside \[0, 4\)"),
     ({"cam": [1.0, 0.0]}, r"cam must have shape \(3,\), got \(2,\)"),
     ({"image": np.zeros((4, 6, 3), np.uint8)}, r"image must be a square .* got shape \(4, 6, 3\)"),
     ({"backend": "opengl"}, r"render backend must be one of .* got 'opengl'")],
)
def test_render_rejects_bad_input(kwargs, message):
    args = {"vertices": np.eye(4, 3), "faces": np.array([[0, 1, 2]])} | kwargs
    with pytest.raises(ValueError, match=message):
        render.render_mesh(**args)


def test_environment_variable_forces_the_fallback(monkeypatch):
    monkeypatch.setenv(render.RENDER_BACKEND_ENV_VAR, "numpy")
    monkeypatch.setattr(render, "_offscreen_renderer", lambda size: pytest.fail("pyrender must not be started"))
    assert render.available_backend() == "numpy"
    vertices, faces = uv_sphere(0.3, 8, 12)
    render.render_mesh(vertices, faces, size=32)


def test_auto_falls_back_with_one_warning(monkeypatch):
    def broken(size):
        raise ImportError("Unable to load EGL library\nsecond line")

    monkeypatch.setattr(render, "_offscreen_renderer", broken)
    vertices, faces = uv_sphere(0.3, 8, 12)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        render.render_mesh(vertices, faces, size=32)
        render.render_mesh(vertices, faces, size=32)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert messages == ["hmr_core.render: OpenGL is unavailable (ImportError: Unable to load EGL library); "
                        "using the NumPy rasteriser"]
    with pytest.raises(RuntimeError, match="pyrender cannot render offscreen here"):
        render.available_backend("pyrender")


def test_pyrender_and_numpy_agree():
    pyrender_or_skip()
    vertices, faces = uv_sphere(0.3)
    vertices = vertices * np.array([1.0, 2.0, 0.5])  # an ellipsoid, so a mirrored axis would show
    cam = np.array([1.2, 0.1, 0.05])
    images = {b: render.render_mesh(vertices, faces, cam=cam, size=96, backend=b) for b in render.BACKENDS}
    masks = {b: (img.astype(int).sum(-1) < 3 * 250) for b, img in images.items()}
    iou = (masks["pyrender"] & masks["numpy"]).sum() / (masks["pyrender"] | masks["numpy"]).sum()
    assert iou > 0.95
    lit = masks["pyrender"] & masks["numpy"]
    brightness = {b: img[lit].mean() for b, img in images.items()}
    assert brightness["pyrender"] == pytest.approx(brightness["numpy"], rel=0.25)


def test_pyrender_overlay_matches_background_outside():
    pyrender_or_skip()
    vertices, faces = uv_sphere(0.2)
    background = np.full((64, 64, 3), 30, np.uint8)
    out = render.render_mesh(vertices, faces, cam=[1.0, 0.0, 0.0], image=background, backend="pyrender")
    np.testing.assert_array_equal(out[:5], background[:5])
    assert out[32, 32].mean() > 60


@pytest.mark.parametrize("backend", render.BACKENDS)
def test_vertex_colors(backend):
    if backend == "pyrender":
        pyrender_or_skip()
    vertices, faces = uv_sphere(0.3)
    colors = np.where(vertices[:, :1] > 0, [[1.0, 0.0, 0.0]], [[0.0, 0.0, 1.0]])  # right half red
    image = render.render_mesh(vertices, faces, cam=[2.0, 0.0, 0.0], size=64, backend=backend,
                               vertex_colors=colors).astype(int)
    right, left = image[32, 44], image[32, 20]
    assert right[0] > right[2] + 50 and left[2] > left[0] + 50
    with pytest.raises(ValueError, match=r"vertex_colors must have shape \(V=\d+, 3\), got \(2, 3\)"):
        render.render_mesh(vertices, faces, vertex_colors=np.zeros((2, 3)), backend=backend)


def test_draw_keypoints_marks_the_points():
    image = np.full((32, 32, 3), 255, np.uint8)
    keypoints = np.full((19, 2), 16.0)
    keypoints[0] = (5.0, 5.0)
    visibility = np.ones(19)
    visibility[1] = 0
    out = render.draw_keypoints(image, keypoints, visibility, color=(0, 0, 0))
    assert out[5, 5].sum() == 0 and out[16, 16].sum() == 0
    assert (image == 255).all()  # the input is not touched
    with pytest.raises(ValueError, match=r"keypoints_2d must have shape \(K≤19, 2\), got \(20, 2\)"):
        render.draw_keypoints(image, np.zeros((20, 2)))


def test_plot_keypoints_keeps_the_view_on_the_image():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.imshow(np.zeros((32, 32, 3)))
    before = ax.get_xlim(), ax.get_ylim()
    keypoints = np.random.default_rng(0).uniform(-50, 80, size=(19, 2))  # many outside the image
    render.plot_keypoints(ax, keypoints, names=True)
    assert (ax.get_xlim(), ax.get_ylim()) == before
    plt.close(fig)
