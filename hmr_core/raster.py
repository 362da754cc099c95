"""A batched z-buffer rasteriser: many meshes per call, as tensor operations or as compiled CPU loops.

The synthetic world (``synthetic_batch``) draws whole batches of bodies. OpenGL draws one body per call,
and on a machine without a GPU (Mesa's software renderer) most of its time goes to shading, multisampling
and reading back one framebuffer at a time. This rasteriser does what drawing interpolated vertex colours
needs, for N meshes at once, with tensor operations:

1. every triangle of every mesh is put into a class by the width and height of its bounding box in
   samples (1, 2, 3, 4, 6, 8, ... each), and each class tests all the samples (pixel centres) of its
   boxes at once with the triangle's edge functions;
2. the depth test is one ``scatter_reduce(..., "amin")`` per class: a sample's key holds its quantised
   depth in the high bits and the face in the low 32, so the smallest key is the nearest face (at equal
   depth, the smaller face index);
3. the winning face's barycentric coordinates interpolate the vertex colours, and with ``supersample``
   = 2 the 2 × 2 samples of a pixel are averaged: antialiased edges, as OpenGL's 4× multisampling.

The camera is orthographic (HMR's weak perspective), so barycentric coordinates in the image are those on
the triangle: no perspective correction. A closed mesh (every edge shared by two faces) is drawn with its
back faces culled, which halves the work and changes no pixel: the first surface a ray meets on a closed
mesh is one it enters, a front face.

On a CPU the same algorithm runs about ten times faster as plain loops (``_draw_loops``: one depth buffer
per mesh, each face's box of samples tested in turn) compiled by numba, which ``rasterize``,
``draw_colors``, ``draw_over`` and ``vertex_normals`` use for CPU tensors when numba is installed (the
``render`` extra); the tensor version serves GPUs and machines without numba, and the tests hold the two
to the same images. On a GPU the colours are summed with float atomics, so two draws of a batch may
differ in the last bit (and rarely by one grey level after rounding).

Letters in shapes: N meshes (images), V vertices, F faces, H = W = size · supersample samples per side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

# Depths are quantised per mesh (between its nearest and farthest vertex) and sit above the face in a key.
_DEPTH_LEVELS = 2**30
_NO_FACE = torch.iinfo(torch.int64).max
# A key's low bits: the face.
_INDEX_BITS = 32
# Box sides of the classes of triangles (a class tests all the samples of a box of its size).
_SIDES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)


@dataclass(frozen=True)
class Fragments:
    """What each sample sees: the visible face and its barycentric coordinates there.

    Attributes:
        face: (N, H, W) int64 index of the visible face in ``faces``, -1 where no face is seen.
        bary: (N, H, W, 3) barycentric coordinates of the sample in that face (zero where none).
    """

    face: torch.Tensor
    bary: torch.Tensor


def closed_mesh_winding(vertices: torch.Tensor | np.ndarray, faces: torch.Tensor | np.ndarray) -> int:
    """Which way a closed mesh's faces point: +1 outwards, -1 inwards, 0 when the mesh is not closed.

    A mesh is closed when each edge is used by exactly two faces, once in each direction. Its faces then
    point outwards when the signed volume (sum of a · (b × c) / 6 over the faces) is positive.

    Args:
        vertices: (V, 3) any pose of the mesh (the rest pose is fine).
        faces: (F, 3) vertex indices.

    Returns:
        +1, -1 or 0.
    """
    faces = np.asarray(faces, dtype=np.int64)
    vertices = np.asarray(vertices, dtype=np.float64)
    directed = np.concatenate((faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]))  # (3F, 2)
    num = int(faces.max()) + 1 if faces.size else 0
    forward = np.unique(directed[:, 0] * num + directed[:, 1])
    backward = np.unique(directed[:, 1] * num + directed[:, 0])
    if len(forward) != len(directed) or not np.array_equal(forward, backward):
        return 0  # an edge used twice in one direction, or by one face only
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    volume = np.einsum("fi,fi->", a, np.cross(b, c)) / 6.0
    return 1 if volume > 0 else -1 if volume < 0 else 0


@dataclass(frozen=True)
class Samples:
    """The samples that see a mesh, as flat lists (what ``rasterize`` and ``draw_colors`` build on).

    Attributes:
        image, y, x: (P,) int64 the sample's mesh (image) and its row and column.
        face: (P,) int64 the visible face there.
        bary: (P, 3) float32 barycentric coordinates of the sample's centre in that face.
        values: (P, C) float32 the vertex attributes interpolated there, or None when none were given.
    """

    image: torch.Tensor
    y: torch.Tensor
    x: torch.Tensor
    face: torch.Tensor
    bary: torch.Tensor
    values: torch.Tensor | None = None


def visible_samples(pixels: torch.Tensor, depth: torch.Tensor, faces: torch.Tensor, size: int,
                    cull: int = 0, attributes: torch.Tensor | None = None) -> Samples:
    """Z-buffer rasterisation of N meshes with shared faces, kept sparse: the samples that see a face.

    The conventions are ``render.rasterize``'s: sample (i, j) has its centre at (j + 0.5, i + 0.5), x
    right, y down, smaller depth is nearer, and a centre on an edge belongs to both faces. Depth is
    compared quantised to 2^30 levels between a mesh's nearest and farthest vertex; at equal depth the
    face with the smaller index wins.

    Args:
        pixels: (N, V, 2) vertex positions in samples.
        depth: (N, V) vertex depths.
        faces: (F, 3) int64 vertex indices, on the same device.
        size: side of the square image in samples.
        cull: 0 draws both sides; +1 drops the faces that are clockwise on screen (for a closed mesh whose
            faces point outwards, seen along +z: its back faces), -1 those that are anticlockwise.
        attributes: (N, V, C) vertex attributes to interpolate at the samples (colours), or None.

    Returns:
        The ``Samples`` that see a face, ordered by image, row and column.

    Raises:
        ValueError: for shapes that do not fit, face indices outside [0, V), or a bad ``size`` or ``cull``.
    """
    _check_inputs(pixels, depth, faces, size, 1, cull, attributes, "attributes")
    num, num_faces, dev = len(pixels), len(faces), pixels.device
    if num == 0 or num_faces == 0:
        none = torch.zeros(0, dtype=torch.int64, device=dev)
        values = None if attributes is None else torch.zeros(0, attributes.shape[2], device=dev)
        return Samples(none, none, none, none, torch.zeros(0, 3, device=dev), values)
    # Depth, quantised per mesh between its nearest and farthest vertex.
    z = depth.float()
    z_low, z_high = z.amin(1, keepdim=True), z.amax(1, keepdim=True)
    zq = (z - z_low) / (z_high - z_low).clamp_min(1e-12) * _DEPTH_LEVELS  # (N, V)
    # Vertex-major: row v holds x, y and depth of vertex v in all N meshes, so gathering the corners of
    # the faces copies whole rows. tri[f, k, :, n] is corner k of face f in mesh n.
    vertex_rows = torch.cat((pixels.float(), zq[..., None]), dim=-1).permute(1, 2, 0).contiguous()  # (V, 3, N)
    tri = vertex_rows.index_select(0, faces.reshape(-1)).view(num_faces, 3, 3, num)
    (ax, ay, _), (bx, by, _), (cx, cy, _) = (tri[:, k].unbind(1) for k in range(3))  # (F, N) each
    area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)  # (F, N) twice the signed area
    first_x = torch.ceil(torch.minimum(torch.minimum(ax, bx), cx) - 0.5).clamp_(0, size)
    first_y = torch.ceil(torch.minimum(torch.minimum(ay, by), cy) - 0.5).clamp_(0, size)
    last_x = torch.floor(torch.maximum(torch.maximum(ax, bx), cx) - 0.5).clamp_(-1, size - 1)
    last_y = torch.floor(torch.maximum(torch.maximum(ay, by), cy) - 0.5).clamp_(-1, size - 1)
    keep = (last_x >= first_x) & (last_y >= first_y) & (area.abs() > 1e-12)  # the box holds a sample
    if cull:
        keep &= area * cull < 0  # on screen (y down), an outward face that looks at the camera is negative
    rows = keep.view(-1).nonzero()[:, 0]  # (M,) the triangles that may hold a sample, as f · N + n
    box = torch.stack([t.view(-1).index_select(0, rows) for t in (first_x, first_y, last_x, last_y)], 1).long()
    # Boxes go into classes by width and height (one of _SIDES each, the smallest that holds them), and a
    # class tests all the samples of its boxes at once; boxes wider or taller than the largest side are
    # covered by tiles of that side. The triangles are sorted by class, so a class is a slice.
    width, height = box[:, 2] - box[:, 0] + 1, box[:, 3] - box[:, 1] + 1  # (M,)
    sides = torch.tensor(_SIDES, device=dev)
    cls = torch.bucketize(width, sides) * len(_SIDES) + torch.bucketize(height, sides)
    cls = torch.where((width > _SIDES[-1]) | (height > _SIDES[-1]), len(_SIDES) ** 2 - 1, cls)
    cls, order = cls.sort()
    rows, box = rows[order], box[order]
    face, image = rows // num, rows % num
    # The M triangles' corners: (M, 9) as x, y, depth of a, b and c.
    corner = ((face * 9 * num + image)[:, None] + torch.arange(9, device=dev) * num).view(-1)
    ax, ay, za, bx, by, zb, cx, cy, zc = tri.view(-1).index_select(0, corner).view(-1, 9).T
    inv = 1.0 / ((bx - ax) * (cy - ay) - (by - ay) * (cx - ax))
    # Barycentric coordinates as planes over the image, with u × v = u_x v_y - u_y v_x:
    # w_b(q) = ((q - a) × (c - a)) / area = e1x · qx + e1y · qy + e1, w_c(q) = ((b - a) × (q - a)) / area,
    # and any attribute is A(q) = A_a + w_b (A_b - A_a) + w_c (A_c - A_a). Depth is interpolated so too,
    # with w_b and w_c clamped to [0, 1]: a plane of its own would lose all precision on a sliver.
    e1x, e1y = (cy - ay) * inv, -(cx - ax) * inv
    e2x, e2y = -(by - ay) * inv, (bx - ax) * inv
    e1 = -(e1x * ax + e1y * ay)
    e2 = -(e2x * ax + e2y * ay)
    plane = torch.stack((e1x, e1y, e1, e2x, e2y, e2, za, zb - za, zc - za), dim=1)  # (M, 9)
    # The row of each triangle of the call in ``plane``, by (mesh, face): a key holds the face.
    row_of = torch.full((num * num_faces,), -1, dtype=torch.int64, device=dev)
    row_of[image * num_faces + face] = torch.arange(len(face), device=dev)
    # Samples past a box's last column or row are dropped, but their indices may run past the last image.
    zbuffer = torch.full((num * size * size + (_SIDES[-1] + 1) * size,), _NO_FACE, dtype=torch.int64, device=dev)
    classes, counts = torch.unique_consecutive(cls, return_counts=True)
    start = 0
    for k, count in zip(classes.tolist(), counts.tolist()):
        part = slice(start, start + count)
        ids = face[part]  # the faces, as a key holds them
        start += count
        side_x, side_y = _SIDES[k // len(_SIDES)], _SIDES[k % len(_SIDES)]
        ox, oy, last_x, last_y = box[part].T
        p, first_sample = plane[part], image[part] * size
        if k == len(_SIDES) ** 2 - 1:  # the largest boxes: tiles of side_x × side_y
            tiles_x = (last_x - ox) // side_x + 1
            num_tiles = tiles_x * ((last_y - oy) // side_y + 1)
            tile = torch.arange(int(num_tiles.sum()), device=dev) - (num_tiles.cumsum(0) - num_tiles
                                                                      ).repeat_interleave(num_tiles)
            repeat = lambda t: t.repeat_interleave(num_tiles, dim=0)  # noqa: E731
            ids, tiles_x, p, first_sample = repeat(ids), repeat(tiles_x), repeat(p), repeat(first_sample)
            ox, oy = repeat(ox) + tile % tiles_x * side_x, repeat(oy) + tile // tiles_x * side_y
            last_x, last_y = repeat(last_x), repeat(last_y)
        px = ox[:, None] + torch.arange(side_x, device=dev)  # (m, side_x) columns
        py = oy[:, None] + torch.arange(side_y, device=dev)  # (m, side_y) rows
        qx, qy = px.float() + 0.5, py.float() + 0.5
        # Each plane a · qx + b · qy + c is a column part plus a row part; a column or row outside the box
        # gets -inf in w_b, so that its samples fail the inside test.
        off_x = torch.where(px <= last_x[:, None], 0.0, -math.inf)  # (m, side_x)
        off_y = torch.where(py <= last_y[:, None], 0.0, -math.inf)  # (m, side_y)
        w1 = (p[:, 0:1] * qx + p[:, 2:3] + off_x)[:, None, :] + (p[:, 1:2] * qy + off_y)[:, :, None]
        w2 = (p[:, 3:4] * qx + p[:, 5:6])[:, None, :] + (p[:, 4:5] * qy)[:, :, None]  # (m, side_y, side_x)
        inside = (w1 >= 0) & (w2 >= 0) & (w1 + w2 <= 1)
        z = torch.addcmul(p[:, 6, None, None], w1.clamp(0.0, 1.0), p[:, 7, None, None])  # in [0, 2^30]
        z.addcmul_(w2.clamp(0.0, 1.0), p[:, 8, None, None])
        # One key per candidate sample: depth above, the face below; outside the triangle: none.
        key = torch.where(inside, (z.long() << _INDEX_BITS) | ids[:, None, None], _NO_FACE)
        sample = ((first_sample[:, None] + py) * size)[:, :, None] + px[:, None, :]  # (m, side_y, side_x)
        zbuffer.scatter_reduce_(0, sample.view(-1), key.view(-1), "amin")
    zbuffer = zbuffer[: num * size * size]
    hit = (zbuffer != _NO_FACE).nonzero()[:, 0]  # (P,) flat samples that see a face
    image_p, rest = hit // (size * size), hit % (size * size)
    row = row_of.index_select(0, image_p * num_faces + (zbuffer[hit] & (2**_INDEX_BITS - 1)))  # (P,) in ``plane``
    y, x = rest // size, rest % size
    p = plane.index_select(0, row)
    qx, qy = x.float() + 0.5, y.float() + 0.5
    w1 = (p[:, 0] * qx + p[:, 1] * qy + p[:, 2]).clamp(0.0, 1.0)
    w2 = torch.minimum((p[:, 3] * qx + p[:, 4] * qy + p[:, 5]).clamp(0.0, 1.0), 1.0 - w1)
    values = None
    if attributes is not None:
        # Each sample's corner attributes, gathered from vertex-major rows as the positions were.
        channels = attributes.shape[2]
        vertex_values = attributes.float().permute(1, 2, 0).contiguous().view(-1)  # (V · C · N,)
        corners = faces.index_select(0, face.index_select(0, row))  # (P, 3)
        index = ((corners * channels)[:, :, None] + torch.arange(channels, device=dev)) * num \
            + image_p[:, None, None]  # (P, 3, C)
        a_, b_, c_ = vertex_values.index_select(0, index.view(-1)).view(-1, 3, channels).unbind(1)  # (P, C)
        values = a_ + w1[:, None] * (b_ - a_) + w2[:, None] * (c_ - a_)
    return Samples(image_p, y, x, face.index_select(0, row), torch.stack((1.0 - w1 - w2, w1, w2), dim=-1), values)


def rasterize(pixels: torch.Tensor, depth: torch.Tensor, faces: torch.Tensor, size: int,
              cull: int = 0, method: str = "auto") -> Fragments:
    """The face and barycentric coordinates that each pixel centre sees, as images.

    Args:
        pixels, depth, faces, size, cull: as in ``visible_samples``.
        method: "loops", "tensors" or "auto" (see ``draw_colors``).

    Returns:
        The ``Fragments`` of the N images, (N, size, size).

    Raises:
        ValueError: as ``visible_samples``, or for an unknown ``method``.
    """
    num = len(pixels)
    if _choose_method(method, pixels) == "loops":
        _check_inputs(pixels, depth, faces, size, 1, cull)
        face = np.full((num, size, size), -1, dtype=np.int32)
        bary = np.zeros((num, size, size, 2), dtype=np.float32)
        _compiled_loops()(*_as_arrays(pixels, depth, faces, torch.zeros(num, pixels.shape[1], 0)), size, 1, cull,
                          np.zeros((num, size, size, 0), np.float32), np.zeros((num, size, size), np.float32),
                          True, face, bary, *_NO_IMAGES)
        w = torch.from_numpy(bary)
        return Fragments(torch.from_numpy(face).long(), torch.cat((1.0 - w.sum(-1, keepdim=True), w), dim=-1)
                         * (torch.from_numpy(face) >= 0)[..., None])
    samples = visible_samples(pixels, depth, faces, size, cull)
    face = torch.full((num, size, size), -1, dtype=torch.int64, device=pixels.device)
    bary = torch.zeros(num, size, size, 3, dtype=torch.float32, device=pixels.device)
    face[samples.image, samples.y, samples.x] = samples.face
    bary[samples.image, samples.y, samples.x] = samples.bary
    return Fragments(face, bary)


def draw_colors(pixels: torch.Tensor, depth: torch.Tensor, faces: torch.Tensor, colors: torch.Tensor, size: int,
                supersample: int = 2, cull: int = 0, method: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """N meshes with interpolated vertex colours, antialiased by supersampling.

    Two implementations give the same images (``tests/test_raster.py``): "tensors" (``visible_samples``,
    tensor operations on any device) and "loops" (one loop over faces and samples per mesh, compiled by
    numba; on a CPU several times faster). "auto" takes the loops for CPU tensors when numba is
    installed, and the tensors otherwise.

    Args:
        pixels: (N, V, 2) vertex positions in pixels of the ``size`` × ``size`` image.
        depth: (N, V) vertex depths, smaller is nearer.
        faces: (F, 3) vertex indices.
        colors: (N, V, C) vertex colours (or any attributes to interpolate).
        size: side of the square image.
        supersample: samples per pixel side (2: 4 samples per pixel, as OpenGL's 4× multisampling).
        cull: as in ``visible_samples``.
        method: "auto", "loops" or "tensors".

    Returns:
        ``(rgb, coverage)``: (N, size, size, C) colours premultiplied by the (N, size, size) share of each
        pixel's samples that see the mesh, both float32, on the device of ``pixels``.

    Raises:
        ValueError: as ``visible_samples``, for colours of another shape, a ``supersample`` that is not a
            positive integer, or an unknown ``method``.
    """
    num = len(pixels)
    _check_inputs(pixels, depth, faces, size, supersample, cull, colors)
    if _choose_method(method, pixels) == "loops":
        rgb = np.zeros((num, size, size, colors.shape[2]), dtype=np.float32)
        coverage = np.zeros((num, size, size), dtype=np.float32)
        _compiled_loops()(*_as_arrays(pixels, depth, faces, colors), size, supersample, cull, rgb, coverage, False,
                          *_NO_RECORD, *_NO_IMAGES)
        return torch.from_numpy(rgb), torch.from_numpy(coverage)
    samples = visible_samples(pixels * supersample, depth, faces, size * supersample, cull, colors)
    rgba = torch.cat((samples.values, torch.ones_like(samples.values[:, :1])), dim=1)  # (P, C + 1): colour and a 1
    # A pixel's colour is the mean of its supersample² samples (zero for those that see no face).
    pixel = (samples.image * size + samples.y // supersample) * size + samples.x // supersample  # (P,)
    out = torch.zeros(num * size * size, rgba.shape[1], dtype=torch.float32, device=pixels.device)
    out.index_add_(0, pixel, rgba, alpha=1.0 / supersample**2)
    out = out.reshape(num, size, size, rgba.shape[1])
    return out[..., :-1], out[..., -1]


def draw_over(pixels: torch.Tensor, depth: torch.Tensor, faces: torch.Tensor, colors: torch.Tensor,
              background: torch.Tensor, supersample: int = 2, cull: int = 0, method: str = "auto") -> torch.Tensor:
    """N meshes with vertex colours drawn over N images, as ``draw_colors`` draws them.

    Each pixel becomes ``background · (1 - coverage) + 255 · rgb`` (``rgb`` is premultiplied), rounded.

    Args:
        pixels, depth, faces, supersample, cull, method: as in ``draw_colors``.
        colors: (N, V, C) vertex colours in [0, 1].
        background: (N, H, W, C) uint8 images, H = W.

    Returns:
        (N, H, W, C) uint8 images, a new tensor on the device of ``pixels``.

    Raises:
        ValueError: as ``draw_colors``, or for a background that is not (N, H, H, C) uint8.
    """
    if background.dtype != torch.uint8 or background.ndim != 4 or background.shape[0] != len(pixels) \
            or background.shape[1] != background.shape[2] or background.shape[3] != colors.shape[-1]:
        raise ValueError(f"background must be (N, H, H, C) uint8 with N = {len(pixels)} and C = "
                         f"{colors.shape[-1]}, got {tuple(background.shape)} {background.dtype}")
    size = background.shape[1]
    if _choose_method(method, pixels) == "loops":
        _check_inputs(pixels, depth, faces, size, supersample, cull, colors)
        images = np.empty(tuple(background.shape), dtype=np.uint8)
        _compiled_loops()(*_as_arrays(pixels, depth, faces, colors), size, supersample, cull, *_NO_COLORS, False,
                          *_NO_RECORD, np.ascontiguousarray(background.cpu().numpy()), images)
        return torch.from_numpy(images)
    rgb, coverage = draw_colors(pixels, depth, faces, colors, size, supersample, cull, method)
    out = background.to(pixels.device).float() * (1.0 - coverage[..., None]) + rgb * 255.0
    return (out.clamp(0.0, 255.0) + 0.5).to(torch.uint8)


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor, method: str = "auto") -> torch.Tensor:
    """Area-weighted unit vertex normals of N meshes (``render.vertex_normals`` for a batch), for shading.

    Args:
        vertices: (N, V, 3) vertices.
        faces: (F, 3) int64 vertex indices, on the same device.
        method: "auto", "loops" or "tensors", as in ``draw_colors``.

    Returns:
        (N, V, 3) unit normals (zero for unused vertices), in the dtype of ``vertices``. With "auto",
        vertices that require gradients take the tensors, which pass them on.

    Raises:
        ValueError: for vertices not (N, V, 3), faces not (F, 3) or indices outside [0, V).
    """
    if vertices.ndim != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"vertices must have shape (N, V, 3), got {tuple(vertices.shape)}")
    _check_faces(faces, vertices.shape[1])
    if method == "auto" and vertices.requires_grad:
        method = "tensors"
    if _choose_method(method, vertices) == "loops":
        normals = np.zeros(tuple(vertices.shape), dtype=np.float64)
        _compiled_loops(_normals_loops)(np.ascontiguousarray(vertices.detach().numpy(), dtype=np.float64),
                                        np.ascontiguousarray(faces.cpu().numpy(), dtype=np.int64), normals)
        return torch.from_numpy(normals).to(vertices.dtype)
    tri = vertices[:, faces]  # (N, F, 3, 3)
    face_normals = torch.linalg.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0])  # (N, F, 3)
    normals = torch.zeros_like(vertices)
    for k in range(3):
        normals.index_add_(1, faces[:, k], face_normals)
    return normals / normals.norm(dim=-1, keepdim=True).clamp_min(1e-12)


# --------------------------------------------------------------------------------------------------
# The same rasterisation as loops, compiled by numba for the CPU
# --------------------------------------------------------------------------------------------------
_compiled: dict = {}
# Empty outputs for the kernel's parts that a call does not use.
_NO_COLORS = (np.zeros((0, 0, 0, 0), np.float32), np.zeros((0, 0, 0), np.float32))
_NO_RECORD = (np.zeros((0, 0, 0), np.int32), np.zeros((0, 0, 0, 2), np.float32))
_NO_IMAGES = (np.zeros((0, 0, 0, 0), np.uint8), np.zeros((0, 0, 0, 0), np.uint8))


def _choose_method(method: str, pixels: torch.Tensor) -> str:
    if method not in ("auto", "loops", "tensors"):
        raise ValueError(f"method must be 'auto', 'loops' or 'tensors', got {method!r}")
    if method == "auto":
        return "loops" if pixels.device.type == "cpu" and _numba_available() else "tensors"
    if method == "loops" and pixels.device.type != "cpu":
        raise ValueError(f"method 'loops' runs on the CPU; got tensors on {pixels.device}")
    return method


@lru_cache(maxsize=None)
def _numba_available() -> bool:
    """Whether numba imports here (once per process)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def _check_faces(faces: torch.Tensor, num_vertices: int) -> None:
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"faces must be (F, 3) integers, got {tuple(faces.shape)} {faces.dtype}")
    if faces.numel() and (int(faces.min()) < 0 or int(faces.max()) >= num_vertices):
        raise ValueError(f"faces index vertices outside [0, {num_vertices}): from {int(faces.min())} to "
                         f"{int(faces.max())}")


