"""Moving a FLAME reconstruction's meshes to other codes (50 expression coefficients + the jaw opening), as an edit
of FLAME codes draws them; for every FLAME backend (flame-deca, flame-emoca, flame-fit)."""

from __future__ import annotations

import numpy as np
import torch

from ned_outlier.errors import UserError
from ned_outlier.reconstruction.flame.layer import FlameLayer
from ned_outlier.reconstruction.flame.model_file import FlameModel
from ned_outlier.reconstruction.fit import FLIP
from ned_outlier.reconstruction.flame_deca import BACKENDS as DECA_BACKENDS, N_EXPRESSION, N_SHAPE
from ned_outlier.reconstruction.flame_fit import BACKEND as FLAME_FIT_BACKEND
from ned_outlier.reconstruction.params import FaceParams

FLAME_BACKENDS = (*DECA_BACKENDS, FLAME_FIT_BACKEND)


class FlameReposer:
    """A flame-* reconstruction's meshes moved to other codes, as an edit draws them:

        reposer = FlameReposer(load_flame_model(path))
        target = params.vertices[frames] + reposer.displacement(params, frames, expression, mouth)

    Only the change of the codes is added to the reconstructed mesh, so what the codes do not hold (DECA's sideways
    jaw rotations, the neck and eyes) stays the source's, and unchanged codes give the source mesh exactly. The new
    mesh is where the backend's camera would put FLAME posed with the new codes: the change is turned by the head's
    rotation, which DECA applies about FLAME's root joint (moved a little by the expression; flame-deca,
    flame-emoca) and flame-fit about the model's origin, and scaled into frame pixels."""

    def __init__(self, model: FlameModel, device: str = "cpu"):
        self.flame = FlameLayer(model, n_shape=N_SHAPE, n_expression=N_EXPRESSION).to(device)
        self.device = torch.device(device)

    def require_matching(self, params: FaceParams) -> None:
        """UserError unless `params` are FLAME codes of a FLAME model with this one's vertex count."""
        if params.schema.backend not in FLAME_BACKENDS or params.schema.n_vertices != self.flame.num_vertices:
            raise UserError(f"these are {params.schema.backend} parameters of a {params.schema.n_vertices}-vertex "
                            f"mesh, not FLAME codes of this {self.flame.num_vertices}-vertex FLAME model: reconstruct "
                            "with flame-deca (or flame-emoca) and the same generic_model.pkl")

    @torch.no_grad()
    def displacement(self, params: FaceParams, frames: np.ndarray, expression: np.ndarray,
                     mouth: np.ndarray) -> np.ndarray:
        """frames (N,) indices of face frames of `params`; expression (N, 50) and mouth (N, 1) the new codes ->
        (N, V, 3) float32 frame pixels to add to params.vertices[frames]."""
        self.require_matching(params)
        rotation, about_root = params.rotation[frames], params.schema.backend in DECA_BACKENDS
        before = self._turned(params.identity, params.expression[frames], params.mouth[frames], rotation, about_root)
        after = self._turned(params.identity, expression, mouth, rotation, about_root)
        return (params.scale[frames, None, None] * (after - before) @ FLIP.T).astype(np.float32)

    def _turned(self, neutral: np.ndarray, expression: np.ndarray, mouth: np.ndarray, rotation: np.ndarray,
                about_root: bool) -> np.ndarray:
        """R (m - r) + r for FLAME m (N, V, 3) posed from the neutral mesh (V, 3) with expression (N, 50) and the
        jaw opening mouth (N, 1) alone, R (N, 3, 3) the head rotation, r FLAME's root joint (N, 3) (`about_root`)
        or the origin; model space."""
        count = len(expression)
        pose = np.zeros((count, 6))
        pose[:, 3] = mouth[:, 0]
        tensors = [torch.as_tensor(np.array(a, dtype=np.float32), device=self.device)  # a copy: writable
                   for a in (np.broadcast_to(neutral, (count, *neutral.shape)), expression, pose)]
        out = self.flame.from_neutral(*tensors)
        model = out.vertices.double().cpu().numpy()
        root = out.joints[:, 0].double().cpu().numpy()[:, None] if about_root else np.zeros((count, 1, 3))
        return np.einsum("nij,nvj->nvi", rotation, model - root) + root
