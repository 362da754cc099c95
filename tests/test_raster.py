"""The batched rasteriser against ``render``'s NumPy rasteriser, exact areas, culling and supersampling."""

import math

import numpy as np
import pytest
import torch

from hmr_core import camera, raster, render
from hmr_core.body_model import SMPL
from tests.conftest import DEVICES

TETRAHEDRON = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
OUTWARD = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])


def test_winding_of_closed_and_open_meshes():
    assert raster.closed_mesh_winding(TETRAHEDRON, OUTWARD) == 1
    assert raster.closed_mesh_winding(TETRAHEDRON, OUTWARD[:, ::-1]) == -1
    assert raster.closed_mesh_winding(TETRAHEDRON, OUTWARD[:3]) == 0  # a face missing: open
    flipped_one = OUTWARD.copy()
    flipped_one[0] = flipped_one[0, ::-1]
    assert raster.closed_mesh_winding(TETRAHEDRON, flipped_one) == 0  # inconsistent winding


@pytest.fixture(scope="module")
def bodies():
    """Four posed open-body meshes framed in a 96-pixel image (two of them partly outside it)."""
    model = SMPL()
    generator = torch.Generator().manual_seed(0)
    pose = torch.randn(4, 72, generator=generator) * 0.4
    pose[:, :3] = torch.tensor([np.pi, 0.0, 0.0]) + 0.3 * torch.randn(4, 3, generator=generator)
    with torch.no_grad():
        vertices = model(betas=torch.randn(4, 10, generator=generator), pose=pose).vertices
    cam = torch.tensor([[0.9, 0.0, 0.2], [1.2, 0.1, 0.3], [2.5, 0.3, 0.0], [0.5, -0.2, 0.1]])
    pixels = camera.normalized_to_pixel(camera.weak_perspective_project(vertices, cam), 96)
    return pixels, vertices[..., 2], torch.as_tensor(model.faces, dtype=torch.int64)


try:
    import numba  # noqa: F401
except ImportError:
    numba = None
# The compiled loops need numba (the ``render`` extra); the tensors run anywhere.
LOOPS = pytest.param("loops", marks=pytest.mark.skipif(numba is None, reason="numba is not installed"))
BOTH = ["tensors", LOOPS]
METHODS = [("cpu", "tensors"), pytest.param("cpu", "loops", marks=LOOPS.marks)] + [
    (device, "tensors") for device in DEVICES if device != "cpu"]


@pytest.mark.parametrize("device,method", METHODS)
def test_matches_the_numpy_rasteriser_on_bodies(bodies, device, method):
    """The same face at every pixel as ``render.rasterize`` (up to depth ties), with or without back faces."""
    pixels, depth, faces = bodies
    winding = raster.closed_mesh_winding(SMPL().v_template.numpy(), faces.numpy())
    assert winding == 1  # the open body model is closed, its faces point outwards
    args = pixels.to(device), depth.to(device), faces.to(device), 96
    both = raster.rasterize(*args, method=method)
    culled = raster.rasterize(*args, cull=winding, method=method)
    for i in range(len(pixels)):
        face_id, bary = render.rasterize(pixels[i].double().numpy(), depth[i].double().numpy(), faces.numpy(), 96)
        assert (face_id >= 0).sum() > 200  # a body, not a speck
        for ours in (both, culled):
            np.testing.assert_array_equal(ours.face[i].cpu().numpy() >= 0, face_id >= 0)
            same = ours.face[i].cpu().numpy() == face_id
            assert same.mean() > 0.995, same.mean()
            np.testing.assert_allclose(ours.bary[i].cpu().numpy()[same & (face_id >= 0)],
                                       bary[same & (face_id >= 0)], atol=2e-3)


