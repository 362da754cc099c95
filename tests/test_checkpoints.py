import numpy as np
import pytest

from hmr_core.bench_smpl import random_smpl_arrays
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


def _run_with_checkpoint(tmp_path, **config_changes):
    """A run directory whose checkpoint.pt holds the book model's weights (and resumable keys)."""
    import json

    import torch

    from hmr_core.checkpoints import CHECKPOINT_NAME, read_checkpoint, save_checkpoint

    ckpt = read_checkpoint(BOOK_MODEL)
    ckpt["config"] = json.dumps({**json.loads(ckpt["config"]), **config_changes})
    ckpt.update(disc={}, encoder_optimizer={}, disc_optimizer={}, rng=[], history="[]")
    run = tmp_path / "run"
    run.mkdir()
    return save_checkpoint(run / CHECKPOINT_NAME, ckpt), torch


def test_export_never_overwrites_the_resumable_checkpoint(tmp_path):
    from hmr_core.checkpoints import RESUME_CHECKPOINT_KEYS, main, read_checkpoint

    path, _ = _run_with_checkpoint(tmp_path)
    before = path.read_bytes()
    for target in (path, tmp_path / "run"):  # the file itself, and the run directory (its checkpoint.pt)
        with pytest.raises(SystemExit, match="is a (run's resumable checkpoint|directory)"):
            main(["export", str(tmp_path / "run"), str(path if target == path else target)])
    assert path.read_bytes() == before
    read_checkpoint(path, RESUME_CHECKPOINT_KEYS)
    assert not list((tmp_path / "run").glob("*.partial"))
    assert main(["export", str(tmp_path / "run"), str(tmp_path / "out" / "model.pt")]) == 0


def test_export_to_a_directory_says_so_and_leaves_nothing(tmp_path):
    from hmr_core.checkpoints import main

    _run_with_checkpoint(tmp_path)
    (tmp_path / "exports").mkdir()
    with pytest.raises(SystemExit, match=r"exports is a directory; give the file to write, e\.g\. .*model\.pt"):
        main(["export", str(tmp_path / "run"), str(tmp_path / "exports")])
    assert not list(tmp_path.rglob("*.partial"))


def test_a_failed_write_leaves_no_partial_file(tmp_path):
    from hmr_core.checkpoints import save_checkpoint

    with pytest.raises(Exception):
        save_checkpoint(tmp_path / "c.pt", {"not a tensor": lambda: None})  # cannot be pickled
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_that_runs_code_is_not_loaded_and_not_advised_to_be(tmp_path):
    import os

    import torch

    from hmr_core.checkpoints import read_checkpoint

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    torch.save({"hmr": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match=r"not a plain checkpoint: it asks to run code while loading "
                                              r"\(.*system.*\).*do not load it with weights_only=False") as caught:
        read_checkpoint(tmp_path / "evil.pt")
    assert "will likely succeed" not in str(caught.value)
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("field, value", [("num_iterations", 10**9), ("input_size", 200_000), ("encoder", "vit_h")])
def test_a_checkpoint_cannot_ask_for_absurd_work(tmp_path, field, value):
    from hmr_core.demo import main as demo_main

    _run_with_checkpoint(tmp_path, **{field: value})
    with pytest.raises(CheckpointError, match=rf"checkpoint\.pt: 'config': config field {field} must be"):
        load_model(tmp_path / "run")
    from PIL import Image

    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(tmp_path / "photo.jpg")
    with pytest.raises(SystemExit, match=rf"error: .*config field {field} must be"):
        demo_main([str(tmp_path / "photo.jpg"), "--checkpoint", str(tmp_path / "run"), "--out-dir",
                   str(tmp_path / "out")])
