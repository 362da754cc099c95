import os
import pickle
import sys
import types

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from hmr_core import SMPL, constants
from hmr_core.bench_smpl import random_smpl_arrays
from hmr_core.model_files import (
    ModelFileError,
    OPEN_MODEL_PATH,
    convert_smpl_pickle,
    load_model_arrays,
    main,
    read_smpl_pickle,
    resolve_model_path,
)


class _FakeCh:
    """Pickles like chumpy's Ch: a class named chumpy.ch.Ch whose state dict holds the array as 'x'."""

    def __init__(self, x):
        self.x = x
        self._dirty_vars = set()
        self.label = "Ch"


class _FakeCsc:
    """Pickles like an old scipy csc_matrix: data, indices, indptr and _shape in the state dict."""

    def __init__(self, dense):
        dense = np.asarray(dense)
        cols = [np.nonzero(dense[:, c])[0] for c in range(dense.shape[1])]
        self.indices = np.concatenate(cols).astype(np.int32)
        self.data = np.concatenate([dense[r, c] for c, r in enumerate(cols)])
        self.indptr = np.concatenate([[0], np.cumsum([len(r) for r in cols])]).astype(np.int32)
        self._shape = dense.shape
        self.maxprint = 50
        self.format = "csc"


@pytest.fixture
def official_style_pickle(tmp_path, monkeypatch):
    """An SMPL .pkl laid out like the official release: chumpy arrays, a sparse regressor, protocol 2.

    The fake classes are registered under chumpy's and scipy's old module names only while pickling,
    so loading must succeed without them.
    """
    arrays = random_smpl_arrays(seed=3)
    chumpy, chumpy_ch, csc = (types.ModuleType(n) for n in ("chumpy", "chumpy.ch", "scipy.sparse.csc"))
    chumpy_ch.Ch, csc.csc_matrix = _FakeCh, _FakeCsc
    _FakeCh.__module__, _FakeCh.__qualname__, _FakeCh.__name__ = "chumpy.ch", "Ch", "Ch"
    _FakeCsc.__module__, _FakeCsc.__qualname__, _FakeCsc.__name__ = "scipy.sparse.csc", "csc_matrix", "csc_matrix"
    with monkeypatch.context() as m:
        for mod in (chumpy, chumpy_ch, csc):
            m.setitem(sys.modules, mod.__name__, mod)
        content = {
            "v_template": _FakeCh(arrays["v_template"].astype(np.float64)),
            "shapedirs": _FakeCh(arrays["shapedirs"].astype(np.float64)),
            "posedirs": arrays["posedirs"].astype(np.float64),
            "J_regressor": _FakeCsc(arrays["J_regressor"].astype(np.float64)),
            "weights": _FakeCh(arrays["weights"].astype(np.float64)),
            "kintree_table": np.stack((np.r_[4294967295, arrays["kintree_table"][0, 1:]], np.arange(24))).astype(np.uint32),
            "f": arrays["f"].astype(np.uint32),
            "bs_style": "lbs",
            "bs_type": "lrotmin",
        }
        path = tmp_path / "SMPL_FAKE.pkl"
        with open(path, "wb") as f:
            pickle.dump(content, f, protocol=2)
    return path, arrays


def test_reads_official_layout_without_chumpy(official_style_pickle):
    path, arrays = official_style_pickle
    assert "chumpy" not in sys.modules
    out = read_smpl_pickle(path)
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "f"):
        np.testing.assert_allclose(out[key], arrays[key], atol=0, rtol=0)
    assert "bs_style" not in out  # strings are not arrays
    assert "chumpy" not in sys.modules


def test_convert_writes_npz_that_smpl_loads(official_style_pickle, tmp_path):
    path, arrays = official_style_pickle
    npz = tmp_path / "out" / "smpl.npz"
    main(["convert", str(path), str(npz)])
    loaded = load_model_arrays(npz)
    assert loaded["model_name"] == "SMPL_FAKE"
    assert loaded["kintree_table"][0, 0] == -1
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights"):
        np.testing.assert_allclose(loaded[key], arrays[key], atol=0, rtol=0)
    assert not list(npz.parent.glob("*.partial"))
    # The converted file, the pickle itself and the arrays all give the same body.
    pose = torch.rand(2, 72) - 0.5
    ref = SMPL(arrays=arrays)(pose=pose).vertices
    assert_close(SMPL(npz)(pose=pose).vertices, ref, atol=1e-6, rtol=0)
    assert_close(SMPL(path)(pose=pose).vertices, ref, atol=1e-6, rtol=0)


