"""A live body model for the static HTML book: sliders for β and θ whose mesh the browser computes.

The page gets the model's arrays, written here from the model file, and a small script
(``hmr_core/data/web_viewer.js``) that computes M(β, θ) itself in JavaScript, step by step as
``hmr_core.lbs`` does (shape blend shapes, J(β) by regression, Rodrigues, forward kinematics, linear
blend skinning), and draws it with plain WebGL. Nothing is fetched: the arrays and the script are inline,
so the same HTML works in the built book, opened from disk, and as an output cell in Jupyter or Colab.
Without WebGL the page shows precomputed frames instead (``fallback_html``).

What the page carries, and how exact it is (chapter "The SMPL body model"):

* ``v_template`` and the skinning weights as float32, the model file's own values, and the joint
  regressor folded into the shape basis, J(β) = 𝒥T̄ + (𝒥S)β as in ``hmr_core.SMPL``, in float64.
  The weights are stored sparse (every non-zero weight of every vertex, at most 7 for the open body
  model), which is smaller than four dense weights per vertex and exact: keeping only each vertex's four
  largest weights and renormalising moves 497 of the open model's vertices by up to 3 cm in a posed body.
* The shape basis as int16 with one scale per coefficient: each entry is off by at most half a step,
  ``max|S_s| / 65534``, so a vertex is off by at most ``√3 · Σ_s |β_s| · step_s / 2``
  (``shape_error_bound``), about 1.3e-5 m with every |β_s| = 3 for the open model, in any pose. At β = 0
  the page is exact.
* Pose blend shapes are not carried (the open body model has none; the official SMPL's would be 8 MB).

Letters in shapes: V vertices, J joints, S shape coefficients, F faces.
"""

import argparse
import base64
import datetime
import html
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from hmr_core import constants

_INT16_MAX = 32767


@dataclass(frozen=True)
class PoseSlider:
    """A slider that sets one axis-angle component of one joint.

    Attributes:
        joint: SMPL joint name (``constants.SMPL_JOINT_NAMES``).
        axis: 0, 1 or 2: the x, y or z component of the joint's axis-angle vector (SMPL's axes: y up,
            x to the body's left, z forward).
        sign: the slider value times ``sign`` is the component, so that positive values bend the body
            the natural way (arms down, elbows and knees bend, legs forward, spine forward).
        min: lowest value, radians.
        max: highest value, radians.
        label: text next to the slider.
    """

    joint: str
    axis: int
    sign: float
    min: float
    max: float
    label: str


# Root, spine and neck in three axes; hips and shoulders in two; knees and elbows in the one they bend in.
POSE_SLIDERS = (
    PoseSlider("pelvis", 1, 1.0, -3.14, 3.14, "root turn (y)"),
    PoseSlider("pelvis", 0, 1.0, -1.57, 1.57, "root tilt (x)"),
    PoseSlider("pelvis", 2, 1.0, -1.57, 1.57, "root roll (z)"),
    PoseSlider("spine1", 0, 1.0, -0.6, 1.2, "spine bend (x)"),
    PoseSlider("spine1", 1, 1.0, -0.8, 0.8, "spine twist (y)"),
    PoseSlider("spine1", 2, 1.0, -0.6, 0.6, "spine side (z)"),
    PoseSlider("neck", 0, 1.0, -0.6, 0.8, "neck nod (x)"),
    PoseSlider("neck", 1, 1.0, -1.0, 1.0, "neck turn (y)"),
    PoseSlider("neck", 2, 1.0, -0.6, 0.6, "neck tilt (z)"),
    PoseSlider("left_hip", 0, -1.0, -0.6, 2.0, "left hip flex (x)"),
    PoseSlider("left_hip", 2, 1.0, -0.3, 1.0, "left hip out (z)"),
    PoseSlider("right_hip", 0, -1.0, -0.6, 2.0, "right hip flex (x)"),
    PoseSlider("right_hip", 2, -1.0, -0.3, 1.0, "right hip out (z)"),
    PoseSlider("left_knee", 0, 1.0, 0.0, 2.4, "left knee (x)"),
    PoseSlider("right_knee", 0, 1.0, 0.0, 2.4, "right knee (x)"),
    PoseSlider("left_shoulder", 2, -1.0, -1.0, 1.6, "left shoulder down (z)"),
    PoseSlider("left_shoulder", 1, -1.0, -1.2, 1.2, "left shoulder fwd (y)"),
    PoseSlider("right_shoulder", 2, 1.0, -1.0, 1.6, "right shoulder down (z)"),
    PoseSlider("right_shoulder", 1, 1.0, -1.2, 1.2, "right shoulder fwd (y)"),
    PoseSlider("left_elbow", 1, -1.0, 0.0, 2.5, "left elbow (y)"),
    PoseSlider("right_elbow", 1, 1.0, 0.0, 2.5, "right elbow (y)"),
)
BETA_RANGE = 3.0  # the β sliders span ±3 standard deviations


