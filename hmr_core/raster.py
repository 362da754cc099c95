"""A batched z-buffer rasteriser in torch: many meshes per call, on the CPU or a GPU.

The synthetic world (``synthetic_batch``) draws whole batches of bodies. OpenGL draws one body per call,
and on a machine without a GPU (Mesa's software renderer) most of its time goes to shading, multisampling
and reading back one framebuffer at a time. This rasteriser does what the flat-shaded drawing needs, for
N meshes at once, with tensor operations only:

1. every triangle of every mesh is put into a class by the size of its bounding box in pixels (1, 2, 4,
   ... across), and each class tests all the pixel centres (samples) of its boxes at once with the
   triangle's three edge functions;
2. the depth test is one ``scatter_reduce(..., "amin")``: a sample's key is its quantised depth in the
   high 32 bits and its face in the low 32, so the smallest key per sample is the nearest face;
3. the winning face's barycentric coordinates interpolate the vertex colours, and with ``supersample``
   = 2 the 2 × 2 samples of a pixel are averaged: antialiased edges, as OpenGL's 4× multisampling.

The camera is orthographic (HMR's weak perspective), so barycentric coordinates in the image are those on
the triangle: no perspective correction. A closed mesh (every edge shared by two faces) is drawn with its
back faces culled, which halves the work and changes no pixel: the first surface a ray meets on a closed
mesh is one it enters, a front face.

Letters in shapes: N meshes (images), V vertices, F faces, H = W = size · supersample samples per side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

# Depths are quantised per mesh (between its nearest and farthest vertex) and sit above the index in a key.
_DEPTH_LEVELS = 2**30  # headroom below 2^31: rounding may put an edge sample a little past it
_NO_FACE = torch.iinfo(torch.int64).max
# A key's low bits: the triangle's row among the candidate triangles of the call.
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
    """

    image: torch.Tensor
    y: torch.Tensor
    x: torch.Tensor
    face: torch.Tensor
    bary: torch.Tensor


