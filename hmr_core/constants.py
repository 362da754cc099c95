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

# On the official SMPL mesh (6,890 vertices): the COCO face points are single vertices (as in smplx's
# ``vertex_ids['smplh']``) and the LSP head top is vertex 411 (as used by SPIN-family code).
SMPL_NUM_VERTICES = 6890
SMPL_FACE_VERTEX_IDS = (332, 2800, 6260, 583, 4071)  # nose, left eye, right eye, left ear, right ear
SMPL_HEAD_TOP_VERTEX_ID = 411

# --- Files ------------------------------------------------------------------------------------------
# Keys every SMPL-format ``.npz`` must hold, and the optional keypoint keys.
MODEL_REQUIRED_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
MODEL_KEYPOINT_KEYS = ("J_regressor_lsp", "face_vertex_ids")
# Environment variable that points at a user's own SMPL model file (.npz, or the official .pkl).
MODEL_ENV_VAR = "HMR_SMPL_MODEL"
OPEN_MODEL_FILENAME = "open_body_model.npz"

# --- Images -----------------------------------------------------------------------------------------
IMG_SIZE = 224  # HMR's input crop, pixels
