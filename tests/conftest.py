import contextlib
import os
import signal

import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    """Every test that takes ``device`` runs on the CPU, and on CUDA when there is one."""
    return torch.device(request.param)


@pytest.fixture(scope="session")
def smpl_sized_arrays():
    """Random arrays of the official SMPL's sizes, non-zero pose blend shapes included."""
    from hmr_core.bench_smpl import random_smpl_arrays

    return random_smpl_arrays(seed=0)


@pytest.fixture
def ctrl_c_at_step(monkeypatch):
    """``with ctrl_c_at_step(3): train.train(...)``: Ctrl-C (SIGINT) arrives during the run's 3rd encoder step."""
    from hmr_core import train

    @contextlib.contextmanager
    def interrupted(step: int):
        real_step, calls = train.encoder_step, {"n": 0}

        def interrupt(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == step:
                os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C would: the step finishes, then the run stops
            return real_step(*args, **kwargs)

        monkeypatch.setattr(train, "encoder_step", interrupt)
        try:
            yield
        finally:
            monkeypatch.setattr(train, "encoder_step", real_step)

    return interrupted
