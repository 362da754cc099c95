"""Train HMR: ``python -m hmr_core.train --preset tiny_cpu --run-dir runs/tiny``.

One GPU: ``python -m hmr_core.train --preset synthetic_h100``. Several: ``torchrun --nproc_per_node 8 -m
hmr_core.train ...`` (DDP; each process takes ``batch_size`` samples). ``--resume`` continues a run from
its last checkpoint with the configuration it was started with; ``--resume --set`` may change only the
fields of ``config.RESUMABLE_FIELDS`` (learning rates, length, logging, device, ...). The loop is flat on
purpose (chapter "Training"): an ``encoder_step`` and a ``discriminator_step`` per iteration, losses from
``hmr_core.losses`` weighted by named config fields, a log that is a dict of floats.
"""

import argparse
import dataclasses
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from hmr_core import losses
from hmr_core.body_model import SMPL
from hmr_core.checkpoints import CHECKPOINT_NAME, RESUME_CHECKPOINT_KEYS, CheckpointError, read_checkpoint, save_checkpoint
from hmr_core.config import PRESETS, RESUMABLE_FIELDS, TrainConfig, check_paper_inputs, make_config
from hmr_core.discriminator import NUM_BODY_JOINTS, FactorizedDiscriminator
from hmr_core.encoder import load_imagenet_weights
from hmr_core.evaluate import ground_truth_joints, joint_errors
from hmr_core.hmr import HMR, predict_bodies
from hmr_core.loaders import (build_data, check_batch_finite, check_training_data, hide_3d_labels, make_loader,
                              sample_pose_pool)
from hmr_core.regressor import mean_theta
from hmr_core.train_runtime import (RunDirectoryBusy, progress_bar, autocast_context, rng_state, run_directory_lock,
                                    seed_everything, set_rng_state, setup_runtime, stop_requested, to_device, unwrap)


class TrainingDiverged(RuntimeError):
    """The loss became NaN, infinite or too large; the last good checkpoint is kept."""


# --------------------------------------------------------------------------------------------------
# Random numbers of a step
# --------------------------------------------------------------------------------------------------
def step_generator(seed: int, step: int, stream: int) -> torch.Generator:
    """A generator that depends only on (seed, step, stream): data drawn at a step is the same after resume."""
    return torch.Generator().manual_seed(hash((seed, step, stream)) % 2**63)


# --------------------------------------------------------------------------------------------------
# Losses of one step
# --------------------------------------------------------------------------------------------------
def encoder_losses(
    pred, batch: dict, config: TrainConfig
) -> dict[str, torch.Tensor]:
    """The encoder's supervised losses for Θ_T (or averaged over all T).

    Args:
        pred: ``BodyPrediction`` with (B, T) leading axes.
        batch: the batch (see ``hmr_core.datasets``).
        config: loss weights, and whether to supervise every iteration.

    Returns:
        Unweighted losses: ``kp_2d``, ``joints_3d``, ``smpl``.
    """
    num_iters = pred.cam.shape[1]
    if config.supervise_all_iterations:
        iters = range(num_iters)
    else:
        iters = [num_iters - 1]
    out = {"kp_2d": 0.0, "joints_3d": 0.0, "smpl": 0.0}
    for t in iters:
        out["kp_2d"] += losses.keypoint_reprojection_loss(
            pred.keypoints_2d[:, t], batch["keypoints_2d"]
        )
        out["joints_3d"] += losses.joints_3d_loss(
            pred.joints_3d[:, t], batch["joints_3d"], batch["has_3d"]
        )
        out["smpl"] += losses.smpl_param_loss(
            pred.rotmats[:, t], pred.betas[:, t],
            batch["pose"], batch["betas"], batch["has_smpl"],
        )
    return {k: v / len(iters) for k, v in out.items()}


def weighted_encoder_loss(
    terms: dict[str, torch.Tensor], config: TrainConfig
) -> torch.Tensor:
    """λ·L_reproj + λ·(L_3D joints + L_3D params), no adversarial term.

    HMR, Sec. 3; ``do_train.sh`` sets λ = 60 on each; here they are the
    config's named weights.
    """
    return (
        config.kp_2d_weight * terms["kp_2d"]
        + config.joints_3d_weight * terms["joints_3d"]
        + config.smpl_weight * terms["smpl"]
    )


