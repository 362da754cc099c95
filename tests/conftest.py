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
