"""What a training process needs besides the loop: its device and rank, random states, the run lock.

``hmr_core.train`` runs the loop (chapter "Training"); this module holds the machinery around it, shared
with ``python -m hmr_core.bench train``: choosing the device once and joining a torchrun process group
(``setup_runtime``), seeding and saving every random state so that a resumed run continues exactly
(``rng_state``), the forward pass's autocast, and the lock that keeps two processes out of one run
directory (``run_directory_lock``).
"""

import contextlib
import dataclasses
import os
import random
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from hmr_core.config import TrainConfig


class RunDirectoryBusy(RuntimeError):
    """Another training process holds the run directory."""


LOCK_NAME = ".lock"  # held (flock) by the training process that writes a run directory


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
    requested = None if config.device == "auto" else torch.device(config.device)
    if requested is None:
        device_type = "cuda" if torch.cuda.is_available() else "cpu"
    else:
        device_type = requested.type
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={config.device!r} but no GPU is visible; use --set device=cpu")
        index = requested.index if requested is not None and requested.index is not None else local_rank
        torch.cuda.set_device(index)
        device = torch.device("cuda", index)
    else:
        if device_type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"device={config.device!r} but MPS is not available here; use --set device=cpu")
        device = torch.device(device_type)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Runtime(device=device, rank=rank, world_size=world_size, local_rank=local_rank)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def autocast_context(config: TrainConfig, device: torch.device):
    """A function returning the forward pass's autocast: bf16 on CUDA if asked, else nothing."""
    def autocast():
        if device.type == "cuda" and config.bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    return autocast


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


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


@contextlib.contextmanager
def run_directory_lock(run_dir: Path, enabled: bool = True):
    """Hold an exclusive lock on ``run_dir/.lock`` (flock: released by the system if the process dies).

    Raises:
        RunDirectoryBusy: if another process holds it, naming that process.
    """
    if not enabled:
        yield
        return
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no lock
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / LOCK_NAME, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            owner = lock.read().strip() or "another process"
            raise RunDirectoryBusy(f"{run_dir} is in use by a training process ({owner}); wait for it to finish, "
                                   "stop it, or choose another --run-dir") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}")
        lock.flush()
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def stop_requested(local: bool, rt: Runtime) -> bool:
    """Whether any process was asked to stop (all must stop at the same step, or DDP would hang)."""
    if rt.world_size == 1:
        return local
    flag = torch.tensor([float(local)], device=rt.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def progress_bar(initial: int, total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(initial=initial, total=total, disable=not enabled, desc="train", dynamic_ncols=True)
