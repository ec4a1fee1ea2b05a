"""py-feat's linear FACS model of the MediaPipe face mesh: 20 action-unit intensities -> 478 vertices.

The packaged file `au_to_mesh_pls_v4.npz` maps [AU01 .. AU43, Pitch, Yaw, Roll] (23 inputs) to a flattened mesh laid
out [x0..x477, y0..y477, z0..z477]: mesh = inputs @ coef + intercept. Its frame is "model space": x to the subject's
left (image right), y up, z towards the camera; a face is about 200 units tall. AU intensities are on a 0-1 scale.

The three pose inputs are a linear small-angle approximation of head rotation; we keep them at 0 (frontal) and fit a
true similarity transform instead (see `fit.py`), so the basis here is the 20 AU rows only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from ned_outlier.assets import asset_path
from ned_outlier.errors import UserError
from ned_outlier.reconstruction.topology import lip_gap_weights

N_VERTICES = 478
IRIS_VERTICES = tuple(range(468, 478))  # MediaPipe's refined iris points: gaze, which no AU models


@dataclass(frozen=True)
class AUMeshModel:
    """mesh(aus) = mean + sum_k aus[k] * basis[k].

    Attributes:
        au_names: the 20 AU names, in basis order (e.g. "AU01").
        mean: (478, 3) float64 neutral frontal mesh, model space.
        basis: (20, 478, 3) float64 displacement per unit of each AU.
    """

    au_names: tuple[str, ...]
    mean: np.ndarray
    basis: np.ndarray

    @classmethod
    def from_npz(cls, path: str | Path) -> "AUMeshModel":
        try:
            data = np.load(path, allow_pickle=False)
            columns = [str(c) for c in data["input_columns"]]
            coef = np.asarray(data["coef"], dtype=np.float64)
            intercept = np.asarray(data["intercept"], dtype=np.float64)
        except (OSError, KeyError, ValueError) as error:
            raise UserError(f"{path}: not a py-feat AU->mesh model file ({error})") from None
        au_rows = [i for i, name in enumerate(columns) if name.startswith("AU")]
        if coef.shape != (len(columns), 3 * N_VERTICES) or intercept.shape != (3 * N_VERTICES,):
            raise UserError(f"{path}: expected coef (n, {3 * N_VERTICES}) and intercept ({3 * N_VERTICES},)")
        to_vertices = lambda flat: flat.reshape(*flat.shape[:-1], 3, N_VERTICES).swapaxes(-1, -2)  # noqa: E731
        return cls(
            au_names=tuple(columns[i] for i in au_rows),
            mean=np.ascontiguousarray(to_vertices(intercept)),
            basis=np.ascontiguousarray(to_vertices(coef[au_rows])),
        )

    @property
    def n_aus(self) -> int:
        return len(self.au_names)

    def index(self, names: tuple[str, ...] | list[str]) -> list[int]:
        """Positions of AU `names` in the basis; UserError on an unknown name."""
        unknown = [n for n in names if n not in self.au_names]
        if unknown:
            raise UserError(f"unknown action unit {unknown[0]!r} (the model has {', '.join(self.au_names)})")
        return [self.au_names.index(n) for n in names]

    def vertices(self, aus: np.ndarray) -> np.ndarray:
        """(..., 20) AU intensities -> (..., 478, 3) model-space vertices."""
        aus = np.asarray(aus, dtype=np.float64)
        return self.mean + np.tensordot(aus, self.basis, axes=([-1], [0]))

    def with_mean(self, mean: np.ndarray) -> "AUMeshModel":
        """The same basis around another neutral mesh (478, 3), e.g. a subject's own."""
        return replace(self, mean=np.asarray(mean, dtype=np.float64))

    def holding_lip_gap(self, mouth_names: tuple[str, ...], compensate_with: str = "AU26") -> "AUMeshModel":
        """Re-parameterise so that no AU outside `mouth_names` changes the inner-lip opening.

        In the fitted PLS model most AUs move the lips apart or together as a side effect (AU09 opens the inner lips
        by 6 units per unit, AU20 by 5, AU25 closes them by 2), so "keep the mouth AUs" alone would not keep the
        mouth. Each non-mouth direction b_k becomes b_k - (g.b_k / g.b_c) b_c, where g is the mean signed inner-lip
        gap (a linear functional, `lip_gap_weights`) and b_c the jaw-drop direction: every expression AU then leaves
        the gap exactly unchanged and the mouth AUs carry all of it.
        """
        gap = lip_gap_weights(self.mean.shape[0])
        compensator = self.basis[self.index([compensate_with])[0]]
        gap_per_unit = np.tensordot(self.basis, gap, axes=([1, 2], [0, 1]))  # (20,)
        mouth = set(self.index(list(mouth_names)))
        basis = self.basis.copy()
        for k in range(self.n_aus):
            if k not in mouth:
                basis[k] -= gap_per_unit[k] / float(np.sum(gap * compensator)) * compensator
        return replace(self, basis=basis)

    @property
    def flat_basis(self) -> np.ndarray:
        """(1434, 20) basis as a design matrix over flattened (478*3) vertex coordinates."""
        return self.basis.reshape(self.n_aus, -1).T


@lru_cache(maxsize=1)
def load_au_model() -> AUMeshModel:
    """The model shipped with py-feat (loaded once per process)."""
    return AUMeshModel.from_npz(asset_path("au_to_mesh"))