def test_cocoplus_regressor_becomes_lsp_regressor(official_style_pickle, tmp_path):
    path, arrays = official_style_pickle
    content = read_smpl_pickle(path)
    coco = np.zeros((19, 6890))
    coco[np.arange(19), np.arange(19) * 10] = 1.0
    content["cocoplus_regressor"] = coco
    with open(tmp_path / "hmr.pkl", "wb") as f:
        pickle.dump(content, f, protocol=2)
    out = convert_smpl_pickle(tmp_path / "hmr.pkl", tmp_path / "hmr.npz")
    np.testing.assert_array_equal(out["J_regressor_lsp"], coco[:14])


def test_hmr_pickle_loaded_directly_uses_its_cocoplus_regressor(official_style_pickle, tmp_path, monkeypatch):
    """A pickle laid out like HMR's neutral_smpl_with_cocoplus_reg.pkl: the official model's chumpy and
    sparse arrays plus a sparse 'cocoplus_regressor' (19, 6890). Loaded directly (a path or
    $HMR_SMPL_MODEL), all 19 keypoints come from that regressor, as in HMR's batch_smpl.py."""
    path, arrays = official_style_pickle
    rng = np.random.default_rng(0)
    coco = np.zeros((19, 6890))
    for k in range(19):  # each keypoint a convex combination of a few vertices
        verts = rng.choice(6890, size=4, replace=False)
        coco[k, verts] = rng.dirichlet(np.ones(4))
    chumpy, chumpy_ch, csc = (types.ModuleType(n) for n in ("chumpy", "chumpy.ch", "scipy.sparse.csc"))
    chumpy_ch.Ch, csc.csc_matrix = _FakeCh, _FakeCsc
    with monkeypatch.context() as m:
        for mod in (chumpy, chumpy_ch, csc):
            m.setitem(sys.modules, mod.__name__, mod)
        with open(path, "rb") as f:
            content = pickle.load(f)
        content["cocoplus_regressor"] = _FakeCsc(coco)
        hmr_pkl = tmp_path / "neutral_smpl_with_cocoplus_reg.pkl"
        with open(hmr_pkl, "wb") as f:
            pickle.dump(content, f, protocol=2)
    loaded = load_model_arrays(hmr_pkl)
    np.testing.assert_array_equal(loaded["J_regressor_lsp"], coco[:14])
    np.testing.assert_array_equal(loaded["J_regressor_face"], coco[14:])
    pose = torch.rand(2, 72, dtype=torch.float64) - 0.5
    monkeypatch.setenv(constants.MODEL_ENV_VAR, str(hmr_pkl))
    for smpl in (SMPL(hmr_pkl, dtype=torch.float64), SMPL(dtype=torch.float64)):
        out = smpl(pose=pose)
        assert_close(out.keypoints, torch.einsum("kv,bvc->bkc", torch.from_numpy(coco), out.vertices),
                     atol=1e-10, rtol=0)
    # convert keeps both regressors, so the .npz gives the same keypoints.
    convert_smpl_pickle(hmr_pkl, tmp_path / "hmr.npz")
    assert_close(SMPL(tmp_path / "hmr.npz", dtype=torch.float64)(pose=pose).keypoints, out.keypoints,
                 atol=1e-5, rtol=0)


class _Evil:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.mark.parametrize("payload", ["os.system", "builtins.eval", "nested"])
def test_pickle_that_runs_code_is_refused(tmp_path, payload):
    marker = tmp_path / "pwned"
    if payload == "os.system":
        obj = {"v_template": _Evil(f"touch {marker}")}
    elif payload == "builtins.eval":
        class EvalEvil:
            def __reduce__(self):
                return (eval, (f"open({str(marker)!r}, 'w').close()",))
        obj = {"v_template": EvalEvil()}
    else:
        obj = {"shapedirs": [np.zeros(3), {"x": _Evil(f"touch {marker}")}]}
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=2))
    with pytest.raises(ModelFileError, match=r"refusing to load '(posix|os|nt|builtins|__builtin__)\.(system|eval)'"):
        load_model_arrays(path)
    assert not marker.exists()


