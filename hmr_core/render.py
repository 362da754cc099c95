"""Offscreen mesh rendering for the book: pyrender through EGL when OpenGL works, else a NumPy rasteriser.

Meshes are drawn with HMR's weak-perspective camera (chapter "Projection and the reprojection loss"):
vertices are in the camera frame (x right, y down, z away from the camera) and a camera (s, tx, ty)
maps them to normalised image coordinates s · (X_xy + t), which cover the square image from -1 to 1.
So a rendered mesh lands exactly where ``camera.weak_perspective_project`` puts its keypoints.

Two backends give the same picture (up to shading):

* ``"pyrender"``: OpenGL, offscreen through EGL (``PYOPENGL_PLATFORM=egl``; on a machine without a GPU,
  Mesa's software EGL). pyrender and OpenGL are imported on first use, never at import of ``hmr_core``.
* ``"numpy"``: a z-buffer rasteriser in NumPy with per-pixel Lambert shading, for machines without
  OpenGL. Chosen automatically, with a one-line warning, when pyrender cannot start.

``$HMR_RENDER_BACKEND`` (``auto``, ``pyrender`` or ``numpy``) overrides the choice, as does ``backend=``.
Letters in shapes: V vertices, F faces, K keypoints, H/W image.
"""

import os
import warnings

import numpy as np
import torch

from hmr_core import camera, constants

RENDER_BACKEND_ENV_VAR = "HMR_RENDER_BACKEND"
BACKENDS = ("pyrender", "numpy")
DEFAULT_SIZE = 256  # pixels, the side of the square image when no background image is given
MESH_COLOR = (0.62, 0.72, 0.86)  # a light blue-grey that reads well over photos and on white
# Direction the light travels, in the camera frame: from above, a little left, behind the viewer.
LIGHT_DIRECTION = (0.3, 0.6, 1.0)
AMBIENT = 0.2  # share of the (linear) colour lit by ambient light
# pyrender's diffuse term is colour · intensity · cos / π, so this intensity gives the NumPy backend's
# AMBIENT + (1 - AMBIENT) · cos (checked on a sphere lit from the camera: within 3 of 255 levels).
_PYRENDER_INTENSITY = np.pi * (1.0 - AMBIENT)


_renderers: dict = {}  # image side in pixels -> pyrender.OffscreenRenderer, made on first use
_pyrender_failure: str | None = None  # why pyrender could not start, once it has failed
_warned = False


# --------------------------------------------------------------------------------------------------
# Geometry shared by both backends
# --------------------------------------------------------------------------------------------------
def _as_numpy(x, name: str, dtype=np.float64) -> np.ndarray:
    """A NumPy array of ``dtype`` from an array-like or a tensor (on any device)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a numeric array, got {type(x).__name__} ({err})") from err


def body_to_camera(vertices, yaw: float = 0.0) -> np.ndarray:
    """Turn a body from SMPL's axes (y up, facing +z) into the camera frame, facing the camera.

    The rotation is π about x (y and z change sign), which is what HMR's global rotation does to an
    upright person facing the camera; ``yaw`` first turns the body about its vertical axis.

    Args:
        vertices: (..., V, 3) points in SMPL's axes.
        yaw: rotation about the body's up axis, radians (positive turns the body to its left).

    Returns:
        (..., V, 3) points in the camera frame (x right, y down, z away from the camera).
    """
    points = _as_numpy(vertices, "vertices")
    c, s = np.cos(yaw), np.sin(yaw)
    # rotation about y by yaw, then diag(1, -1, -1)
    rotation = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    rotation = np.diag([1.0, -1.0, -1.0]) @ rotation
    return points @ rotation.T


def fit_cam(points, margin: float = 0.08) -> np.ndarray:
    """The weak-perspective camera (s, tx, ty) that centres ``points`` and fills the square image.

    Args:
        points: (..., N, 3) points in the camera frame; all of them are framed together.
        margin: free border, as a fraction of the half-width of the image.

    Returns:
        (3,) camera (s, tx, ty).
    """
    xy = _as_numpy(points, "points")[..., :2].reshape(-1, 2)
    low, high = xy.min(0), xy.max(0)
    half = max(float((high - low).max()) / 2.0, 1e-6)
    centre = (low + high) / 2.0
    return np.array([(1.0 - margin) / half, -centre[0], -centre[1]])


def _to_pixels(vertices: np.ndarray, cam: np.ndarray, size: int) -> np.ndarray:
    """(V, 3) camera-frame points → (V, 2) pixel coordinates with ``camera.weak_perspective_project``."""
    points = torch.from_numpy(vertices)[None]  # (1, V, 3)
    normalised = camera.weak_perspective_project(points, torch.from_numpy(cam)[None].to(points))
    return camera.normalized_to_pixel(normalised, size)[0].numpy()  # (V, 2)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals.

    Args:
        vertices: (V, 3) vertices.
        faces: (F, 3) vertex indices.

    Returns:
        (V, 3) unit normals (zero for unused vertices).
    """
    tri = vertices[faces]  # (F, 3, 3)
    face_normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # (F, 3), length 2·area
    normals = np.zeros_like(vertices)
    for k in range(3):
        for axis in range(3):
            normals[:, axis] += np.bincount(faces[:, k], face_normals[:, axis], minlength=len(vertices))
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.maximum(length, 1e-12)