def encoder_step(
    hmr, disc, smpl, batch: dict, optimizer, scaler_ctx, config: TrainConfig
):
    """One update of the encoder and regressor (HMR, Sec. 3):

        L = λ(L_reproj + 𝟙·L_3D) + L_adv

    Returns:
        ``(log, fake_rotmats, fake_betas)``: the log dict of floats, and the
        predicted (B·T, 24, 3, 3) rotations and (B·T, 10) shapes of every
        iteration, detached, for the discriminator.
    """
    hmr.train()
    with scaler_ctx():
        thetas = hmr(batch["img"])  # (B, T, 85)
    pred = predict_bodies(thetas.float(), smpl)
    terms = encoder_losses(pred, batch, config)
    loss = weighted_encoder_loss(terms, config)
    # Every iteration is a fake: (B·T, 24, 3, 3) and (B·T, 10).
    fake_rot = pred.rotmats.flatten(0, 1)
    fake_betas = pred.betas.flatten(0, 1)
    log = {k: float(v.detach()) if torch.is_tensor(v) else float(v)
           for k, v in terms.items()}
    if config.adversarial:
        adv = losses.encoder_adversarial_loss(disc(fake_rot, fake_betas))
        loss = loss + config.adv_weight * adv
        log["adv_encoder"] = float(adv.detach())
    check_finite(loss, config)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.grad_clip > 0:
        norm = torch.nn.utils.clip_grad_norm_(
            hmr.parameters(), config.grad_clip
        )
        log["grad_norm"] = float(norm)
    optimizer.step()
    log["loss"] = float(loss.detach())
    return log, fake_rot.detach(), fake_betas.detach()


def discriminator_step(
    disc, real_pose, real_betas, fake_rot, fake_betas, optimizer,
    config: TrainConfig,
) -> dict:
    """One update of the 25 discriminators.

    Real poses come from the pool, fakes from every IEF iteration. As in HMR's
    code, the real half has as many samples as the fakes (B·T), so the batch
    is balanced.
    """
    disc.train()
    d_real = disc(real_pose, real_betas)  # (B·T, 25)
    d_fake = disc(fake_rot, fake_betas)  # (B·T, 25)
    loss_real, loss_fake = losses.discriminator_adversarial_losses(
        d_real, d_fake
    )
    loss = config.adv_weight * (loss_real + loss_fake)
    check_finite(loss, config)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    log = {
        "disc": float(loss.detach()),
        "disc_real": float(loss_real.detach()),
        "disc_fake": float(loss_fake.detach()),
        "d_out_real": float(d_real.detach().mean()),
        "d_out_fake": float(d_fake.detach().mean()),
    }
    log.update(discriminator_head_outputs(d_real.detach(), "real"))
    log.update(discriminator_head_outputs(d_fake.detach(), "fake"))
    return log


def discriminator_head_outputs(scores: torch.Tensor, kind: str) -> dict[str, float]:
    """Mean outputs of each kind of head on (N, 25) scores: the 23 joint heads together, the all-joints
    head and the shape head (the mean of all 25 hides whether the all-joints head separates the two)."""
    return {f"d_{kind}_joints": float(scores[:, :NUM_BODY_JOINTS].mean()),
            f"d_{kind}_all_joints": float(scores[:, NUM_BODY_JOINTS].mean()),
            f"d_{kind}_shape": float(scores[:, NUM_BODY_JOINTS + 1].mean())}


def check_finite(loss: torch.Tensor, config: TrainConfig) -> None:
    """Raise ``TrainingDiverged`` for a NaN, infinite or too large (``max_loss``) loss."""
    value = float(loss.detach())
    if not math.isfinite(value) or value > config.max_loss:
        raise TrainingDiverged(f"the loss is {value} (limit max_loss={config.max_loss}): training diverged")