def _check_inputs(pixels: torch.Tensor, depth: torch.Tensor, faces: torch.Tensor, size: int, supersample: int,
                  cull: int, colors: torch.Tensor | None = None, name: str = "colors") -> None:
    """The checks of every entry point: shapes, face indices, settings and (N, V, C) vertex ``colors``."""
    if pixels.ndim != 3 or pixels.shape[-1] != 2 or depth.shape != pixels.shape[:2]:
        raise ValueError(f"need pixels (N, V, 2) and depth (N, V), got {tuple(pixels.shape)} and "
                         f"{tuple(depth.shape)}")
    _check_faces(faces, pixels.shape[1])
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    if not isinstance(supersample, int) or supersample < 1:
        raise ValueError(f"supersample must be a positive integer, got {supersample!r}")
    if cull not in (-1, 0, 1):
        raise ValueError(f"cull must be -1, 0 or 1, got {cull!r}")
    if colors is not None and (colors.ndim != 3 or colors.shape[:2] != pixels.shape[:2]):
        raise ValueError(f"{name} must have shape (N, V, C) = {tuple(pixels.shape[:2])} + (C,), got "
                         f"{tuple(colors.shape)}")


def _as_arrays(pixels, depth, faces, colors):
    as_array = lambda t, dtype: np.ascontiguousarray(t.detach().cpu().numpy(), dtype=dtype)  # noqa: E731
    return as_array(pixels, np.float32), as_array(depth, np.float32), as_array(faces, np.int64), \
        as_array(colors, np.float32)


