"""Checkpoints of ``hmr_core.train``: written atomically, read safely, and turned back into a model.

A checkpoint is a dict of tensors, numbers and strings (read with ``torch.load(weights_only=True)``):
``hmr`` and ``disc`` (state dicts), ``encoder_optimizer`` and ``disc_optimizer``, ``config`` (the run's
``TrainConfig`` as JSON), ``step``, ``rng`` (every generator's state, one per process), ``history`` (the
log as JSON) and ``model_name`` (the body model it was trained with). Evaluation and the demo need only
``REQUIRED_CHECKPOINT_KEYS``; ``--resume`` needs ``RESUME_CHECKPOINT_KEYS``.
"""

import argparse
import json
import os
import pickle
import sys
from pathlib import Path
from typing import NamedTuple

import torch

from hmr_core.body_model import SMPL
from hmr_core.config import TrainConfig
from hmr_core.hmr import HMR
from hmr_core.model_files import OPEN_MODEL_PATH

CHECKPOINT_NAME = "checkpoint.pt"  # what ``hmr_core.train`` writes in a run directory
# The book's small model (preset ``book_cpu``: ImageNet EfficientNet-Lite0 on 128-pixel crops, fine-tuned
# on a CPU in the synthetic world), exported with ``export_weights``; ``docs/results/book_model.md`` says
# how it was made.
BOOK_MODEL = Path(__file__).parent / "data" / "book_model.pt"
# Its evaluation on the synthetic test and ood splits (``python -m hmr_core.evaluate --out``), shipped with
# the package so that a chapter run outside the checkout (Colab) finds it.
BOOK_MODEL_EVAL = Path(__file__).parent / "data" / "book_model_eval.json"
REQUIRED_CHECKPOINT_KEYS = ("hmr", "config", "step", "model_name")
RESUME_CHECKPOINT_KEYS = REQUIRED_CHECKPOINT_KEYS + ("disc", "encoder_optimizer", "disc_optimizer", "rng", "history")


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write atomically: a killed write leaves the previous checkpoint intact, a failed one no ``.partial``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def describe_load_error(err: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in words that do not invite loading it unsafely.

    torch's own message suggests ``weights_only=False``, which would run whatever the file asks for; a
    checkpoint of tensors and numbers never needs it.
    """
    text = str(err)
    if "Weights only load failed" in text:
        asked = [line.strip() for line in text.splitlines() if "GLOBAL" in line or "Unsupported" in line]
        return ("it is not a plain checkpoint: it asks to run code while loading"
                + (f" ({asked[0]})" if asked else "") + ", so it was not loaded. A file of tensors and numbers "
                "never needs that; do not load it with weights_only=False. Re-export it from the run that made it")
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"


class CheckpointError(ValueError):
    """A checkpoint is unreadable, incomplete, or was trained with another body model."""


class LoadedModel(NamedTuple):
    """A checkpoint ready to evaluate.

    Attributes:
        hmr: the network, in eval mode, on the requested device.
        smpl: the body model it was trained with, on the same device.
        config: the configuration of the run.
        step: training steps behind the weights.
        model_name: the body model's name stored in the checkpoint.
        path: the checkpoint file.
    """

    hmr: HMR
    smpl: SMPL
    config: TrainConfig
    step: int
    model_name: str
    path: Path


def resolve_checkpoint(path: str | Path) -> Path:
    """A run directory (its ``checkpoint.pt``) or a checkpoint file.

    Raises:
        FileNotFoundError: naming the path looked at.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / CHECKPOINT_NAME).is_file():
            raise FileNotFoundError(f"the run directory {path} has no {CHECKPOINT_NAME}; has training written a "
                                    "checkpoint yet (ckpt_every)?")
        return path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: give a run directory or its {CHECKPOINT_NAME}")
    return path


def read_checkpoint(path: str | Path, required: tuple[str, ...] = REQUIRED_CHECKPOINT_KEYS) -> dict:
    """Read a checkpoint with ``weights_only=True`` and check it has the keys a use needs.

    Args:
        path: a run directory or a checkpoint file.
        required: the keys that must be there (``RESUME_CHECKPOINT_KEYS`` to continue training).

    Returns:
        The checkpoint dict.

    Raises:
        FileNotFoundError: if there is no checkpoint there.
        CheckpointError: for a file that is not a checkpoint, or one missing keys (named).
    """
    path = resolve_checkpoint(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, OSError) as err:
        raise CheckpointError(f"{path} is not a readable checkpoint ({describe_load_error(err)})") from err
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path} holds a {type(ckpt).__name__}, not a checkpoint dict")
    missing = [key for key in required if key not in ckpt]
    if missing:
        raise CheckpointError(f"{path} is missing key(s) {missing}; a checkpoint of hmr_core.train has "
                              f"{list(RESUME_CHECKPOINT_KEYS)}; this one has {sorted(ckpt)}")
    return ckpt


