"""Mouth re-synthesis by retrieval (as in Face2Face): a warp cannot remove teeth or make a mouth interior, and the
mouth decides what people read. For each output frame, pick from the same video the donor frame whose mouth best
matches the target mouth state, warp the donor's mouth region onto the target mouth geometry, and blend it in.

Mouth state: the lip-contour vertices of the AU model (frontal, model units) under a frame's codes, so every AU is
weighed by how much it moves the lips. The target state takes the mouth code (jaw opening, lip press) from the edit
target (the source's with --mouth keep) and every other AU from the target expression. A donor sequence is chosen by
dynamic programming (Viterbi) over the per-frame costs plus a cost for switching donors (playing consecutive donor
frames is free), so the mouth does not flicker. Frames whose best donor is still too far fall back to the warp.
Where the chosen donor still switches, the mouths of both sides are cross-faded over 2 crossfade + 1 frames
(`donor_mix`), so a switch is a short dissolve, not a pop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ned_outlier.compose.blend import blend_region, hull_mask
from ned_outlier.reconstruction.au_model import AUMeshModel
from ned_outlier.reconstruction.export import euler_degrees
from ned_outlier.reconstruction.params import FaceParams
from ned_outlier.reconstruction.reconstructor import true_runs
from ned_outlier.reconstruction.topology import OUTER_LIPS, face_triangles
from ned_outlier.renderer.warp import warp_triangles



@dataclass(frozen=True)
class MouthConfig:
    """enabled: re-synthesise the mouth by retrieval (else the warp alone).
    candidates: donors considered per frame (the nearest in mouth state and pose).
    switch_cost: cost of jumping to another donor between consecutive frames (model units, as the state distance).
    max_distance: a frame whose chosen donor is farther than this (RMS lip-vertex distance, model units; the face is
        ~200 units tall) falls back to the warp.
    min_gain: a donor is used only when it is at most this fraction of the distance between the target and the
        frame's own mouth (else warping the frame's own mouth is as good).
    pose_weight: model units of cost per degree of head yaw/pitch difference between donor and target.
    upscale_weight: model units of cost per unit of ln(target face scale / donor face scale) above 0: a donor
        filmed farther away is magnified when pasted, which blurs its mouth (0: scale ignored).
    feather: softness of the pasted mouth's edge, as a fraction of the mouth width.
    max_fit_error_ratio: frames fitted worse than this times the video's median fit error are never donors.
    crossfade: a donor switch (or a change between a donor's mouth and the frame's own) dissolves linearly over
        2 crossfade + 1 frames (0: a hard cut).
    """

    enabled: bool = True
    candidates: int = 24
    switch_cost: float = 0.5
    max_distance: float = 20.0
    min_gain: float = 0.8
    pose_weight: float = 0.15
    upscale_weight: float = 40.0
    feather: float = 0.12
    max_fit_error_ratio: float = 1.5
    crossfade: int = 2


def mouth_region(model: AUMeshModel) -> np.ndarray:
    """Vertex ids (0-467) inside an ellipse around the lips of the neutral mesh: the region a donor replaces."""
    lips = model.mean[list(OUTER_LIPS)]
    centre = lips.mean(axis=0)
    half_width, half_height = 0.75 * np.ptp(lips[:, 0]), 1.3 * np.ptp(lips[:, 1])
    vertices = model.mean[:468]
    inside = ((vertices[:, 0] - centre[0]) / half_width) ** 2 + ((vertices[:, 1] - centre[1]) / half_height) ** 2
    return np.flatnonzero(inside <= 1.0)


def lip_states(basis: np.ndarray, aus: np.ndarray) -> np.ndarray:
    """(T, 20) AUs (or AU changes) under a displacement basis (20, V, 3) -> (T, L * 3) lip-contour displacements in
    model space divided by sqrt(L), so that Euclidean distances between states are RMS lip-vertex distances in
    model units."""
    lips = list(OUTER_LIPS)
    displacement = np.tensordot(aus, basis[:, lips], axes=([1], [0]))  # (T, L, 3)
    return displacement.reshape(len(aus), -1) / np.sqrt(len(lips))


def yaw_pitch(params: FaceParams) -> np.ndarray:
    """(T, 2) head yaw and pitch in degrees (NaN without a face)."""
    return euler_degrees(params.rotation)[:, [1, 0]]


def choose_donors(target_states: np.ndarray, donor_states: np.ndarray, target_pose: np.ndarray,
                  donor_pose: np.ndarray, valid_targets: np.ndarray, valid_donors: np.ndarray,
                  config: MouthConfig, own_distance: np.ndarray | None = None,
                  scales: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Viterbi over donors. States (T, D) / (N, D); poses (T, 2) / (N, 2) yaw-pitch degrees; validity (T,) / (N,);
    own_distance (T,): how far each frame's own mouth is from its target (None: no such test); scales: the face
    scales (T,) / (N,) of targets and donors, for `upscale_weight` (None: no such cost).

    Returns the donor frame per target frame (T,) (-1 where there is no target face, no donor within max_distance,
    or none closer than min_gain * own_distance) and the chosen donor's state distance (T,) (inf where none).
    """
    donors = np.flatnonzero(valid_donors)
    chosen = np.full(len(target_states), -1)
    distance = np.full(len(target_states), np.inf)
    if len(donors) == 0:
        return chosen, distance
    k = min(config.candidates, len(donors))
    for run in true_runs(valid_targets):
        state_distance = np.linalg.norm(target_states[run, None] - donor_states[None, donors], axis=2)  # (R, N)
        pose_gap = np.linalg.norm(target_pose[run, None] - donor_pose[None, donors], axis=2)
        cost = state_distance + config.pose_weight * pose_gap
        if scales is not None and config.upscale_weight:
            upscale = np.log(scales[0][run, None] / scales[1][None, donors])
            cost = cost + config.upscale_weight * np.maximum(upscale, 0.0)
        candidates = np.argsort(cost, axis=1)[:, :k]  # (R, k) positions in `donors`
        path = viterbi(np.take_along_axis(cost, candidates, 1), donors[candidates], config.switch_cost)
        rows = np.arange(len(run))
        picked = donors[candidates][rows, path]
        picked_distance = np.take_along_axis(state_distance, candidates, 1)[rows, path]
        close = picked_distance <= config.max_distance
        if own_distance is not None:
            close &= picked_distance <= config.min_gain * own_distance[run]
        chosen[run[close]] = picked[close]
        distance[run] = picked_distance
    return chosen, distance