def _compiled_loops(function=None):
    """``function`` (``_draw_loops`` by default) compiled by numba, once per process; the machine code is
    cached on disk."""
    function = _draw_loops if function is None else function
    if function not in _compiled:
        import numba

        _compiled[function] = numba.njit(cache=True)(function)
    return _compiled[function]


def _normals_loops(vertices, faces, normals):
    """Sum each face's cross product (twice its area along its normal) into its corners, then normalise."""
    for n in range(vertices.shape[0]):
        for f in range(faces.shape[0]):
            i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
            ux, uy, uz = (vertices[n, i1, 0] - vertices[n, i0, 0], vertices[n, i1, 1] - vertices[n, i0, 1],
                          vertices[n, i1, 2] - vertices[n, i0, 2])
            vx, vy, vz = (vertices[n, i2, 0] - vertices[n, i0, 0], vertices[n, i2, 1] - vertices[n, i0, 1],
                          vertices[n, i2, 2] - vertices[n, i0, 2])
            cx, cy, cz = uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx
            for i in (i0, i1, i2):
                normals[n, i, 0] += cx
                normals[n, i, 1] += cy
                normals[n, i, 2] += cz
        for v in range(vertices.shape[1]):
            length = math.sqrt(normals[n, v, 0] ** 2 + normals[n, v, 1] ** 2 + normals[n, v, 2] ** 2)
            length = max(length, 1e-12)
            for k in range(3):
                normals[n, v, k] /= length