def _check_mesh(vertices, faces) -> tuple[np.ndarray, np.ndarray]:
    vertices = _as_numpy(vertices, "vertices")
    faces = _as_numpy(faces, "faces", np.int64)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must have shape (V, 3), got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must have shape (F, 3), got {faces.shape}")
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError(f"faces index vertices outside [0, {len(vertices)})")
    return vertices, faces


# --------------------------------------------------------------------------------------------------
# NumPy backend
# --------------------------------------------------------------------------------------------------
def rasterize(pixels: np.ndarray, depth: np.ndarray, faces: np.ndarray, size: int):
    """Z-buffer rasterisation: which face, and where in it, each pixel centre sees.

    Triangles are grouped by the size of their bounding boxes (1, 2, 4, ... pixels), and each group
    tests all the pixel centres of its boxes at once, so the work is vectorised and proportional to the
    covered area. Both windings are drawn (the mesh is seen from either side).

    Args:
        pixels: (V, 2) vertex positions in pixels (x right, y down; pixel (i, j) has its centre at
            (j + 0.5, i + 0.5)).
        depth: (V,) vertex depths, smaller is closer.
        faces: (F, 3) vertex indices.
        size: the side of the square image, H = W = size.

    Returns:
        ``(face_id, bary)``: (H, W) the visible face per pixel (-1 for none) and (H, W, 3) its
        barycentric coordinates there.
    """
    tri = pixels[faces]  # (F, 3, 2)
    tri_z = depth[faces]  # (F, 3)
    x0 = np.ceil(tri[..., 0].min(1) - 0.5).astype(np.int64).clip(0, size)
    x1 = np.floor(tri[..., 0].max(1) - 0.5).astype(np.int64).clip(-1, size - 1)
    y0 = np.ceil(tri[..., 1].min(1) - 0.5).astype(np.int64).clip(0, size)
    y1 = np.floor(tri[..., 1].max(1) - 0.5).astype(np.int64).clip(-1, size - 1)
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])  # (F,) 2·signed area
    extent = np.maximum(x1 - x0, y1 - y0) + 1  # (F,) pixels across the box; ≤ 0 when it holds no centre
    keep = (extent > 0) & (np.abs(area) > 1e-12)
    pid_parts, z_parts, face_parts, bary_parts = [], [], [], []
    box_class = np.ceil(np.log2(np.maximum(extent, 1))).astype(np.int64)
    for k in np.unique(box_class[keep]):
        ids = np.nonzero(keep & (box_class == k))[0]
        side = 2 ** int(k)
        dy, dx = np.divmod(np.arange(side * side), side)  # offsets within a side × side box
        px = x0[ids, None] + dx  # (n, side²)
        py = y0[ids, None] + dy
        inside_box = (px <= x1[ids, None]) & (py <= y1[ids, None])
        rows, cols = np.nonzero(inside_box)
        f = ids[rows]
        qx, qy = px[rows, cols] + 0.5, py[rows, cols] + 0.5  # pixel centres
        # barycentric coordinates from the signed areas of the sub-triangles
        w0 = ((b[f, 0] - qx) * (c[f, 1] - qy) - (b[f, 1] - qy) * (c[f, 0] - qx)) / area[f]
        w1 = ((c[f, 0] - qx) * (a[f, 1] - qy) - (c[f, 1] - qy) * (a[f, 0] - qx)) / area[f]
        w2 = 1.0 - w0 - w1
        inside = (w0 >= -1e-9) & (w1 >= -1e-9) & (w2 >= -1e-9)
        f, w0, w1, w2 = f[inside], w0[inside], w1[inside], w2[inside]
        pid_parts.append((py[rows, cols] * size + px[rows, cols])[inside])
        z_parts.append(w0 * tri_z[f, 0] + w1 * tri_z[f, 1] + w2 * tri_z[f, 2])
        face_parts.append(f)
        bary_parts.append(np.stack((w0, w1, w2), axis=-1))
    face_id = np.full(size * size, -1, dtype=np.int64)
    bary = np.zeros((size * size, 3))
    if pid_parts:
        pid, z = np.concatenate(pid_parts), np.concatenate(z_parts)
        order = np.lexsort((z, pid))  # by pixel, then nearest first
        pid = pid[order]
        first = np.ones(len(pid), dtype=bool)
        first[1:] = pid[1:] != pid[:-1]
        winners = order[first]
        face_id[pid[first]] = np.concatenate(face_parts)[winners]
        bary[pid[first]] = np.concatenate(bary_parts)[winners]
    return face_id.reshape(size, size), bary.reshape(size, size, 3)


