"""Body-model files: find, read and check SMPL-format models, and convert the official SMPL ``.pkl``.

Two kinds of file hold a body model:

* an SMPL-format ``.npz`` with the keys of ``constants.MODEL_REQUIRED_KEYS`` (and optionally the
  keypoint regressors of ``constants.MODEL_KEYPOINT_KEYS``). The open body model that ships with
  ``hmr_core`` is one; ``python -m hmr_core.model_files convert`` makes one from the official model.
* the official ``SMPL_{NEUTRAL,MALE,FEMALE}.pkl`` (or HMR's ``neutral_smpl_with_cocoplus_reg.pkl``), a
  Python 2 pickle of chumpy objects and a scipy sparse matrix. It is read with a restricted unpickler
  that builds only plain arrays: nothing in the file is executed and neither chumpy nor the classes it
  names are imported.

Which model is used: an explicit path, else the file named by ``$HMR_SMPL_MODEL``, else the open model.
"""

import argparse
import math
import os
import pickle
import sys
import zipfile
from pathlib import Path

import numpy as np

from hmr_core import constants

DATA_DIR = Path(__file__).resolve().parent / "data"
OPEN_MODEL_PATH = DATA_DIR / constants.OPEN_MODEL_FILENAME

_HOW_TO_GET_SMPL = (
    "The official SMPL model needs a free registration at https://smpl.is.tue.mpg.de (download "
    "'SMPL for Python', e.g. basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl). Point "
    f"${constants.MODEL_ENV_VAR} at that .pkl, or convert it once with "
    "'python -m hmr_core.model_files convert SMPL.pkl smpl.npz'. Without it, hmr_core uses its open "
    f"body model: unset ${constants.MODEL_ENV_VAR} and pass no path."
)


class ModelFileError(ValueError):
    """A body-model file is missing, unreadable, or does not hold an SMPL-format model."""


# No array of a body model comes near this many elements (SMPL's largest, posedirs, has 4.3 million; the
# open body model's 8.4 million); a file that asks for more is refused before anything is allocated.
MAX_MODEL_ARRAY_ELEMENTS = 10**8


def _check_size(path, key: str, shape: tuple) -> None:
    """Refuse an array shape with more than ``MAX_MODEL_ARRAY_ELEMENTS`` elements, naming the key."""
    count = math.prod(int(n) for n in shape)
    if count > MAX_MODEL_ARRAY_ELEMENTS:
        raise ModelFileError(f"{path}: '{key}' has {count} elements (shape {tuple(shape)}); a body model's arrays "
                             f"have at most {MAX_MODEL_ARRAY_ELEMENTS}: the file is corrupt or not a body model")


# --------------------------------------------------------------------------------------------------
# Finding the model
# --------------------------------------------------------------------------------------------------
def resolve_model_path(path: str | os.PathLike | None = None) -> Path:
    """Decide which model file to use: ``path``, else ``$HMR_SMPL_MODEL``, else the open model.

    Args:
        path: an explicit ``.npz`` or ``.pkl`` file, or None.

    Returns:
        The path of an existing file.

    Raises:
        ModelFileError: if the chosen file does not exist (the message says how to get SMPL).
    """
    if path is not None:
        source = "the path given"
    elif os.environ.get(constants.MODEL_ENV_VAR):
        path, source = os.environ[constants.MODEL_ENV_VAR], f"${constants.MODEL_ENV_VAR}"
    else:
        path, source = OPEN_MODEL_PATH, "the open body model that ships with hmr_core"
    path = Path(path).expanduser()
    if path.is_dir():
        raise ModelFileError(f"{path} ({source}) is a directory; give the model file itself. {_HOW_TO_GET_SMPL}")
    if not path.is_file():
        if path == OPEN_MODEL_PATH:
            raise ModelFileError(
                f"the open body model {path} is missing from the installed package; reinstall hmr_core or "
                "rebuild it with 'python -m hmr_core.open_body_model build'."
            )
        raise ModelFileError(f"body-model file {path} ({source}) does not exist. {_HOW_TO_GET_SMPL}")
    return path


