// The body model in the browser: SMPL's M(β, θ) computed in JavaScript and drawn with plain WebGL.
//
// Written by hmr_core.web_viewer into every page that shows the viewer; the arrays come from the same
// page (a <script type="application/json"> block that hmr_core writes from the model file). Nothing is
// fetched. The maths follows hmr_core.lbs step by step, in float64 (JavaScript numbers):
//   T(β) = T̄ + Σ_s β_s S_s                      shape blend shapes (SMPL eq. 8)
//   J(β) = 𝒥T̄ + (𝒥S) β                          joint regression (SMPL eq. 10), 𝒥 folded into S
//   R_k = I + a [ω_k]× + b [ω_k]×²              Rodrigues, a = sin θ/θ, b = (1 - cos θ)/θ², Taylor near 0
//   G_k = G_parent(k) · [R_k | J_k - J_parent]  forward kinematics (SMPL eq. 3), G'_k = G_k · [I | -J_k]
//   t'_i = Σ_k w_ki G'_k t_i                    linear blend skinning (SMPL eq. 2)
// and, for the camera's view, HMR's 19 keypoints and their weak-perspective projection x = s · (X_xy + t).
// Letters: V vertices, J joints, S shape coefficients, F faces.
(function () {
  "use strict";
  if (window.HmrBodyViewer) return;
  var SMALL_ANGLE_SQ = 1e-8; // as hmr_core.rotation: below it the Taylor series is exact in float64

  function decode(text, Type) {
    // base64 (little-endian bytes) -> typed array
    var raw = atob(text), bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return new Type(bytes.buffer);
  }

  // ---- the model ----------------------------------------------------------------------------------
  function BodyModel(data) {
    this.V = data.num_vertices;
    this.J = data.parents.length;
    this.S = data.num_betas;
    this.parents = data.parents;
    this.template = decode(data.v_template, Float32Array); // (V·3)
    // Shape basis stored per coefficient, (S, V·3), as int16 with one scale per coefficient.
    this.shapeQ = decode(data.shapedirs_q, Int16Array);
    this.shapeScale = data.shapedirs_scale; // (S)
    this.faces = decode(data.faces, data.faces_dtype === "uint16" ? Uint16Array : Uint32Array); // (F·3)
    // Skinning weights: every non-zero weight, vertex by vertex: counts (V), joints and weights.
    var count = decode(data.skin_count, Uint8Array);
    this.skinOffset = new Uint32Array(this.V + 1);
    for (var i = 0; i < this.V; i++) this.skinOffset[i + 1] = this.skinOffset[i] + count[i];
    this.skinJoint = decode(data.skin_joint, Uint8Array);
    this.skinWeight = decode(data.skin_weight, Float32Array);
    // J(β) = 𝒥T̄ + (𝒥S)β: the regressor folded into the shape basis, as hmr_core.SMPL does, in float64.
    this.jointTemplate = decode(data.joint_template, Float64Array); // (J·3)
    this.jointShapedirs = decode(data.joint_shapedirs, Float64Array); // (S, J·3)
    // HMR's keypoint regressor, as (K, N) vertex indices and weights (absent for some models)
    this.keypointIndex = data.keypoint_index ? decode(data.keypoint_index, Uint32Array) : null;
    this.keypointWeight = data.keypoint_index ? decode(data.keypoint_weight, Float64Array) : null;
    this.keypoints = new Float64Array(this.keypointIndex ? 3 * data.num_keypoints : 0);
    this.shaped = new Float64Array(3 * this.V);
    this.vertices = new Float64Array(3 * this.V);
    this.restJoints = new Float64Array(3 * this.J);
    this.joints = new Float64Array(3 * this.J);
    this.rot = new Float64Array(9 * this.J); // local R_k, row-major
    this.worldRot = new Float64Array(9 * this.J);
    this.transforms = new Float64Array(12 * this.J); // G'_k as [R row-major | t]
    this.lastBetas = null;
  }

  BodyModel.prototype.shape = function (betas) {
    // T(β) and J(β); skipped when β has not changed since the last call.
    var same = this.lastBetas !== null;
    for (var s = 0; s < this.S && same; s++) same = this.lastBetas[s] === (betas[s] || 0);
    if (same) return;
    var n = 3 * this.V, out = this.shaped, i, s2;
    for (i = 0; i < n; i++) out[i] = this.template[i];
    for (s2 = 0; s2 < this.S; s2++) {
      var c = (betas[s2] || 0) * this.shapeScale[s2];
      if (c === 0) continue;
      var q = this.shapeQ, base = s2 * n;
      for (i = 0; i < n; i++) out[i] += c * q[base + i];
    }
    var m = 3 * this.J, jt = this.restJoints;
    for (i = 0; i < m; i++) jt[i] = this.jointTemplate[i];
    for (s2 = 0; s2 < this.S; s2++) {
      var b = betas[s2] || 0;
      if (b === 0) continue;
      for (i = 0; i < m; i++) jt[i] += b * this.jointShapedirs[s2 * m + i];
    }
    this.lastBetas = [];
    for (s2 = 0; s2 < this.S; s2++) this.lastBetas.push(betas[s2] || 0);
  };

  function rodrigues(x, y, z, R, o) {
    // R(ω) = I + a [ω]× + b (ω ωᵀ - |ω|² I), written into R[o .. o + 9] row-major
    var t2 = x * x + y * y + z * z, a, b;
    if (t2 < SMALL_ANGLE_SQ) {
      a = 1 - t2 / 6; b = 0.5 - t2 / 24;
    } else {
      var t = Math.sqrt(t2);
      a = Math.sin(t) / t; b = (1 - Math.cos(t)) / t2;
    }
    R[o] = 1 + b * (x * x - t2); R[o + 1] = -a * z + b * x * y; R[o + 2] = a * y + b * x * z;
    R[o + 3] = a * z + b * x * y; R[o + 4] = 1 + b * (y * y - t2); R[o + 5] = -a * x + b * y * z;
    R[o + 6] = -a * y + b * x * z; R[o + 7] = a * x + b * y * z; R[o + 8] = 1 + b * (z * z - t2);
  }

  BodyModel.prototype.pose = function (pose, rootRotation) {
    // pose: (3J) axis-angle; rootRotation: optional (9) row-major matrix used for the root instead.
    // Forward kinematics, then skinning of T(β).
    var J = this.J, R = this.rot, W = this.worldRot, G = this.transforms, rest = this.restJoints;
    var posed = this.joints, k, r, c;
    for (k = 0; k < J; k++) rodrigues(pose[3 * k] || 0, pose[3 * k + 1] || 0, pose[3 * k + 2] || 0, R, 9 * k);
    if (rootRotation) for (k = 0; k < 9; k++) R[k] = rootRotation[k];
    for (k = 0; k < J; k++) {
      var p = this.parents[k], wk = 9 * k;
      if (p < 0) {
        for (r = 0; r < 9; r++) W[wk + r] = R[wk + r];
        for (c = 0; c < 3; c++) posed[3 * k + c] = rest[3 * k + c];
      } else {
        var wp = 9 * p;
        for (r = 0; r < 3; r++) {
          for (c = 0; c < 3; c++) {
            W[wk + 3 * r + c] = W[wp + 3 * r] * R[wk + c] + W[wp + 3 * r + 1] * R[wk + 3 + c] +
              W[wp + 3 * r + 2] * R[wk + 6 + c];
          }
        }
        var bx = rest[3 * k] - rest[3 * p], by = rest[3 * k + 1] - rest[3 * p + 1];
        var bz = rest[3 * k + 2] - rest[3 * p + 2];
        for (r = 0; r < 3; r++) {
          posed[3 * k + r] = W[wp + 3 * r] * bx + W[wp + 3 * r + 1] * by + W[wp + 3 * r + 2] * bz +
            posed[3 * p + r];
        }
      }
      // G'_k = [W_k | posed_k - W_k J_k]
      for (r = 0; r < 3; r++) {
        G[12 * k + 3 * r] = W[wk + 3 * r]; G[12 * k + 3 * r + 1] = W[wk + 3 * r + 1];
        G[12 * k + 3 * r + 2] = W[wk + 3 * r + 2];
        G[12 * k + 9 + r] = posed[3 * k + r] - (W[wk + 3 * r] * rest[3 * k] +
          W[wk + 3 * r + 1] * rest[3 * k + 1] + W[wk + 3 * r + 2] * rest[3 * k + 2]);
      }
    }
    var V = this.V, T = this.shaped, out = this.vertices, off = this.skinOffset;
    var sj = this.skinJoint, sw = this.skinWeight, m = new Float64Array(12);
    for (var i = 0; i < V; i++) {
      for (r = 0; r < 12; r++) m[r] = 0;
      for (var e = off[i]; e < off[i + 1]; e++) {
        var g = 12 * sj[e], w = sw[e];
        for (r = 0; r < 12; r++) m[r] += w * G[g + r];
      }
      var x = T[3 * i], y = T[3 * i + 1], z = T[3 * i + 2];
      out[3 * i] = m[0] * x + m[1] * y + m[2] * z + m[9];
      out[3 * i + 1] = m[3] * x + m[4] * y + m[5] * z + m[10];
      out[3 * i + 2] = m[6] * x + m[7] * y + m[8] * z + m[11];
    }
  };

  BodyModel.prototype.compute = function (betas, pose, rootRotation) {
    this.shape(betas);
    this.pose(pose, rootRotation);
    if (this.keypointIndex) this.regressKeypoints();
    return this.vertices;
  };

  BodyModel.prototype.regressKeypoints = function () {
    // HMR's 19 keypoints: keypoint[k] = Σ_n weight[k, n] · vertex[index[k, n]]
    var K = this.keypoints.length / 3, N = this.keypointIndex.length / K, out = this.keypoints;
    for (var k = 0; k < K; k++) {
      var x = 0, y = 0, z = 0;
      for (var n = 0; n < N; n++) {
        var v = 3 * this.keypointIndex[k * N + n], w = this.keypointWeight[k * N + n];
        x += w * this.vertices[v]; y += w * this.vertices[v + 1]; z += w * this.vertices[v + 2];
      }
      out[3 * k] = x; out[3 * k + 1] = y; out[3 * k + 2] = z;
    }
  };

  // ---- drawing -----------------------------------------------------------------------------------
  var VERTEX_SHADER = [
    "attribute vec3 position;", "attribute vec3 normal;", "uniform mat4 mvp;", "uniform mat4 view;",
    "varying vec3 eyeNormal;",
    "void main() { eyeNormal = (view * vec4(normal, 0.0)).xyz; gl_Position = mvp * vec4(position, 1.0); }",
  ].join("\n");
  var FRAGMENT_SHADER = [
    "precision mediump float;", "varying vec3 eyeNormal;", "uniform vec3 color;",
    "void main() {",
    "  vec3 n = normalize(eyeNormal); if (!gl_FrontFacing) n = -n;",
    "  float d = max(dot(n, normalize(vec3(0.3, 0.5, 1.0))), 0.0);",
    "  gl_FragColor = vec4(color * (0.3 + 0.7 * d), 1.0);",
    "}",
  ].join("\n");

  function compile(gl, type, source) {
    var shader = gl.createShader(type);
    gl.shaderSource(shader, source);
    gl.compileShader(shader);
    if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(shader));
    return shader;
  }

  function multiply(a, b) {
    // 4 × 4 column-major product a · b
    var out = new Float32Array(16);
    for (var c = 0; c < 4; c++) {
      for (var r = 0; r < 4; r++) {
        out[4 * c + r] = a[r] * b[4 * c] + a[4 + r] * b[4 * c + 1] + a[8 + r] * b[4 * c + 2] +
          a[12 + r] * b[4 * c + 3];
      }
    }
    return out;
  }

  function softwareRenderer() {
    var probe = document.createElement("canvas").getContext("webgl");
    if (!probe) return false;
    var info = probe.getExtension("WEBGL_debug_renderer_info");
    var name = info ? String(probe.getParameter(info.UNMASKED_RENDERER_WEBGL)) : "";
    var lose = probe.getExtension("WEBGL_lose_context");
    if (lose) lose.loseContext();
    return /swiftshader|llvmpipe|softpipe|software/i.test(name);
  }

  function Renderer(canvas, model) {
    // Multisampling is free on a GPU but doubles the time of a frame in a software renderer, so it is
    // asked for only when the renderer is not one.
    var gl = canvas.getContext("webgl", { antialias: !softwareRenderer(), preserveDrawingBuffer: true }) ||
      canvas.getContext("experimental-webgl", { preserveDrawingBuffer: true });
    if (!gl) throw new Error("WebGL is not available");
    if (model.faces instanceof Uint32Array && !gl.getExtension("OES_element_index_uint")) {
      throw new Error("this WebGL has no 32-bit indices for a mesh of " + model.V + " vertices");
    }
    this.gl = gl;
    this.canvas = canvas;
    this.model = model;
    var program = gl.createProgram();
    gl.attachShader(program, compile(gl, gl.VERTEX_SHADER, VERTEX_SHADER));
    gl.attachShader(program, compile(gl, gl.FRAGMENT_SHADER, FRAGMENT_SHADER));
    gl.linkProgram(program);
    if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(program));
    gl.useProgram(program);
    this.program = program;
    this.positionBuffer = gl.createBuffer();
    this.normalBuffer = gl.createBuffer();
    this.indexBuffer = gl.createBuffer();
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, this.indexBuffer);
    gl.bufferData(gl.ELEMENT_ARRAY_BUFFER, model.faces, gl.STATIC_DRAW);
    this.positions = new Float32Array(3 * model.V);
    this.normals = new Float32Array(3 * model.V);
    this.attribs = { position: gl.getAttribLocation(program, "position"),
      normal: gl.getAttribLocation(program, "normal") };
    this.uniforms = { mvp: gl.getUniformLocation(program, "mvp"), view: gl.getUniformLocation(program, "view"),
      color: gl.getUniformLocation(program, "color") };
    gl.uniform3f(this.uniforms.color, 0.62, 0.72, 0.86);
    gl.enable(gl.DEPTH_TEST);
    gl.clearColor(1, 1, 1, 1);
  }

  Renderer.prototype.upload = function (vertices) {
    var gl = this.gl, P = this.positions, N = this.normals, f = this.model.faces, i;
    for (i = 0; i < P.length; i++) { P[i] = vertices[i]; N[i] = 0; }
    // area-weighted vertex normals from the face normals
    for (i = 0; i < f.length; i += 3) {
      var a = 3 * f[i], b = 3 * f[i + 1], c = 3 * f[i + 2];
      var ux = P[b] - P[a], uy = P[b + 1] - P[a + 1], uz = P[b + 2] - P[a + 2];
      var vx = P[c] - P[a], vy = P[c + 1] - P[a + 1], vz = P[c + 2] - P[a + 2];
      var nx = uy * vz - uz * vy, ny = uz * vx - ux * vz, nz = ux * vy - uy * vx;
      N[a] += nx; N[a + 1] += ny; N[a + 2] += nz; N[b] += nx; N[b + 1] += ny; N[b + 2] += nz;
      N[c] += nx; N[c + 1] += ny; N[c + 2] += nz;
    }
    gl.bindBuffer(gl.ARRAY_BUFFER, this.positionBuffer);
    gl.bufferData(gl.ARRAY_BUFFER, P, gl.DYNAMIC_DRAW);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.normalBuffer);
    gl.bufferData(gl.ARRAY_BUFFER, N, gl.DYNAMIC_DRAW);
  };

  Renderer.prototype.resize = function () {
    var canvas = this.canvas, ratio = window.devicePixelRatio || 1;
    var w = Math.round(canvas.clientWidth * ratio) || canvas.width;
    var h = Math.round(canvas.clientHeight * ratio) || canvas.height;
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  };

  function orbitMatrices(view, aspect) {
    // view: {yaw, pitch, distance, target: [x, y, z], fov} -> [projection · view, view], column-major
    var cy = Math.cos(view.yaw), sy = Math.sin(view.yaw), cp = Math.cos(view.pitch), sp = Math.sin(view.pitch);
    var t = view.target;
    // view = translate(0, 0, -d) · rotate_x(pitch) · rotate_y(yaw) · translate(-target)
    var rotY = new Float32Array([cy, 0, -sy, 0, 0, 1, 0, 0, sy, 0, cy, 0, 0, 0, 0, 1]);
    var rotX = new Float32Array([1, 0, 0, 0, 0, cp, sp, 0, 0, -sp, cp, 0, 0, 0, 0, 1]);
    var shift = new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, -t[0], -t[1], -t[2], 1]);
    var back = new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, -view.distance, 1]);
    var viewMatrix = multiply(back, multiply(rotX, multiply(rotY, shift)));
    var f = 1 / Math.tan(view.fov / 2), near = 0.05, far = 20;
    var projection = new Float32Array([f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) / (near - far), -1,
      0, 0, 2 * far * near / (near - far), 0]);
    return [multiply(projection, viewMatrix), viewMatrix];
  }

  function cameraMatrices(cam) {
    // HMR's weak-perspective camera: image = s · (X_xy + t) in [-1, 1] across the crop, y down; depth
    // only orders the surfaces. The camera looks along +z, so eye space (looking along -z) flips y and z.
    var s = cam[0], tx = cam[1], ty = cam[2];
    var mvp = new Float32Array([s, 0, 0, 0, 0, -s, 0, 0, 0, 0, 0.1, 0, s * tx, -s * ty, 0, 1]);
    var eye = new Float32Array([1, 0, 0, 0, 0, -1, 0, 0, 0, 0, -1, 0, 0, 0, 0, 1]);
    return [mvp, eye];
  }

  Renderer.prototype.draw = function (matrices) {
    var gl = this.gl;
    gl.viewport(0, 0, this.canvas.width, this.canvas.height);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    var viewMatrix = matrices[1];
    gl.uniformMatrix4fv(this.uniforms.mvp, false, matrices[0]);
    gl.uniformMatrix4fv(this.uniforms.view, false, viewMatrix);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.positionBuffer);
    gl.enableVertexAttribArray(this.attribs.position);
    gl.vertexAttribPointer(this.attribs.position, 3, gl.FLOAT, false, 0, 0);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.normalBuffer);
    gl.enableVertexAttribArray(this.attribs.normal);
    gl.vertexAttribPointer(this.attribs.normal, 3, gl.FLOAT, false, 0, 0);
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, this.indexBuffer);
    var type = this.model.faces instanceof Uint32Array ? gl.UNSIGNED_INT : gl.UNSIGNED_SHORT;
    gl.drawElements(gl.TRIANGLES, this.model.faces.length, type, 0);
  };

  Renderer.prototype.finish = function () {
    // Reading one pixel waits until the GPU (or SwiftShader) has drawn the frame.
    var pixel = new Uint8Array(4);
    this.gl.readPixels(0, 0, 1, 1, this.gl.RGBA, this.gl.UNSIGNED_BYTE, pixel);
  };

  // ---- the viewer: sliders, orbit, reset ---------------------------------------------------------
  function Viewer(root) {
    var data = JSON.parse(root.querySelector("script[type='application/json']").textContent);
    this.root = root;
    this.data = data;
    this.model = new BodyModel(data);
    this.betas = new Float64Array(this.model.S);
    this.thetas = new Float64Array(3 * this.model.J);
    // [{kind: "beta" | "pose" | "cam" | "turn", index, sign, min, max, step, value, label, group}]
    this.sliders = data.sliders;
    this.inputs = [];
    this.view = { yaw: data.view.yaw, pitch: data.view.pitch, distance: data.view.distance,
      target: data.view.target, fov: data.view.fov };
    // HMR's camera (s, tx, ty) when the page shows the crop; null for the orbiting view
    this.cam = data.camera ? [data.camera.s, data.camera.tx, data.camera.ty] : null;
    this.turn = [0, 0, 0]; // the camera-view sliders' turn of the upright body: yaw, pitch, roll
    this.apiPose = false; // true after set(): the root comes from θ, not from the turn sliders
    this.renderer = null;
    this.error = null;
    this.timings = [];
    this.phases = [];
    var canvas = root.querySelector("canvas");
    try {
      this.renderer = new Renderer(canvas, this.model);
    } catch (err) {
      this.error = String(err && err.message || err);
    }
    var live = root.querySelector(".hmr-live"), fallback = root.querySelector(".hmr-fallback");
    if (this.renderer) {
      live.style.display = "";
      if (fallback) fallback.style.display = "none";
      this.buildControls(root.querySelector(".hmr-controls"));
      this.bindOrbit(canvas);
    } else {
      var note = root.querySelector(".hmr-note");
      if (note) note.textContent = "WebGL is not available here (" + this.error + "); precomputed frames instead.";
    }
    for (var i = 0; i < this.sliders.length; i++) this.setSlider(i, this.sliders[i].value || 0);
    this.update();
    this.readyAt = performance.now();
  }

  Viewer.prototype.buildControls = function (box) {
    var self = this;
    this.sliders.forEach(function (spec, i) {
      if (spec.group) {
        var head = document.createElement("div");
        head.textContent = spec.group;
        head.style.cssText = "grid-column:1/-1;font-weight:600;margin-top:6px";
        box.appendChild(head);
      }
      var label = document.createElement("label");
      label.style.cssText = "display:flex;align-items:center;gap:4px;white-space:nowrap";
      var text = document.createElement("span");
      text.textContent = spec.label;
      text.style.cssText = "min-width:11.5em";
      var input = document.createElement("input");
      input.type = "range"; input.min = spec.min; input.max = spec.max; input.step = spec.step;
      input.value = spec.value || 0;
      input.style.cssText = "width:110px";
      var readout = document.createElement("span");
      readout.style.cssText = "min-width:3.2em;font-family:monospace;text-align:right";
      readout.textContent = "0.00";
      input.addEventListener("input", function () {
        self.setSlider(i, parseFloat(input.value));
        self.schedule();
      });
      label.appendChild(text); label.appendChild(input); label.appendChild(readout);
      box.appendChild(label);
      self.inputs.push({ input: input, readout: readout });
    });
    var reset = this.root.querySelector(".hmr-reset");
    reset.addEventListener("click", function () { self.reset(); });
  };

  Viewer.prototype.bindOrbit = function (canvas) {
    var self = this, last = null;
    canvas.addEventListener("pointerdown", function (e) {
      last = [e.clientX, e.clientY];
      try {
        canvas.setPointerCapture(e.pointerId);
      } catch (err) {
        // a synthetic event has no pointer to capture
      }
    });
    canvas.addEventListener("pointermove", function (e) {
      if (!last) return;
      var dx = 0.01 * (e.clientX - last[0]), dy = 0.01 * (e.clientY - last[1]);
      last = [e.clientX, e.clientY];
      if (self.cam) {
        // in the camera's view, dragging turns the body: the yaw and pitch sliders move
        self.setSlider(self.turnSlider[0], self.turn[0] + dx);
        self.setSlider(self.turnSlider[1], Math.max(-1.5, Math.min(1.5, self.turn[1] - dy)));
        self.schedule();
        return;
      }
      self.view.yaw += dx;
      self.view.pitch = Math.max(-1.5, Math.min(1.5, self.view.pitch + dy));
      self.schedule(true);
    });
    var stop = function () { last = null; };
    canvas.addEventListener("pointerup", stop);
    canvas.addEventListener("pointercancel", stop);
    canvas.addEventListener("dblclick", function () { self.resetView(); });
  };

  Viewer.prototype.setSlider = function (i, value) {
    var spec = this.sliders[i];
    if (spec.kind === "beta") this.betas[spec.index] = value;
    else if (spec.kind === "cam") this.cam[spec.index] = value;
    else if (spec.kind === "turn") {
      value = Math.max(spec.min, Math.min(spec.max, value));
      this.turn[spec.index] = value;
      this.turnSlider = this.turnSlider || [];
      this.turnSlider[spec.index] = i;
    } else this.thetas[spec.index] = spec.sign * value;
    this.apiPose = false;
    if (this.inputs[i]) {
      this.inputs[i].input.value = value;
      this.inputs[i].readout.textContent = value.toFixed(2);
    }
  };

  Viewer.prototype.sliderIndex = function (label) {
    for (var i = 0; i < this.sliders.length; i++) if (this.sliders[i].label === label) return i;
    throw new Error("no slider labelled " + JSON.stringify(label));
  };

  Viewer.prototype.schedule = function (viewOnly) {
    var self = this;
    this.pendingMesh = this.pendingMesh || !viewOnly;
    if (this.frameRequested) return;
    this.frameRequested = true;
    requestAnimationFrame(function () {
      self.frameRequested = false;
      if (self.pendingMesh) self.update(); else self.redraw();
      self.pendingMesh = false;
    });
  };

  function turnMatrix(yaw, pitch, roll) {
    // R_z(roll) · R_x(pitch) · R_y(yaw) · R_x(π): the upright body (π about x, SMPL's y up to the
    // camera's y down) turned about the camera's axes, row-major
    var Ry = new Float64Array(9), Rx = new Float64Array(9), Rz = new Float64Array(9);
    rodrigues(0, yaw, 0, Ry, 0); rodrigues(pitch, 0, 0, Rx, 0); rodrigues(0, 0, roll, Rz, 0);
    var flip = [1, 0, 0, 0, -1, 0, 0, 0, -1];
    return mat3(Rz, mat3(Rx, mat3(Ry, flip)));
  }

  function mat3(a, b) {
    var out = new Float64Array(9);
    for (var r = 0; r < 3; r++) {
      for (var c = 0; c < 3; c++) {
        out[3 * r + c] = a[3 * r] * b[c] + a[3 * r + 1] * b[3 + c] + a[3 * r + 2] * b[6 + c];
      }
    }
    return out;
  }

  Viewer.prototype.update = function () {
    // M(β, θ) from the current sliders, then a redraw
    var root = this.cam && !this.apiPose ? turnMatrix(this.turn[0], this.turn[1], this.turn[2]) : null;
    this.model.compute(this.betas, this.thetas, root);
    if (this.renderer) { this.renderer.upload(this.model.vertices); this.redraw(); }
    return this.model.vertices;
  };

  Viewer.prototype.keypoints2d = function () {
    // HMR's projection of the keypoints, x = s · (X_xy + t), in [-1, 1] across the crop: (K·2)
    var kp = this.model.keypoints, K = kp.length / 3, out = new Float64Array(2 * K), c = this.cam;
    for (var k = 0; k < K; k++) {
      out[2 * k] = c[0] * (kp[3 * k] + c[1]);
      out[2 * k + 1] = c[0] * (kp[3 * k + 1] + c[2]);
    }
    return out;
  };

  Viewer.prototype.redraw = function () {
    if (!this.renderer) return;
    this.renderer.resize();
    var canvas = this.renderer.canvas;
    var aspect = canvas.width / canvas.height;
    this.renderer.draw(this.cam ? cameraMatrices(this.cam) : orbitMatrices(this.view, aspect));
    var overlay = this.root.querySelector(".hmr-overlay");
    if (!overlay || !this.cam || !this.model.keypointIndex) return;
    var ctx = overlay.getContext("2d"), w = overlay.width, h = overlay.height, p = this.keypoints2d();
    ctx.clearRect(0, 0, w, h);
    ctx.fillStyle = "#d62728";
    for (var k = 0; k < p.length; k += 2) {
      ctx.beginPath();
      ctx.arc((p[k] + 1) / 2 * w, (p[k + 1] + 1) / 2 * h, 3.5, 0, 2 * Math.PI);
      ctx.fill();
    }
  };

  Viewer.prototype.resetView = function () {
    var v = this.data.view;
    this.view.yaw = v.yaw; this.view.pitch = v.pitch; this.view.distance = v.distance;
    this.schedule(true);
  };

  Viewer.prototype.reset = function () {
    this.betas.fill(0); this.thetas.fill(0);
    for (var i = 0; i < this.sliders.length; i++) this.setSlider(i, this.sliders[i].value || 0);
    var v = this.data.view;
    this.view.yaw = v.yaw; this.view.pitch = v.pitch; this.view.distance = v.distance;
    this.update();
  };

  // The API a script (or a test) drives: β (S), θ as axis-angle (3J), the computed mesh.
  Viewer.prototype.set = function (betas, pose, cam) {
    // β (S), θ as axis-angle (3J, the root included) and, in the camera's view, cam (3)
    var s, k;
    for (s = 0; s < this.betas.length; s++) this.betas[s] = betas && betas[s] || 0;
    for (k = 0; k < this.thetas.length; k++) this.thetas[k] = pose && pose[k] || 0;
    if (cam && this.cam) for (k = 0; k < 3; k++) this.cam[k] = cam[k];
    this.apiPose = true;
    return this.update();
  };

  Viewer.prototype.moveSlider = function (i, value) {
    // one slider move, drawn at once; returns the milliseconds it took, the frame finished, and keeps
    // the time of each step in this.phases: [M(β, θ), normals and upload, draw and wait]
    var t0 = performance.now();
    this.setSlider(i, value);
    this.model.compute(this.betas, this.thetas,
      this.cam ? turnMatrix(this.turn[0], this.turn[1], this.turn[2]) : null);
    var t1 = performance.now();
    if (this.renderer) this.renderer.upload(this.model.vertices);
    var t2 = performance.now();
    if (this.renderer) { this.redraw(); this.renderer.finish(); }
    var t3 = performance.now();
    this.timings.push(t3 - t0);
    this.phases.push([t1 - t0, t2 - t1, t3 - t2]);
    return t3 - t0;
  };

  window.HmrBodyViewer = Viewer;
  window.hmrBodyViewers = window.hmrBodyViewers || {};
  Viewer.attach = function (root) {
    var viewer = new Viewer(root);
    root.hmrViewer = viewer;
    window.hmrBodyViewers[root.id] = viewer;
    return viewer;
  };
})();
