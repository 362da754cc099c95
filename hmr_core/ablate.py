"""Ablations of HMR in the synthetic world: ``python -m hmr_core.ablate --preset book_cpu --steps 800``.

Each variant is the base configuration with one part of HMR taken away, trained for the same number of
steps at the same batch size (the same budget), on the same images in the same order, from the same seeds,
then evaluated on the held-out ("test") and out-of-distribution ("ood") splits with ``hmr_core.evaluate``:
MPJPE, PA-MPJPE, 2D PCK, the median root-rotation error and the plausibility of the predicted poses (share
outside the pose prior's joint limits, share self-penetrating), for Θ_T and for every IEF iteration.
Chapter "Evaluation" shows the table.

Variants (``VARIANTS``):

* ``full``: HMR as the paper trains it (3D supervision where labelled, 2D keypoints, the prior, T = 3).
* ``no_adversarial``: without the adversarial prior (HMR, Table 3's "no prior" row on real data).
* ``single_iteration``: T = 1, one regression step instead of iterative error feedback.
* ``2d_only``: the paper's "unpaired" setting: the same images with their 3D labels hidden
  (``hide_3d_fraction = 1``: ``has_3d = has_smpl = 0``, the labels zeroed), so 2D keypoints and the prior
  are all the supervision, and the prior has to keep the poses human.
* ``2d_only_no_adversarial``: 2D keypoints alone, the setting the prior exists for.
* ``every_iteration``: the losses on every IEF iterate Θ_1 … Θ_T (averaged) instead of on Θ_T alone, which
  is all HMR's code supervises.

Everything lands in ``--out``: a run directory per variant and the result files, ``<variant>.json`` (the
``hmr_core.evaluate`` JSON plus the variant's overrides and its training sessions and time) and
``summary.json`` (one row per variant and split, with the command, device, date and budget). Reruns are
honest (``prepare_run``): an interrupted variant resumes, a finished one is skipped (and its evaluation
reused), a run with a smaller budget is continued only where that gives the run the new budget would
train (a constant learning rate), and anything else is refused with a message, before any training; the
summary's budget is the step every variant's checkpoint holds. The book's measured summary is copied to
``BOOK_SUMMARY``, inside the package, so that the chapter finds it wherever it runs.
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

import numpy as np
import torch

from hmr_core.checkpoints import CHECKPOINT_NAME, read_checkpoint
from hmr_core.config import TrainConfig, make_config
from hmr_core.evaluate import results_json
from hmr_core.evaluate_run import evaluate_checkpoint

# The book's ablation: the ``summary.json`` of docs/results/ablation.md, copied here; chapter "Evaluation" shows it.
BOOK_SUMMARY = Path(__file__).parent / "data" / "ablation_summary.json"

VARIANTS: dict[str, dict] = {
    "full": {},
    "no_adversarial": {"adversarial": False},
    "single_iteration": {"num_iterations": 1},
    "2d_only": {"hide_3d_fraction": 1.0},
    "2d_only_no_adversarial": {"hide_3d_fraction": 1.0, "adversarial": False},
    "every_iteration": {"supervise_all_iterations": True},
}
SUMMARY_FIELDS = ("mpjpe_mm", "pa_mpjpe_mm", "pck2d_010", "limit_violation_rate", "joints_outside_limits",
                  "self_penetration_rate", "root_angle_median_deg")
LOG_FIELDS = ("kp_2d", "joints_3d", "smpl", "adv_encoder", "d_out_real", "d_out_fake")  # late_training_log
SESSIONS_NAME = "ablation_sessions.json"  # in each variant's run directory: its training sessions
# The chapter's figure: the first images of the test split predicted by every variant (``prediction_grid``).
BOOK_FIGURE = Path(__file__).parent / "data" / "ablation_predictions.png"
FIGURE_INDICES = (0, 1, 2, 3)
TRUE_BODY_COLOR = (0.45, 0.75, 0.45)  # the true body in the side views; predictions keep the render colour


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


def prepare_run(config: TrainConfig) -> None:
    """Check that the variant's run directory holds this very run, or one
    that can honestly be continued to it.

    A run started with the same configuration is resumed (or skipped when
    finished). A run with a smaller budget and a constant learning rate is
    continued to the new one: its batches and rates depend on the step
    alone, so it becomes the run that the larger budget would have trained
    (``config.json`` gets the new ``max_steps``). Anything else is refused:
    a cosine schedule ends at the run's own ``max_steps``, a run cannot be
    cut back to fewer steps, and a run with other settings is another
    experiment.

    Raises:
        ValueError: naming the run directory and the settings that differ.
    """
    run_dir = Path(config.run_dir)
    if not (run_dir / CHECKPOINT_NAME).is_file():
        return  # nothing trained yet: training starts afresh
    old = dataclasses.asdict(TrainConfig.from_json(run_dir / "config.json"))
    new = dataclasses.asdict(config)
    differ = sorted(key for key in new if old[key] != new[key])
    if not differ:
        return
    done = trained_steps(run_dir)
    if differ == ["max_steps"]:
        if config.lr_schedule == "constant" and config.max_steps >= done:
            TrainConfig.from_dict(new).to_json(run_dir / "config.json")
            return
        why = (f"it has trained {done} steps, more than the "
               f"{config.max_steps} asked" if config.max_steps < done else
               f"its {config.lr_schedule} schedule ends at its own "
               f"max_steps ({old['max_steps']}), so more steps would not "
               "make the run this budget trains")
    else:
        why = "it is another experiment"
    settings = ", ".join(f"{key}={old[key]!r} (asked: {new[key]!r})"
                         for key in differ)
    raise ValueError(f"{run_dir} holds a run trained with {settings}; it "
                     f"cannot become this variant: {why}. Use another "
                     "--out, or the settings it was started with")


def train_variant(config: TrainConfig) -> float:
    """Train (or resume, or skip if finished) one variant; returns the seconds spent training here.

    Each session that trains is appended to ``run_dir/ablation_sessions.json`` (steps, seconds, device).

    Raises:
        ValueError: from ``prepare_run``.
        RuntimeError: if the checkpoint does not reach ``config.max_steps``.
    """
    from hmr_core.evaluate import choose_device, device_name
    from hmr_core.train import train

    prepare_run(config)
    done = trained_steps(config.run_dir)
    if done >= config.max_steps:
        return 0.0
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    start = time.perf_counter()
    train(config, resume=done > 0)
    seconds = time.perf_counter() - start
    reached = trained_steps(config.run_dir)
    if reached != config.max_steps:
        raise RuntimeError(f"{config.run_dir} stopped at step {reached}, not at its budget of {config.max_steps}")
    sessions = training_sessions(config.run_dir)
    sessions.append({"started": started, "seconds": seconds, "from_step": done, "to_step": reached,
                     "device": device_name(choose_device(config.device)), "torch": torch.__version__})
    (Path(config.run_dir) / SESSIONS_NAME).write_text(json.dumps(sessions, indent=1))
    return seconds


def training_sessions(run_dir: str | Path) -> list[dict]:
    """The training sessions recorded in ``run_dir`` (empty if none were)."""
    path = Path(run_dir) / SESSIONS_NAME
    return json.loads(path.read_text()) if path.is_file() else []


def late_training_log(run_dir: str | Path) -> dict[str, float]:
    """Means of the training log over the second half of the run: the unweighted losses and, with the
    prior, the discriminator's mean output on real bodies and on the predictions (1: "real", 0: "fake").

    Raises:
        FileNotFoundError: if the run has no ``history.json`` (it writes one when it finishes).
    """
    history = json.loads((Path(run_dir) / "history.json").read_text())
    late = [h for h in history if h["step"] > history[-1]["step"] // 2]
    keys = [k for k in LOG_FIELDS if all(k in h for h in late)]
    return {k: float(np.mean([h[k] for h in late])) for k in keys}


def summary_rows(name: str, results: dict) -> list[dict]:
    """One row per split: Θ_T's numbers of ``SUMMARY_FIELDS`` from a ``<variant>.json`` dict, the steps it
    was trained for, the same numbers per IEF iteration (t = 1…T), and Θ_T's errors per image."""
    return [{"variant": name, "split": split, "steps": results["step"], "num_samples": r["num_samples"],
             **{k: r["final"][k] for k in SUMMARY_FIELDS},
             "per_iteration": {k: r["per_iteration"][k] for k in SUMMARY_FIELDS},
             "samples": results.get("samples", {}).get(split)}
            for split, r in results["results"].items()]


