import numpy as np
import pytest

from hmr_core.bench import random_smpl_arrays
from hmr_core.checkpoints import BOOK_MODEL, CheckpointError, load_model


def test_a_model_trained_on_the_open_body_model_loads_it_whatever_hmr_smpl_model_says(tmp_path, monkeypatch):
    other = tmp_path / "other_model.npz"
    arrays = random_smpl_arrays(num_vertices=500)
    lsp = np.zeros((14, 500), np.float32)
    lsp[np.arange(14), np.arange(14)] = 1.0
    np.savez(other, model_name=np.array("other"), J_regressor_lsp=lsp, face_vertex_ids=np.arange(20, 25), **arrays)
    monkeypatch.setenv("HMR_SMPL_MODEL", str(other))
    loaded = load_model(BOOK_MODEL)
    assert loaded.smpl.model_name == loaded.model_name != "other"
    with pytest.raises(CheckpointError, match="was trained with the body model"):
        load_model(BOOK_MODEL, model_path=other)  # an explicit model is never replaced