def config_from_checkpoint(ckpt: dict, path: Path) -> TrainConfig:
    """The run's ``TrainConfig`` from the checkpoint's JSON string.

    Raises:
        CheckpointError: for JSON that is not a config this version knows.
    """
    try:
        values = json.loads(ckpt["config"])
    except (TypeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: 'config' is not a JSON string ({err})") from err
    try:
        return TrainConfig.from_dict(values, f"{path}: 'config'")
    except ValueError as err:
        raise CheckpointError(str(err)) from err


def load_model(checkpoint_path: str | Path, device: str | torch.device = "cpu",
               model_path: str | Path | None = None) -> LoadedModel:
    """Rebuild HMR and its body model from a checkpoint written by ``hmr_core.train``.

    Args:
        checkpoint_path: a run directory or a ``checkpoint.pt``.
        device: where to put the network and the body model.
        model_path: the body-model file to use; None uses the run's ``config.model_path`` (None there:
            ``$HMR_SMPL_MODEL``, else the open body model; a run trained on the open body model gets it
            even where ``$HMR_SMPL_MODEL`` names another).

    Returns:
        ``LoadedModel``.

    Raises:
        FileNotFoundError: if there is no checkpoint.
        CheckpointError: for an unreadable or incomplete checkpoint, weights that do not fit the network
            (keys named), or a checkpoint trained with another body model.
    """
    path = resolve_checkpoint(checkpoint_path)
    ckpt = read_checkpoint(path)
    config = config_from_checkpoint(ckpt, path)
    chosen = model_path if model_path is not None else config.model_path
    smpl = SMPL(chosen)
    if smpl.model_name != ckpt["model_name"] and chosen is None:
        # $HMR_SMPL_MODEL names another model, but the open body model ships with the package: a run
        # trained on it (the book's model) still loads with the model it needs.
        open_model = SMPL(OPEN_MODEL_PATH)
        if open_model.model_name == ckpt["model_name"]:
            smpl = open_model
    if smpl.model_name != ckpt["model_name"]:
        raise CheckpointError(
            f"{path} was trained with the body model {ckpt['model_name']!r}, but the body model loaded here is "
            f"{smpl.model_name!r}; β and θ mean different bodies in another model. Point --model-path (or "
            "$HMR_SMPL_MODEL) at the model the run used.")
    state = ckpt["hmr"]
    if not isinstance(state, dict) or "regressor.init_theta" not in state:
        keys = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path}: 'hmr' is not an HMR state dict with 'regressor.init_theta' (it has {keys})")
    hmr = HMR(state["regressor.init_theta"], num_iterations=config.num_iterations, dropout=config.dropout,
              encoder=config.encoder, input_size=config.input_size)
    expected, given = set(hmr.state_dict()), set(state)
    if expected != given:
        missing, unexpected = sorted(expected - given), sorted(given - expected)
        raise CheckpointError(f"{path}: the 'hmr' weights do not fit HMR(encoder={config.encoder!r}, "
                              f"num_iterations={config.num_iterations}): "
                              f"missing {missing[:10]}{' …' if len(missing) > 10 else ''}, unexpected "
                              f"{unexpected[:10]}{' …' if len(unexpected) > 10 else ''}")
    try:
        hmr.load_state_dict(state)
    except RuntimeError as err:  # shape mismatches
        raise CheckpointError(f"{path}: the 'hmr' weights do not fit the network: {err}") from err
    device = torch.device(device)
    return LoadedModel(hmr.to(device).eval(), smpl.to(device), config, int(ckpt["step"]), str(ckpt["model_name"]), path)


def export_weights(checkpoint: str | Path, out: str | Path, half: bool = True) -> Path:
    """A small file for inference: the network's weights, the run's config, step, body model and log.

    The optimisers, the discriminator and the random states are left out (such a file cannot resume
    training); with ``half``, floating-point weights are stored in float16 (half the size; ``load_model``
    turns them back into float32).

    Args:
        checkpoint: a run directory or a checkpoint file.
        out: the file to write.
        half: store float weights as float16.

    Returns:
        ``out`` as a Path.

    Raises:
        FileNotFoundError, CheckpointError: as ``read_checkpoint``.
        ValueError: if ``out`` is a directory, the checkpoint itself, or a run's resumable checkpoint (an
            export cannot resume training, so writing it there would lose the run).
    """
    source = resolve_checkpoint(checkpoint)
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"{out} is a directory; give the file to write, e.g. {out / 'model.pt'}")
    if out.exists() and (out.resolve() == source.resolve() or out.name == CHECKPOINT_NAME):
        raise ValueError(f"{out} is a run's resumable checkpoint; an export holds the weights alone and cannot resume "
                         "training, so it is not written over it. Choose another file name, e.g. model.pt")
    ckpt = read_checkpoint(source)
    weights = {k: v.half() if half and v.is_floating_point() else v for k, v in ckpt["hmr"].items()}
    small = {"hmr": weights, "config": ckpt["config"], "step": ckpt["step"], "model_name": ckpt["model_name"]}
    if "history" in ckpt:
        small["history"] = ckpt["history"]
    out.parent.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(out, small)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hmr_core.checkpoints", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export", help="write the weights alone, for evaluation and the demo")
    export.add_argument("checkpoint", help="a run directory or its checkpoint.pt")
    export.add_argument("out", help="the file to write")
    export.add_argument("--float32", action="store_true", help="keep float32 weights (default: float16)")
    args = parser.parse_args(argv)
    try:
        path = export_weights(args.checkpoint, args.out, half=not args.float32)
    except (FileNotFoundError, ValueError) as err:  # CheckpointError is a ValueError
        sys.exit(f"error: {err}")
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