def test_missing_file_says_how_to_get_smpl(tmp_path):
    with pytest.raises(ModelFileError, match=r"does not exist.*smpl\.is\.tue\.mpg\.de.*open body model"):
        SMPL(tmp_path / "SMPL_NEUTRAL.pkl")


def test_env_var_selects_the_model(official_style_pickle, tmp_path, monkeypatch):
    path, _ = official_style_pickle
    monkeypatch.setenv(constants.MODEL_ENV_VAR, str(path))
    assert resolve_model_path() == path
    assert SMPL().model_name == "SMPL_FAKE"
    monkeypatch.setenv(constants.MODEL_ENV_VAR, str(tmp_path / "nope.pkl"))
    with pytest.raises(ModelFileError, match=r"\$HMR_SMPL_MODEL.*does not exist"):
        SMPL()


@pytest.mark.skipif(not OPEN_MODEL_PATH.exists(), reason="the open body model is not built yet")
def test_default_is_the_open_model(monkeypatch):
    monkeypatch.delenv(constants.MODEL_ENV_VAR, raising=False)
    assert resolve_model_path() == OPEN_MODEL_PATH


def test_directory_is_rejected(tmp_path):
    with pytest.raises(ModelFileError, match="is a directory"):
        load_model_arrays(tmp_path)


def _save(path, arrays):
    np.savez(path, **arrays)
    return path


def test_missing_keys_are_named(tmp_path):
    arrays = random_smpl_arrays(seed=0)
    del arrays["weights"], arrays["posedirs"]
    with pytest.raises(ModelFileError, match=r"missing key\(s\) \['posedirs', 'weights'\]"):
        load_model_arrays(_save(tmp_path / "m.npz", arrays))


@pytest.mark.parametrize(
    "key, bad, message",
    [
        ("shapedirs", np.zeros((6890, 10)), r"'shapedirs' has shape \(6890, 10\), expected \(6890, 3, \*\)"),
        ("posedirs", np.zeros((6890, 3, 200)), r"'posedirs' has shape \(6890, 3, 200\), expected \(6890, 3, 207\)"),
        ("J_regressor", np.zeros((24, 6000)), r"'J_regressor' has shape \(24, 6000\), expected \(24, 6890\)"),
        ("weights", np.zeros((6890, 23)), r"'weights' has shape \(6890, 23\), expected \(6890, 24\)"),
        ("v_template", np.zeros((6890, 4)), r"'v_template' has shape \(6890, 4\)"),
        ("f", np.full((10, 3), 7000), r"'f' indexes vertices outside \[0, 6890\)"),
        ("v_template", np.full((6890, 3), np.nan), r"'v_template' holds NaN"),
    ],
)
def test_wrong_shapes_are_named(tmp_path, key, bad, message):
    arrays = random_smpl_arrays(seed=0)
    arrays[key] = bad
    with pytest.raises(ModelFileError, match=message):
        load_model_arrays(_save(tmp_path / "m.npz", arrays))


