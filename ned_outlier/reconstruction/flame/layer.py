"""FLAME as a batched, differentiable PyTorch layer: codes -> mesh vertices and posed joints.

    model = load_flame_model(path)                       # ned_outlier.reconstruction.flame.model_file
    flame = FlameLayer(model)                            # DECA's choice: 100 identity, 50 expression coefficients
    vertices, joints = flame(shape, expression, pose)    # (B, 100), (B, 50), (B, 6) -> (B, V, 3), (B, 5, 3)

`pose` is DECA's (B, 6): global rotation then jaw rotation, axis-angle (radians); the neck and eyes default to rest.
The full pose is, in FLAME's joint order, [global, neck, jaw, eye_left, eye_right], each an axis-angle 3-vector.

Standard linear blend skinning (as in SMPL and FLAME):
    v_shaped = v_template + shapedirs @ [shape, expression]
    joints = J_regressor @ v_shaped                                   (the rest joints, (B, 5, 3))
    R_j = rodrigues(pose_j)                                           (B, 5, 3, 3)
    v_posed = v_shaped + flatten(R_1 - I, .., R_4 - I) @ posedirs     (36 = 4 joints x 3 x 3 row-major -> V * 3)
    A_j = A_parent(j) o (rotation R_j about the rest joint j)         (A_root: R_0 about the root joint)
    vertex = sum_j weights[vertex, j] * A_j(v_posed[vertex])
The posed joint j is A_parent(j) applied to rest joint j (the root stays put). With every rotation zero the
transforms are exactly the identity, so the mesh is exactly v_shaped when the skinning weights sum to 1.

The buffers (FLAME's licensed arrays) are not persistent: a state dict of a module holding this layer carries no
FLAME data; build the layer from the user's file instead.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from ned_outlier.reconstruction.flame.model_file import IDENTITY_COMPONENTS, NUM_JOINTS, POSE_BASIS, FlameModel

DECA_SHAPE_COEFFICIENTS = 100
DECA_EXPRESSION_COEFFICIENTS = 50
SMALL_ANGLE_SQUARED = 1e-6  # below, sin(t)/t and (1 - cos t)/t^2 by their Taylor series (error ~t^4/120)


def skew(vectors: torch.Tensor) -> torch.Tensor:
    """(..., 3) -> (..., 3, 3): the matrix K of each vector v with K @ u = v x u."""
    x, y, z = vectors.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).unflatten(-1, (3, 3))


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues: (..., 3) axis-angle vectors (direction the axis, norm the angle in radians, right-handed) ->
    (..., 3, 3) rotation matrices. Exactly the identity for a zero vector, with finite gradients there."""
    squared = (axis_angle * axis_angle).sum(-1)[..., None, None]
    small = squared < SMALL_ANGLE_SQUARED
    angle = torch.sqrt(torch.where(small, torch.ones_like(squared), squared))
    sine_term = torch.where(small, 1 - squared / 6, torch.sin(angle) / angle)
    half = torch.sin(angle / 2) / angle
    cosine_term = torch.where(small, 0.5 - squared / 24, 2 * half * half)  # (1 - cos t) / t^2 = 2 sin^2(t/2) / t^2
    k = skew(axis_angle)
    identity = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return identity + sine_term * k + cosine_term * (k @ k)


class FlameOutput(NamedTuple):
    """vertices (B, V, 3) of the posed mesh; joints (B, 5, 3) posed, in FLAME's joint order."""

    vertices: torch.Tensor
    joints: torch.Tensor


def _require(tensor: torch.Tensor, name: str, batch: int, width: int) -> None:
    if tensor.ndim != 2 or tuple(tensor.shape) != (batch, width):
        raise ValueError(f"{name} must be (B, {width}) with B = {batch}, got shape {tuple(tensor.shape)}")