def evaluate_variant(config: TrainConfig, name: str, out_dir: Path, seconds: float, splits: list[str],
                     eval_workers: int, max_eval_samples: int | None) -> dict:
    """``<variant>.json``: the evaluation of the variant's checkpoint, reused when an earlier one of the same
    checkpoint step, splits and sample count exists and nothing was trained since."""
    path = out_dir / f"{name}.json"
    request = {"splits": splits, "max_samples": max_eval_samples}
    steps = trained_steps(config.run_dir)
    earlier = json.loads(path.read_text()) if seconds == 0.0 and path.is_file() else {}
    if earlier.get("eval_request") == request and earlier.get("step") == steps and "samples" in earlier:
        return earlier
    sessions = training_sessions(config.run_dir)
    if not sessions and earlier.get("step") == steps and earlier.get("train_seconds_this_session"):
        # A record of this checkpoint from before sessions were kept: the session that trained it is the one
        # it timed (its first step is not known).
        sessions = [{"started": None, "seconds": earlier["train_seconds_this_session"], "from_step": None,
                     "to_step": steps, "device": earlier["device"], "torch": None}]
        (Path(config.run_dir) / SESSIONS_NAME).write_text(json.dumps(sessions, indent=1))
    results, info = evaluate_checkpoint(config.run_dir, "synthetic", config.data_dir, splits, device=config.device,
                                        batch_size=config.batch_size, workers=eval_workers,
                                        max_samples=max_eval_samples, progress=False)
    info["checkpoint"] = f"{name}/{CHECKPOINT_NAME}"
    # Θ_T's errors per image (0.1 mm), in split order: the variants see the same images, so the chapter can
    # compare them image by image (a paired difference and its standard error).
    samples = {r.name: {"mpjpe_mm": np.round(r.sample_mpjpe_mm, 1).tolist(),
                        "pa_mpjpe_mm": np.round(r.sample_pa_mpjpe_mm, 1).tolist()} for r in results}
    record = {**results_json(results, info), "variant": name, "overrides": VARIANTS[name], "eval_request": request,
              "samples": samples,
              "train_seconds": sum(s["seconds"] for s in sessions) if sessions else None,
              "train_sessions": sessions, "train_seconds_this_session": seconds}
    path.write_text(json.dumps(record, indent=2))
    return record


