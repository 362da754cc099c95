"""Ablations of HMR in the synthetic world: ``python -m hmr_core.ablate --preset synthetic_h100 --steps 4000``.

Each variant is the base configuration with one part of HMR taken away, trained for the same number of
steps at the same batch size (the same budget), then evaluated on the held-out ("test") and
out-of-distribution ("ood") splits with ``hmr_core.evaluate``: MPJPE, PA-MPJPE, and the plausibility of
the predicted poses (share outside the pose prior's joint limits, share self-penetrating). Chapter
"Evaluation" shows the table.

Variants (``VARIANTS``):

* ``full``: HMR as the paper trains it (3D supervision where labelled, 2D keypoints, the prior, T = 3).
* ``no_adversarial``: without the adversarial prior (HMR, Table 3's "no prior" row on real data).
* ``single_iteration``: T = 1, one regression step instead of iterative error feedback.
* ``2d_only``: no paired 3D supervision (the 3D joint and SMPL terms weighted 0): 2D keypoints and the
  prior only, the paper's "unpaired" setting, where the prior has to keep the poses human.
* ``2d_only_no_adversarial``: 2D keypoints alone, the setting the prior exists for.

Everything lands in ``--out``: a run directory per variant (checkpoints; an interrupted ablation
continues where it stopped: a finished variant is skipped, a started one resumes) and the result files,
``<variant>.json`` (the ``hmr_core.evaluate`` JSON plus the variant's overrides and training time) and
``summary.json`` (one row per variant and split, with device, date and budget). The book's measured
summary is copied to ``BOOK_SUMMARY``, inside the package, so that the chapter finds it wherever it runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
import time
from pathlib import Path
from typing import Iterable

import torch

from hmr_core.checkpoints import CHECKPOINT_NAME, read_checkpoint
from hmr_core.config import TrainConfig, make_config
from hmr_core.evaluate import results_json
from hmr_core.evaluate_run import evaluate_checkpoint

# The book's ablation: ``summary.json`` of an H100 run, copied here; chapter "Evaluation" shows it when it exists.
BOOK_SUMMARY = Path(__file__).parent / "data" / "ablation_summary.json"

VARIANTS: dict[str, dict] = {
    "full": {},
    "no_adversarial": {"adversarial": False},
    "single_iteration": {"num_iterations": 1},
    "2d_only": {"joints_3d_weight": 0.0, "smpl_weight": 0.0},
    "2d_only_no_adversarial": {"joints_3d_weight": 0.0, "smpl_weight": 0.0, "adversarial": False},
}
SUMMARY_FIELDS = ("mpjpe_mm", "pa_mpjpe_mm", "limit_violation_rate", "joints_outside_limits",
                  "self_penetration_rate", "pck2d_010")


def variant_config(base: TrainConfig, name: str, out_dir: str | Path) -> TrainConfig:
    """The base configuration with the variant's overrides, in ``out_dir/<name>``.

    Raises:
        ValueError: for an unknown variant.
    """
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; choose from {list(VARIANTS)}")
    return dataclasses.replace(base, run_dir=str(Path(out_dir) / name), **VARIANTS[name])


def trained_steps(run_dir: str | Path) -> int:
    """Steps of the run's last checkpoint; 0 if it has none."""
    path = Path(run_dir) / CHECKPOINT_NAME
    return int(read_checkpoint(path)["step"]) if path.is_file() else 0


def train_variant(config: TrainConfig) -> float:
    """Train (or resume, or skip if finished) one variant; returns the seconds spent training here."""
    from hmr_core.train import train

    done = trained_steps(config.run_dir)
    if done >= config.max_steps:
        return 0.0
    start = time.perf_counter()
    train(config, resume=done > 0)
    return time.perf_counter() - start


def summary_rows(name: str, results: dict) -> list[dict]:
    """One row per split: Θ_T's numbers of ``SUMMARY_FIELDS`` from a ``results_json`` dict."""
    return [{"variant": name, "split": split, **{k: r["final"][k] for k in SUMMARY_FIELDS}}
            for split, r in results["results"].items()]