def viterbi(unary: np.ndarray, labels: np.ndarray, switch_cost: float) -> np.ndarray:
    """Minimum-cost path through unary costs (R, k) whose labels (R, k) are donor frame numbers: moving from donor
    a to donor b costs 0 if b is a or a + 1 (holding or playing on), else switch_cost. Returns a column per row."""
    rows, k = unary.shape
    total = unary[0].copy()
    back = np.zeros((rows, k), dtype=np.int64)
    for r in range(1, rows):
        step = labels[r][None, :] - labels[r - 1][:, None]  # (previous k, k)
        arriving = total[:, None] + np.where((step == 0) | (step == 1), 0.0, switch_cost)
        back[r] = np.argmin(arriving, axis=0)
        total = arriving[back[r], np.arange(k)] + unary[r]
    path = np.empty(rows, dtype=np.int64)
    path[-1] = int(np.argmin(total))
    for r in range(rows - 1, 0, -1):
        path[r - 1] = back[r, path[r]]
    return path


def donor_segments(donors: np.ndarray, face_found: np.ndarray) -> np.ndarray:
    """(T,) segment ids for the donors (T,) (-1: the frame keeps its own mouth) of the frames (face_found (T,)):
    consecutive face frames share an id while their donor holds or plays on (d -> d or d + 1) or both keep their own
    mouth; a new id begins at every other switch and at every frame after one without the face."""
    donors, found = np.asarray(donors), np.asarray(face_found, bool)
    step = np.diff(donors)
    both_donors = (donors[1:] >= 0) & (donors[:-1] >= 0) & ((step == 0) | (step == 1))
    both_own = (donors[1:] < 0) & (donors[:-1] < 0)
    continues = found[1:] & found[:-1] & (both_donors | both_own)
    return np.concatenate([[0], np.cumsum(~continues)])


