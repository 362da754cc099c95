"""Conventions shared by every module: joint names and orders, the kinematic tree, image size.

Everything that would otherwise be a magic number lives here. The orders follow the official
SMPL release and HMR's ``cocoplus`` keypoints (Kanazawa et al., CVPR 2018).
"""

# --- SMPL's 24 joints, in the order of the official model (and of ``kintree_table``) ---------------
SMPL_JOINT_NAMES = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hand",
    "right_hand",
)
NUM_SMPL_JOINTS = len(SMPL_JOINT_NAMES)  # 24
# Parent of each joint along the kinematic tree; the pelvis (root) has none (-1).
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)

NUM_BETAS = 10  # shape coefficients β
POSE_DIM = 3 * NUM_SMPL_JOINTS  # θ as axis-angle: 72 numbers, the first 3 the global rotation
NUM_POSE_BLEND = 9 * (NUM_SMPL_JOINTS - 1)  # 207 pose-blend-shape features (R(θ) - I), root excluded
CAM_DIM = 3  # weak-perspective camera (s, tx, ty)
THETA_DIM = CAM_DIM + POSE_DIM + NUM_BETAS  # HMR's Θ: 85 numbers, ordered [cam, pose, betas]

# --- HMR's 19 keypoints ("cocoplus"): the 14 LSP joints, then 5 COCO face points --------------------
LSP_JOINT_NAMES = (
    "right_ankle",
    "right_knee",
    "right_hip",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_wrist",
    "right_elbow",
    "right_shoulder",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "neck",
    "head_top",
)
FACE_KEYPOINT_NAMES = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
KEYPOINT_NAMES = LSP_JOINT_NAMES + FACE_KEYPOINT_NAMES
NUM_LSP_JOINTS = len(LSP_JOINT_NAMES)  # 14
NUM_KEYPOINTS = len(KEYPOINT_NAMES)  # 19
# Lines between HMR's 19 keypoints (KEYPOINT_NAMES) for drawing a skeleton.
KEYPOINT_SKELETON = (
    ("right_ankle", "right_knee"), ("right_knee", "right_hip"), ("left_ankle", "left_knee"),
    ("left_knee", "left_hip"), ("right_hip", "left_hip"), ("right_wrist", "right_elbow"),
    ("right_elbow", "right_shoulder"), ("left_wrist", "left_elbow"), ("left_elbow", "left_shoulder"),
    ("right_shoulder", "left_shoulder"), ("right_shoulder", "right_hip"), ("left_shoulder", "left_hip"),
    ("neck", "head_top"), ("nose", "left_eye"), ("nose", "right_eye"), ("left_eye", "left_ear"),
    ("right_eye", "right_ear"),
)

# On the official SMPL mesh (6,890 vertices): the COCO face points are single vertices (as in smplx's
# ``vertex_ids['smplh']``) and the LSP head top is vertex 411 (as used by SPIN-family code).
SMPL_NUM_VERTICES = 6890
SMPL_FACE_VERTEX_IDS = (332, 2800, 6260, 583, 4071)  # nose, left eye, right eye, left ear, right ear
SMPL_HEAD_TOP_VERTEX_ID = 411

# --- Files ------------------------------------------------------------------------------------------
# Keys every SMPL-format ``.npz`` must hold, and the optional keypoint keys.
MODEL_REQUIRED_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
# ``J_regressor_face`` (5, V) regresses the face points; without it they are the vertices ``face_vertex_ids``.
MODEL_KEYPOINT_KEYS = ("J_regressor_lsp", "J_regressor_face", "face_vertex_ids")
# HMR's ``neutral_smpl_with_cocoplus_reg.pkl`` holds its 19-keypoint regressor under this key
# (``src/tf_smpl/batch_smpl.py``: ``joint_type='cocoplus'``): 14 LSP rows, then the 5 face rows.
COCOPLUS_REGRESSOR_KEY = "cocoplus_regressor"
# Environment variable that points at a user's own SMPL model file (.npz, or the official .pkl).
MODEL_ENV_VAR = "HMR_SMPL_MODEL"
OPEN_MODEL_FILENAME = "open_body_model.npz"