def run_ablation(base: TrainConfig, out_dir: str | Path, variants: Iterable[str] = tuple(VARIANTS),
                 splits: Iterable[str] = ("test", "ood"), eval_workers: int = 4,
                 max_eval_samples: int | None = None) -> dict:
    """Train and evaluate every variant; write ``<variant>.json`` and ``summary.json`` into ``out_dir``.

    Args:
        base: the shared configuration (data, batch size, steps, device); ``run_dir`` is replaced.
        out_dir: where runs and result files go.
        variants: names from ``VARIANTS``.
        splits: synthetic splits to evaluate.
        eval_workers: data-loading processes for evaluation.
        max_eval_samples: per split (None: all).

    Returns:
        The summary dict that ``summary.json`` holds.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    variants = list(variants)
    configs = [variant_config(base, name, out_dir) for name in variants]  # unknown names fail before training
    rows = []
    for name, config in zip(variants, configs):
        seconds = train_variant(config)
        results, info = evaluate_checkpoint(config.run_dir, "synthetic", config.data_dir, splits, device=config.device,
                                            batch_size=config.batch_size, workers=eval_workers,
                                            max_samples=max_eval_samples, progress=False)
        info["checkpoint"] = f"{name}/{CHECKPOINT_NAME}"
        record = {**results_json(results, info), "variant": name, "overrides": VARIANTS[name],
                  "train_seconds_this_session": seconds}
        (out_dir / f"{name}.json").write_text(json.dumps(record, indent=2))
        rows += summary_rows(name, record)
    summary = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": info["device"], "torch": torch.__version__,
        "budget": {"steps": base.max_steps, "batch_size": base.batch_size, "images": base.max_steps * base.batch_size},
        "base_config": dataclasses.asdict(base), "variants": {n: VARIANTS[n] for n in variants}, "rows": rows,
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def format_summary(summary: dict) -> str:
    """The ablation table as Markdown (errors in mm, shares in %)."""
    lines = [f"{summary['device']}, {summary['date']}; every variant {summary['budget']['steps']} steps of "
             f"{summary['budget']['batch_size']} images", "",
             "| variant | split | MPJPE | PA-MPJPE | poses outside limits | joints outside limits | self-penetrating |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in summary["rows"]:
        lines.append(f"| {r['variant']} | {r['split']} | {r['mpjpe_mm']:.1f} | {r['pa_mpjpe_mm']:.1f} | "
                     f"{100 * r['limit_violation_rate']:.1f} % | {100 * r['joints_outside_limits']:.1f} % | "
                     f"{100 * r['self_penetration_rate']:.1f} % |")
    return "\n".join(lines)


def main(argv=None) -> int:
    from hmr_core.checkpoints import CheckpointError
    from hmr_core.annotations import DatasetError
    from hmr_core.train import parse_overrides

    parser = argparse.ArgumentParser(prog="python -m hmr_core.ablate", description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="synthetic_h100", help="the base configuration")
    parser.add_argument("--steps", type=int, required=True, help="training steps of every variant (the budget)")
    parser.add_argument("--data-dir", default="data/synthetic", help="synthetic shards: train, test, ood")
    parser.add_argument("--out", default="runs/ablations", help="runs and result files")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--splits", nargs="+", default=["test", "ood"])
    parser.add_argument("--max-eval-samples", type=int, help="per split (default: all)")
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="config overrides (JSON values)")
    args = parser.parse_args(argv)
    try:
        base = make_config(args.preset, data="synthetic", data_dir=args.data_dir, max_steps=args.steps,
                           **parse_overrides(args.set))
        summary = run_ablation(base, args.out, args.variants, args.splits, max_eval_samples=args.max_eval_samples)
    except (FileNotFoundError, CheckpointError, DatasetError, ValueError) as err:
        sys.exit(f"error: {err}")
    print(format_summary(summary))
    print(f"results in {args.out}/summary.json and {args.out}/<variant>.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