@pytest.mark.parametrize("method", BOTH)
def test_depth_order_and_both_sides(method):
    """The nearer of two overlapping squares wins wherever both cover; a square seen from behind is drawn."""
    square = torch.tensor([[10.0, 10.0], [50.0, 10.0], [50.0, 50.0], [10.0, 50.0]])
    pixels = torch.cat((square, square + 20.0))[None]  # (1, 8, 2)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    for near_first in (True, False):
        depth = torch.tensor([[1.0] * 4 + [2.0] * 4]) if near_first else torch.tensor([[2.0] * 4 + [1.0] * 4])
        fragments = raster.rasterize(pixels, depth, faces, 64, method=method)
        assert (fragments.face[0, 40, 40] < 2) == near_first  # (40, 40) lies in both squares
        assert fragments.face[0, 20, 20] in (0, 1) and fragments.face[0, 60, 60] in (2, 3)
    reversed_winding = raster.rasterize(pixels, torch.ones(1, 8), faces[:, [0, 2, 1]], 64, method=method)
    assert (reversed_winding.face >= 0).sum() == (fragments.face >= 0).sum()
    culled = [raster.rasterize(pixels, torch.ones(1, 8), faces, 64, cull=c, method=method) for c in (1, -1)]
    assert (culled[0].face >= 0).sum() == 0 and (culled[1].face >= 0).sum() > 0  # the squares are anticlockwise


@pytest.mark.parametrize("method", BOTH)
@pytest.mark.parametrize("supersample", [1, 2, 4])
def test_coverage_is_the_covered_area(supersample, method):
    """Summed coverage is a shape's area within the aliasing of its outline; a large triangle is drawn whole."""
    generator = torch.Generator().manual_seed(3)
    for trial in range(20):
        triangle = torch.rand(1, 3, 2, generator=generator) * 300.0 - 22.0  # often larger than the image
        faces = torch.tensor([[0, 1, 2]])
        rgb, coverage = raster.draw_colors(triangle, torch.zeros(1, 3), faces, torch.ones(1, 3, 3), 256,
                                           supersample=supersample, method=method)
        inside = _clipped_area(triangle[0].double().numpy(), 256)
        perimeter = float((triangle[0] - triangle[0].roll(1, 0)).norm(dim=1).sum())
        assert abs(float(coverage.sum()) - inside) <= perimeter / supersample + 4.0, trial
        torch.testing.assert_close(rgb, coverage[..., None].expand_as(rgb))  # white, premultiplied
        assert coverage.min() >= 0 and coverage.max() <= 1


def _clipped_area(triangle: np.ndarray, size: int) -> float:
    """Area of a triangle inside the square [0, size]² (Sutherland–Hodgman clipping, then the shoelace)."""
    polygon = [tuple(p) for p in triangle]
    for axis, bound, keep_below in ((0, 0, False), (0, size, True), (1, 0, False), (1, size, True)):
        inside = lambda p: p[axis] <= bound if keep_below else p[axis] >= bound  # noqa: E731
        clipped = []
        for k, current in enumerate(polygon):
            previous = polygon[k - 1]
            if inside(current) != inside(previous):
                t = (bound - previous[axis]) / (current[axis] - previous[axis])
                clipped.append(tuple(previous[j] + t * (current[j] - previous[j]) for j in range(2)))
            if inside(current):
                clipped.append(current)
        polygon = clipped
        if not polygon:
            return 0.0
    x, y = np.array(polygon).T
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


@pytest.mark.parametrize("method", BOTH)
def test_colours_are_interpolated_and_edges_antialiased(bodies, method):
    """Supersampled colours are the mean of the finer image's; edges get partial coverage."""
    pixels, depth, faces = bodies
    colors = torch.rand(4, pixels.shape[1], 3, generator=torch.Generator().manual_seed(1))
    rgb, coverage = raster.draw_colors(pixels, depth, faces, colors, 96, supersample=2, cull=1, method=method)
    fine_rgb, fine_coverage = raster.draw_colors(pixels * 2, depth, faces, colors, 192, supersample=1, cull=1,
                                                 method=method)
    torch.testing.assert_close(coverage, torch.nn.functional.avg_pool2d(fine_coverage[:, None], 2)[:, 0])
    pooled = torch.nn.functional.avg_pool2d(fine_rgb.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1)
    torch.testing.assert_close(rgb, pooled, atol=1e-5, rtol=0)
    edge = (coverage > 0) & (coverage < 1)
    assert edge.sum() > 100 and set(coverage[edge].unique().tolist()) <= {0.25, 0.5, 0.75}
    # At a fully covered pixel the colour is a convex mix of the three corners' colours of some face.
    assert (rgb[coverage == 1] >= colors.min() - 1e-5).all() and (rgb[coverage == 1] <= colors.max() + 1e-5).all()