def check_weights(modules: dict, config: TrainConfig) -> None:
    """Raise ``TrainingDiverged`` if a parameter is not finite or exceeds ``config.max_weight`` in magnitude.

    Args:
        modules: name -> module, for the message.
        config: ``max_weight``.
    """
    for module_name, module in modules.items():
        for name, param in module.named_parameters():
            largest = float(param.detach().abs().max()) if param.numel() else 0.0
            if not math.isfinite(largest) or largest > config.max_weight:
                raise TrainingDiverged(f"the weights exploded: {module_name} {name} reaches {largest:g} (limit "
                                       f"max_weight={config.max_weight:g}); training diverged")


def divergence_advice(config: TrainConfig, saved_step: int | None) -> str:
    """What to do after ``TrainingDiverged``: the resume command, with rates a resume does apply."""
    if saved_step is None:
        return (f"No checkpoint was written yet: start the run again (the same --run-dir will do) with lower "
                f"learning rates, e.g. --set encoder_lr={config.encoder_lr / 10:g} disc_lr={config.disc_lr / 10:g}, "
                "or grad_clip=1.")
    return (f"The last good checkpoint (step {saved_step}) is kept; continue from it with lower learning rates: "
            f"python -m hmr_core.train --run-dir {config.run_dir} --resume --set "
            f"encoder_lr={config.encoder_lr / 10:g} disc_lr={config.disc_lr / 10:g} (or grad_clip=1).")


# --------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------
@torch.no_grad()
def evaluate(hmr, smpl, loader, device, scaler_ctx, max_samples: int) -> dict:
    """MPJPE and PA-MPJPE (mm) of Θ_T on the labelled LSP joints, for samples with 3D ground truth.

    Joints with confidence 0 are left out, exactly as in ``python -m hmr_core.evaluate``
    (``evaluate.ground_truth_joints`` and ``evaluate.joint_errors``).
    """
    hmr.eval()
    errs, pa_errs, seen = [], [], 0
    for batch in loader:
        batch = to_device(batch, device)
        with scaler_ctx():
            thetas = hmr(batch["img"])
        pred = predict_bodies(thetas[:, -1:].float(), smpl)  # (B, 1) leading axes: Θ_T
        gt, confidence = ground_truth_joints(batch, smpl)  # (B, 14, 3), (B, 14)
        has = (confidence > 0).any(dim=1)
        if has.any():
            errors = joint_errors(pred.joints_3d[has], gt[has], confidence[has])  # (1, N) each, mm
            errs.append(errors.mpjpe[0])
            pa_errs.append(errors.pa_mpjpe[0])
        seen += len(batch["img"])
        if seen >= max_samples:
            break
    if not errs:
        return {}
    return {"mpjpe_mm": float(torch.cat(errs).mean()), "pa_mpjpe_mm": float(torch.cat(pa_errs).mean()),
            "eval_samples": int(sum(len(e) for e in errs))}


@torch.no_grad()
def example_overlays(hmr, smpl, batch: dict, scaler_ctx, num: int = 4) -> np.ndarray:
    """Images for TensorBoard: each input with ground-truth (green) and predicted (red) keypoints, and
    the predicted mesh of every IEF iteration over it, side by side.

    Returns:
        (num · H, (T + 1) · W, 3) uint8 image grid.
    """
    from hmr_core.augment import tensor_to_image
    from hmr_core.camera import normalized_to_pixel
    from hmr_core.render import draw_keypoints, render_mesh

    was_training = hmr.training
    hmr.eval()
    images = batch["img"][:num]
    with scaler_ctx():
        thetas = hmr(images)
    hmr.train(was_training)
    pred = predict_bodies(thetas.float(), smpl)
    size = images.shape[-1]
    faces = smpl.faces.cpu().numpy()
    rows = []
    for b in range(len(images)):
        crop = tensor_to_image(images[b])
        gt = batch["keypoints_2d"][b].cpu()
        panel = draw_keypoints(crop, normalized_to_pixel(gt[:, :2], size), gt[:, 2], color=(40, 200, 40))
        panel = draw_keypoints(panel, normalized_to_pixel(pred.keypoints_2d[b, -1].cpu(), size))
        meshes = [render_mesh(pred.vertices[b, t].cpu(), faces, pred.cam[b, t].cpu(), image=crop, alpha=0.8)
                  for t in range(pred.cam.shape[1])]
        rows.append(np.concatenate([panel, *meshes], axis=1))
    return np.concatenate(rows, axis=0)