def _draw_loops(pixels, depth, faces, colors, size, supersample, cull, rgb, coverage, record, face_out, bary_out,
                background, images):
    """Rasterise N meshes one after the other: a depth buffer per mesh, then colours per pixel.

    The same sample positions, edge and depth tests as ``visible_samples`` (a sample on an edge belongs to
    both faces; the nearest face wins, at equal depth the one with the smaller index), with back faces
    culled as ``cull`` says. Depths are compared as floats here, not quantised.

    Args:
        pixels: (N, V, 2) float32 positions in pixels; depth: (N, V) float32; faces: (F, 3) int64.
        colors: (N, V, C) float32 vertex attributes.
        size, supersample, cull: as in ``draw_colors``.
        rgb: (N, size, size, C) float32 zeros, filled with the mean colour of each pixel's samples.
        coverage: (N, size, size) float32 zeros, filled with the share of each pixel's samples covered.
        record: also write each sample's face into ``face_out`` (N, side, side) int32 (-1 for none) and
            its barycentric coordinates w_b, w_c into ``bary_out`` (N, side, side, 2).
        background, images: with ``images`` of shape (N, size, size, C) uint8, the meshes are drawn over
            ``background`` (the same shape) into ``images``, and ``rgb`` and ``coverage`` are left alone.
    """
    num, num_faces, channels = pixels.shape[0], faces.shape[0], colors.shape[2]
    side = size * supersample
    zbuf = np.empty((side, side), dtype=np.float32)
    fbuf = np.empty((side, side), dtype=np.int32)
    wbuf = np.empty((side, side, 2), dtype=np.float32)
    weight = 1.0 / (supersample * supersample)
    for n in range(num):
        zbuf[:] = np.inf
        fbuf[:] = -1
        for f in range(num_faces):
            i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
            ax, ay = pixels[n, i0, 0] * supersample, pixels[n, i0, 1] * supersample
            bx, by = pixels[n, i1, 0] * supersample, pixels[n, i1, 1] * supersample
            cx, cy = pixels[n, i2, 0] * supersample, pixels[n, i2, 1] * supersample
            area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
            if not math.isfinite(area) or abs(area) <= 1e-12 or (cull != 0 and area * cull >= 0):
                continue  # also a corner at infinity or NaN
            # The box of samples, clamped to the image before it becomes integers.
            x0 = int(min(max(math.ceil(min(ax, bx, cx) - 0.5), 0.0), float(side)))
            x1 = int(max(min(math.floor(max(ax, bx, cx) - 0.5), side - 1.0), -1.0))
            y0 = int(min(max(math.ceil(min(ay, by, cy) - 0.5), 0.0), float(side)))
            y1 = int(max(min(math.floor(max(ay, by, cy) - 0.5), side - 1.0), -1.0))
            inv = 1.0 / area
            e1x, e1y = (cy - ay) * inv, -(cx - ax) * inv
            e2x, e2y = -(by - ay) * inv, (bx - ax) * inv
            e1, e2 = -(e1x * ax + e1y * ay), -(e2x * ax + e2y * ay)
            za = depth[n, i0]
            dzb, dzc = depth[n, i1] - za, depth[n, i2] - za
            for yy in range(y0, y1 + 1):
                r1, r2 = e1y * (yy + 0.5) + e1, e2y * (yy + 0.5) + e2
                for xx in range(x0, x1 + 1):
                    w1, w2 = e1x * (xx + 0.5) + r1, e2x * (xx + 0.5) + r2
                    if w1 >= 0.0 and w2 >= 0.0 and w1 + w2 <= 1.0:
                        z = za + w1 * dzb + w2 * dzc
                        if z < zbuf[yy, xx]:
                            zbuf[yy, xx] = z
                            fbuf[yy, xx] = f
                            wbuf[yy, xx, 0] = w1
                            wbuf[yy, xx, 1] = w2
        mean = np.zeros((size, size, channels + 1), dtype=np.float32)  # colours and coverage of the pixels
        for yy in range(side):
            for xx in range(side):
                f = fbuf[yy, xx]
                if record:
                    face_out[n, yy, xx] = f
                    bary_out[n, yy, xx, 0] = wbuf[yy, xx, 0] if f >= 0 else 0.0
                    bary_out[n, yy, xx, 1] = wbuf[yy, xx, 1] if f >= 0 else 0.0
                if f < 0:
                    continue
                w1, w2 = wbuf[yy, xx, 0], wbuf[yy, xx, 1]
                i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
                py, px = yy // supersample, xx // supersample
                for c in range(channels):
                    mean[py, px, c] += weight * ((1.0 - w1 - w2) * colors[n, i0, c] + w1 * colors[n, i1, c]
                                                 + w2 * colors[n, i2, c])
                mean[py, px, channels] += weight
        if images.shape[0] == 0:
            rgb[n] = mean[:, :, :channels]
            coverage[n] = mean[:, :, channels]
            continue
        for py in range(size):  # over the background: b (1 - coverage) + 255 colour, rounded
            for px in range(size):
                for c in range(channels):
                    value = background[n, py, px, c] * (1.0 - mean[py, px, channels]) + 255.0 * mean[py, px, c]
                    images[n, py, px, c] = int(min(max(value, 0.0), 255.0) + 0.5)