# --- Images -----------------------------------------------------------------------------------------
IMG_SIZE = 224  # HMR's input crop, pixels
# The encoder takes images in [0, 1] normalised per channel by ImageNet's statistics (as its weights were).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# ====================================================================================================
# Data: left/right flips, the joint order of the standard preprocessed datasets, the pose prior's
# fallback skeleton. (Appended for hmr_core.augment, hmr_core.datasets and hmr_core.pose_prior.)
# ====================================================================================================

# --- Mirroring ----------------------------------------------------------------------------------------
# Index of each SMPL joint's mirror image (left <-> right; spine, neck, head map to themselves).
SMPL_FLIP_PERMUTATION = (0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20, 23, 22)
# The same for HMR's 19 keypoints (``KEYPOINT_NAMES``) and the 14 LSP joints (its first 14).
KEYPOINT_FLIP_PERMUTATION = (5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 12, 13, 14, 16, 15, 18, 17)
LSP_FLIP_PERMUTATION = KEYPOINT_FLIP_PERMUTATION[:NUM_LSP_JOINTS]

# --- SPIN's 24 joints: the order of ``part`` (N, 24, 3) and ``S`` (N, 24, 4) in the preprocessed .npz
# annotations of SPIN (Kolotouros et al., ICCV 2019, ``dataset_extras``) that most HMR-family code reads.
# The first 14 are the LSP joints in LSP's order; the others come from the dataset named in brackets.
SPIN_JOINT_NAMES = LSP_JOINT_NAMES + (
    "pelvis",  # (MPII)
    "thorax",  # (MPII)
    "spine",  # (H36M)
    "jaw",  # (H36M)
    "head",  # (H36M)
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
)
NUM_SPIN_JOINTS = len(SPIN_JOINT_NAMES)  # 24
# Row of SPIN's 24 joints that holds each of HMR's 19 keypoints, and each of the 14 LSP 3D joints.
SPIN_TO_KEYPOINT = tuple(SPIN_JOINT_NAMES.index(name) for name in KEYPOINT_NAMES)
SPIN_TO_LSP_3D = tuple(SPIN_JOINT_NAMES.index(name) for name in LSP_JOINT_NAMES)
# SPIN's Human3.6M and MPI-INF-3DHP files leave the LSP head top (slot 13) empty and put their head joint
# in slot 18, "Head (H36M)" (SPIN's preprocess/h36m.py and mpi_inf_3dhp.py); SPIN's J24_TO_J14 and HMR's
# own 14 joints for both datasets use that head as the 14th joint. So where slot 13 has no label, the
# head top is read from this slot, in 2D and in 3D.
SPIN_HEAD_TOP_FALLBACK = SPIN_JOINT_NAMES.index("head")  # 18
# A box of side BOX_SCALE_UNIT · scale pixels around ``center`` holds the person (SPIN's and HMR's
# convention: ``scale`` = box size / 200).
BOX_SCALE_UNIT = 200.0
# How SPIN's files frame a person: a square of 1.2 × the larger side of the person's box (the keypoints'
# box for LSP, MPII, COCO; the annotated box for MPI-INF-3DHP), ``scaleFactor`` in SPIN's
# ``datasets/preprocess``; Human3.6M uses 0.9 × its mask's box. HMR's tfrecords and demo instead scale the
# person so that the keypoints' box diagonal is 150 of the 224 crop pixels (``demo.BOX_DIAGONAL_PX``).
SPIN_BOX_RESCALE = 1.2