def donor_mix(donors: np.ndarray, segments: np.ndarray, face_found: np.ndarray, index: int, radius: int
              ) -> list[tuple[int, float]]:
    """The mouths frame `index` blends, as [(donor, weight)] (donor -1: its own warped mouth), weights summing to 1:
    each segment (`donor_segments`) met in the window of +-radius frames around `index`, cut at frames without the
    face, weighs by its share of the window's 2 radius + 1 frames (the window's clipped part counts for the segment
    at that end), shown by its donor at the window frame nearest to `index`. So a switch ramps linearly over
    2 radius + 1 frames, and away from switches a frame shows its own donor alone."""
    found, last = np.asarray(face_found, bool), len(donors) - 1
    low = high = index
    while low > max(index - radius, 0) and found[low - 1]:
        low -= 1
    while high < min(index + radius, last) and found[high + 1]:
        high += 1
    counts: dict[int, list] = {}  # segment -> [frames in the window, its donor at the frame nearest to index]
    for frame in sorted(range(low, high + 1), key=lambda frame: abs(frame - index)):
        entry = counts.setdefault(int(segments[frame]), [0, int(donors[frame])])
        entry[0] += 1
    counts[int(segments[low])][0] += radius - (index - low)  # the window beyond a clip's or a run's end
    counts[int(segments[high])][0] += radius - (high - index)
    mixed: dict[int, float] = {}
    for count, donor in counts.values():
        mixed[donor] = mixed.get(donor, 0.0) + count / (2 * radius + 1)
    return sorted(mixed.items())


def box_around(points: np.ndarray, shape: tuple[int, ...], margin: float) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) around points (N, 2), enlarged by `margin` of its size on each side, clipped to shape."""
    low, high = points.min(axis=0), points.max(axis=0)
    pad = margin * (high - low)
    x0, y0 = np.floor(low - pad).astype(int)
    x1, y1 = np.ceil(high + pad).astype(int) + 1
    return max(int(x0), 0), max(int(y0), 0), min(int(x1), shape[1]), min(int(y1), shape[0])


@dataclass(frozen=True)
class MouthPatch:
    """A donor frame's mouth: its box (x0, y0, x1, y1) in the frame, the pixels (h, w, 3), and the donor's mesh
    (478, 2) in patch coordinates."""

    box: tuple[int, int, int, int]
    pixels: np.ndarray
    points: np.ndarray


class MouthSynthesiser:
    """Cuts donor mouths and pastes them onto warped frames at the target geometry."""

    def __init__(self, model: AUMeshModel, config: MouthConfig):
        self.config = config
        self.region = mouth_region(model)
        triangles = face_triangles()
        self.triangles = triangles[np.isin(triangles, self.region).all(axis=1)]

    def cut(self, frame: np.ndarray, points: np.ndarray) -> MouthPatch:
        """The donor's mouth region from frame (H, W, 3) with its mesh points (478, 2) in frame pixels."""
        x0, y0, x1, y1 = box_around(points[self.region], frame.shape, margin=0.3)
        return MouthPatch((x0, y0, x1, y1), frame[y0:y1, x0:x1].copy(), points - [x0, y0])

    def paste(self, frame: np.ndarray, target: np.ndarray, donor: MouthPatch) -> np.ndarray:
        """frame (H, W, 3) (already warped) with the donor's mouth warped onto target (478, 2) frame pixels."""
        box = box_around(target[self.region], frame.shape, margin=0.3)
        x0, y0, x1, y1 = box
        warped, coverage = warp_triangles(donor.pixels, donor.points, target - [x0, y0], self.triangles,
                                          (0, 0, x1 - x0, y1 - y0))
        lips = target[list(OUTER_LIPS)] - [x0, y0]
        centre = lips.mean(axis=0)
        grown = centre + 1.15 * (lips - centre)  # a margin of skin around the lips, where the seam is hidden
        mask = hull_mask(grown, (y1 - y0, x1 - x0), self.config.feather * np.ptp(lips[:, 0])) * coverage
        return blend_region(frame, warped, mask.astype(np.float32), box)