# --------------------------------------------------------------------------------------------------
# What a training process builds (shared with ``python -m hmr_core.bench train``)
# --------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class TrainingModels:
    """The modules and optimisers one training process updates."""

    hmr: HMR
    disc: FactorizedDiscriminator
    encoder_optimizer: torch.optim.Optimizer
    disc_optimizer: torch.optim.Optimizer


def initial_theta(pose_pool) -> torch.Tensor:
    """Θ_0 as HMR's code builds its ``mean_param``.

    Scale 0.9, root (π, 0, 0) (upright for the y-down camera), and the pool's
    mean body pose and mean shape.
    """
    root = torch.tensor([math.pi, 0.0, 0.0])
    mean_pose = torch.cat((root, pose_pool.pose[:, 3:].float().mean(0)))
    mean_betas = pose_pool.shape.float().mean(0)
    return mean_theta(mean_pose, cam_scale=0.9, mean_betas=mean_betas)


def learning_rate_factor(config: TrainConfig, step: int) -> float:
    """The factor on both learning rates at ``step``: 1 (HMR's constant rates), or a cosine to 0."""
    if config.lr_schedule == "constant":
        return 1.0
    if config.lr_schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(step, config.max_steps) / config.max_steps))
    raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {config.lr_schedule!r}")


def set_learning_rates(models: "TrainingModels", config: TrainConfig, step: int) -> None:
    """Set both optimisers' rates for ``step`` from the config (a function of the step alone, so a
    resumed run follows the same schedule)."""
    factor = learning_rate_factor(config, step)
    for optimizer, base in ((models.encoder_optimizer, config.encoder_lr), (models.disc_optimizer, config.disc_lr)):
        for group in optimizer.param_groups:
            group["lr"] = base * factor


def build_models(config: TrainConfig, init_theta: torch.Tensor, device: torch.device) -> TrainingModels:
    """HMR and the discriminator on ``device`` (HMR channels-last if asked), and their Adams."""
    hmr = HMR(init_theta, config.num_iterations, config.dropout, config.encoder, config.input_size,
              train_init_theta=config.train_init_theta).to(device)
    if config.encoder_frozen_blocks:
        if not hasattr(hmr.encoder, "freeze_first_blocks"):
            raise ValueError(f"encoder_frozen_blocks is for encoder='efficientnet_lite0', not {config.encoder!r}; "
                             "use --set encoder_frozen_blocks=0")
        hmr.encoder.freeze_first_blocks(config.encoder_frozen_blocks)
    if config.channels_last:
        hmr = hmr.to(memory_format=torch.channels_last)
    disc = FactorizedDiscriminator().to(device)
    return TrainingModels(
        hmr=hmr,
        disc=disc,
        encoder_optimizer=torch.optim.Adam([p for p in hmr.parameters() if p.requires_grad], lr=config.encoder_lr,
                                           weight_decay=config.encoder_weight_decay),
        disc_optimizer=torch.optim.Adam(disc.parameters(), lr=config.disc_lr, weight_decay=config.disc_weight_decay),
    )