def _render_numpy(
    vertices: np.ndarray, faces: np.ndarray, cam: np.ndarray, size: int, colors: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) colour in [0, 1] premultiplied by the (H, W) coverage of the mesh, with the NumPy rasteriser."""
    pixels = _to_pixels(vertices, cam, size)
    face_id, bary = rasterize(pixels, vertices[:, 2], faces, size)
    mask = face_id >= 0
    normals = vertex_normals(vertices, faces)
    hit_faces = faces[face_id[mask]]  # (n, 3)
    n = np.einsum("nk,nkc->nc", bary[mask], normals[hit_faces])  # (n, 3) interpolated normals
    # Face the viewer (who looks along +z): flip normals of faces seen from behind.
    n *= -np.sign(n[:, 2:3] + 1e-12)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    light = -np.asarray(LIGHT_DIRECTION)  # towards the light
    light = light / np.linalg.norm(light)
    shade = AMBIENT + (1.0 - AMBIENT) * np.clip(n @ light, 0.0, 1.0)  # Lambert
    rgb = np.zeros((size, size, 3))
    # Light adds up in linear space; colours are sRGB (gamma 2.2), as in pyrender's shader.
    albedo = np.einsum("nk,nkc->nc", bary[mask], colors[hit_faces])  # (n, 3) interpolated vertex colours
    rgb[mask] = shade[:, None] ** (1.0 / 2.2) * albedo
    return rgb, mask.astype(np.float64)


# --------------------------------------------------------------------------------------------------
# pyrender backend
# --------------------------------------------------------------------------------------------------
def _import_pyrender():
    # PyOpenGL picks its platform at its first import; EGL renders offscreen without a display.
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    import pyrender

    return pyrender


def _offscreen_renderer(size: int):
    """One ``pyrender.OffscreenRenderer`` per image size, kept: starting an OpenGL context is slow."""
    if size not in _renderers:
        pyrender = _import_pyrender()
        _renderers[size] = pyrender.OffscreenRenderer(size, size)
    return _renderers[size]


def _render_pyrender(
    vertices: np.ndarray, faces: np.ndarray, cam: np.ndarray, size: int, colors: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) colour in [0, 1] premultiplied by the (H, W) coverage of the mesh, with OpenGL."""
    pyrender = _import_pyrender()
    renderer = _offscreen_renderer(size)
    s, tx, ty = (float(v) for v in cam)
    # Camera frame (x right, y down, z forward) → OpenGL's (x right, y up, z backward): rotate π about x.
    gl = np.empty_like(vertices)
    gl[:, 0] = vertices[:, 0] + tx
    gl[:, 1] = -(vertices[:, 1] + ty)
    gl[:, 2] = -vertices[:, 2]
    normals = vertex_normals(gl, faces)
    material = pyrender.MetallicRoughnessMaterial(
        baseColorFactor=(1.0, 1.0, 1.0, 1.0), metallicFactor=0.0, roughnessFactor=0.7, doubleSided=True
    )
    linear = np.concatenate((colors ** 2.2, np.ones((len(colors), 1))), axis=1)  # sRGB → linear, RGBA
    primitive = pyrender.Primitive(
        positions=gl.astype(np.float32), normals=normals.astype(np.float32), color_0=linear.astype(np.float32),
        indices=faces.astype(np.uint32), material=material,
    )
    # A transparent black background: the multisampled edges come back premultiplied by their coverage.
    scene = pyrender.Scene(bg_color=(0.0, 0.0, 0.0, 0.0), ambient_light=(AMBIENT,) * 3)
    scene.add(pyrender.Mesh([primitive]))
    # Orthographic: x ∈ [-1/s, 1/s] fills the image, which is x_normalised = s · (X + tx).
    # pyrender shades with the direction to the camera's position even for an orthographic camera, so
    # the camera stands far away, where that direction is the same (+z) for every point.
    distance = 100.0
    near, far = distance - 1.0, distance + float(np.ptp(gl[:, 2])) + 1.0
    pose = np.eye(4)
    pose[2, 3] = float(gl[:, 2].max()) + distance
    scene.add(pyrender.OrthographicCamera(xmag=1.0 / s, ymag=1.0 / s, znear=near, zfar=far), pose=pose)
    light_pose = np.eye(4)
    # A directional light shines along its node's -z: point that along LIGHT_DIRECTION (in GL axes).
    direction = np.array([LIGHT_DIRECTION[0], -LIGHT_DIRECTION[1], -LIGHT_DIRECTION[2]], dtype=np.float64)
    direction /= np.linalg.norm(direction)
    z_axis = -direction
    x_axis = np.cross([0.0, 1.0, 0.0], z_axis)
    x_axis /= np.linalg.norm(x_axis)
    light_pose[:3, :3] = np.stack((x_axis, np.cross(z_axis, x_axis), z_axis), axis=1)
    scene.add(pyrender.DirectionalLight(color=np.ones(3), intensity=_PYRENDER_INTENSITY), pose=light_pose)
    rgba, _ = renderer.render(scene, flags=pyrender.RenderFlags.RGBA)
    rgba = rgba.astype(np.float64) / 255.0
    return rgba[..., :3], rgba[..., 3]