def run_ablation(base: TrainConfig, out_dir: str | Path, variants: Iterable[str] = tuple(VARIANTS),
                 splits: Iterable[str] = ("test", "ood"), eval_workers: int = 4,
                 max_eval_samples: int | None = None, command: str | None = None) -> dict:
    """Train and evaluate every variant; write ``<variant>.json`` and ``summary.json`` into ``out_dir``.

    Args:
        base: the shared configuration (data, batch size, steps, device);
            ``run_dir`` is replaced.
        out_dir: where runs and result files go.
        variants: names from ``VARIANTS``.
        splits: synthetic splits to evaluate.
        eval_workers: data-loading processes for evaluation.
        max_eval_samples: per split (None: all).
        command: the command line, recorded in the summary.

    Returns:
        The summary dict that ``summary.json`` holds; its budget is the steps every variant's checkpoint
        holds (``train_variant`` makes each reach ``base.max_steps``, or fails).

    Raises:
        ValueError: for an unknown variant, or a run in ``out_dir`` that cannot become the one asked for
            (``prepare_run``), before anything is trained.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    variants, splits = list(variants), list(splits)
    configs = [variant_config(base, name, out_dir) for name in variants]  # unknown names fail before training
    for config in configs:  # and so do runs that cannot be continued
        prepare_run(config)
    rows, records = [], {}
    for name, config in zip(variants, configs):
        seconds = train_variant(config)
        records[name] = evaluate_variant(config, name, out_dir, seconds, splits, eval_workers, max_eval_samples)
        rows += summary_rows(name, records[name])
    steps = {r["steps"] for r in rows}
    if steps != {base.max_steps}:
        raise RuntimeError(f"the variants hold checkpoints at steps {sorted(steps)}, not at the budget {base.max_steps}")
    first = records[variants[0]]
    summary = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command, "device": first["device"], "torch": torch.__version__,
        "train_devices": sorted({s["device"] for r in records.values() for s in r.get("train_sessions") or []}),
        "budget": {"steps": base.max_steps, "batch_size": base.batch_size, "images": base.max_steps * base.batch_size},
        "train_seconds": {name: records[name].get("train_seconds") for name in variants},
        "late_training_log": {name: late_training_log(config.run_dir) for name, config in zip(variants, configs)},
        "base_config": dataclasses.asdict(base), "variants": {n: VARIANTS[n] for n in variants}, "rows": rows,
        "mean_body": {split: {k: r["mean_body"][k] for k in SUMMARY_FIELDS}
                      for split, r in first["results"].items()},
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def side_view(vertices: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """(V, 3) camera-frame vertices seen from the camera's right: depth becomes the horizontal axis.

    Args:
        vertices: (V, 3) points in the camera frame (x right, y down, z away from the camera).
        centre: (3,) the point the view turns about (the true body's centre, so that every body of a
            figure row is placed alike).
    """
    # a quarter turn about the camera's y axis: z (depth) → x, x → -z
    rotation = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
    return (vertices - centre) @ rotation.T


def prediction_grid(out_dir: str | Path, data_dir: str | Path, variants: Iterable[str], split: str = "test",
                    indices: Iterable[int] = FIGURE_INDICES, size: int = 128) -> np.ndarray:
    """The same images predicted by every variant, for the chapter's figure.

    Two rows per image: the crop and each variant's Θ_T mesh over it (what the camera sees), then the true
    body and each variant's body seen from the side (the depth that 2D keypoints leave open), all side views
    of a row in one frame around the true body.

    Args:
        out_dir: the ablation's ``--out`` (a run directory per variant).
        data_dir: the synthetic shards.
        variants: names from ``VARIANTS``, one column each.
        split: which split the images come from.
        indices: the images of the split.
        size: the side of each tile, pixels.

    Returns:
        (2 · images · size, (1 + variants) · size, 3) uint8 image grid.
    """
    from PIL import Image

    from hmr_core.checkpoints import load_model
    from hmr_core.evaluate import predict_batch
    from hmr_core.render import fit_cam, render_mesh
    from hmr_core.synthetic_shards import SyntheticDataset

    dataset = SyntheticDataset(data_dir, split)
    samples = [dataset[i] for i in indices]
    images = torch.stack([s["img"] for s in samples])  # (N, 3, 224, 224)
    crops = [np.asarray(Image.fromarray((s["img"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
                        .resize((size, size), Image.BILINEAR)) for s in samples]
    models = {name: load_model(Path(out_dir) / name) for name in variants}
    smpl = next(iter(models.values())).smpl
    faces = smpl.faces.cpu().numpy()
    with torch.no_grad():
        truth = smpl(betas=torch.stack([s["betas"] for s in samples]).float(),
                     pose=torch.stack([s["pose"] for s in samples]).float()).vertices.numpy()  # (N, V, 3)
    preds = {name: predict_batch(m.hmr, m.smpl, images) for name, m in models.items()}
    rows = []
    for i, crop in enumerate(crops):
        centre = truth[i].mean(0)
        cam = fit_cam(side_view(truth[i], centre), margin=0.3)
        front, side = [crop], [render_mesh(side_view(truth[i], centre), faces, cam, size=size, color=TRUE_BODY_COLOR)]
        for name, pred in preds.items():
            vertices = pred.vertices[i, -1].numpy()
            front.append(render_mesh(vertices, faces, pred.cam[i, -1].numpy(), image=crop, alpha=0.8))
            side.append(render_mesh(side_view(vertices, vertices.mean(0)), faces, cam, size=size))
        rows += [np.concatenate(front, axis=1), np.concatenate(side, axis=1)]
    return np.concatenate(rows, axis=0)


def format_summary(summary: dict) -> str:
    """The ablation table as Markdown (errors in mm, root rotation in degrees, shares in %), with the mean
    body Θ_0 of each split below its variants."""
    budget = summary["budget"]
    lines = [f"{summary['device']}, {summary['date']}; every variant {budget['steps']} steps of "
             f"{budget['batch_size']} images", "",
             "| variant | split | MPJPE | PA-MPJPE | root° | PCK2D@0.1 | poses outside limits | "
             "joints outside limits | self-penetrating |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]

    def line(name: str, split: str, r: dict) -> str:
        return (f"| {name} | {split} | {r['mpjpe_mm']:.1f} | {r['pa_mpjpe_mm']:.1f} | "
                f"{r['root_angle_median_deg']:.1f} | {100 * r['pck2d_010']:.1f} % | "
                f"{100 * r['limit_violation_rate']:.1f} % | {100 * r['joints_outside_limits']:.1f} % | "
                f"{100 * r['self_penetration_rate']:.1f} % |")

    splits = list(dict.fromkeys(r["split"] for r in summary["rows"]))
    for split in splits:
        lines += [line(r["variant"], split, r) for r in summary["rows"] if r["split"] == split]
        if split in summary.get("mean_body", {}):
            lines.append(line("Θ_0 (mean body)", split, summary["mean_body"][split]))
    return "\n".join(lines)


def main(argv=None) -> int:
    from hmr_core.checkpoints import CheckpointError
    from hmr_core.annotations import DatasetError
    from hmr_core.train import parse_overrides

    parser = argparse.ArgumentParser(prog="python -m hmr_core.ablate", description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="book_cpu", help="the base configuration (the book's: book_cpu)")
    parser.add_argument("--steps", type=int, required=True, help="training steps of every variant (the budget)")
    parser.add_argument("--data-dir", default="data/synthetic", help="synthetic shards: train, test, ood")
    parser.add_argument("--out", default="runs/ablations", help="runs and result files")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--splits", nargs="+", default=["test", "ood"])
    parser.add_argument("--max-eval-samples", type=int, help="per split (default: all)")
    parser.add_argument("--eval-workers", type=int, default=4, help="data-loading processes for evaluation")
    parser.add_argument("--figure", help="also write prediction_grid of the first test images to this PNG")
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="config overrides (JSON values)")
    args = parser.parse_args(argv)
    try:
        base = make_config(args.preset, data="synthetic", data_dir=args.data_dir, max_steps=args.steps,
                           **parse_overrides(args.set))
        command = " ".join(["python -m hmr_core.ablate", *(sys.argv[1:] if argv is None else argv)])
        summary = run_ablation(base, args.out, args.variants, args.splits, args.eval_workers, args.max_eval_samples,
                               command)
    except (FileNotFoundError, CheckpointError, DatasetError, ValueError, RuntimeError) as err:
        sys.exit(f"error: {err}")
    if args.figure:
        from PIL import Image

        Image.fromarray(prediction_grid(args.out, args.data_dir, args.variants)).save(args.figure, optimize=True)
        print(f"figure: {args.figure}")
    print(format_summary(summary))
    print(f"results in {args.out}/summary.json and {args.out}/<variant>.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