# --------------------------------------------------------------------------------------------------
# Reading the official pickle without running it
# --------------------------------------------------------------------------------------------------
class _ChumpyArray:
    """Stand-in for ``chumpy.ch.Ch``: keeps the pickled state, from which ``x`` holds the array."""

    def __setstate__(self, state):
        self.state = state

    def to_numpy(self) -> np.ndarray:
        state = getattr(self, "state", None)
        if not isinstance(state, dict) or "x" not in state:
            keys = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ModelFileError(f"a chumpy object in the file holds no plain array ('x'); its state has {keys}")
        return np.asarray(state["x"])


class _SparseMatrix:
    """Stand-in for scipy's csc/csr matrices: keeps ``data``, ``indices``, ``indptr`` and the shape."""

    format = "csc"

    def __setstate__(self, state):
        self.state = state

    def to_numpy(self, path="model", key: str = "matrix") -> np.ndarray:
        import scipy.sparse

        state = getattr(self, "state", None)
        try:
            shape = tuple(int(n) for n in state.get("_shape", state.get("shape")))
            _check_size(path, key, shape)
            build = scipy.sparse.csc_matrix if self.format == "csc" else scipy.sparse.csr_matrix
            matrix = build((state["data"], state["indices"], state["indptr"]), shape=shape)
            return np.asarray(matrix.toarray())
        except ModelFileError:
            raise
        except (AttributeError, KeyError, TypeError, ValueError, IndexError) as err:
            raise ModelFileError(f"{path}: '{key}' is not a readable sparse matrix ({type(err).__name__}: {err}); "
                                 "the file is corrupt or not an official SMPL model") from err


class _CsrMatrix(_SparseMatrix):
    format = "csr"


def _reconstructor(cls, base, state):
    """Safe replacement for ``copy_reg._reconstructor`` (protocol 0/1 pickles): stand-ins only."""
    if cls not in (_ChumpyArray, _SparseMatrix, _CsrMatrix) or base is not object:
        raise pickle.UnpicklingError(f"refusing to reconstruct {cls!r} from base {base!r}")
    return object.__new__(cls)


def _latin1_encode(text, encoding="latin1"):
    """Safe replacement for ``_codecs.encode``, which Python 3 pickles of byte strings call."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refusing to call _codecs.encode with {type(text).__name__}, {encoding!r}")
    return text.encode(encoding)


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar
    return _reconstruct, scalar


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that admits only the classes an SMPL model file needs, mapped to safe stand-ins.

    numpy arrays and dtypes are built by numpy; chumpy ``Ch`` objects and scipy sparse matrices become
    inert stand-ins that only hold their state. Any other global (``os.system``, ``builtins.eval``,
    ``subprocess.Popen``, ...) raises ``pickle.UnpicklingError`` before anything is called.
    """

    def find_class(self, module: str, name: str):
        reconstruct, scalar = _numpy_reconstruct()
        allowed = {
            ("numpy.core.multiarray", "_reconstruct"): reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): reconstruct,
            ("numpy.core.multiarray", "scalar"): scalar,
            ("numpy._core.multiarray", "scalar"): scalar,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            ("chumpy.ch", "Ch"): _ChumpyArray,
            ("scipy.sparse.csc", "csc_matrix"): _SparseMatrix,
            ("scipy.sparse._csc", "csc_matrix"): _SparseMatrix,
            ("scipy.sparse.csr", "csr_matrix"): _CsrMatrix,
            ("scipy.sparse._csr", "csr_matrix"): _CsrMatrix,
            ("copy_reg", "_reconstructor"): _reconstructor,
            ("copyreg", "_reconstructor"): _reconstructor,
            ("_codecs", "encode"): _latin1_encode,
            # Plain containers in chumpy's state; constructing them runs no code from the file.
            ("__builtin__", "set"): set,
            ("builtins", "set"): set,
            ("__builtin__", "frozenset"): frozenset,
            ("builtins", "frozenset"): frozenset,
            ("__builtin__", "object"): object,
            ("builtins", "object"): object,
        }
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(
                f"refusing to load '{module}.{name}' from a model file: only numpy arrays, chumpy arrays and "
                "scipy sparse matrices are allowed, and nothing in the file is executed"
            )
        return allowed[(module, name)]


def _plain(value, path="model", key: str = "array"):
    """Turn stand-ins and arrays into numpy arrays; keep other plain values (strings, numbers)."""
    if isinstance(value, _SparseMatrix):
        return value.to_numpy(path, key)
    if isinstance(value, _ChumpyArray):
        return value.to_numpy()
    return value


