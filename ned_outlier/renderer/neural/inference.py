"""Render a video's (edited) face with a trained neural renderer, frame after frame, and blend it into the frame.

    renderer = NeuralFaceRenderer(load_renderer("renderer.safetensors", params.schema))
    for index, frame in enumerate(reader):
        out = renderer.render(frame, target_mesh[index], params.crop_matrix[index]) if found[index] else frame
        if not found[index]:
            renderer.reset()        # a new run of face frames starts from an empty history

Each frame is generated from the conditions of itself and the two frames before, and the two frames generated
before it (zeros at the start of a run), as in training. The generated crop is put back with the inverse crop affine
and Laplacian-blended (compose/blend.py) under the hull of the mesh's surface (MediaPipe's 468 face vertices, or
FLAME's whole mesh), feathered inward. The conditions are drawn from the topology of the checkpoint's schema
(`backend_topology`: a FLAME renderer reads the user's FLAME files from FLAME_MODEL_PATH and
FLAME_LANDMARK_EMBEDDING_PATH unless a topology is given).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ned_outlier.compose.blend import blend_region, hull_mask
from ned_outlier.face.crop import warp_to_frame
from ned_outlier.renderer.neural.checkpoint import LoadedRenderer
from ned_outlier.renderer.neural.conditioning import ConditioningTopology, ConditionRenderer, backend_topology
from ned_outlier.renderer.neural.data import crop_vertices, rescale_crop
from ned_outlier.renderer.neural.objective import face_mask
from ned_outlier.renderer.warp import face_roi


@dataclass(frozen=True)
class NeuralBlendConfig:
    """feather: the face mask's edge softness as a fraction of the face's width; levels: Laplacian pyramid levels
    (NED: 4)."""

    feather: float = 0.04
    levels: int = 4


def to_image(tensor: torch.Tensor) -> np.ndarray:
    """(3, S, S) in [-1, 1] -> (S, S, 3) uint8."""
    return ((tensor.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()


def inner_mask(points: np.ndarray, shape: tuple[int, int], feather: float) -> np.ndarray:
    """(H, W) float32 mask of the hull of points (N, 2) whose soft edge (a Gaussian of sigma `feather`) lies inside
    the hull: the generated face is black outside the mesh, so nothing outside it may show."""
    inset = int(np.ceil(2 * feather)) + 1
    hard = hull_mask(points, shape, 0.0)
    eroded = cv2.erode(hard, np.ones((2 * inset + 1, 2 * inset + 1), np.uint8))
    if feather <= 0:
        return eroded
    size = 2 * inset + 1
    return np.clip(cv2.GaussianBlur(eroded, (size, size), feather), 0.0, 1.0) * hard


class NeuralFaceRenderer:
    """Stateful per-video renderer: call `render` for consecutive face frames, `reset` between runs of them.
    `topology`: of the meshes it is given; None reads the one of the checkpoint's backend (`backend_topology`)."""

    def __init__(self, loaded: LoadedRenderer, blend: NeuralBlendConfig = NeuralBlendConfig(), device: str = "cpu",
                 topology: ConditioningTopology | None = None):
        topology = backend_topology(loaded.schema.backend) if topology is None else topology
        topology.require_mesh(loaded.schema.n_vertices, f"the neural renderer's schema ({loaded.schema.backend})")
        self.generator = loaded.generator.to(device).eval()
        self.conditions = ConditionRenderer(loaded.model_config.conditioning, topology)
        self.size = loaded.model_config.conditioning.size
        self.source_crop_size = loaded.source_crop_size
        self.blend, self.device = blend, device
        self.reset()

    def reset(self) -> None:
        self._conditions: deque[torch.Tensor] = deque(maxlen=3)
        self._generated: deque[torch.Tensor] = deque(maxlen=2)

    @torch.no_grad()
    def generate(self, vertices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """vertices (V, 3) crop pixels -> the next generated crop (3, S, S) in [-1, 1] (-1 outside the face) and the
        face mask (S, S) bool: the pixels the mesh covers."""
        condition = self.conditions(torch.as_tensor(vertices, dtype=torch.float32, device=self.device)[None])[0]
        while len(self._conditions) < 2:  # the run's first frame stands in for the frames before it
            self._conditions.append(condition)
        self._conditions.append(condition)
        while len(self._generated) < 2:
            self._generated.append(torch.zeros(3, self.size, self.size, device=self.device))
        mask = face_mask(condition[None])
        frame = self.generator(torch.cat(list(self._conditions))[None], torch.cat(list(self._generated))[None],
                               mask)[0]
        self._generated.append(frame)
        return frame, mask[0, 0] > 0.5

    def render(self, frame: np.ndarray, points: np.ndarray, crop_matrix: np.ndarray) -> np.ndarray:
        """frame (H, W, 3) uint8 with the face re-rendered for mesh `points` (V, 3) frame pixels; crop_matrix
        (2, 3) the reconstruction's frame -> crop affine."""
        matrix = rescale_crop(crop_matrix, self.source_crop_size, self.size)
        crop = to_image(self.generate(crop_vertices(np.asarray(points, np.float64), matrix))[0])
        height, width = frame.shape[:2]
        face = np.asarray(points, np.float64)[:len(self.conditions.topology.template), :2]
        feather = self.blend.feather * float(np.ptp(face[:, 0]))
        pad = np.ceil(2 * feather) + 2 ** self.blend.levels  # the mask is 0 near the box's sides
        x0, y0, x1, y1 = box = face_roi(np.stack([face.min(axis=0) - pad, face.max(axis=0) + pad]), frame.shape)
        if x0 >= x1 or y0 >= y1:
            return frame.copy()
        generated = warp_to_frame(crop, matrix, (width, height))[y0:y1, x0:x1]
        inside = hull_mask(face - [x0, y0], (y1 - y0, x1 - x0), 0.0)[..., None] > 0.5
        placed = np.where(inside, generated, frame[y0:y1, x0:x1])  # no black surround for the coarse levels to smear
        mask = inner_mask(face - [x0, y0], (y1 - y0, x1 - x0), feather)
        return blend_region(frame, placed, mask, box, self.blend.levels)
