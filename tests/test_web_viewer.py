"""The body model in the browser: the page's JavaScript M(β, θ) against hmr_core, in headless Chromium.

The page is written to a temporary folder and opened from disk; a probe script sets β and θ through the
viewer's JavaScript API and writes the vertices the page computed into the DOM, which the test reads back
and compares with ``hmr_core`` in float64. WebGL runs in Chromium's software renderer (SwiftShader).
Set ``HMR_BOOK_SCREENSHOTS`` to a folder to keep the screenshots for a person to look at.
"""

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from hmr_core import constants, lbs, web_viewer
from hmr_core.body_model import SMPL
from hmr_core.model_files import load_model_arrays
from hmr_core.rotation import axis_angle_to_matrix

pytestmark = pytest.mark.skipif(
    web_viewer.find_chromium() is None,
    reason="Chromium is not installed (Debian: apt-get install chromium); .ci/run installs it",
)

TOLERANCE_M = 1e-4  # what the page must meet against hmr_core
EXACT_M = 1e-9  # where the page carries no quantised array (β = 0, and the joints), float64 round-off only


@pytest.fixture(scope="module")
def arrays():
    return load_model_arrays(None)


@pytest.fixture(scope="module")
def packed(arrays):
    return web_viewer.pack_model(arrays)


@pytest.fixture(scope="module")
def page(packed, tmp_path_factory):
    return web_viewer.write_page(tmp_path_factory.mktemp("viewer") / "viewer.html", packed=packed,
                                 element_id="viewer",
                                 fallback_html='<img alt="precomputed frame" src="data:image/png;base64,AA==">')


def reference(arrays, betas: np.ndarray, pose: np.ndarray):
    """hmr_core in float64: ``SMPL`` and the step-by-step ``lbs.lbs``; (N, V, 3) vertices, (N, J, 3) joints."""
    smpl = SMPL(arrays=arrays, dtype=torch.float64)
    betas_t, pose_t = torch.as_tensor(betas), torch.as_tensor(pose)
    out = smpl(betas=betas_t, pose=pose_t)

    def as64(key):
        return torch.as_tensor(np.asarray(arrays[key], dtype=np.float64))

    rotmats = axis_angle_to_matrix(pose_t.view(len(pose), -1, 3))
    vertices, joints = lbs.lbs(betas_t, rotmats, as64("v_template"), as64("shapedirs")[..., : betas.shape[1]],
                               as64("posedirs"), as64("J_regressor"), smpl.parents, as64("weights"))
    return out.vertices.numpy(), vertices.numpy(), joints.numpy()


def near_pi_poses(rng) -> np.ndarray:
    """Poses with rotations of angle π, just under and just over it, and tiny ones (the Taylor branch)."""
    poses = []
    for angle in (np.pi, np.pi - 1e-6, np.pi + 1e-6, 3.1, 5e-5, 2e-4):
        axes = rng.normal(size=(constants.NUM_SMPL_JOINTS, 3))
        axes /= np.linalg.norm(axes, axis=1, keepdims=True)
        poses.append((angle * axes).reshape(-1))
    return np.stack(poses)


@pytest.fixture(scope="module")
def cases():
    """name -> (betas (N, 10), pose (N, 72))."""
    rng = np.random.default_rng(16)
    zeros_b, zeros_p = np.zeros((1, 10)), np.zeros((1, 72))
    extreme_b = np.stack([np.full(10, 3.0), np.full(10, -3.0), rng.choice([-3.0, 3.0], 10)])
    random_p = rng.normal(scale=0.6, size=(4, 72))
    near_pi = near_pi_poses(rng)
    return {
        "rest": (zeros_b, zeros_p),
        "rest, shaped": (np.concatenate([rng.normal(size=(3, 10)), extreme_b]), np.zeros((6, 72))),
        "random poses, mean shape": (np.zeros((4, 10)), random_p),
        "random poses, random shapes": (rng.normal(size=(4, 10)), rng.normal(scale=0.6, size=(4, 72))),
        "near π and near 0, mean shape": (np.zeros((len(near_pi), 10)), near_pi),
        "near π, |β| = 3": (rng.choice([-3.0, 3.0], (len(near_pi), 10)), near_pi),
    }


