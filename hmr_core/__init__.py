"""hmr_core: the code of the executable book on HMR (Kanazawa et al., CVPR 2018).

SMPL from scratch (``rotation``, ``lbs``, ``body_model``, ``model_files``), the open body model
(``open_body_model``, ``anny_bodies``, ``anny_to_smpl``, ``open_body_fit``), the camera and rendering
(``camera``, ``render``, ``interactive``), data (``joint_limits``, ``self_contact``, ``archetypes``,
``pose_prior``, ``pose_pool``, ``synthetic`` with ``synthetic_appearance``, ``synthetic_camera``,
``synthetic_shards``, ``synthetic_write`` and ``synthetic_batch``, ``annotations``, ``datasets``,
``augment``, ``sampling``, ``loaders``), the network and its training (``encoder``, ``regressor``,
``discriminator``, ``hmr``, ``losses``, ``config``, ``train``), evaluation (``metrics``, ``evaluate``,
``evaluate_run``, ``demo``) and benchmarks (``bench`` and one ``bench_*`` module per benchmark). See
README.md for the commands.
"""

__all__ = ["SMPL", "SMPLOutput"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # ``SMPL`` is imported on first use, not with the package: ``python -m hmr_core.model_files`` would
    # otherwise find its module imported already (through body_model) and warn about it.
    if name in __all__:
        from hmr_core import body_model

        return getattr(body_model, name)
    raise AttributeError(f"module 'hmr_core' has no attribute {name!r}")
