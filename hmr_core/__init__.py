"""hmr_core: the code of the executable book on HMR (Kanazawa et al., CVPR 2018).

SMPL from scratch (``lbs``, ``rotation``, ``body_model``), model files (``model_files``), the open body
model built from Anny (``open_body_model``), and benchmarks (``bench``).
"""

from hmr_core.body_model import SMPL, SMPLOutput

__all__ = ["SMPL", "SMPLOutput"]
__version__ = "0.1.0"