def test_corrupt_npz_is_reported(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(ModelFileError, match=r"broken\.npz is not a readable SMPL-format \.npz"):
        load_model_arrays(path)
    truncated = tmp_path / "truncated.npz"
    _save(tmp_path / "full.npz", random_smpl_arrays(seed=0))
    truncated.write_bytes((tmp_path / "full.npz").read_bytes()[:100_000])
    with pytest.raises(ModelFileError, match="truncated.npz"):
        load_model_arrays(truncated)


def test_corrupt_pickle_is_reported(tmp_path):
    path = tmp_path / "broken.pkl"
    path.write_bytes(pickle.dumps({"v_template": np.zeros((3, 3))}, protocol=2)[:40])
    with pytest.raises(ModelFileError, match="broken.pkl"):
        load_model_arrays(path)


def test_pickle_of_a_list_is_reported(tmp_path):
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(ModelFileError, match="holds a list, not the dict"):
        read_smpl_pickle(path)


def test_info_command_prints_arrays(official_style_pickle, capsys):
    path, _ = official_style_pickle
    main(["info", str(path)])
    out = capsys.readouterr().out
    assert "SMPL_FAKE" in out and "shapedirs" in out and "(6890, 3, 10)" in out


def test_cli_error_exits_with_message(tmp_path):
    with pytest.raises(SystemExit, match="error: .*does not exist"):
        main(["info", str(tmp_path / "missing.npz")])


def test_arrays_of_strings_are_named(tmp_path):
    arrays = random_smpl_arrays(seed=0)
    arrays["v_template"] = np.full(arrays["v_template"].shape, "a")
    with pytest.raises(ModelFileError, match=r"'v_template' has dtype <U1; a body model holds numbers"):
        load_model_arrays(_save(tmp_path / "m.npz", arrays))


def _official_pickle_with(path, official_style_pickle, **changes):
    content = read_smpl_pickle(official_style_pickle[0])
    content.update(changes)
    with open(path, "wb") as f:
        pickle.dump(content, f, protocol=2)
    return path


def _sparse_pickle(path, state):
    """A pickle of {'J_regressor': <a scipy-csc-like object with ``state``>}, the official layout."""
    from hmr_core.model_files import _SparseMatrix

    class Csc:
        def __reduce__(self):
            return (copyreg_reconstructor, (Csc, object, None), state)

    import copyreg

    copyreg_reconstructor = copyreg._reconstructor
    Csc.__module__, Csc.__qualname__ = "scipy.sparse.csc", "csc_matrix"
    sys.modules.setdefault("scipy.sparse.csc", types.ModuleType("scipy.sparse.csc")).csc_matrix = Csc
    try:
        path.write_bytes(pickle.dumps({"J_regressor": Csc()}, protocol=2))
    finally:
        del sys.modules["scipy.sparse.csc"].csc_matrix
    assert _SparseMatrix  # the stand-in that reads it
    return path


def test_malformed_or_huge_sparse_regressor_is_named(tmp_path):
    bad = _sparse_pickle(tmp_path / "bad.pkl", {"data": np.ones(3), "indices": np.array([0, 1, 99]),
                                                "indptr": np.array([0, 5]), "_shape": (2, 1)})
    with pytest.raises(ModelFileError, match=r"bad\.pkl: 'J_regressor' is not a readable sparse matrix"):
        read_smpl_pickle(bad)
    huge = _sparse_pickle(tmp_path / "huge.pkl", {"data": np.ones(1), "indices": np.array([0]),
                                                  "indptr": np.r_[0, np.ones(10**6, dtype=np.int64)],
                                                  "_shape": (10**6, 10**6)})
    with pytest.raises(ModelFileError, match=r"huge\.pkl: 'J_regressor' has 1000000000000 elements"):
        read_smpl_pickle(huge)


def test_array_with_an_absurd_size_is_refused_before_it_is_allocated(tmp_path):
    import zipfile

    arrays = random_smpl_arrays(seed=0)
    path = _save(tmp_path / "m.npz", {k: v for k, v in arrays.items() if k != "posedirs"})
    header = tmp_path / "posedirs.npy"  # a header that asks for 10¹² float64 (8 TB), and no data
    with open(header, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)})
    with zipfile.ZipFile(path, "a") as z:
        z.write(header, "posedirs.npy")
    with pytest.raises(ModelFileError, match=r"'posedirs' has 1000000000000 elements"):
        load_model_arrays(path)
    # Arrays handed over directly (here a view that holds no memory) are checked the same way.
    arrays["posedirs"] = np.broadcast_to(np.float64(0), (10**6, 10**6))
    with pytest.raises(ModelFileError, match=r"'posedirs' has 1000000000000 elements"):
        SMPL(arrays=arrays)


def test_convert_checks_its_arguments_before_reading(official_style_pickle, tmp_path):
    path, _ = official_style_pickle
    with pytest.raises(SystemExit, match=r"error: .* is a directory; give the \.npz file to write"):
        main(["convert", str(path), str(tmp_path)])
    with pytest.raises(SystemExit, match=r"error: the LSP regressor .*missing\.npy does not exist"):
        main(["convert", str(path), str(tmp_path / "o.npz"), "--lsp-regressor", str(tmp_path / "missing.npy")])
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(SystemExit, match=r"error: the LSP regressor .*objects\.npy stores Python objects"):
        main(["convert", str(path), str(tmp_path / "o.npz"), "--lsp-regressor", str(tmp_path / "objects.npy")])
    assert not (tmp_path / "o.npz").exists() and not list(tmp_path.glob("*.partial"))


def test_running_the_module_prints_no_warning():
    import subprocess

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    result = subprocess.run([sys.executable, "-m", "hmr_core.model_files", "info"], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr
