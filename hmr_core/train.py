"""Train HMR: ``python -m hmr_core.train --preset tiny_cpu --run-dir runs/tiny``.

One GPU: ``python -m hmr_core.train --preset synthetic_h100``. Several: ``torchrun --nproc_per_node 8 -m
hmr_core.train ...`` (DDP; each process takes ``batch_size`` samples). ``--resume`` continues a run from
its last checkpoint with the configuration it was started with. The loop is flat on purpose (chapter
"Training"): an ``encoder_step`` and a ``discriminator_step`` per iteration, losses from
``hmr_core.losses`` weighted by named config fields, a log that is a dict of floats.
"""

import argparse
import contextlib
import dataclasses
import json
import math
import os
import random
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
from hmr_core.config import PRESETS, TrainConfig, make_config
from hmr_core.discriminator import NUM_BODY_JOINTS, FactorizedDiscriminator
from hmr_core.encoder import load_imagenet_weights
from hmr_core.evaluate import LSP_HIPS, METRIC_MM
from hmr_core.hmr import HMR, predict_bodies
from hmr_core.loaders import build_data, hide_3d_labels, make_loader, sample_pose_pool
from hmr_core.metrics import mpjpe, pa_mpjpe
from hmr_core.regressor import mean_theta



class TrainingDiverged(RuntimeError):
    """The loss became NaN, infinite or too large; the last good checkpoint is kept."""


# --------------------------------------------------------------------------------------------------
# Set-up
# --------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Runtime:
    """Where this process runs: device and, under torchrun, its rank among ``world_size``."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_runtime(config: TrainConfig) -> Runtime:
    """Choose the device once, and join the process group when started by torchrun."""
    if config.device == "auto":
        device_type = "cuda" if torch.cuda.is_available() else "cpu"
    else:
        device_type = config.device
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device='cuda' but no GPU is visible; use --set device=cpu")
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device(device_type)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Runtime(device=device, rank=rank, world_size=world_size, local_rank=local_rank)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def step_generator(seed: int, step: int, stream: int) -> torch.Generator:
    """A generator that depends only on (seed, step, stream): data drawn at a step is the same after resume."""
    return torch.Generator().manual_seed(hash((seed, step, stream)) % 2**63)


# --------------------------------------------------------------------------------------------------
# Losses of one step
# --------------------------------------------------------------------------------------------------
def encoder_losses(pred, batch: dict, config: TrainConfig) -> dict[str, torch.Tensor]:
    """The encoder's supervised losses for Θ_T (or averaged over all T, see the config).

    Args:
        pred: ``BodyPrediction`` with (B, T) leading axes.
        batch: the batch (see ``hmr_core.datasets``).
        config: loss weights.

    Returns:
        Unweighted losses: ``kp_2d``, ``joints_3d``, ``smpl``.
    """
    iters = range(pred.cam.shape[1]) if config.supervise_all_iterations else [pred.cam.shape[1] - 1]
    out = {"kp_2d": 0.0, "joints_3d": 0.0, "smpl": 0.0}
    for t in iters:
        out["kp_2d"] = out["kp_2d"] + losses.keypoint_reprojection_loss(pred.keypoints_2d[:, t], batch["keypoints_2d"])
        out["joints_3d"] = out["joints_3d"] + losses.joints_3d_loss(pred.joints_3d[:, t], batch["joints_3d"], batch["has_3d"])
        out["smpl"] = out["smpl"] + losses.smpl_param_loss(pred.rotmats[:, t], pred.betas[:, t], batch["pose"],
                                                          batch["betas"], batch["has_smpl"])
    return {k: v / len(iters) for k, v in out.items()}


def weighted_encoder_loss(terms: dict[str, torch.Tensor], config: TrainConfig) -> torch.Tensor:
    """λ·L_reproj + λ·(L_3D joints + L_3D params) (HMR, Sec. 3; ``do_train.sh``: λ = 60 on each), with the
    config's named weights, no adversarial term."""
    return (config.kp_2d_weight * terms["kp_2d"] + config.joints_3d_weight * terms["joints_3d"]
            + config.smpl_weight * terms["smpl"])