@pytest.mark.skipif(numba is None, reason="numba is not installed")
def test_loops_and_tensors_draw_the_same_images(bodies):
    """The two implementations agree at every pixel but a handful where a sample lies on an edge."""
    pixels, depth, faces = bodies
    colors = torch.rand(4, pixels.shape[1], 3, generator=torch.Generator().manual_seed(2))
    loops = raster.draw_colors(pixels, depth, faces, colors, 96, supersample=2, cull=1, method="loops")
    tensors = raster.draw_colors(pixels, depth, faces, colors, 96, supersample=2, cull=1, method="tensors")
    for a, b in zip(loops, tensors):
        differ = (a - b).abs().reshape(4, 96, 96, -1).amax(-1) > 1e-4
        assert differ.sum() <= 8, differ.sum()


@pytest.mark.parametrize("method", BOTH)
def test_a_hidden_sliver_stays_hidden(method):
    """Slivers behind a square, along rows of sample centres: the square must hide them everywhere.

    A triangle 1e-5 to 3e-7 samples thick whose long edge runs through sample centres holds those
    samples; its depth there must be a blend of its corners' (all behind the square), not a plane
    extrapolated with a huge slope.
    """
    generator = torch.Generator().manual_seed(1)
    num = 400
    pixels = torch.zeros(num, 7, 2, dtype=torch.float64)
    pixels[:, :4] = torch.tensor([[0.0, 0.0], [64.0, 0.0], [0.0, 64.0], [64.0, 64.0]], dtype=torch.float64)
    for n in range(num):
        i0, j0, dx, dy, k = (int(v) for v in torch.randint(0, 20, (5,), generator=generator))
        dx, dy, k = dx % 7 - 3, dy % 7 - 3, 2 + k % 8
        dx = 1 if dx == dy == 0 else dx
        ax, ay = i0 + 20.5, j0 + 20.5  # a sample centre
        width = 10 ** (-5 - 1.5 * float(torch.rand((), generator=generator)))
        t, length = float(torch.rand((), generator=generator)), math.hypot(dx, dy)
        pixels[n, 4:] = torch.tensor([[ax, ay], [ax + k * dx, ay + k * dy],
                                      [ax + t * k * dx - dy / length * width, ay + t * k * dy + dx / length * width]],
                                     dtype=torch.float64)
    depth = torch.cat((torch.zeros(num, 4), torch.rand(num, 3, generator=generator) * 0.5 + 0.5), 1)
    faces = torch.tensor([[0, 1, 2], [1, 3, 2], [4, 5, 6]])
    fragments = raster.rasterize(pixels.float(), depth, faces, 64, method=method)
    assert (fragments.face != 2).all(), int((fragments.face == 2).flatten(1).any(1).sum())


@pytest.mark.parametrize("method", BOTH)
def test_ties_go_to_the_smaller_face_and_bad_coordinates_draw_nothing(method):
    triangle = torch.tensor([[2.0, 2.0], [30.0, 2.0], [2.0, 30.0]])
    pixels = torch.cat((triangle, triangle))[None]  # two copies at the same depth
    fragments = raster.rasterize(pixels, torch.zeros(1, 6), torch.tensor([[3, 4, 5], [0, 1, 2]]), 32, method=method)
    assert (fragments.face[0, 5, 5] == 0) and set(fragments.face.unique().tolist()) == {-1, 0}
    for bad in (float("inf"), float("nan"), 1e19, -1e19):
        corrupt = pixels.clone()
        corrupt[0, 4, 0] = bad
        fragments = raster.rasterize(corrupt, torch.zeros(1, 6), torch.tensor([[3, 4, 5], [0, 1, 2]]), 32,
                                     method=method)
        if not np.isfinite(bad):
            assert set(fragments.face.unique().tolist()) == {-1, 1}, bad  # the corrupt face is not drawn
        assert (fragments.face >= 0).sum() > 300, bad  # a huge face is drawn where it covers, nothing breaks