def read_smpl_pickle(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read an official SMPL ``.pkl`` into plain numpy arrays, executing nothing from the file.

    Args:
        path: the ``.pkl`` file (Python 2 or 3 pickle).

    Returns:
        Every array-valued entry of the file's dict; sparse matrices are made dense.

    Raises:
        ModelFileError: if the file cannot be read or is not a dict of arrays, or tries to load anything
            other than arrays (the message names what it tried).
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = RestrictedUnpickler(f, encoding="latin1").load()
    except pickle.UnpicklingError as err:
        raise ModelFileError(f"{path}: {err}") from err
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as err:
        raise ModelFileError(f"{path} is not a readable SMPL pickle ({type(err).__name__}: {err})") from err
    if not isinstance(raw, dict):
        raise ModelFileError(f"{path} holds a {type(raw).__name__}, not the dict of arrays of an SMPL model file")
    out = {}
    for key, value in raw.items():
        value = _plain(value, path, str(key))
        if isinstance(value, np.ndarray) and value.dtype != object:
            out[str(key)] = value
    return out


# --------------------------------------------------------------------------------------------------
# Checking and loading
# --------------------------------------------------------------------------------------------------
def check_shape(path, key: str, array: np.ndarray, shape: tuple, error: type[Exception] = None,
                any_size: str = "*", hint: str = "") -> None:
    """Check ``array.shape`` against ``shape``, whose None entries match any size.

    Args:
        path: the file, named in the message.
        key: the array's name in the file.
        array: the array.
        shape: the expected shape, None for "any size".
        error: the exception to raise (default ``ModelFileError``).
        any_size: how a None entry is written in the message ("*", or "N" for a count of samples).
        hint: appended to the message, e.g. " (SPIN's format)".

    Raises:
        ``error``: naming the file, the key, the shape found and the shape expected.
    """
    ok = array.ndim == len(shape) and all(s is None or s == a for s, a in zip(shape, array.shape))
    if not ok:
        want = "(" + ", ".join(any_size if s is None else str(s) for s in shape) + ")"
        raise (error or ModelFileError)(f"{path}: '{key}' has shape {array.shape}, expected {want}{hint}")


def validate_model_arrays(arrays: dict[str, np.ndarray], path="model") -> dict[str, np.ndarray]:
    """Check keys and shapes of an SMPL-format model and return it in canonical dtypes.

    Args:
        arrays: the model's arrays (keys of ``constants.MODEL_REQUIRED_KEYS``, optionally
            ``constants.MODEL_KEYPOINT_KEYS``).
        path: the file name to put in error messages.

    Returns:
        A new dict: float arrays as float64, ``f`` and ``face_vertex_ids`` as int64, ``kintree_table`` as
        int64 with the root's parent set to -1, ``J_regressor`` dense.

    Raises:
        ModelFileError: naming the missing key or the array with the wrong shape.
    """
    missing = [k for k in constants.MODEL_REQUIRED_KEYS if k not in arrays]
    if missing:
        raise ModelFileError(
            f"{path} is missing key(s) {missing}; an SMPL-format model needs {list(constants.MODEL_REQUIRED_KEYS)}"
            + (f" (it has {sorted(arrays)})" if arrays else "")
        )
    out = {k: np.asarray(arrays[k]) for k in arrays}
    for key in constants.MODEL_REQUIRED_KEYS + constants.MODEL_KEYPOINT_KEYS:
        if key in out:
            _check_size(path, key, out[key].shape)
            if not (np.issubdtype(out[key].dtype, np.number) or out[key].dtype == bool):
                raise ModelFileError(f"{path}: '{key}' has dtype {out[key].dtype}; a body model holds numbers")
    v_template = out["v_template"]
    check_shape(path, "v_template", v_template, (None, 3))
    num_verts = v_template.shape[0]
    kintree = out["kintree_table"]
    check_shape(path, "kintree_table", kintree, (2, None))
    num_joints = kintree.shape[1]
    check_shape(path, "shapedirs", out["shapedirs"], (num_verts, 3, None))
    check_shape(path, "posedirs", out["posedirs"], (num_verts, 3, 9 * (num_joints - 1)))
    check_shape(path, "J_regressor", out["J_regressor"], (num_joints, num_verts))
    check_shape(path, "weights", out["weights"], (num_verts, num_joints))
    check_shape(path, "f", out["f"], (None, 3))
    if "J_regressor_lsp" in out:
        check_shape(path, "J_regressor_lsp", out["J_regressor_lsp"], (constants.NUM_LSP_JOINTS, num_verts))
    if "J_regressor_face" in out:
        check_shape(path, "J_regressor_face", out["J_regressor_face"], (len(constants.FACE_KEYPOINT_NAMES), num_verts))
    if "face_vertex_ids" in out:
        check_shape(path, "face_vertex_ids", out["face_vertex_ids"], (len(constants.FACE_KEYPOINT_NAMES),))

    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "J_regressor_lsp", "J_regressor_face"):
        if key in out:
            out[key] = out[key].astype(np.float64)
            if not np.isfinite(out[key]).all():
                raise ModelFileError(f"{path}: '{key}' holds NaN or infinite values")
    for key in ("f", "face_vertex_ids"):
        if key in out:
            out[key] = out[key].astype(np.int64)
            if out[key].min(initial=0) < 0 or out[key].max(initial=0) >= num_verts:
                raise ModelFileError(f"{path}: '{key}' indexes vertices outside [0, {num_verts})")
    # The official files store the root's parent as 2**32 - 1 in an unsigned table.
    parents = kintree[0].astype(np.int64)
    parents[0] = -1
    if any(not 0 <= p < j for j, p in enumerate(parents[1:], start=1)):
        raise ModelFileError(f"{path}: 'kintree_table' parents {parents.tolist()} do not form a tree rooted at 0")
    out["kintree_table"] = np.stack((parents, kintree[1].astype(np.int64)))
    return out