# --------------------------------------------------------------------------------------------------
# Choosing the backend and composing
# --------------------------------------------------------------------------------------------------
def available_backend(backend: str | None = None) -> str:
    """The backend that ``render_mesh`` will use: ``backend``, else ``$HMR_RENDER_BACKEND``, else auto.

    "auto" tries pyrender once; if OpenGL cannot start, it warns once (one line naming the reason) and
    every later call uses the NumPy rasteriser.

    Args:
        backend: "auto", "pyrender", "numpy" or None.

    Returns:
        "pyrender" or "numpy".

    Raises:
        ValueError: for an unknown backend name.
        RuntimeError: if "pyrender" was asked for explicitly and cannot start.
    """
    global _pyrender_failure, _warned
    choice = (backend or os.environ.get(RENDER_BACKEND_ENV_VAR) or "auto").lower()
    if choice not in BACKENDS + ("auto",):
        raise ValueError(f"render backend must be one of {BACKENDS + ('auto',)}, got {choice!r}")
    if choice == "numpy":
        return "numpy"
    if _pyrender_failure is None:
        try:
            _offscreen_renderer(DEFAULT_SIZE)
        # OpenGL fails to start in many ways (missing library, no EGL device, no context...); each is
        # reported by its own exception type, and any of them means: use the rasteriser instead.
        except Exception as err:  # noqa: BLE001
            _pyrender_failure = f"{type(err).__name__}: {err}".splitlines()[0]
    if _pyrender_failure is None:
        return "pyrender"
    if choice == "pyrender":
        raise RuntimeError(f"pyrender cannot render offscreen here ({_pyrender_failure}); use backend='numpy'")
    if not _warned:
        warnings.warn(
            f"hmr_core.render: OpenGL is unavailable ({_pyrender_failure}); using the NumPy rasteriser",
            RuntimeWarning, stacklevel=3,
        )
        _warned = True
    return "numpy"