@pytest.mark.parametrize("method", BOTH)
def test_empty_inputs(method):
    faces = torch.tensor([[0, 1, 2]])
    rgb, coverage = raster.draw_colors(torch.zeros(0, 3, 2), torch.zeros(0, 3), faces, torch.zeros(0, 3, 3), 8,
                                       method=method)
    assert rgb.shape == (0, 8, 8, 3) and coverage.shape == (0, 8, 8)
    rgb, coverage = raster.draw_colors(torch.zeros(2, 3, 2), torch.zeros(2, 3), faces[:0], torch.zeros(2, 3, 3), 8,
                                       method=method)
    assert rgb.abs().sum() == 0 and coverage.sum() == 0


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="need pixels"):
        raster.rasterize(torch.zeros(5, 2), torch.zeros(5), torch.zeros(1, 3, dtype=torch.int64), 8)
    with pytest.raises(ValueError, match="faces must be"):
        raster.rasterize(torch.zeros(1, 5, 2), torch.zeros(1, 5), torch.zeros(3, dtype=torch.int64), 8)
    for method in ("tensors", "loops") if numba else ("tensors",):
        with pytest.raises(ValueError, match=r"faces index vertices outside \[0, 3\)"):
            raster.rasterize(torch.zeros(1, 3, 2), torch.zeros(1, 3), torch.tensor([[0, 1, 100000000]]), 8,
                             method=method)
        with pytest.raises(ValueError, match="cull must be"):
            raster.rasterize(torch.zeros(1, 3, 2), torch.zeros(1, 3), torch.tensor([[0, 1, 2]]), 8, cull=2,
                             method=method)
        with pytest.raises(ValueError, match="supersample must be"):
            raster.draw_colors(torch.zeros(1, 3, 2), torch.zeros(1, 3), torch.tensor([[0, 1, 2]]),
                               torch.zeros(1, 3, 3), 8, supersample=1.5, method=method)
    with pytest.raises(ValueError, match="supersample"):
        raster.draw_colors(torch.zeros(1, 3, 2), torch.zeros(1, 3), torch.tensor([[0, 1, 2]]), torch.zeros(1, 3, 3),
                           8, supersample=0)
    for method in ("tensors", "loops") if numba else ("tensors",):
        with pytest.raises(ValueError, match="colors must have shape"):
            raster.draw_colors(torch.zeros(1, 3, 2), torch.zeros(1, 3), torch.tensor([[0, 1, 2]]),
                               torch.zeros(1, 4, 3), 8, method=method)
    with pytest.raises(ValueError, match="method must be"):
        raster.rasterize(torch.zeros(1, 3, 2), torch.zeros(1, 3), torch.tensor([[0, 1, 2]]), 8, method="opengl")


@pytest.mark.parametrize("method", BOTH)
def test_vertex_normals_match_the_per_mesh_function(bodies, method):
    pixels, depth, faces = bodies
    vertices = torch.cat((pixels.double() / 50.0, depth.double()[..., None]), -1)  # any (N, V, 3)
    normals = raster.vertex_normals(vertices, faces, method=method)
    assert normals.dtype == torch.float64
    for i in range(len(vertices)):
        np.testing.assert_allclose(normals[i].numpy(), render.vertex_normals(vertices[i].numpy(), faces.numpy()),
                                   atol=1e-9)
    with pytest.raises(ValueError, match="vertices must have shape"):
        raster.vertex_normals(vertices[0], faces, method=method)


@pytest.mark.parametrize("method", BOTH)
def test_draw_over_composes_as_the_formula_says(bodies, method):
    pixels, depth, faces = bodies
    generator = torch.Generator().manual_seed(4)
    colors = torch.rand(4, pixels.shape[1], 3, generator=generator)
    background = torch.randint(0, 256, (4, 96, 96, 3), generator=generator, dtype=torch.uint8)
    images = raster.draw_over(pixels, depth, faces, colors, background, cull=1, method=method)
    rgb, coverage = raster.draw_colors(pixels, depth, faces, colors, 96, cull=1, method=method)
    expected = (background.float() * (1 - coverage[..., None]) + 255 * rgb).clamp(0, 255) + 0.5
    assert images.dtype == torch.uint8
    assert (images.int() - expected.floor().int()).abs().max() <= 1  # float rounding at .5
    assert (images[coverage == 0] == background[coverage == 0]).all()
    with pytest.raises(ValueError, match="background must be"):
        raster.draw_over(pixels, depth, faces, colors, background.float(), method=method)