PROBE = """
var v = window.hmrBodyViewers.viewer, cases = CASES, out = {};
Object.keys(cases).forEach(function (name) {
  var c = cases[name];
  out[name] = c[0].map(function (b, i) {
    var vertices = Array.from(v.set(b, c[1][i]));
    return {vertices: vertices, joints: Array.from(v.model.joints)};
  });
});
// one slider move through the page's own controls: the input element, as a reader moves it
var knee = v.sliderIndex("left knee (x)"), input = v.inputs[knee].input;
v.set(null, null);
input.value = "1.2";
input.dispatchEvent(new Event("input"));
v.update();  // the page redraws on the next animation frame; compute now to read the result
var moved = Array.from(v.model.vertices);
// dragging orbits the view
var canvas = v.root.querySelector("canvas"), yaw = v.view.yaw;
canvas.dispatchEvent(new PointerEvent("pointerdown", {clientX: 100, clientY: 100, pointerId: 1}));
canvas.dispatchEvent(new PointerEvent("pointermove", {clientX: 160, clientY: 110, pointerId: 1}));
canvas.dispatchEvent(new PointerEvent("pointerup", {clientX: 160, clientY: 110, pointerId: 1}));
var orbit = v.view.yaw - yaw;
v.root.querySelector(".hmr-reset").click();
report = {cases: out, slider_move: moved, orbit_yaw: orbit, after_reset: Array.from(v.model.vertices),
          after_reset_slider: v.inputs[knee].input.value, webgl: !!v.renderer, error: v.error,
          live_shown: v.root.querySelector(".hmr-live").style.display !== "none",
          fallback_shown: v.root.querySelector(".hmr-fallback").style.display !== "none"};
"""


@pytest.fixture(scope="module")
def report(page, cases, tmp_path_factory):
    payload = {name: [b.tolist(), p.tolist()] for name, (b, p) in cases.items()}
    probe = PROBE.replace("CASES", json.dumps(payload))
    return web_viewer.run_in_chromium(page, probe, tmp_path_factory.mktemp("profile"))


def test_the_data_fits_the_budget(packed, page):
    data_bytes = len(json.dumps(packed, separators=(",", ":")).encode())
    assert data_bytes <= 3_000_000, f"the page's data is {data_bytes:,} bytes, over 3 MB"
    assert page.stat().st_size <= 3_100_000, f"the page is {page.stat().st_size:,} bytes"
    # nothing is loaded from anywhere: no src or href at all except the fallback's data URI
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"(src|href)=\"(?!data:)", text), "the page references a file or a URL"
    assert "http://" not in text and "https://" not in text


def test_the_shape_basis_is_within_its_quantisation_bound(arrays, packed):
    shapedirs = np.asarray(arrays["shapedirs"], dtype=np.float64)[..., :10]  # (V, 3, S)
    error = np.abs(web_viewer.dequantised_shapedirs(packed) - shapedirs).max(axis=(0, 1))  # (S,)
    step = np.asarray(packed["shapedirs_scale"])
    assert (error <= step / 2 * (1 + 1e-9)).all(), f"per-coefficient error {error} over half a step {step / 2}"
    # the worst case the sliders reach, every |β_s| = 3, stays well inside the tolerance
    assert web_viewer.shape_error_bound(packed, np.full(10, web_viewer.BETA_RANGE)) < TOLERANCE_M / 2


def test_a_model_with_pose_blend_shapes_is_refused_unless_asked(arrays):
    posed = dict(arrays, posedirs=np.full_like(arrays["posedirs"], 1e-3))
    with pytest.raises(ValueError, match="drop_pose_blend_shapes=True"):
        web_viewer.pack_model(posed)
    packed = web_viewer.pack_model(posed, drop_pose_blend_shapes=True)
    assert packed["pose_blend_shapes_dropped"]
    assert "pose blend shapes are left out" in web_viewer.viewer_html(packed)


def test_bad_element_id_is_refused(packed):
    with pytest.raises(ValueError, match="element_id"):
        web_viewer.viewer_html(packed, element_id='x" onload="alert(1)')


@pytest.mark.parametrize("name", ["rest", "rest, shaped", "random poses, mean shape",
                                  "random poses, random shapes", "near π and near 0, mean shape",
                                  "near π, |β| = 3"])