def with_cocoplus_keypoints(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Use HMR's ``cocoplus_regressor`` (19, V), when a file has one, for the 19 keypoints.

    HMR's model file ``neutral_smpl_with_cocoplus_reg.pkl`` regresses all its keypoints with this matrix
    (``src/tf_smpl/batch_smpl.py``, ``joint_type='cocoplus'``): its first 14 rows become
    ``J_regressor_lsp`` and its last 5 ``J_regressor_face``. Keys the file already has are kept.

    Args:
        arrays: a model file's arrays.

    Returns:
        A new dict with the keypoint regressors added (the same arrays if there is no cocoplus regressor).
    """
    coco = arrays.get(constants.COCOPLUS_REGRESSOR_KEY)
    if coco is None:
        return arrays
    out = dict(arrays)
    out.setdefault("J_regressor_lsp", coco[: constants.NUM_LSP_JOINTS])
    out.setdefault("J_regressor_face", coco[constants.NUM_LSP_JOINTS:])
    return out


def _npz_shapes(npz) -> dict[str, tuple]:
    """The shape of every array of an open ``.npz``, read from the headers alone (nothing allocated)."""
    shapes = {}
    for member in npz.zip.namelist():
        if not member.endswith(".npy"):
            continue
        with npz.zip.open(member) as f:
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shapes[member.removesuffix(".npy")] = read_header(f)[0]
    return shapes


def load_model_arrays(path: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Load and check a body model: an SMPL-format ``.npz`` or the official ``.pkl``.

    HMR's ``neutral_smpl_with_cocoplus_reg.pkl`` is read with its own keypoint regressor
    (``with_cocoplus_keypoints``), as ``convert`` does.

    Args:
        path: the file, or None for ``$HMR_SMPL_MODEL`` or else the open model.

    Returns:
        The checked arrays (see ``validate_model_arrays``), plus ``model_name`` (a str).

    Raises:
        ModelFileError: for a missing, corrupt or incomplete file.
    """
    path = resolve_model_path(path)
    if path.suffix == ".pkl":
        arrays = with_cocoplus_keypoints(read_smpl_pickle(path))
        name = path.stem
    else:
        try:
            with np.load(path, allow_pickle=False) as npz:
                for key, shape in _npz_shapes(npz).items():
                    _check_size(path, key, shape)
                arrays = {k: npz[k] for k in npz.files}
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
            if isinstance(err, ModelFileError):
                raise
            raise ModelFileError(
                f"{path} is not a readable SMPL-format .npz ({type(err).__name__}: {err}); re-create it with "
                "'python -m hmr_core.model_files convert' or, for the open model, reinstall hmr_core"
            ) from err
        name = str(arrays.pop("model_name", path.stem))
        arrays.pop("build_info", None)
    out = validate_model_arrays(arrays, path)
    out["model_name"] = name
    return out


# --------------------------------------------------------------------------------------------------
# Converting the official model
# --------------------------------------------------------------------------------------------------
def convert_smpl_pickle(
    pkl_path: str | os.PathLike, npz_path: str | os.PathLike, lsp_regressor: str | os.PathLike | None = None
) -> dict[str, np.ndarray]:
    """Convert an official SMPL ``.pkl`` into an SMPL-format ``.npz``, without chumpy.

    HMR's ``neutral_smpl_with_cocoplus_reg.pkl`` also holds ``cocoplus_regressor`` (19, 6890); its first
    14 rows become ``J_regressor_lsp`` and its last 5 ``J_regressor_face`` (``with_cocoplus_keypoints``).
    Otherwise a (14, V) ``.npy`` can be given for the LSP joints.

    Args:
        pkl_path: the official model file.
        npz_path: where to write the ``.npz``.
        lsp_regressor: optional ``.npy`` file with a (14, V) LSP joint regressor.

    Returns:
        The arrays written.

    Raises:
        ModelFileError: for an output path that is a directory, a missing or unreadable regressor, or a
            model file that cannot be read (all checked before anything is written).
    """
    npz_path = Path(npz_path)
    if npz_path.is_dir():
        raise ModelFileError(f"{npz_path} is a directory; give the .npz file to write, e.g. {npz_path / 'smpl.npz'}")
    if lsp_regressor is not None:
        lsp = _read_npy(lsp_regressor, "the LSP regressor")
    arrays = with_cocoplus_keypoints(read_smpl_pickle(pkl_path))
    if lsp_regressor is not None:
        arrays["J_regressor_lsp"] = lsp
    checked = validate_model_arrays(arrays, pkl_path)
    keep = constants.MODEL_REQUIRED_KEYS + constants.MODEL_KEYPOINT_KEYS
    out = {k: checked[k] for k in keep if k in checked}
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "J_regressor_lsp", "J_regressor_face"):
        if key in out:
            out[key] = out[key].astype(np.float32)
    out["f"] = out["f"].astype(np.int32)
    npz_path.parent.mkdir(parents=True, exist_ok=True)
    # Write to a temporary name first so an interrupted conversion never leaves a half-written model.
    tmp = npz_path.with_name(npz_path.name + ".partial")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, model_name=np.array(Path(pkl_path).stem), **out)
    os.replace(tmp, npz_path)
    return out