def visible_samples(pixels: torch.Tensor, depth: torch.Tensor, faces: torch.Tensor, size: int,
                    cull: int = 0, workspace: dict | None = None) -> Samples:
    """Z-buffer rasterisation of N meshes with shared faces, kept sparse: the samples that see a face.

    The conventions are ``render.rasterize``'s: sample (i, j) has its centre at (j + 0.5, i + 0.5), x
    right, y down, smaller depth is nearer, and a centre on an edge belongs to both faces.

    Args:
        pixels: (N, V, 2) vertex positions in samples.
        depth: (N, V) vertex depths.
        faces: (F, 3) int64 vertex indices, on the same device.
        size: side of the square image in samples.
        cull: 0 draws both sides; +1 drops the faces that are clockwise on screen (for a closed mesh whose
            faces point outwards, seen along +z: its back faces), -1 those that are anticlockwise.
        workspace: a dict that keeps the depth buffer between calls (a fresh buffer of this size costs
            more in page faults than filling it); None for a new one.

    Returns:
        The ``Samples`` that see a face, ordered by image, row and column.
    """
    if pixels.ndim != 3 or pixels.shape[-1] != 2 or depth.shape != pixels.shape[:2]:
        raise ValueError(f"need pixels (N, V, 2) and depth (N, V), got {tuple(pixels.shape)} and "
                         f"{tuple(depth.shape)}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must have shape (F, 3), got {tuple(faces.shape)}")
    num, num_faces, dev = len(pixels), len(faces), pixels.device
    # Per triangle of every mesh, flat: row n · F + f is face f of mesh n.
    tri = pixels.float().index_select(1, faces.reshape(-1)).reshape(num * num_faces, 6)  # (N·F, 6)
    a, b, c = tri[:, 0:2], tri[:, 2:4], tri[:, 4:6]  # (N·F, 2)
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    low, high = torch.minimum(torch.minimum(a, b), c), torch.maximum(torch.maximum(a, b), c)
    first = torch.ceil(low - 0.5).clamp_(0, size).long()  # (N·F, 2) first sample column, row
    last = torch.floor(high - 0.5).clamp_(-1, size - 1).long()  # (N·F, 2) last sample column, row
    extent = (last - first + 1).amax(-1)  # (N·F,) samples across the box; ≤ 0 when it holds none
    keep = (extent > 0) & (area.abs() > 1e-12)
    if cull:
        keep &= area * cull < 0  # on screen (y down), an outward face that looks at the camera is negative
    rows = keep.nonzero()[:, 0]  # (M,) the triangles that may hold a sample
    # Boxes go into classes by width and height (one of _SIDES each, the smallest that holds them), and a
    # class tests all the samples of its boxes at once; boxes wider or taller than the largest side are
    # covered by tiles of that side. The triangles are sorted by class, so a class is a slice.
    box_first, box_last = first.index_select(0, rows), last.index_select(0, rows)  # (M, 2)
    width, height = (box_last - box_first + 1).T.contiguous()  # (M,) each
    sides = torch.tensor(_SIDES, device=dev)
    cls = torch.bucketize(width, sides) * len(_SIDES) + torch.bucketize(height, sides)
    big = (width > _SIDES[-1]) | (height > _SIDES[-1])
    cls = torch.where(big, len(_SIDES) ** 2 - 1, cls)
    cls, order = cls.sort()
    rows, box_first, box_last = rows[order], box_first[order], box_last[order]
    image, face = rows // num_faces, rows % num_faces
    # Depth, quantised per mesh between its nearest and farthest vertex, is a plane over the image:
    # z(q) = z_a + w_b(q) (z_b - z_a) + w_c(q) (z_c - z_a).
    z = depth.float()
    z_low, z_high = z.amin(1, keepdim=True), z.amax(1, keepdim=True)
    zq = ((z - z_low) / (z_high - z_low).clamp_min(1e-12) * _DEPTH_LEVELS).reshape(-1)  # (N·V,)
    corner = (image * pixels.shape[1])[:, None] + faces.index_select(0, face)  # (M, 3) rows of zq
    za, zb, zc = zq.index_select(0, corner.reshape(-1)).reshape(-1, 3).T  # (M,) each
    tri = tri.index_select(0, rows)
    a, b, c = tri[:, 0:2], tri[:, 2:4], tri[:, 4:6]  # (M, 2)
    inv = 1.0 / area.index_select(0, rows)
    # Barycentric coordinates as planes over the image, with u × v = u_x v_y - u_y v_x:
    # w_b(q) = ((q - a) × (c - a)) / area = e1x · qx + e1y · qy + e1, w_c(q) = ((b - a) × (q - a)) / area.
    e1x, e1y = (c[:, 1] - a[:, 1]) * inv, -(c[:, 0] - a[:, 0]) * inv
    e2x, e2y = -(b[:, 1] - a[:, 1]) * inv, (b[:, 0] - a[:, 0]) * inv
    e1 = -(e1x * a[:, 0] + e1y * a[:, 1])
    e2 = -(e2x * a[:, 0] + e2y * a[:, 1])
    zx, zy = e1x * (zb - za) + e2x * (zc - za), e1y * (zb - za) + e2y * (zc - za)
    z0 = za + e1 * (zb - za) + e2 * (zc - za)
    plane = torch.stack((e1x, e1y, e1, e2x, e2y, e2, zx, zy, z0), dim=1)  # (M, 9)
    # Samples past a box's last column or row are dropped, but their indices may run past the last image.
    zbuffer = _buffer(workspace, "zbuffer", num * size * size + (_SIDES[-1] + 1) * size, torch.int64, dev)
    zbuffer.fill_(_NO_FACE)
    classes, counts = torch.unique_consecutive(cls, return_counts=True)
    start = 0
    for k, count in zip(classes.tolist(), counts.tolist()):
        ids = torch.arange(start, start + count, device=dev)  # rows of ``plane``
        part = slice(start, start + count)
        start += count
        side_x, side_y = _SIDES[min(k // len(_SIDES), len(_SIDES) - 1)], _SIDES[k % len(_SIDES)]
        ox, oy, last_x, last_y = box_first[part, 0], box_first[part, 1], box_last[part, 0], box_last[part, 1]
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
        z = (p[:, 6:7] * qx + p[:, 8:9])[:, None, :] + (p[:, 7:8] * qy)[:, :, None]
        inside = (w1 >= 0) & (w2 >= 0) & (w1 + w2 <= 1)
        # One key per candidate sample: depth above, the triangle's row in ``plane`` below; outside: none.
        key = torch.where(inside, (z.long() << _INDEX_BITS) | ids[:, None, None], _NO_FACE)
        sample = ((first_sample[:, None] + py) * size)[:, :, None] + px[:, None, :]  # (m, side_y, side_x)
        zbuffer.scatter_reduce_(0, sample.reshape(-1), key.reshape(-1), "amin")
    zbuffer = zbuffer[: num * size * size]
    hit = (zbuffer != _NO_FACE).nonzero()[:, 0]  # (P,) flat samples that see a face
    row = zbuffer[hit] & (2**_INDEX_BITS - 1)  # (P,) the winning triangle's row in ``plane``
    image_p, rest = hit // (size * size), hit % (size * size)
    y, x = rest // size, rest % size
    p = plane.index_select(0, row)
    qx, qy = x.float() + 0.5, y.float() + 0.5
    w1, w2 = p[:, 0] * qx + p[:, 1] * qy + p[:, 2], p[:, 3] * qx + p[:, 4] * qy + p[:, 5]
    return Samples(image_p, y, x, face.index_select(0, row), torch.stack((1.0 - w1 - w2, w1, w2), dim=-1))


def _buffer(workspace: dict | None, name: str, numel: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A 1-D tensor of ``numel`` elements (contents undefined), kept in ``workspace`` for the next call."""
    if workspace is None:
        return torch.empty(numel, dtype=dtype, device=device)
    held = workspace.get(name)
    if held is None or held.numel() < numel or held.dtype != dtype or held.device != device:
        held = workspace[name] = torch.empty(numel, dtype=dtype, device=device)
    return held[:numel]


def rasterize(pixels: torch.Tensor, depth: torch.Tensor, faces: torch.Tensor, size: int,
              cull: int = 0) -> Fragments:
    """``visible_samples`` as images: the face and barycentric coordinates that each pixel centre sees.

    Args:
        pixels, depth, faces, size, cull: as in ``visible_samples``.

    Returns:
        The ``Fragments`` of the N images, (N, size, size).
    """
    samples = visible_samples(pixels, depth, faces, size, cull)
    num = len(pixels)
    face = torch.full((num, size, size), -1, dtype=torch.int64, device=pixels.device)
    bary = torch.zeros(num, size, size, 3, dtype=torch.float32, device=pixels.device)
    face[samples.image, samples.y, samples.x] = samples.face
    bary[samples.image, samples.y, samples.x] = samples.bary
    return Fragments(face, bary)


def draw_colors(pixels: torch.Tensor, depth: torch.Tensor, faces: torch.Tensor, colors: torch.Tensor, size: int,
                supersample: int = 2, cull: int = 0, workspace: dict | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """N meshes with interpolated vertex colours, antialiased by supersampling.

    Args:
        pixels: (N, V, 2) vertex positions in pixels of the ``size`` × ``size`` image.
        depth: (N, V) vertex depths, smaller is nearer.
        faces: (F, 3) vertex indices.
        colors: (N, V, 3) vertex colours.
        size: side of the square image.
        supersample: samples per pixel side (2: 4 samples per pixel, as OpenGL's 4× multisampling).
        cull, workspace: as in ``visible_samples``.

    Returns:
        ``(rgb, coverage)``: (N, size, size, 3) colours premultiplied by the (N, size, size) share of each
        pixel's samples that see the mesh, both float32.
    """
    if supersample < 1:
        raise ValueError(f"supersample must be ≥ 1, got {supersample}")
    num = len(pixels)
    samples = visible_samples(pixels * supersample, depth, faces, size * supersample, cull, workspace)
    num, num_vertices = colors.shape[:2]
    corners = (samples.image * num_vertices)[:, None] + faces.index_select(0, samples.face)  # (P, 3)
    corner_colors = colors.float().reshape(-1, 3).index_select(0, corners.reshape(-1)).reshape(-1, 3, 3)
    # c = Σ_k w_k c_k over the face's three corners, "pk,pkc->pc", and a 1 that counts the sample
    rgba = torch.cat((torch.einsum("pk,pkc->pc", samples.bary, corner_colors),
                      torch.ones_like(samples.bary[:, :1])), dim=1)  # (P, 4)
    # A pixel's colour is the mean of its supersample² samples (zero for those that see no face).
    pixel = (samples.image * size + samples.y // supersample) * size + samples.x // supersample  # (P,)
    out = torch.zeros(num * size * size, 4, dtype=torch.float32, device=pixels.device)
    out.index_add_(0, pixel, rgba, alpha=1.0 / supersample**2)
    out = out.reshape(num, size, size, 4)
    return out[..., :3], out[..., 3]