def encoder_step(hmr, disc, smpl, batch: dict, optimizer, scaler_ctx, config: TrainConfig):
    """One update of the encoder and regressor: L = λ(L_reproj + 𝟙·L_3D) + L_adv (HMR, Sec. 3).

    Returns:
        ``(log, fake_rotmats, fake_betas)``: the log dict of floats, and the predicted (B·T, 24, 3, 3)
        rotations and (B·T, 10) shapes of every iteration, detached, for the discriminator.
    """
    hmr.train()
    with scaler_ctx():
        thetas = hmr(batch["img"])  # (B, T, 85)
    pred = predict_bodies(thetas.float(), smpl)
    terms = encoder_losses(pred, batch, config)
    loss = weighted_encoder_loss(terms, config)
    fake_rot = pred.rotmats.flatten(0, 1)  # (B·T, 24, 3, 3): every iteration is a fake
    fake_betas = pred.betas.flatten(0, 1)  # (B·T, 10)
    log = {k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in terms.items()}
    if config.adversarial:
        adv = losses.encoder_adversarial_loss(disc(fake_rot, fake_betas))
        loss = loss + config.adv_weight * adv
        log["adv_encoder"] = float(adv.detach())
    check_finite(loss, config)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.grad_clip > 0:
        log["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(hmr.parameters(), config.grad_clip))
    optimizer.step()
    log["loss"] = float(loss.detach())
    return log, fake_rot.detach(), fake_betas.detach()


def discriminator_step(disc, real_pose, real_betas, fake_rot, fake_betas, optimizer, config: TrainConfig) -> dict:
    """One update of the 25 discriminators: real poses from the pool, fakes from every IEF iteration.

    As in HMR's code, the real half has as many samples as the fakes (B·T), so the batch is balanced.
    """
    disc.train()
    d_real = disc(real_pose, real_betas)  # (B·T, 25)
    d_fake = disc(fake_rot, fake_betas)  # (B·T, 25)
    loss_real, loss_fake = losses.discriminator_adversarial_losses(d_real, d_fake)
    loss = config.adv_weight * (loss_real + loss_fake)
    check_finite(loss, config)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    log = {"disc": float(loss.detach()), "disc_real": float(loss_real.detach()), "disc_fake": float(loss_fake.detach()),
           "d_out_real": float(d_real.detach().mean()), "d_out_fake": float(d_fake.detach().mean())}
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
    value = float(loss.detach())
    if not math.isfinite(value) or value > config.max_loss:
        raise TrainingDiverged(
            f"the loss is {value} (limit {config.max_loss}): training diverged. The last good checkpoint is "
            "kept; resume from it with a lower learning rate (--set encoder_lr=...) or grad_clip > 0."
        )


# --------------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------------
def unwrap(module):
    module = module.module if isinstance(module, DistributedDataParallel) else module
    return getattr(module, "_orig_mod", module)


def rng_state() -> dict:
    """Every random number generator's state, as plain numbers and tensors (loadable with weights_only)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------
@torch.no_grad()
def evaluate(hmr, smpl, loader, device, scaler_ctx, max_samples: int) -> dict:
    """MPJPE and PA-MPJPE (mm) of Θ_T on the 14 LSP joints, for samples with 3D ground truth."""
    hmr.eval()
    errs, pa_errs, seen = [], [], 0
    for batch in loader:
        batch = to_device(batch, device)
        with scaler_ctx():
            thetas = hmr(batch["img"])
        pred = predict_bodies(thetas[:, -1:].float(), smpl)
        has = batch["has_3d"] > 0
        if has.any():
            gt = batch["joints_3d"][has][..., :3]
            pj = pred.joints_3d[:, 0][has]
            errs.append(mpjpe(pj, gt, root=LSP_HIPS) * METRIC_MM)
            pa_errs.append(pa_mpjpe(pj, gt) * METRIC_MM)
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


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


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
    """Θ_0 as HMR's code builds its ``mean_param``: scale 0.9, root (π, 0, 0) (upright for the y-down
    camera), and the pool's mean body pose and mean shape."""
    mean_pose = torch.cat((torch.tensor([math.pi, 0.0, 0.0]), pose_pool.pose[:, 3:].float().mean(0)))
    return mean_theta(mean_pose, cam_scale=0.9, mean_betas=pose_pool.shape.float().mean(0))


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