def render_mesh(
    vertices,
    faces,
    cam=None,
    image: np.ndarray | None = None,
    size: int | None = None,
    color=MESH_COLOR,
    alpha: float = 1.0,
    backend: str | None = None,
    vertex_colors=None,
) -> np.ndarray:
    """Render a mesh with HMR's weak-perspective camera, alone or over an image.

    Args:
        vertices: (V, 3) vertices in the camera frame (x right, y down, z away from the camera);
            ``body_to_camera`` turns an SMPL body (y up) into it. NumPy or torch.
        faces: (F, 3) vertex indices.
        cam: (3,) camera (s, tx, ty) in HMR's normalised coordinates; None frames the mesh (``fit_cam``).
        image: (H, W, 3) uint8 square background; None for white.
        size: the image side in pixels when there is no background (default ``DEFAULT_SIZE``).
        color: RGB in [0, 1] of the mesh.
        alpha: opacity of the mesh over the background.
        backend: "auto", "pyrender" or "numpy"; None reads ``$HMR_RENDER_BACKEND`` (see
            ``available_backend``).
        vertex_colors: (V, 3) RGB in [0, 1] per vertex, interpolated over the faces; overrides ``color``.

    Returns:
        (H, W, 3) uint8 image.

    Raises:
        ValueError: for wrongly shaped vertices, faces, camera or image.
    """
    vertices, faces = _check_mesh(vertices, faces)
    cam = fit_cam(vertices) if cam is None else _as_numpy(cam, "cam").reshape(-1)
    if cam.shape != (constants.CAM_DIM,):
        raise ValueError(f"cam must have shape ({constants.CAM_DIM},), got {cam.shape}")
    if image is not None:
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] != image.shape[1]:
            raise ValueError(f"image must be a square (H, W=H, 3) RGB array, got shape {image.shape}")
        if size is not None and size != image.shape[0]:
            raise ValueError(f"size={size} does not match the image of shape {image.shape}")
        size = image.shape[0]
        background = image.astype(np.float64) / (255.0 if image.dtype == np.uint8 else 1.0)
    else:
        size = DEFAULT_SIZE if size is None else int(size)
        background = np.ones((size, size, 3))
    if vertex_colors is None:
        colors = np.broadcast_to(np.asarray(color, dtype=np.float64)[:3], vertices.shape)
    else:
        colors = _as_numpy(vertex_colors, "vertex_colors")
        if colors.shape != vertices.shape:
            raise ValueError(f"vertex_colors must have shape (V={len(vertices)}, 3), got {colors.shape}")
    render = _render_pyrender if available_backend(backend) == "pyrender" else _render_numpy
    rgb, coverage = render(vertices, faces, cam, size, colors)
    # Both backends return colour premultiplied by coverage (antialiased edges are partly covered).
    out = background * (1.0 - alpha * coverage[..., None]) + alpha * rgb
    return (out.clip(0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def plot_keypoints(ax, keypoints_2d, visibility=None, names: bool = False, color="tab:red", size: float = 12.0,
                   fontsize: float = 7.0):
    """Draw HMR's 19 keypoints and their skeleton on a matplotlib axis, in pixel coordinates.

    Args:
        ax: a matplotlib axis showing the image.
        keypoints_2d: (K, 2) pixel coordinates in ``constants.KEYPOINT_NAMES`` order (K = 19, or the 14
            LSP joints).
        visibility: (K,) visibility; invisible keypoints are not drawn. None draws all.
        names: write each keypoint's name next to it.
        color: matplotlib colour of points and lines.
        size: marker area.
        fontsize: size of the names.
    """
    points = _as_numpy(keypoints_2d, "keypoints_2d")
    if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] > constants.NUM_KEYPOINTS:
        raise ValueError(f"keypoints_2d must have shape (K≤{constants.NUM_KEYPOINTS}, 2), got {points.shape}")
    visible = np.ones(len(points), bool) if visibility is None else _as_numpy(visibility, "visibility") > 0
    index = {name: k for k, name in enumerate(constants.KEYPOINT_NAMES[: len(points)])}
    limits = ax.get_xlim(), ax.get_ylim()  # points outside the image must not zoom the view out
    for a, b in constants.KEYPOINT_SKELETON:
        if a in index and b in index and visible[index[a]] and visible[index[b]]:
            ax.plot(*points[[index[a], index[b]]].T, color=color, lw=1.5, alpha=0.8)
    ax.scatter(*points[visible].T, s=size, color=color, zorder=3, edgecolors="white", linewidths=0.5)
    if names:
        for k in np.nonzero(visible)[0]:
            name = constants.KEYPOINT_NAMES[k]
            # the subject's right is on the image's left (facing the camera): label outwards; the hips'
            # labels go below their points, clear of the wrists', which hang at the same height
            right = name.startswith("right_")
            offset = (-4 if right else 4, -11 if name in ("neck", "right_hip", "left_hip") else 2)
            ax.annotate(name, points[k], fontsize=fontsize, xytext=offset, textcoords="offset points",
                        ha="right" if right else "left", color="black")
    if ax.images:
        ax.set_xlim(*limits[0])
        ax.set_ylim(*limits[1])


def draw_keypoints(
    image: np.ndarray, keypoints_2d, visibility=None, color=(220, 40, 40), radius: int = 2
) -> np.ndarray:
    """Draw HMR's keypoints and their skeleton into a copy of an image (fast: for slider frames).

    Args:
        image: (H, W, 3) uint8 image.
        keypoints_2d: (K, 2) pixel coordinates in ``constants.KEYPOINT_NAMES`` order (K ≤ 19).
        visibility: (K,) visibility; invisible keypoints are not drawn. None draws all.
        color: RGB 0-255 of points and lines.
        radius: point radius in pixels.

    Returns:
        (H, W, 3) uint8 image with the keypoints drawn.
    """
    from PIL import Image, ImageDraw

    points = _as_numpy(keypoints_2d, "keypoints_2d")
    if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] > constants.NUM_KEYPOINTS:
        raise ValueError(f"keypoints_2d must have shape (K≤{constants.NUM_KEYPOINTS}, 2), got {points.shape}")
    visible = np.ones(len(points), bool) if visibility is None else _as_numpy(visibility, "visibility") > 0
    index = {name: k for k, name in enumerate(constants.KEYPOINT_NAMES[: len(points)])}
    pil = Image.fromarray(np.asarray(image, dtype=np.uint8))
    pen = ImageDraw.Draw(pil)
    for a, b in constants.KEYPOINT_SKELETON:
        if a in index and b in index and visible[index[a]] and visible[index[b]]:
            pen.line([tuple(points[index[a]]), tuple(points[index[b]])], fill=tuple(color), width=1)
    for (x, y), shown in zip(points, visible):
        if shown:
            pen.ellipse([x - radius, y - radius, x + radius, y + radius], fill=tuple(color), outline=(255, 255, 255))
    return np.asarray(pil)