def test_the_page_computes_smpl(arrays, packed, cases, report, name):
    betas, pose = cases[name]
    page_out = report["cases"][name]
    page_vertices = np.array([o["vertices"] for o in page_out]).reshape(len(betas), -1, 3)
    page_joints = np.array([o["joints"] for o in page_out]).reshape(len(betas), -1, 3)
    smpl_vertices, lbs_vertices, lbs_joints = reference(arrays, betas, pose)
    error = np.linalg.norm(page_vertices - smpl_vertices, axis=-1).max(axis=1)  # (N,) metres
    assert error.max() <= TOLERANCE_M, f"{name}: the page is {error.max():.2e} m from hmr_core's SMPL"
    # Tighter: against the float64 step-by-step model, every error is within the int16 shape basis's bound,
    # and without shape (β = 0) or for the joints, which carry no quantised array, it is round-off.
    step_error = np.linalg.norm(page_vertices - lbs_vertices, axis=-1).max(axis=1)
    bound = np.array([web_viewer.shape_error_bound(packed, b) for b in betas])
    assert (step_error <= bound + EXACT_M).all(), f"{name}: errors {step_error} over the bounds {bound}"
    joint_error = np.linalg.norm(page_joints - lbs_joints, axis=-1).max()
    assert joint_error <= EXACT_M, f"{name}: joints {joint_error:.2e} m from hmr_core"
    print(f"{name}: max |Δv| against SMPL {error.max():.2e} m, against lbs.lbs {step_error.max():.2e} m "
          f"(bound {bound.max():.2e} m), joints {joint_error:.2e} m")


def test_a_slider_sets_its_joint_axis_and_reset_restores_the_rest_pose(arrays, report):
    assert report["webgl"], f"no WebGL in headless Chromium: {report['error']}"
    assert report["live_shown"] and not report["fallback_shown"]
    pose = np.zeros((1, 72))
    knee = web_viewer.POSE_SLIDERS[[s.label for s in web_viewer.POSE_SLIDERS].index("left knee (x)")]
    pose[0, 3 * constants.SMPL_JOINT_NAMES.index("left_knee") + knee.axis] = knee.sign * 1.2
    smpl_vertices, _, _ = reference(arrays, np.zeros((1, 10)), pose)
    moved = np.array(report["slider_move"]).reshape(-1, 3)
    assert np.linalg.norm(moved - smpl_vertices[0], axis=-1).max() <= EXACT_M
    rest, _, _ = reference(arrays, np.zeros((1, 10)), np.zeros((1, 72)))
    assert np.linalg.norm(moved - rest[0], axis=-1).max() > 0.1, "the knee slider did not bend the knee"
    assert np.linalg.norm(np.array(report["after_reset"]).reshape(-1, 3) - rest[0], axis=-1).max() <= EXACT_M
    assert float(report["after_reset_slider"]) == 0.0
    assert report["orbit_yaw"] == pytest.approx(0.6), "dragging 60 pixels did not turn the view"


def test_without_webgl_the_page_shows_the_precomputed_frames(page, tmp_path):
    probe = """var v = window.hmrBodyViewers.viewer, root = v.root;
    report = {webgl: !!v.renderer, live_shown: root.querySelector(".hmr-live").style.display !== "none",
              fallback_shown: root.querySelector(".hmr-fallback").style.display !== "none",
              images: root.querySelectorAll(".hmr-fallback img").length,
              note: root.querySelector(".hmr-note").textContent,
              vertices: v.model.vertices.length};"""
    report = web_viewer.run_in_chromium(page, probe, tmp_path / "profile", extra_flags=("--disable-3d-apis",))
    assert not report["webgl"] and not report["live_shown"]
    assert report["fallback_shown"] and report["images"] == 1
    assert "WebGL is not available" in report["note"]
    assert report["vertices"] == 3 * 13492  # the model still computes, only the drawing is missing


def test_screenshot_shows_the_body_change_when_a_slider_moves(page, tmp_path):
    from PIL import Image

    folder = tmp_path
    if os.environ.get("HMR_BOOK_SCREENSHOTS"):
        folder = Path(os.environ["HMR_BOOK_SCREENSHOTS"])
        folder.mkdir(parents=True, exist_ok=True)
    move = """var v = window.hmrBodyViewers.viewer;
    [["β1", 3.0], ["left shoulder down (z)", 1.3], ["right elbow (y)", 1.6], ["left hip flex (x)", 1.2],
     ["left knee (x)", 1.6]].forEach(function (s) { v.setSlider(v.sliderIndex(s[0]), s[1]); });
    v.update();"""
    before = web_viewer.screenshot_in_chromium(page, "", folder / "web_viewer_rest.png", tmp_path / "p1")
    after = web_viewer.screenshot_in_chromium(page, move, folder / "web_viewer_moved.png", tmp_path / "p2")
    a = np.asarray(Image.open(before).convert("RGB"), dtype=np.int16)
    b = np.asarray(Image.open(after).convert("RGB"), dtype=np.int16)
    view = (slice(10, 480), slice(10, 380))  # the 3D view, top left of the page
    body_a = (a[view] < 235).any(-1)  # the body is shaded blue-grey on white
    body_b = (b[view] < 235).any(-1)
    assert body_a.mean() > 0.05, f"the view shows no body ({body_a.mean():.1%} of its pixels)"
    assert body_b.mean() > 0.05
    changed = (np.abs(a[view] - b[view]).max(-1) > 40).mean()
    assert changed > 0.03, f"moving the sliders changed only {changed:.1%} of the view"