class FlameLayer(nn.Module):
    """FLAME from a FlameModel, using the first `n_shape` identity and `n_expression` expression blendshapes.

    Buffers (float32 but parents and faces, int64): v_template (V, 3); shapedirs (V, 3, n_shape + n_expression),
    identity columns then expression columns; posedirs (36, V * 3) (the file's (V, 3, 36) as (V * 3, 36),
    transposed); J_regressor (5, V); lbs_weights (V, 5); parents (5,) (-1 for the root); faces (F, 3)."""

    def __init__(self, model: FlameModel, n_shape: int = DECA_SHAPE_COEFFICIENTS,
                 n_expression: int = DECA_EXPRESSION_COEFFICIENTS) -> None:
        super().__init__()
        if not (0 <= n_shape <= model.n_shape and 0 <= n_expression <= model.n_expression):
            raise ValueError(f"n_shape must be in 0..{model.n_shape} and n_expression in 0..{model.n_expression}, "
                             f"got {n_shape} and {n_expression}")
        self.n_shape, self.n_expression = n_shape, n_expression
        expression_columns = slice(IDENTITY_COMPONENTS, IDENTITY_COMPONENTS + n_expression)
        directions = np.concatenate([model.shapedirs[:, :, :n_shape], model.shapedirs[:, :, expression_columns]], 2)
        buffers = {
            "v_template": model.v_template,
            "shapedirs": directions,
            "posedirs": model.posedirs.reshape(-1, POSE_BASIS).T,
            "J_regressor": model.J_regressor,
            "lbs_weights": model.weights,
            "parents": model.parents,
            "faces": model.f,
        }
        for name, array in buffers.items():
            self.register_buffer(name, torch.from_numpy(array.copy()), persistent=False)
        self._parent_of = tuple(int(parent) for parent in model.parents)

    @property
    def num_vertices(self) -> int:
        return self.v_template.shape[0]

    def _skinning_transforms(self, rotations: torch.Tensor,
                             joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """rotations (B, 5, 3, 3) local, joints (B, 5, 3) at rest -> each joint's skinning transform A_j x = W_j x
        + c_j as W (B, 5, 3, 3) and c (B, 5, 3), and the posed joints (B, 5, 3)."""
        linear, offset, posed = [], [], []
        for joint, parent in enumerate(self._parent_of):
            rotation, rest = rotations[:, joint], joints[:, joint]
            about_joint = rest - torch.einsum("brc,bc->br", rotation, rest)  # R about the joint: R x + (J - R J)
            if parent < 0:
                linear.append(rotation)
                offset.append(about_joint)
                posed.append(rest)
                continue
            parent_linear, parent_offset = linear[parent], offset[parent]
            linear.append(parent_linear @ rotation)
            offset.append(parent_offset + torch.einsum("brc,bc->br", parent_linear, about_joint))
            posed.append(parent_offset + torch.einsum("brc,bc->br", parent_linear, rest))
        return torch.stack(linear, 1), torch.stack(offset, 1), torch.stack(posed, 1)

    def forward(self, shape: torch.Tensor, expression: torch.Tensor, pose: torch.Tensor,
                neck_pose: torch.Tensor | None = None, eye_pose: torch.Tensor | None = None) -> FlameOutput:
        """shape (B, n_shape), expression (B, n_expression), pose (B, 6) global then jaw axis-angle, neck_pose
        (B, 3) and eye_pose (B, 6) left then right eye axis-angle (both zero when None); float32 on the layer's
        device -> FlameOutput: vertices (B, V, 3), joints (B, 5, 3)."""
        _require(shape, "shape", expression.shape[0], self.n_shape)
        neutral = self.v_template + torch.einsum("bl,vkl->bvk", shape, self.shapedirs[:, :, :self.n_shape])
        return self.from_neutral(neutral, expression, pose, neck_pose, eye_pose)

    def from_neutral(self, neutral: torch.Tensor, expression: torch.Tensor, pose: torch.Tensor,
                     neck_pose: torch.Tensor | None = None, eye_pose: torch.Tensor | None = None) -> FlameOutput:
        """`forward` with the subject's neutral mesh in place of its shape code: neutral (B, V, 3) (the template
        plus the shape blend), the other arguments and the result as forward's."""
        batch = expression.shape[0]
        neck_pose = pose.new_zeros(batch, 3) if neck_pose is None else neck_pose
        eye_pose = pose.new_zeros(batch, 6) if eye_pose is None else eye_pose
        for tensor, name, width in ((expression, "expression", self.n_expression), (pose, "pose", 6),
                                    (neck_pose, "neck_pose", 3), (eye_pose, "eye_pose", 6)):
            _require(tensor, name, batch, width)
        if tuple(neutral.shape) != (batch, self.num_vertices, 3):
            raise ValueError(f"neutral must be (B, {self.num_vertices}, 3) with B = {batch}, "
                             f"got {tuple(neutral.shape)}")
        full_pose = torch.cat([pose[:, :3], neck_pose, pose[:, 3:], eye_pose], dim=1).view(batch, NUM_JOINTS, 3)

        v_shaped = neutral + torch.einsum("bl,vkl->bvk", expression, self.shapedirs[:, :, self.n_shape:])
        joints = torch.einsum("jv,bvk->bjk", self.J_regressor, v_shaped)

        rotations = axis_angle_to_matrix(full_pose)
        identity = torch.eye(3, dtype=rotations.dtype, device=rotations.device)
        pose_feature = (rotations[:, 1:] - identity).reshape(batch, POSE_BASIS)
        v_posed = v_shaped + (pose_feature @ self.posedirs).view(batch, -1, 3)

        linear, offset, posed_joints = self._skinning_transforms(rotations, joints)
        blended_linear = torch.einsum("vj,bjrc->bvrc", self.lbs_weights, linear)
        blended_offset = torch.einsum("vj,bjr->bvr", self.lbs_weights, offset)
        vertices = torch.einsum("bvrc,bvc->bvr", blended_linear, v_posed) + blended_offset
        return FlameOutput(vertices, posed_joints)