def prepare_batch(batch: dict, device: torch.device, config: TrainConfig) -> dict:
    """Move a batch to ``device``, images channels-last where the encoder is."""
    batch = to_device(batch, device)
    if config.channels_last:
        batch["img"] = batch["img"].contiguous(memory_format=torch.channels_last)
    return batch


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------
def train(config: TrainConfig, resume: bool = False, data=None, changes: dict | None = None) -> list[dict]:
    """Train HMR; returns the log (one dict of floats per logged step).

    The run directory is locked while the run lasts: a second process on it stops at once.

    Args:
        config: the configuration (with ``resume``, the run directory's ``config.json`` is used instead).
        resume: continue from ``run_dir/checkpoint.pt``.
        data: ``loaders.TrainingData`` to use instead of what ``config`` names (tests, notebooks).
        changes: with ``resume``, fields to change (only ``config.RESUMABLE_FIELDS``); they are applied to
            the restored optimisers too, and ``config.json`` records them.

    Raises:
        TrainingDiverged: the loss went NaN or above ``config.max_loss``, or the weights became non-finite
            or larger than ``config.max_weight`` (no checkpoint is written from them).
        RunDirectoryBusy: another process trains in ``run_dir``.
        ValueError: for changes a resume may not make, a resumed run already at ``max_steps``, or data
            with NaN or infinite labels (naming the file).
        ValueError: for ``paper_inputs_required`` without ImageNet weights or a pose pool (``config.check_paper_inputs``).
    """
    run_dir = Path(config.run_dir)
    if resume and not (run_dir / "config.json").is_file():
        raise FileNotFoundError(f"{run_dir} holds no run to resume (no config.json); start it without --resume")
    if changes and not resume:
        raise ValueError("changes are for a resumed run; pass the fields in config instead")
    if not resume:
        check_paper_inputs(config)  # a refused run leaves no run directory behind
    with run_directory_lock(run_dir, enabled=int(os.environ.get("RANK", "0")) == 0):
        return _train(config, resume, data, changes or {})


def apply_resume_changes(config: TrainConfig, changes: dict) -> TrainConfig:
    """The run's config with the fields a resume may change set to ``changes``.

    Raises:
        ValueError: for a field outside ``config.RESUMABLE_FIELDS`` (or unknown), saying what to do.
    """
    changes = {k: v for k, v in changes.items() if k != "run_dir"}
    unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(TrainConfig)})
    if unknown:
        raise ValueError(f"unknown config field(s) {unknown}; see hmr_core.config.TrainConfig")
    fixed = sorted(k for k, v in changes.items() if k not in RESUMABLE_FIELDS and getattr(config, k, object()) != v)
    if fixed:
        raise ValueError(f"--resume cannot change {fixed}: they define the run (its network, data, batches, "
                         f"objective or seed). Start a new run in another --run-dir for that. A resume may change "
                         f"{list(RESUMABLE_FIELDS)}.")
    return dataclasses.replace(config, **changes)