# --- A fallback skeleton for the pose prior's self-penetration test ----------------------------------
# Rest-pose (T-pose) joints of an average adult in SMPL's frame (metres, y up, facing +z, left at +x),
# rounded to 5 mm from the open body model's mean shape. Used only when no body-model file is
# available; with a model file the joints (and capsule radii) come from the model itself.
TEMPLATE_REST_JOINTS = (
    (0.0, 0.0, 0.0),  # pelvis
    (0.11, -0.015, -0.01),  # left_hip
    (-0.11, -0.015, -0.01),  # right_hip
    (0.0, 0.08, -0.04),  # spine1
    (0.145, -0.39, 0.02),  # left_knee
    (-0.145, -0.39, 0.02),  # right_knee
    (0.0, 0.235, -0.025),  # spine2
    (0.19, -0.825, -0.01),  # left_ankle
    (-0.19, -0.825, -0.01),  # right_ankle
    (0.0, 0.36, -0.04),  # spine3
    (0.2, -0.875, 0.13),  # left_foot
    (-0.2, -0.875, 0.13),  # right_foot
    (0.0, 0.55, 0.0),  # neck
    (0.025, 0.47, 0.015),  # left_collar
    (-0.025, 0.47, 0.015),  # right_collar
    (0.0, 0.645, 0.035),  # head
    (0.175, 0.45, 0.01),  # left_shoulder
    (-0.175, 0.45, 0.01),  # right_shoulder
    (0.435, 0.45, 0.01),  # left_elbow
    (-0.435, 0.45, 0.01),  # right_elbow
    (0.665, 0.45, 0.01),  # left_wrist
    (-0.665, 0.45, 0.01),  # right_wrist
    (0.775, 0.445, 0.025),  # left_hand
    (-0.775, 0.445, 0.025),  # right_hand
)

# ====================================================================================================
# The synthetic world (appended for hmr_core.synthetic): split seed ranges, garment regions, palettes.
# ====================================================================================================

# Each split draws its images from its own range of seeds [start, stop): image i of a split has seed
# start + i. The ranges never overlap, so no test image can also be a training image.
SYNTHETIC_SPLIT_SEEDS = {
    "train": (0, 1_000_000_000),
    "test": (1_000_000_000, 1_010_000_000),
    "ood": (2_000_000_000, 2_010_000_000),
}
# Clothing regions of the body: each SMPL joint's name -> the garment that covers the vertices it
# skins most strongly. "sleeve" and "leg" are shirt or skin, trousers or skin, per image (short sleeves,
# shorts); "skin" includes the head, whose top and back may turn into hair.
SYNTHETIC_GARMENT_REGIONS = {
    "pelvis": "trousers", "left_hip": "trousers", "right_hip": "trousers",
    "left_knee": "leg", "right_knee": "leg",
    "left_ankle": "shoes", "right_ankle": "shoes", "left_foot": "shoes", "right_foot": "shoes",
    "spine1": "shirt", "spine2": "shirt", "spine3": "shirt", "left_collar": "shirt", "right_collar": "shirt",
    "left_shoulder": "shirt", "right_shoulder": "shirt", "left_elbow": "sleeve", "right_elbow": "sleeve",
    "neck": "skin", "head": "skin", "left_wrist": "skin", "right_wrist": "skin", "left_hand": "skin",
    "right_hand": "skin",
}
# sRGB skin tones in [0, 1], light to dark (after the Fitzpatrick types as photographed; Monk-scale-like).
SKIN_TONES = (
    (0.96, 0.82, 0.71), (0.93, 0.75, 0.62), (0.87, 0.66, 0.52), (0.80, 0.58, 0.43),
    (0.69, 0.48, 0.34), (0.58, 0.39, 0.26), (0.45, 0.30, 0.20), (0.33, 0.22, 0.15),
)
# sRGB hair colours: black, dark brown, brown, auburn, blond, grey.
HAIR_COLORS = (
    (0.06, 0.05, 0.05), (0.18, 0.12, 0.08), (0.33, 0.22, 0.13), (0.45, 0.20, 0.10),
    (0.78, 0.65, 0.42), (0.62, 0.62, 0.62),
)
# Photographs and real-world rasters that matplotlib ships (``matplotlib.cbook.get_sample_data``).
SYNTHETIC_PHOTOS = ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png")
SYNTHETIC_ELEVATION_MAPS = ("jacksboro_fault_dem.npz",)
