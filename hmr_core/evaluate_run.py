"""Evaluating a checkpoint: which data, the run, and the command line ``python -m hmr_core.evaluate``.

``evaluation_sets`` turns the command line's names into datasets (synthetic shards, or the real datasets'
test protocols of ``evaluate.REAL_TEST_SPLITS``), ``evaluate_checkpoint`` loads a checkpoint and runs
``evaluate.evaluate_dataset`` on each, and ``main`` prints ``evaluate.format_report``'s tables and writes
``evaluate.results_json`` (the metrics, the protocols and the ``--out`` file are described in
``hmr_core.evaluate``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import Iterable, NamedTuple

import torch

from hmr_core import evaluate
from hmr_core.checkpoints import CheckpointError, load_model
from hmr_core.evaluate import (
    REAL_TEST_SPLITS,
    SYNTHETIC_PROTOCOL,
    EvalResult,
    choose_device,
    device_name,
    evaluate_dataset,
    format_report,
    results_json,
)


# --------------------------------------------------------------------------------------------------
# Which data
# --------------------------------------------------------------------------------------------------
class EvalSet(NamedTuple):
    """A dataset to evaluate and how to label it."""

    name: str
    dataset: torch.utils.data.Dataset
    protocol: str


def evaluation_sets(data: str, data_dir: str | Path, splits: Iterable[str] = ("test", "ood"),
                    datasets: Iterable[str] = ()) -> list[EvalSet]:
    """The datasets a command line names.

    Args:
        data: "synthetic" (shards of ``hmr_core.synthetic``) or "real" (SPIN-format files).
        data_dir: the shards' folder, or the root of the real datasets.
        splits: synthetic splits ("test", "ood").
        datasets: real datasets (``REAL_TEST_SPLITS``'s keys); "h36m" gives both protocols, and
            "h36m:test_p2" one split.

    Returns:
        ``EvalSet`` per row of the table.

    Raises:
        ValueError: for an unknown data kind or dataset; ``DatasetError`` for missing or empty files.
    """
    if data == "synthetic":
        from hmr_core.synthetic_shards import SyntheticDataset

        return [EvalSet(split, SyntheticDataset(data_dir, split, augment=None), SYNTHETIC_PROTOCOL.format(split=split))
                for split in splits]
    if data != "real":
        raise ValueError(f"--data must be 'synthetic' or 'real', got {data!r}")
    from hmr_core.datasets import open_dataset

    datasets = list(datasets)
    if not datasets:
        raise ValueError(f"--data real needs --datasets, some of {sorted(REAL_TEST_SPLITS)}")
    out = []
    for item in datasets:
        name, _, split = item.partition(":")
        if name not in REAL_TEST_SPLITS:
            raise ValueError(f"no test protocol for dataset {name!r}; choose from {sorted(REAL_TEST_SPLITS)}")
        rows = [r for r in REAL_TEST_SPLITS[name] if not split or r[0] == split]
        if not rows:
            raise ValueError(f"{name} has no test split {split!r}; it has {[r[0] for r in REAL_TEST_SPLITS[name]]}")
        out += [EvalSet(label, open_dataset(name, data_dir, s, augment=None), note) for s, label, note in rows]
    return out


def without_worker_traceback(err: Exception) -> str:
    """The message of an error raised in a DataLoader worker, without the worker's traceback that the
    loader wraps around it ("Caught ... in DataLoader worker process 0. Original Traceback ...")."""
    text = str(err)
    if "Original Traceback" not in text:
        return text
    marker = f"{type(err).__module__}.{type(err).__qualname__}: "
    for prefix in (marker, f"{type(err).__qualname__}: "):
        if prefix in text:
            return text.rsplit(prefix, 1)[1].strip()
    return text.strip().splitlines()[-1]


def evaluate_checkpoint(checkpoint: str | Path, data: str, data_dir: str | Path, splits: Iterable[str] = ("test", "ood"),
                        datasets: Iterable[str] = (), device: str = "auto", batch_size: int = 64, workers: int = 4,
                        max_samples: int | None = None, model_path: str | Path | None = None,
                        progress: bool = True) -> tuple[list[EvalResult], dict]:
    """Load a checkpoint and evaluate it on the datasets named (what the command line does).

    Returns:
        ``(results, info)``: an ``EvalResult`` per dataset, and ``checkpoint``, ``step``, ``model_name``,
        ``device``, ``date`` for ``format_report`` and ``results_json``.

    Raises:
        FileNotFoundError, CheckpointError, DatasetError, ModelFileError, ValueError: as ``load_model`` and
            ``evaluation_sets``.
    """
    from hmr_core.annotations import DatasetError

    device = choose_device(device)
    loaded = load_model(checkpoint, device, model_path)
    results = []
    for name, dataset, protocol in evaluation_sets(data, data_dir, splits, datasets):
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                                             pin_memory=device.type == "cuda")
        try:
            results.append(evaluate_dataset(loaded.hmr, loaded.smpl, loader, name, protocol, max_samples=max_samples,
                                            progress=progress))
        except Exception as err:  # a bad image or shard, read in a worker process: its message alone
            if "Original Traceback" not in str(err):
                raise
            try:
                clean = type(err)(without_worker_traceback(err))
            except Exception:  # an exception class that takes other arguments
                clean = DatasetError(without_worker_traceback(err))
            raise clean from None
    info = {"checkpoint": str(loaded.path), "step": loaded.step, "model_name": loaded.model_name,
            "device": device_name(device),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    return results, info


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    from hmr_core.annotations import DatasetError
    from hmr_core.model_files import ModelFileError

    parser = argparse.ArgumentParser(prog="python -m hmr_core.evaluate", description=evaluate.__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a run directory or its checkpoint.pt")
    parser.add_argument("--data", choices=("synthetic", "real"), default="synthetic")
    parser.add_argument("--data-dir", required=True, help="synthetic shards, or the root of the real datasets")
    parser.add_argument("--splits", nargs="+", default=["test", "ood"], help="synthetic splits")
    parser.add_argument("--datasets", nargs="+", default=[], help=f"real datasets: {sorted(REAL_TEST_SPLITS)} "
                        "(h36m: both protocols; h36m:test_p2 one of them)")
    parser.add_argument("--model-path", help="body-model file (default: the one the run used)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=4, help="data-loading processes")
    parser.add_argument("--max-samples", type=int, help="per dataset (default: all)")
    parser.add_argument("--out", help="write all numbers to this JSON file")
    args = parser.parse_args(argv)
    try:
        # Arguments first, before any evaluation.
        for flag, value, low in (("--batch-size", args.batch_size, 1), ("--workers", args.workers, 0),
                                 ("--max-samples", args.max_samples, 1)):
            if value is not None and value < low:
                raise ValueError(f"{flag} must be ≥ {low}, got {value}")
        if args.out:
            if Path(args.out).is_dir():
                raise ValueError(f"--out {args.out} is a directory; give the JSON file to write, e.g. "
                                 f"{Path(args.out) / 'results.json'}")
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        results, info = evaluate_checkpoint(args.checkpoint, args.data, args.data_dir, args.splits, args.datasets,
                                            args.device, args.batch_size, args.workers, args.max_samples,
                                            args.model_path)
    except (FileNotFoundError, FileExistsError, CheckpointError, DatasetError, ModelFileError, ValueError) as err:
        sys.exit(f"error: {err}")
    print(format_report(results, info))
    if args.out:
        Path(args.out).write_text(json.dumps(results_json(results, info), indent=2))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