def _train(config: TrainConfig, resume: bool, data, changes: dict) -> list[dict]:
    run_dir = Path(config.run_dir)
    ckpt_path = run_dir / CHECKPOINT_NAME
    if resume:
        config = TrainConfig.from_json(run_dir / "config.json")
        config = apply_resume_changes(dataclasses.replace(config, run_dir=str(run_dir)), changes)
    if config.imagenet_weights and not resume and config.imagenet_weights != "installed":
        from hmr_core.encoder import read_state_dict

        read_state_dict(config.imagenet_weights, config.encoder)  # a bad file fails now, before any work
    departures = check_paper_inputs(config)  # raises for a paper-setting run without the paper's inputs
    rt = setup_runtime(config)
    if rt.is_main:
        for line in departures:
            print(line, file=sys.stderr)
    seed_everything(config.seed + rt.rank)
    if rt.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not resume:
            if ckpt_path.exists():
                raise FileExistsError(f"{run_dir} already holds a run; pass --resume or choose another --run-dir")
            config.to_json(run_dir / "config.json")

    data = build_data(config) if data is None else data
    check_training_data(data)
    train_set, eval_set, pose_pool = data.train_set, data.eval_set, data.pose_pool
    train_set = hide_3d_labels(train_set, config.hide_3d_fraction, config.seed)  # the "unpaired" setting at 1
    smpl = SMPL(config.model_path).to(rt.device)
    models = build_models(config, initial_theta(pose_pool), rt.device)
    hmr, disc, enc_opt, disc_opt = models.hmr, models.disc, models.encoder_optimizer, models.disc_optimizer
    if config.imagenet_weights and not resume:
        load_imagenet_weights(hmr.encoder, config.imagenet_weights)
    use_cuda = rt.device.type == "cuda"

    step, history = 0, []
    if resume:
        if not ckpt_path.is_file():
            raise FileNotFoundError(f"no checkpoint at {ckpt_path} to resume from; start the run without --resume")
        ckpt = read_checkpoint(ckpt_path, RESUME_CHECKPOINT_KEYS)
        if ckpt["model_name"] != smpl.model_name:
            raise CheckpointError(f"{ckpt_path} was trained with the body model {ckpt['model_name']!r}, but "
                                  f"{smpl.model_name!r} is loaded now; resume with the model the run started with")
        hmr.load_state_dict(ckpt["hmr"])
        disc.load_state_dict(ckpt["disc"])
        enc_opt.load_state_dict(ckpt["encoder_optimizer"])
        disc_opt.load_state_dict(ckpt["disc_optimizer"])
        step, history = ckpt["step"], json.loads(ckpt["history"])
        set_rng_state(ckpt["rng"][rt.rank] if rt.rank < len(ckpt["rng"]) else ckpt["rng"][0])
        if step >= config.max_steps:
            raise ValueError(f"the run in {run_dir} has already reached step {step} (max_steps={config.max_steps}); "
                             f"to train on, resume with --set max_steps=N for some N > {step}")
        # The restored optimisers carry the rates and weight decays they were saved with; the config's
        # (changed or not) are what this run uses.
        set_learning_rates(models, config, step)
        for optimizer, decay in ((enc_opt, config.encoder_weight_decay), (disc_opt, config.disc_weight_decay)):
            for group in optimizer.param_groups:
                group["weight_decay"] = decay
        if changes and rt.is_main:
            before = TrainConfig.from_json(run_dir / "config.json")
            changed = {k: (getattr(before, k), getattr(config, k)) for k in changes
                       if getattr(before, k) != getattr(config, k)}
            if changed:
                config.to_json(run_dir / "config.json")
                print("resuming with " + ", ".join(f"{k}: {a} -> {b}" for k, (a, b) in changed.items()),
                      file=sys.stderr)
    saved_step = step if resume else None

    train_model = hmr
    if config.compile:
        train_model = torch.compile(train_model)
    if rt.world_size > 1:
        train_model = DistributedDataParallel(train_model, device_ids=[rt.local_rank] if use_cuda else None)
        disc = DistributedDataParallel(disc, device_ids=[rt.local_rank] if use_cuda else None)

    autocast = autocast_context(config, rt.device)
    loader = make_loader(train_set, config, start_step=step, rank=rt.rank, world_size=rt.world_size)
    eval_loader = make_loader(eval_set, config, evaluation=True) if eval_set is not None else None
    writer = None
    if rt.is_main:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(run_dir / "tensorboard")

    def checkpoint():
        nonlocal saved_step
        check_weights({"hmr": unwrap(hmr), "disc": unwrap(disc)}, config)
        rngs = [rng_state()]
        if rt.world_size > 1:
            gathered = [None] * rt.world_size
            dist.all_gather_object(gathered, rngs[0])
            rngs = gathered
        if rt.is_main:
            save_checkpoint(ckpt_path, {
                "hmr": unwrap(hmr).state_dict(), "disc": unwrap(disc).state_dict(),
                "encoder_optimizer": enc_opt.state_dict(), "disc_optimizer": disc_opt.state_dict(),
                "config": json.dumps(dataclasses.asdict(config)), "step": step, "rng": rngs,
                "history": json.dumps(history), "model_name": smpl.model_name,
            })
        saved_step = step

    # Ctrl-C or SIGTERM (a cluster pre-empting the job, torchrun stopping it) only raises a flag: the step
    # under way finishes, a checkpoint is written, and the run stops in a state --resume continues exactly.
    stop = {"requested": False}
    handlers = {}
    if threading.current_thread() is threading.main_thread():  # signals can only be caught there
        handlers = {sig: signal.signal(sig, lambda *_: stop.update(requested=True)) for sig in (signal.SIGINT, signal.SIGTERM)}
    progress = progress_bar(step, config.max_steps, rt.is_main)
    start, images_seen = time.perf_counter(), 0
    try:
        for batch in loader:
            batch = prepare_batch(batch, rt.device, config)
            set_learning_rates(models, config, step)
            try:
                log, fake_rot, fake_betas = encoder_step(train_model, disc, smpl, batch, enc_opt, autocast, config)
                if config.adversarial:
                    real_pose, real_betas = sample_pose_pool(pose_pool, len(fake_rot), step_generator(config.seed, step, rt.rank))
                    log.update(discriminator_step(disc, real_pose.to(rt.device), real_betas.to(rt.device),
                                                  fake_rot, fake_betas, disc_opt, config))
            except TrainingDiverged as err:
                check_batch_finite(batch, step + 1)  # broken data is named before the optimiser is blamed
                raise TrainingDiverged(f"{err} at step {step + 1}. {divergence_advice(config, saved_step)}") from None
            step += 1
            images_seen += len(batch["img"]) * rt.world_size
            progress.update(1)
            if step % config.log_every == 0 or step == config.max_steps:
                log.update(step=step, images_per_s=images_seen / (time.perf_counter() - start))
                if eval_loader is not None and config.eval_every and (step % config.eval_every == 0 or step == config.max_steps):
                    log.update(evaluate(unwrap(hmr), smpl, eval_loader, rt.device, autocast, config.eval_samples))
                history.append(log)
                if writer is not None:
                    for key, value in log.items():
                        if key != "step":
                            writer.add_scalar(key, value, step)
                    progress.set_postfix(loss=f"{log['loss']:.3f}")
            if writer is not None and config.image_every and step % config.image_every == 0:
                grid = example_overlays(unwrap(hmr), smpl, batch, autocast)
                writer.add_image("examples/input_keypoints_and_meshes_t1_to_T", grid, step, dataformats="HWC")
            try:
                if stop_requested(stop["requested"], rt):
                    checkpoint()
                    raise KeyboardInterrupt(f"stopped at step {step}; checkpoint saved to {ckpt_path}, continue with --resume")
                if step % config.ckpt_every == 0 or step == config.max_steps:
                    checkpoint()
            except TrainingDiverged as err:
                raise TrainingDiverged(f"{err} after the update of step {step}. "
                                       f"{divergence_advice(config, saved_step)}") from None
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        progress.close()
        if writer is not None:
            writer.close()
    if rt.is_main:
        (run_dir / "history.json").write_text(json.dumps(history, indent=1))
    return history


def parse_overrides(pairs: list[str]) -> dict:
    """``key=value`` pairs; values parsed as JSON where they can be (numbers, booleans, lists)."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--set takes key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m hmr_core.train", description=__doc__.split("\n")[0],
        epilog="With --resume, the run continues with the config.json it started with. --set may then change "
               f"only {', '.join(RESUMABLE_FIELDS)}; the new values (learning rates included) apply to the "
               "restored optimisers and are written to config.json. Any other field is refused: it defines "
               "the run, so start a new --run-dir to change it.")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="a starting configuration (not with --resume)")
    parser.add_argument("--run-dir", help="where the run writes (default: runs/hmr)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override config fields (with --resume: only the fields listed below)")
    args = parser.parse_args(argv)
    try:
        overrides = parse_overrides(args.set)
        if args.run_dir:
            overrides["run_dir"] = args.run_dir
        if args.resume:
            if args.preset:
                raise ValueError("--preset has no effect with --resume: the run keeps its config.json (change "
                                 "what a resume may change with --set)")
            config = make_config(run_dir=overrides.get("run_dir", TrainConfig.run_dir))
            history = train(config, resume=True, changes={k: v for k, v in overrides.items() if k != "run_dir"})
        else:
            config = make_config(args.preset, **overrides)
            history = train(config)
    except (TrainingDiverged, RunDirectoryBusy, FileExistsError, FileNotFoundError, ValueError) as err:
        sys.exit(f"error: {err}")
    except KeyboardInterrupt as stopped:
        print(f"\n{stopped}", file=sys.stderr)
        sys.exit(130)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if history:
        print(json.dumps(history[-1]))


if __name__ == "__main__":
    main()