CAMERA_PROBE = """
var v = window.hmrBodyViewers.camera, B = BETAS, P = POSES, C = CAMS;
var projected = B.map(function (b, i) { v.set(b, P[i], C[i]); return Array.from(v.keypoints2d()); });
v.set(null, null, [0.9, 0, 0]);
[["yaw (rad)", 0.7], ["pitch (rad)", 0.3], ["roll (rad)", -0.2], ["scale s", 1.1], ["tx (m)", 0.2],
 ["ty (m)", -0.1], ["left knee (x)", 1.0]].forEach(function (s) { v.setSlider(v.sliderIndex(s[0]), s[1]); });
v.update();
report = {projected: projected, turned: Array.from(v.model.vertices), turned_2d: Array.from(v.keypoints2d()),
          webgl: !!v.renderer};
"""


def test_the_camera_view_projects_the_keypoints_as_hmr_does(arrays, packed, tmp_path):
    """Chapter 2's view: HMR's weak-perspective camera and the turn of the upright body, in the page."""
    from hmr_core import camera, rotation

    page = web_viewer.write_page(tmp_path / "camera.html", packed=packed, element_id="camera", camera=True)
    rng = np.random.default_rng(2)
    betas = rng.normal(size=(3, 10))
    pose = rng.normal(scale=0.5, size=(3, 72))
    pose[:, :3] = [[np.pi, 0.0, 0.0], [np.pi - 1e-6, 0.2, 0.0], [2.9, 0.3, -0.4]]  # upright, near π
    cams = np.array([[0.9, 0.0, 0.1], [1.3, -0.2, 0.3], [0.5, 0.4, -0.1]])
    probe = (CAMERA_PROBE.replace("BETAS", json.dumps(betas.tolist())).replace("POSES", json.dumps(pose.tolist()))
             .replace("CAMS", json.dumps(cams.tolist())))
    report = web_viewer.run_in_chromium(page, probe, tmp_path / "profile")
    assert report["webgl"]
    smpl = SMPL(arrays=arrays, dtype=torch.float64)
    keypoints = smpl(betas=torch.as_tensor(betas), pose=torch.as_tensor(pose)).keypoints
    expected = camera.weak_perspective_project(keypoints, torch.as_tensor(cams)).numpy()  # (3, 19, 2)
    error = np.abs(np.array(report["projected"]).reshape(expected.shape) - expected).max()
    assert error <= TOLERANCE_M, f"projected keypoints {error:.2e} from hmr_core's (normalised units)"
    # The sliders: the root is the upright body turned about the camera's axes, R_z · R_x · R_y · R_x(π)
    # (chapter 2's root_rotation), and the camera is (s, tx, ty).
    turns = torch.tensor([[0.0, 0.7, 0.0], [0.3, 0.0, 0.0], [0.0, 0.0, -0.2], [np.pi, 0.0, 0.0]],
                         dtype=torch.float64)
    R = rotation.axis_angle_to_matrix(turns)
    rotmats = torch.eye(3, dtype=torch.float64).repeat(1, 24, 1, 1)
    rotmats[0, 0] = R[2] @ R[1] @ R[0] @ R[3]
    rotmats[0, constants.SMPL_JOINT_NAMES.index("left_knee")] = rotation.axis_angle_to_matrix(
        torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
    out = smpl(pose=rotmats)
    turned = np.array(report["turned"]).reshape(-1, 3)
    assert np.linalg.norm(turned - out.vertices[0].numpy(), axis=-1).max() <= EXACT_M
    cam = torch.tensor([[1.1, 0.2, -0.1]], dtype=torch.float64)
    expected_2d = camera.weak_perspective_project(out.keypoints, cam)
    assert np.abs(np.array(report["turned_2d"]).reshape(-1, 2) - expected_2d[0].numpy()).max() <= EXACT_M