def autocast_context(config: TrainConfig, device: torch.device):
    """A function returning the forward pass's autocast: bf16 on CUDA if asked, else nothing."""
    def autocast():
        if device.type == "cuda" and config.bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    return autocast


def prepare_batch(batch: dict, device: torch.device, config: TrainConfig) -> dict:
    """Move a batch to ``device``, images channels-last where the encoder is."""
    batch = to_device(batch, device)
    if config.channels_last:
        batch["img"] = batch["img"].contiguous(memory_format=torch.channels_last)
    return batch


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------
def train(config: TrainConfig, resume: bool = False, data=None) -> list[dict]:
    """Train HMR; returns the log (one dict of floats per logged step).

    Args:
        config: the configuration (with ``resume``, the run directory's ``config.json`` is used instead).
        resume: continue from ``run_dir/checkpoint.pt``.
        data: ``loaders.TrainingData`` to use instead of what ``config`` names (tests, notebooks).

    Raises:
        TrainingDiverged: the loss went NaN or above ``config.max_loss``.
    """
    run_dir = Path(config.run_dir)
    ckpt_path = run_dir / CHECKPOINT_NAME
    if resume:
        config = TrainConfig.from_json(run_dir / "config.json")
    rt = setup_runtime(config)
    seed_everything(config.seed + rt.rank)
    if rt.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not resume:
            if ckpt_path.exists():
                raise FileExistsError(f"{run_dir} already holds a run; pass --resume or choose another --run-dir")
            config.to_json(run_dir / "config.json")

    data = build_data(config) if data is None else data
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

    # Ctrl-C or SIGTERM (a cluster pre-empting the job, torchrun stopping it) only raises a flag: the step
    # under way finishes, a checkpoint is written, and the run stops in a state --resume continues exactly.
    stop = {"requested": False}
    handlers = {}
    if threading.current_thread() is threading.main_thread():  # signals can only be caught there
        handlers = {sig: signal.signal(sig, lambda *_: stop.update(requested=True)) for sig in (signal.SIGINT, signal.SIGTERM)}
    progress = _progress(step, config.max_steps, rt.is_main)
    start, images_seen = time.perf_counter(), 0
    try:
        for batch in loader:
            batch = prepare_batch(batch, rt.device, config)
            set_learning_rates(models, config, step)
            log, fake_rot, fake_betas = encoder_step(train_model, disc, smpl, batch, enc_opt, autocast, config)
            if config.adversarial:
                real_pose, real_betas = sample_pose_pool(pose_pool, len(fake_rot), step_generator(config.seed, step, rt.rank))
                log.update(discriminator_step(disc, real_pose.to(rt.device), real_betas.to(rt.device),
                                              fake_rot, fake_betas, disc_opt, config))
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
            if stop_requested(stop["requested"], rt):
                checkpoint()
                raise KeyboardInterrupt(f"stopped at step {step}; checkpoint saved to {ckpt_path}, continue with --resume")
            if step % config.ckpt_every == 0 or step == config.max_steps:
                checkpoint()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        progress.close()
        if writer is not None:
            writer.close()
    if rt.is_main:
        (run_dir / "history.json").write_text(json.dumps(history, indent=1))
    return history


def stop_requested(local: bool, rt: Runtime) -> bool:
    """Whether any process was asked to stop (all must stop at the same step, or DDP would hang)."""
    if rt.world_size == 1:
        return local
    flag = torch.tensor([float(local)], device=rt.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def _progress(initial: int, total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(initial=initial, total=total, disable=not enabled, desc="train", dynamic_ncols=True)


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
    parser = argparse.ArgumentParser(prog="python -m hmr_core.train", description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), help="a starting configuration")
    parser.add_argument("--run-dir", help="where the run writes (default: runs/hmr)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override config fields")
    args = parser.parse_args(argv)
    overrides = parse_overrides(args.set)
    if args.run_dir:
        overrides["run_dir"] = args.run_dir
    try:
        config = make_config(args.preset, **overrides)
        history = train(config, resume=args.resume)
    except (TrainingDiverged, FileExistsError, FileNotFoundError, ValueError) as err:
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
