"""An independent float64 NumPy SMPL, written the way the paper states it, as a test oracle.

Nothing here is shared with ``hmr_core``: Rodrigues uses the unit axis, kinematics walks the tree one
joint at a time with 4×4 homogeneous matrices, and skinning multiplies each vertex by its blended 4×4
matrix, as in the original SMPL release.
"""

import numpy as np


def rodrigues(axis_angle):
    """(3,) axis-angle -> (3, 3) rotation, by the unit-axis form of Rodrigues' formula."""
    angle = np.linalg.norm(axis_angle)
    if angle < 1e-12:
        return np.eye(3)
    k = axis_angle / angle
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def smpl(arrays, betas, pose):
    """One body: betas (S,), pose (24, 3) axis-angle -> vertices (V, 3), joints (24, 3)."""
    v_template = np.asarray(arrays["v_template"], np.float64)
    shapedirs = np.asarray(arrays["shapedirs"], np.float64)[..., : len(betas)]
    posedirs = np.asarray(arrays["posedirs"], np.float64)
    J_regressor = np.asarray(arrays["J_regressor"], np.float64)
    weights = np.asarray(arrays["weights"], np.float64)
    parents = np.asarray(arrays["kintree_table"])[0].astype(np.int64)
    num_joints = len(parents)

    v_shaped = v_template + shapedirs.dot(betas)
    J = J_regressor.dot(v_shaped)
    R = np.stack([rodrigues(pose[j]) for j in range(num_joints)])
    v_posed = v_shaped + posedirs.dot((R[1:] - np.eye(3)).ravel())

    def homogeneous(rot, t):
        out = np.eye(4)
        out[:3, :3], out[:3, 3] = rot, t
        return out

    G = [homogeneous(R[0], J[0])]
    for j in range(1, num_joints):
        G.append(G[parents[j]].dot(homogeneous(R[j], J[j] - J[parents[j]])))
    G = np.stack(G)
    joints = G[:, :3, 3].copy()
    # Remove the rest-pose joint location: G'_k = G_k [I | -J_k]
    G_rel = G.copy()
    for j in range(num_joints):
        G_rel[j, :3, 3] -= G[j, :3, :3].dot(J[j])
    T = np.tensordot(weights, G_rel, axes=[[1], [0]])  # (V, 4, 4)
    v_h = np.concatenate([v_posed, np.ones((len(v_posed), 1))], axis=1)
    verts = np.einsum("vij,vj->vi", T, v_h)[:, :3]
    return verts, joints