def _b64(array: np.ndarray) -> str:
    """Little-endian bytes of an array as base64 (JavaScript's typed arrays are little-endian here)."""
    little = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False)
    return base64.b64encode(little.tobytes()).decode("ascii")


def _unb64(text: str, dtype) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.dtype(dtype).newbyteorder("<"))


def _csr(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of a mostly-zero (R, C) matrix as offsets (R + 1), column indices and values (CSR)."""
    rows, cols = np.nonzero(matrix)
    offsets = np.zeros(matrix.shape[0] + 1, dtype=np.uint32)
    np.cumsum(np.bincount(rows, minlength=matrix.shape[0]), out=offsets[1:])
    return offsets, cols, matrix[rows, cols]


def pack_model(arrays: dict[str, np.ndarray] | None = None, num_betas: int = constants.NUM_BETAS,
               drop_pose_blend_shapes: bool = False) -> dict:
    """The arrays the page reads, JSON-ready (typed arrays as base64).

    Args:
        arrays: model arrays as ``model_files.load_model_arrays`` returns them; None loads the default
            model ($HMR_SMPL_MODEL, else the open body model).
        num_betas: how many shape coefficients the page gets sliders for.
        drop_pose_blend_shapes: the page has no pose blend shapes; a model that has them is refused
            unless this is True (then the page's posed bodies lack SMPL's corrective offsets).

    Returns:
        A dict of plain values (``dequantised_shapedirs`` decodes its shape basis).

    Raises:
        ValueError: for a model with pose blend shapes (without ``drop_pose_blend_shapes``), with more
            than 255 joints, or with fewer shape coefficients than ``num_betas``.
    """
    from hmr_core.body_model import keypoint_regressor, sparse_rows
    from hmr_core.model_files import load_model_arrays, validate_model_arrays

    arrays = load_model_arrays(None) if arrays is None else validate_model_arrays(arrays)
    has_pose_blend = bool(np.any(arrays["posedirs"] != 0))
    if has_pose_blend and not drop_pose_blend_shapes:
        raise ValueError(
            f"the model {arrays.get('model_name', '')!s} has pose blend shapes, which the web viewer does not "
            "carry (too large for a page); pass drop_pose_blend_shapes=True to show it without them"
        )
    v_template = np.asarray(arrays["v_template"], dtype=np.float32)  # (V, 3)
    num_verts = v_template.shape[0]
    shapedirs = np.asarray(arrays["shapedirs"], dtype=np.float64)  # (V, 3, S_file)
    if shapedirs.shape[-1] < num_betas:
        raise ValueError(f"num_betas={num_betas} but the model has {shapedirs.shape[-1]} shape coefficients")
    basis = shapedirs[..., :num_betas].reshape(-1, num_betas).T  # (S, 3V)
    scale = np.abs(basis).max(1) / _INT16_MAX  # (S,)
    scale[scale == 0] = 1.0
    shape_q = np.round(basis / scale[:, None]).astype(np.int16)  # (S, 3V)
    parents = [int(p) for p in arrays["kintree_table"][0]]
    if len(parents) > 255:
        raise ValueError(f"the viewer stores joint indices as bytes; this model has {len(parents)} joints")
    skin_offset, skin_joint, skin_weight = _csr(np.asarray(arrays["weights"], dtype=np.float32))  # (V, J)
    # J(β) = 𝒥T̄ + (𝒥S)β: the regressor folded into the shape basis in float64, so the joints carry no
    # quantisation error (as in hmr_core.SMPL; chapter "The SMPL body model").
    regressor = np.asarray(arrays["J_regressor"], dtype=np.float64)  # (J, V)
    joint_template = regressor @ v_template.astype(np.float64)  # (J, 3)
    joint_shapedirs = np.einsum("jv,vks->sjk", regressor, shapedirs[..., :num_betas])  # (S, J, 3)
    faces = np.asarray(arrays["f"])
    keypoints = {}
    try:  # HMR's 19 keypoints, for the camera's view; a model without their regressor shows none
        index, weight = sparse_rows(keypoint_regressor(arrays))  # (K, N) each
        keypoints = {"num_keypoints": len(index), "keypoint_index": _b64(index.astype(np.uint32).reshape(-1)),
                     "keypoint_weight": _b64(weight.astype(np.float64).reshape(-1))}
    except ValueError:
        pass
    faces_dtype = "uint16" if num_verts <= np.iinfo(np.uint16).max else "uint32"
    # Frame the rest body: look at the middle of its bounding box from the front, a little above.
    low, high = v_template.min(0).astype(float), v_template.max(0).astype(float)
    fov = 0.6  # radians, vertical
    distance = 1.25 * float(high[1] - low[1]) / (2 * np.tan(fov / 2)) + float(high[2])
    return {
        "model_name": str(arrays.get("model_name", "custom")),
        "num_vertices": num_verts,
        "num_betas": num_betas,
        "parents": parents,
        "joint_names": list(constants.SMPL_JOINT_NAMES) if len(parents) == constants.NUM_SMPL_JOINTS else [],
        "pose_blend_shapes_dropped": has_pose_blend,
        "v_template": _b64(v_template.reshape(-1)),
        "shapedirs_q": _b64(shape_q.reshape(-1)),
        "shapedirs_scale": [float(s) for s in scale],
        "faces": _b64(faces.astype(faces_dtype).reshape(-1)),
        "faces_dtype": faces_dtype,
        "skin_count": _b64(np.diff(skin_offset).astype(np.uint8)),  # weights per vertex
        "skin_joint": _b64(skin_joint.astype(np.uint8)),
        "skin_weight": _b64(skin_weight.astype(np.float32)),
        "joint_template": _b64(joint_template.reshape(-1)),
        "joint_shapedirs": _b64(joint_shapedirs.reshape(-1)),
        **keypoints,
        "view": {"yaw": 0.35, "pitch": 0.12, "distance": distance, "fov": fov,
                 "target": [float(x) for x in (low + high) / 2]},
    }


def dequantised_shapedirs(packed: dict) -> np.ndarray:
    """The shape basis as the page decodes it.

    Args:
        packed: what ``pack_model`` returned.

    Returns:
        (V, 3, S) float64 shape basis.
    """
    num_verts, num_betas = packed["num_vertices"], packed["num_betas"]
    scale = np.asarray(packed["shapedirs_scale"])
    shape_q = _unb64(packed["shapedirs_q"], np.int16).reshape(num_betas, -1).astype(np.float64)  # (S, 3V)
    return (shape_q * scale[:, None]).T.reshape(num_verts, 3, num_betas)


def shape_error_bound(packed: dict, betas: np.ndarray) -> float:
    """The most any vertex can move because the page's shape basis is int16: √3 · Σ_s |β_s| · step_s / 2.

    Each of a vertex's three coordinates in S_s is off by at most half a step, so its offset vector by
    √3 half steps.
    It holds in every pose: only the rest vertex T(β) carries the error (the joints J(β) come from the
    exact folded basis), and skinning moves it by a convex blend of rotations, which lengthens no offset.

    Args:
        packed: what ``pack_model`` returned.
        betas: (S,) shape coefficients.

    Returns:
        The bound in metres.
    """
    half_steps = np.abs(np.asarray(betas, dtype=np.float64)) @ np.asarray(packed["shapedirs_scale"]) / 2
    return float(np.sqrt(3.0) * half_steps)


CAMERA_SLIDERS = (  # (name, min, max, start, label) of HMR's camera and the turn of the upright body
    ("s", 0.3, 1.5, 0.9, "scale s"), ("tx", -0.8, 0.8, 0.0, "tx (m)"), ("ty", -0.8, 0.8, 0.0, "ty (m)"),
)
TURN_SLIDERS = (("yaw", -3.14, 3.14, "yaw (rad)"), ("pitch", -1.0, 1.0, "pitch (rad)"),
                ("roll", -1.0, 1.0, "roll (rad)"))


def _sliders(packed: dict, camera: bool, pose_sliders=POSE_SLIDERS) -> list[dict]:
    names = packed["joint_names"]
    specs = []
    if camera:
        specs += [{"kind": "cam", "index": i, "min": lo, "max": hi, "step": 0.01, "value": start, "label": label,
                   "group": "camera (s, tx, ty)" if i == 0 else ""}
                  for i, (_, lo, hi, start, label) in enumerate(CAMERA_SLIDERS)]
        specs += [{"kind": "turn", "index": i, "min": lo, "max": hi, "step": 0.01, "label": label,
                   "group": "global rotation: the upright body turned" if i == 0 else ""}
                  for i, (_, lo, hi, label) in enumerate(TURN_SLIDERS)]
    specs += [{"kind": "beta", "index": s, "sign": 1.0, "min": -BETA_RANGE, "max": BETA_RANGE, "step": 0.05,
               "label": f"β{s + 1}", "group": "shape β" if s == 0 else ""} for s in range(packed["num_betas"])]
    if not names:
        return specs  # a model with other joints gets shape sliders only
    if camera:  # the turn sliders set the root
        pose_sliders = [s for s in pose_sliders if s.joint != names[0]]
    for i, slider in enumerate(pose_sliders):
        if slider.joint not in names or slider.axis not in (0, 1, 2):
            raise ValueError(f"pose slider {slider} names no joint of {names} or an axis outside 0-2")
        specs.append({"kind": "pose", "index": 3 * names.index(slider.joint) + slider.axis,
                      "sign": slider.sign, "min": slider.min, "max": slider.max, "step": 0.01,
                      "label": slider.label, "group": "pose θ (axis-angle, rad)" if i == 0 else ""})
    return specs


def script_source() -> str:
    """The viewer's JavaScript, as it ships in ``hmr_core/data``."""
    return resources.files("hmr_core").joinpath("data/web_viewer.js").read_text(encoding="utf-8")


def viewer_html(packed: dict | None = None, fallback_html: str = "", caption: str = "",
                width: int = 380, height: int = 480, element_id: str | None = None, camera: bool = False) -> str:
    """A self-contained HTML block: the live body model with its sliders, or the fallback without WebGL.

    The block holds its data (``pack_model``) and its script inline, and loads nothing. It starts by
    showing ``fallback_html``; its script swaps in the live view once it has a WebGL context. The script
    registers the viewer as ``window.hmrBodyViewers[element_id]`` (and ``element.hmrViewer``), with
    ``set(betas, pose)`` that returns the computed (V·3) vertices, ``moveSlider(i, value)`` and ``reset()``.

    Args:
        packed: the model for the page; None packs the default model.
        fallback_html: shown when WebGL is missing (e.g. ``interactive.slider_html`` of precomputed frames).
        caption: text under the view.
        width: width of the 3D view in CSS pixels.
        height: its height.
        element_id: id of the outer element (default: a fresh unique id).
        camera: show the body through HMR's weak-perspective camera instead of an orbiting view: a square
            crop (``width`` pixels) with the projected keypoints, sliders for (s, tx, ty) and for the turn
            of the upright body (chapter "Projection and the reprojection loss"). ``set(betas, pose, cam)``
            then also takes the camera, and ``keypoints2d()`` returns the projected keypoints.

    Returns:
        The HTML, to show with ``IPython.display.HTML`` or to put in a page.
    """
    packed = pack_model() if packed is None else packed
    uid = element_id or "hmrbody" + uuid.uuid4().hex[:10]
    if not re.fullmatch(r"[A-Za-z][\w-]*", uid):
        raise ValueError(f"element_id must be a letter followed by letters, digits, '-' or '_', got {uid!r}")
    data = dict(packed, sliders=_sliders(packed, camera))
    if camera:
        if "keypoint_index" not in packed:
            raise ValueError("the camera's view needs HMR's keypoint regressor, which this model lacks")
        data["camera"] = {name: start for name, _, _, start, _ in CAMERA_SLIDERS}
        height = width
    # "</" would end the <script> element early; JSON allows "<\/".
    data_json = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    script = script_source().replace("</", "<\\/")
    if camera:
        note = ("The square is HMR's crop, [-1, 1] on both axes; the dots are the 19 projected keypoints. "
                "Drag the body to turn it.")
    else:
        note = "Drag the body to turn it; double-click to face it again."
    note += (f" The mesh is computed in this page from β and θ ({packed['model_name']}, "
             f"{packed['num_vertices']:,} vertices).")
    if packed.get("pose_blend_shapes_dropped"):
        note += " This model's pose blend shapes are left out."
    caption_html = f'<div style="color:#555">{html.escape(caption)}</div>' if caption else ""
    fallback = fallback_html or "<div>This view needs JavaScript and WebGL.</div>"
    return (
        f'<div id="{uid}" class="hmr-body-viewer" style="font:12px/1.35 sans-serif;margin:8px 0">'
        f'<div class="hmr-live" style="display:none">'
        f'<div style="display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start">'
        f'<div><div style="position:relative;width:{width}px;height:{height}px;border:1px solid #ddd">'
        f'<canvas style="width:{width}px;height:{height}px;touch-action:none;cursor:grab;display:block" '
        f'width="{width}" height="{height}"></canvas>'
        + (f'<canvas class="hmr-overlay" width="{width}" height="{height}" style="position:absolute;left:0;'
           f'top:0;width:{width}px;height:{height}px;pointer-events:none"></canvas>' if camera else "")
        + f'</div>'
        f'<div><button type="button" class="hmr-reset">reset</button></div></div>'
        f'<div class="hmr-controls" style="display:grid;column-gap:14px;flex:1 1 520px;min-width:260px;'
        f'grid-template-columns:repeat(auto-fill,minmax(290px,1fr))"></div></div>'
        f'<div style="color:#555;margin-top:4px">{html.escape(note)}</div>{caption_html}</div>'
        f'<div class="hmr-fallback"><div class="hmr-note" style="color:#555"></div>{fallback}</div>'
        f'<script type="application/json">{data_json}</script>'
        f"<script>{script}\n"
        f"(function () {{ var root = document.currentScript ? document.currentScript.parentNode : null;"
        f' if (!root || root.id !== "{uid}") root = document.getElementById("{uid}");'
        f" window.HmrBodyViewer.attach(root); }})();</script></div>"
    )


def page_html(title: str = "The body model", **kwargs) -> str:
    """A whole HTML document around ``viewer_html(**kwargs)``, to open from disk."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body>{viewer_html(**kwargs)}</body></html>\n"
    )


def write_page(path: str | Path, **kwargs) -> Path:
    """Write ``page_html(**kwargs)`` to ``path`` and return the path."""
    path = Path(path)
    path.write_text(page_html(**kwargs), encoding="utf-8")
    return path


def show(**kwargs):
    """The viewer as an output cell (Jupyter, Colab, and the built book): ``IPython.display.HTML``."""
    from IPython.display import HTML

    return HTML(viewer_html(**kwargs))


# ---- headless Chromium: the benchmark (and the tests) drive the page through its JavaScript -------------

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # WebGL without a GPU: Chromium's software renderer
    "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
)


def find_chromium() -> str | None:
    """The path of a Chromium or Chrome binary, or None."""
    import shutil

    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def run_in_chromium(page: str | Path, probe_js: str, profile: str | Path, extra_flags: tuple[str, ...] = (),
                    timeout: float = 180) -> dict:
    """Open a page in headless Chromium with a probe script appended; return what the probe reported.

    The probe runs after the viewer (synchronously, at the end of the body) and assigns a JSON-able
    value to ``report``; it lands in the dumped DOM, where this function reads it.

    Args:
        page: an HTML file holding the viewer (e.g. from ``write_page``); the probe is added in a copy
            beside it (so relative links still work), removed afterwards.
        probe_js: JavaScript that sets ``report``.
        profile: a fresh folder for Chromium's profile.
        extra_flags: more command-line flags.
        timeout: seconds.

    Returns:
        The probe's report.

    Raises:
        RuntimeError: without Chromium, or when the probe reported nothing (the message holds Chromium's
            stderr).
    """
    binary = find_chromium()
    if binary is None:
        raise RuntimeError("Chromium is not installed (Debian: apt-get install chromium)")
    page = Path(page)
    probe = ("<script>(function () { var report = null; try {\n" + probe_js + "\n} catch (err) {"
             " report = {probe_error: String(err && err.stack || err)}; }"
             ' var out = document.createElement("pre"); out.id = "hmr-probe-report";'
             " out.textContent = JSON.stringify(report); document.body.appendChild(out); })();</script>")
    probed = page.with_name(page.stem + ".probe.html")
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", probe + "</body>"), encoding="utf-8")
    command = [binary, *CHROMIUM_FLAGS, *extra_flags, f"--user-data-dir={profile}", "--dump-dom",
               probed.as_uri()]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    finally:
        probed.unlink()
    match = re.search(r'<pre id="hmr-probe-report"[^>]*>(.*?)</pre>', result.stdout, re.S)
    if not match:
        raise RuntimeError(f"the probe reported nothing (exit {result.returncode}):\n{result.stderr[-3000:]}")
    report = json.loads(html.unescape(match.group(1)))
    if isinstance(report, dict) and "probe_error" in report:
        raise RuntimeError(f"the probe raised in the page:\n{report['probe_error']}")
    return report


def screenshot_in_chromium(page: str | Path, probe_js: str, out: str | Path, profile: str | Path,
                           size: tuple[int, int] = (1000, 700), timeout: float = 180) -> Path:
    """A screenshot of a page after a script has run in it (e.g. one that moves a slider).

    Args:
        page: an HTML file holding the viewer; the script is added in a copy beside it.
        probe_js: JavaScript run at the end of the body.
        out: the PNG to write.
        profile: a fresh folder for Chromium's profile.
        size: window width and height in pixels.
        timeout: seconds.

    Returns:
        ``out``.

    Raises:
        RuntimeError: without Chromium, or when no screenshot was written.
    """
    binary = find_chromium()
    if binary is None:
        raise RuntimeError("Chromium is not installed (Debian: apt-get install chromium)")
    page, out = Path(page), Path(out)
    probed = page.with_name(page.stem + ".shot.html")
    script = "<script>(function () {\n" + probe_js + "\n})();</script>"
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", script + "</body>"), encoding="utf-8")
    command = [binary, *CHROMIUM_FLAGS, "--hide-scrollbars", f"--user-data-dir={profile}",
               f"--window-size={size[0]},{size[1]}", f"--screenshot={out}", probed.as_uri()]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    finally:
        probed.unlink()
    if not out.is_file():
        raise RuntimeError(f"Chromium wrote no screenshot (exit {result.returncode}):\n{result.stderr[-3000:]}")
    return out


BENCH_PROBE = """
var root = document.querySelector(".hmr-body-viewer"), viewer = root.hmrViewer;
var nav = performance.getEntriesByType("navigation")[0];
var moves = [], compute = [], n = viewer.sliders.length, seed = 1;
function random() { seed = (seed * 16807) % 2147483647; return seed / 2147483647; }
for (var k = 0; k < 3; k++) viewer.moveSlider(k, 0.5);  // warm-up: the JIT compiles the loops
viewer.timings = []; viewer.phases = [];
for (var i = 0; i < MOVES; i++) {
  var s = viewer.sliders[i % n];
  moves.push(viewer.moveSlider(i % n, s.min + random() * (s.max - s.min)));
}
for (var j = 0; j < MOVES; j++) {
  var t0 = performance.now();
  viewer.model.compute(viewer.betas, viewer.thetas);
  compute.push(performance.now() - t0);
  viewer.betas[0] += 1e-3;  // a new β each time, so the shape step is not skipped
}
var gl = viewer.renderer && viewer.renderer.gl, info = gl && gl.getExtension("WEBGL_debug_renderer_info");
report = {moves: moves, compute: compute, phases: viewer.phases, ready_ms: viewer.readyAt,
          webgl: !!viewer.renderer,
          dom_content_loaded_ms: nav ? nav.domContentLoadedEventEnd : null,
          renderer: info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : String(viewer.error),
          canvas: viewer.renderer ? [viewer.renderer.canvas.width, viewer.renderer.canvas.height] : null,
          antialias: gl ? gl.getContextAttributes().antialias : null,
          user_agent: navigator.userAgent};
"""


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def bench(moves: int = 200, repeats: int = 3, page: str | Path | None = None) -> dict:
    """Time the page in headless Chromium: load, and a slider move (compute, upload, draw, wait).

    The baseline, in the same run, is what a kernel does for one move of the chapter's ipywidgets
    sliders: ``SMPL`` on the CPU (float32, batch 1) and an offscreen render of 256 × 256 pixels.

    Args:
        moves: slider moves per page load.
        repeats: page loads.
        page: an HTML file with a viewer to time instead of a page of its own (e.g. a built chapter,
            ``_build/html/chapters/01_smpl.html``); the probe is written into a copy beside it.

    Returns:
        The numbers it printed, as a dict.
    """
    import os

    import torch

    from hmr_core import render
    from hmr_core.body_model import SMPL

    packed = pack_model()
    size_bytes = len(json.dumps(packed, separators=(",", ":")).encode())
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        if page is None:
            page = write_page(Path(tmp) / "viewer.html", packed=packed, element_id="bench")
        page = Path(page)
        page_bytes = page.stat().st_size
        for r in range(repeats):
            start = time.perf_counter()
            report = run_in_chromium(page, BENCH_PROBE.replace("MOVES", str(moves)), Path(tmp) / f"profile{r}")
            report["process_s"] = time.perf_counter() - start
            runs.append(report)
    move_ms = np.concatenate([r["moves"] for r in runs])
    compute_ms_all = np.concatenate([r["compute"] for r in runs])
    ready_ms = np.array([r["ready_ms"] for r in runs])
    phases = np.concatenate([r["phases"] for r in runs])  # (moves, 3)
    # the baseline: one redraw of the chapter's live sliders in a kernel
    smpl = SMPL()
    faces = smpl.faces.numpy()
    rng = np.random.default_rng(0)
    kernel_ms = []
    cam = None
    for i in range(22):
        betas = torch.as_tensor(rng.uniform(-2, 2, (1, 10)), dtype=torch.float32)
        pose = torch.as_tensor(rng.uniform(-0.4, 0.4, (1, 72)), dtype=torch.float32)
        start = time.perf_counter()
        with torch.no_grad():
            vertices = smpl(betas=betas, pose=pose).vertices[0]
        body = render.body_to_camera(vertices)
        cam = render.fit_cam(body) if cam is None else cam
        render.render_mesh(body, faces, cam, size=256)
        if i >= 2:  # the first calls start the renderer
            kernel_ms.append(1000 * (time.perf_counter() - start))
    kernel_ms = np.asarray(kernel_ms)
    result = {
        "date": datetime.date.today().isoformat(),
        "cpu": f"{_cpu_name()}, {os.cpu_count()} cores visible",
        "load_average": os.getloadavg()[0],
        "browser": runs[0]["user_agent"],
        "webgl": runs[0]["renderer"],
        "canvas_px": runs[0]["canvas"],
        "antialias": runs[0]["antialias"],
        "data_bytes": size_bytes,
        "page_bytes": page_bytes,
        "load_ms": ready_ms.tolist(),
        "move_median_ms": float(np.median(move_ms)),
        "move_p90_ms": float(np.percentile(move_ms, 90)),
        "move_max_ms": float(move_ms.max()),
        "compute_median_ms": float(np.median(compute_ms_all)),
        "phase_median_ms": np.median(phases, axis=0).tolist(),
        "kernel_median_ms": float(np.median(kernel_ms)),
        "kernel_backend": render.available_backend(),
    }
    print(f"web viewer benchmark, {result['date']}")
    print(f"CPU: {result['cpu']}, load average {result['load_average']:.1f}; browser: {result['browser']}")
    print(f"WebGL: {result['webgl']}, canvas {result['canvas_px']} px, multisampling {result['antialias']}")
    print(f"data {size_bytes / 1e6:.2f} MB (limit 3 MB), page {page.name} {page_bytes / 1e6:.2f} MB")
    print("page load, navigation start to the first frame drawn: "
          + ", ".join(f"{x:.0f}" for x in ready_ms) + " ms (one per load; goal < 2,000 ms)")
    print(f"slider move (M(β, θ), normals, upload, draw, wait for the frame), {len(move_ms)} moves: "
          f"median {result['move_median_ms']:.1f} ms, 90th percentile {result['move_p90_ms']:.1f} ms, "
          f"max {result['move_max_ms']:.1f} ms (goal ≤ 30 ms)")
    compute_ms, upload_ms, draw_ms = result["phase_median_ms"]
    print(f"  medians of its steps: M(β, θ) {compute_ms:.1f} ms, normals and upload {upload_ms:.1f} ms, "
          f"draw and wait {draw_ms:.1f} ms")
    print(f"M(β, θ) in JavaScript alone, {len(compute_ms_all)} calls: "
          f"median {result['compute_median_ms']:.1f} ms")
    print(f"baseline, a kernel redraw (SMPL + {result['kernel_backend']} render, 256 px): "
          f"median {result['kernel_median_ms']:.1f} ms")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hmr_core.web_viewer", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    page = sub.add_parser("page", help="write the viewer as one HTML file to open from disk")
    page.add_argument("out", type=Path, help="the .html file to write")
    run = sub.add_parser("bench", help="time page load and slider moves in headless Chromium")
    run.add_argument("--moves", type=int, default=200, help="slider moves per page load")
    run.add_argument("--repeats", type=int, default=3, help="page loads")
    run.add_argument("--page", type=Path, default=None,
                     help="time this HTML file (e.g. a built chapter) instead of a page of the viewer alone")
    args = parser.parse_args(argv)
    if args.command == "page":
        path = write_page(args.out, packed=pack_model(drop_pose_blend_shapes=True))
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB); open it in a browser")
    else:
        bench(args.moves, args.repeats, args.page)


if __name__ == "__main__":
    main(sys.argv[1:])