def _read_npy(path: str | os.PathLike, what: str) -> np.ndarray:
    """A ``.npy`` array of numbers, never unpickling; errors name ``what`` and the file."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{what} {path} does not exist")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as err:
        if "Object arrays" in str(err):
            raise ModelFileError(f"{what} {path} stores Python objects, which are not read (unpickling runs code); "
                                 "save a plain (14, V) float array with np.save") from err
        raise ModelFileError(f"{what} {path} is not a readable .npy ({err})") from err
    except (OSError, EOFError) as err:
        raise ModelFileError(f"{what} {path} is not a readable .npy ({type(err).__name__}: {err})") from err
    if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.number):
        raise ModelFileError(f"{what} {path} holds {getattr(array, 'dtype', type(array).__name__)}, not numbers")
    return array


def describe(arrays: dict[str, np.ndarray]) -> str:
    """One line per array: key, shape, dtype."""
    return "\n".join(f"  {k:16s} {str(getattr(v, 'shape', '')):18s} {getattr(v, 'dtype', type(v).__name__)}" for k, v in arrays.items())


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m hmr_core.model_files", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help="convert the official SMPL .pkl to an SMPL-format .npz")
    conv.add_argument("pkl", help="official SMPL model, e.g. basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl")
    conv.add_argument("npz", help="output .npz")
    conv.add_argument("--lsp-regressor", help="optional (14, V) .npy regressor for the LSP joints")
    info = sub.add_parser("info", help="print the arrays of a model file (default: the model in use)")
    info.add_argument("path", nargs="?")
    args = parser.parse_args(argv)
    try:
        if args.command == "convert":
            out = convert_smpl_pickle(args.pkl, args.npz, args.lsp_regressor)
            print(f"wrote {args.npz}\n{describe(out)}")
        else:
            arrays = load_model_arrays(args.path)
            print(f"{arrays.pop('model_name')} ({resolve_model_path(args.path)})\n{describe(arrays)}")
    except ModelFileError as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
