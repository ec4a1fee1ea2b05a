"""How a change of AU codes moves the mesh in a frame: the displacement basis an edit uses.

The linear model gives, for a code change d (20,), the model-space displacement basis . d. Used raw it has side
effects no face makes (measured, ASSETS.md): AU09 lifts the whole face outline by ~25 units, AU12 drags the outline
near the ears down by ~11; warped into the image these ripple into the hair. Clean-ups, applied once to
each basis vector:

1. remove the rigid motion (translation, small rotation, scale) the displacement induces on skull points that no
   expression moves (nose bridge, eye corners, temples, upper forehead), fitted by linear least squares on the
   similarity's tangent space at the mean mesh, and for the AUs in `skull_stretch` (the upper face's) a horizontal
   stretch of them too: the skull does not widen either, but after the similarity alone the PLS fit's AU09 (nose
   wrinkler) still moved the eye corners 5-7 units apart per unit (its training faces that wrinkled the nose were on
   average wider), which set the eyes of a disgusted edit visibly wider apart. Only the horizontal stretch: a full
   affine map also removes a vertical one and turns AU09's lowering of the brows into a raise. Not for the lower
   face's AUs, whose moves lie far from the skull points: there the stretch fitted on them, carried down to the
   mouth, narrowed it (AU15's corners 2.9 units closer per unit);
   with `symmetric`, each displacement is then averaged with its mirror image (the EMFACS AUs here are bilateral,
   and in the basis built without it, SynthMEAD's frozen one, a vector's halves differ by up to 47 % of its norm:
   the fit's AU09 also slid the right eye sideways while the left stayed);
2. smooth the result over the mesh (a few umbrella-operator iterations on the tessellation), which removes
   vertex-to-vertex ripples of the PLS fit while keeping the broad motion of each AU. Edges bridging the mouth
   opening are left out (averaging across it would close an opening jaw), and those bridging an eye (they carried
   an upper lid's raise to the lower lid); the inner lips are smoothed along the ring and with the outer lips, so
   the inner corners no longer overtake the outer ones (a fold);
3. the lip gap: in the raw model most expression AUs part or close the lips (AU06 opens them by 3.4 units per
   unit, AU10 by 2.0, AU17 closes them by 4.4), so removing a grin closes the lips over its teeth, which is what the
   mouth of a non-smiling target needs; the jaw (AU26), which carries the speech, is kept by the manipulator.
   `hold_lip_gap` (0-1) cancels that fraction of each expression AU's gap change with the jaw drop confined to the
   lips (`lip_weights`; the fit's own re-parameterisation, `AUMeshModel.holding_lip_gap`, cancels all of it with
   the whole jaw drop, which moves the chin). An edit closes at most `max_lip_closing` of the source's opening
   (the opening stays proportional to the speech's), and expression AUs do not part the lips unless `open_lips`
   (`EditGeometry.model_displacement`);
4. confine each AU to its FACS region (`regions`, `region_weights`): the PLS fit learnt the co-occurrences of its
   training faces, so its AU01 (inner brow raiser) also slides the whole mouth down by 4 units per unit, more than
   it lifts the brows (2.7), and AU05 (upper lid raiser) drops the lower lip by 9. Masked, an upper-face AU moves
   only the brows and eyes and a lower-face AU only the mouth and cheeks, so a prototype's AUs add up to the
   expression FACS describes instead of a face sliding down;
5. fade every AU's displacement but the jaw's (`jaw_name`, AU26: an opening jaw does move the chin) to zero at the
   face outline (`border_weights`): the outline borders the background, and moving it drags hair, ears and wall
   with the face (a cheek "ballooning" outward when a smile is removed). The lips lie far inside the fading band.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from ned_outlier.errors import UserError
from ned_outlier.reconstruction.au_model import AUMeshModel
from ned_outlier.reconstruction.fit import FLIP
from ned_outlier.reconstruction.topology import (
    EYE_CONTOURS, INNER_LIP_RING, LIP_CORNERS, LIP_MIDLINE, LOWER_BROWS, LOWER_EYELIDS, LOWER_LID_LINES,
    LOWER_LIP_EDGE, OUTER_LIPS, SKULL_MIDLINE, SKULL_POINTS, SUBNASALE, UPPER_INNER_LIP, UPPER_LID_LINES, face_oval,
    lip_gap_weights, mesh_edges,
)

REGIONS = ("upper", "lower", "above_mouth", "brows", "eyes", "upper_lids")


@dataclass(frozen=True)
class EditBasisConfig:
    """smoothing_iterations / smoothing_rate: umbrella smoothing of each displacement over the mesh (0 = off);
    smooth_across_eyes: also along the edges that bridge an eye opening (before 2026-12-07; SynthMEAD's frozen
    config keeps it). skull_stretch: the AUs whose skull points' horizontal stretch is removed too
    (`remove_skull_motion`); symmetric: average each displacement with its mirror image (both since 2026-12-07;
    SynthMEAD's frozen config has neither).
    border_fade: width of the band inside the face outline over which expression displacements fade in, as a
    fraction of the face width (0 = no fade); jaw_name: the AU exempt from it. lip_reach: how far beyond the lips
    (fraction of the face width) the lip-gap compensation reaches. hold_lip_gap: fraction of each expression AU's
    lip-gap change cancelled (1: expression AUs never part or close the lips). max_lip_closing: the largest
    fraction of the source's lip opening an edit may close. open_lips: let expression AUs
    part the lips too (off: only the jaw opens them). regions: region name (one of REGIONS; `region_weights`) ->
    the AUs confined to it; AUs in none move the whole face. mouth_anchor: expression AUs
    keep only the change of the lips' shape, not their shift, fading back over this fraction of the face width
    around the lips (`anchor_mouth`; 0 = off). corner_pulls: {AU: [outward, up]} lip-corner moves added to
    those AUs (`corner_pull_basis`), spread over a Gaussian of corner_reach face widths."""

    smoothing_iterations: int = 3
    smoothing_rate: float = 0.5
    smooth_across_eyes: bool = False
    skull_stretch: list = field(default_factory=list)
    symmetric: bool = True
    border_fade: float = 0.15
    jaw_name: str = "AU26"
    lip_reach: float = 0.12
    hold_lip_gap: float = 0.0
    max_lip_closing: float = 0.5
    open_lips: bool = False
    regions: dict = field(default_factory=dict)
    mouth_anchor: float = 0.0
    corner_pulls: dict = field(default_factory=dict)
    corner_reach: float = 0.1


def similarity_tangent(points: np.ndarray, stretch: bool = False) -> np.ndarray:
    """(N, 3) points -> (N * 3, 7) displacements of an infinitesimal translation (3), rotation (3) and scale (1);
    with `stretch` (N * 3, 8): an eighth column, a horizontal stretch about the points' mean x."""
    n = len(points)
    basis = np.zeros((n, 3, 8 if stretch else 7))
    basis[:, :, 0:3] = np.eye(3)
    x, y, z = points.T
    zero = np.zeros(n)
    # d(R p)/d(omega) = -[p]x: the columns of the rotation part
    basis[:, :, 3:6] = -np.stack(
        [np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)], axis=1
    )
    basis[:, :, 6] = points
    if stretch:
        basis[:, 0, 7] = x - x.mean()
    return basis.reshape(n * 3, basis.shape[2])


def remove_skull_motion(displacement: np.ndarray, mean: np.ndarray, skull: tuple[int, ...] = SKULL_POINTS,
                        stretch: bool = False) -> np.ndarray:
    """(V, 3) displacement minus the similarity motion (with `stretch`, plus horizontal stretch) that best explains
    it on the skull points, least squares."""
    tangent_all = similarity_tangent(mean, stretch)
    rows = np.concatenate([[3 * i, 3 * i + 1, 3 * i + 2] for i in skull])
    coefficients, *_ = np.linalg.lstsq(tangent_all[rows], displacement.reshape(-1)[rows], rcond=None)
    return displacement - (tangent_all @ coefficients).reshape(displacement.shape)


def mirror_vertices(mean: np.ndarray, midline: tuple[int, ...] = SKULL_MIDLINE) -> np.ndarray:
    """(V,) the index of each vertex's mirror image on the mesh `mean` (V, 3): the one-to-one pairing (Hungarian
    assignment) nearest, in total, to the vertices reflected in the plane x = the midline points' mean x."""
    reflected = mean.copy()
    reflected[:, 0] = 2.0 * mean[list(midline), 0].mean() - mean[:, 0]
    return linear_sum_assignment(cdist(reflected, mean))[1]


def symmetrise(displacement: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """(V, 3) displacement averaged with its mirror image: at vertex v, the mean of its own move and of the move of
    vertex mirror[v] with x negated."""
    reflected = displacement[mirror].copy()
    reflected[:, 0] *= -1.0
    return 0.5 * (displacement + reflected)


def umbrella_smooth(displacement: np.ndarray, edges: np.ndarray, iterations: int, rate: float) -> np.ndarray:
    """(V, 3) displacement moved `rate` of the way to its mesh-neighbour average, `iterations` times; vertices
    outside the tessellation (the irises) are left as they are."""
    result = displacement.copy()
    n = len(displacement)
    degree = np.bincount(edges.ravel(), minlength=n).astype(np.float64)
    has_neighbours = degree > 0
    for _ in range(iterations):
        total = np.zeros_like(result)
        np.add.at(total, edges[:, 0], result[edges[:, 1]])
        np.add.at(total, edges[:, 1], result[edges[:, 0]])
        average = total[has_neighbours] / degree[has_neighbours, None]
        result[has_neighbours] += rate * (average - result[has_neighbours])
    return result


def smoothing_edges(across_eyes: bool = False) -> np.ndarray:
    """(E, 2) the tessellation's edges less those bridging the mouth or (unless `across_eyes`) an eye opening (both
    ends on the inner-lip ring, or on one eye's contour, but not neighbours along it): smoothing along them would
    average the upper and lower lip and close an opening jaw, or carry an upper lid's raise to the lower lid, while
    the rings' own edges and those to the lips and lids around them keep the inner edges moving with them."""
    edges = mesh_edges()
    bridging = np.zeros(len(edges), bool)
    for ring in (INNER_LIP_RING, *(() if across_eyes else EYE_CONTOURS)):
        position = {vertex: k for k, vertex in enumerate(ring)}
        on_ring = np.isin(edges, ring).all(axis=1)
        steps = np.array([abs(position.get(a, 0) - position.get(b, 0)) for a, b in edges])
        bridging |= on_ring & (steps != 1) & (steps != len(ring) - 1)
    return edges[~bridging]


def smoothstep(x: np.ndarray) -> np.ndarray:
    """3x^2 - 2x^3 of x clipped to [0, 1]: 0 below 0, 1 above 1, flat at both ends."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def polygon_distance(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(V,) distance of points (V, 2) to the closed polyline polygon (B, 2) (its edges, not its inside)."""
    start, edge = polygon, np.roll(polygon, -1, axis=0) - polygon
    along = np.einsum("vbd,bd->vb", points[:, None] - start, edge) / np.einsum("bd,bd->b", edge, edge)
    nearest = start + np.clip(along, 0.0, 1.0)[..., None] * edge  # (V, B, 2)
    return np.linalg.norm(points[:, None] - nearest, axis=2).min(axis=1)


def border_weights(mean: np.ndarray, band: float) -> np.ndarray:
    """(V,) weights in [0, 1] for a neutral mesh mean (V, 3): smoothstep of each vertex's frontal (x, y) distance
    to the face-outline polygon (`face_oval`) over band * the outline's width; 0 on the outline. band <= 0: all 1."""
    if band <= 0:
        return np.ones(len(mean))
    oval = mean[face_oval(), :2]
    return smoothstep(polygon_distance(mean[:, :2], oval) / (band * np.ptp(oval[:, 0])))


def lip_weights(mean: np.ndarray, reach: float) -> np.ndarray:
    """(V,) weights: 1 inside the outer-lip polygon of mean (V, 3), falling (smoothstep) to 0 at reach * the face
    outline's width outside it (frontal x, y)."""
    lips = mean[list(OUTER_LIPS), :2]
    distance = polygon_distance(mean[:, :2], lips)
    inside = np.array([cv2.pointPolygonTest(lips.astype(np.float32), (float(x), float(y)), False) >= 0
                       for x, y in mean[:, :2]])
    width = np.ptp(mean[face_oval(), 0])
    return np.where(inside, 1.0, smoothstep(1.0 - distance / (reach * width)))


def region_weights(mean: np.ndarray, region: str) -> np.ndarray:
    """(V,) weights in [0, 1] over a neutral model-space mesh mean (V, 3), y up, by height on the face.

    "upper": 1 from the lower eyelids up, falling (smoothstep) to 0 at the base of the nose (subnasale): the
    brows, lids and forehead. "lower": 1 - "upper", the mouth, chin and cheeks below the eyes. "above_mouth": 1
    from the upper inner lip up, 0 from the lower lip's outer edge down: AUs that lift the upper lip and cheeks and
    wrinkle the nose (AU06, AU09, AU10) without moving the lower lip and chin. "brows" is 0 from the upper lids
    down, rising (smoothstep) to 1 at the brows' lower edge, both read at the vertex's own x (`_height_between`,
    so a brow's drooping tail counts as brow): the brows and forehead of AU01/02/04, whose PLS fit also dropped
    the lower lids (AU01 by 1.7 px per unit on the Pexels clip's frame 250); "eyes" is "upper" less "brows": the
    lids of AU07/43, fading out below the brows; "upper_lids" is "eyes" from the upper lids up, falling (smoothstep)
    to 0 at the lower lids, read at the vertex's own x: AU05, the upper lid raiser, whose PLS fit lifted the brows
    1.9 times as far as the upper lid and dropped the lower lid 0.9 px per unit there (`python
    benchmarks/lid_motion.py --per-au --frames pexels:250 --config configs/ned/synthmead_edit.yaml`).
    """
    y = mean[:, 1]
    if region == "upper_lids":
        return region_weights(mean, "eyes") * smoothstep(_height_between(mean, LOWER_LID_LINES, UPPER_LID_LINES))
    if region in ("upper", "lower", "eyes"):
        eyelids, base = float(mean[list(LOWER_EYELIDS), 1].mean()), float(mean[SUBNASALE, 1])
        upper = smoothstep((y - base) / (eyelids - base))
        if region == "eyes":
            return upper * (1.0 - region_weights(mean, "brows"))
        return upper if region == "upper" else 1.0 - upper
    if region == "brows":
        return smoothstep(_height_between(mean, UPPER_LID_LINES, LOWER_BROWS))
    if region == "above_mouth":
        top, bottom = float(mean[UPPER_INNER_LIP, 1]), float(mean[LOWER_LIP_EDGE, 1])
        return smoothstep((y - bottom) / (top - bottom))
    raise UserError(f"edit_basis.regions: unknown region {region!r} (valid: {', '.join(REGIONS)})")


def _height_between(mean: np.ndarray, low_lines: tuple, high_lines: tuple) -> np.ndarray:
    """(V,) each vertex's height over the polyline through the vertices of `low_lines` (one vertex-id tuple per
    eye or brow, joined) as a fraction of the height of `high_lines`' over it, both polylines interpolated in x at
    the vertex's x (held at their end heights beyond their ends): 0 on low_lines, 1 on high_lines. mean: (V, 3)
    model-space mesh, y up."""
    def line_height(lines: tuple) -> np.ndarray:
        line = [vertex for one in lines for vertex in one]
        order = np.argsort(mean[line, 0])
        return np.interp(mean[:, 0], mean[line, 0][order], mean[line, 1][order])

    low = line_height(low_lines)
    return (mean[:, 1] - low) / np.maximum(line_height(high_lines) - low, 1e-9)


def region_masks(au_names: tuple[str, ...], mean: np.ndarray, regions: dict) -> np.ndarray:
    """(20, V) per-AU vertex weights: each AU listed under a region of `regions` gets that region's weights, the
    others 1 everywhere; UserError on an unknown AU or an AU listed twice."""
    masks = np.ones((len(au_names), len(mean)))
    placed: set[str] = set()
    for region, names in regions.items():
        weights = region_weights(mean, region)
        for name in names:
            if name not in au_names:
                raise UserError(f"edit_basis.regions.{region}: unknown action unit {name!r}")
            if name in placed:
                raise UserError(f"edit_basis.regions: {name} is listed in two regions")
            placed.add(name)
            masks[au_names.index(name)] = weights
    return masks


def corner_pull_basis(au_names: tuple[str, ...], mean: np.ndarray, pulls: dict, reach: float) -> np.ndarray:
    """(20, V, 3) extra displacement per AU unit: each AU in `pulls` ({name: [outward, up]}, model units per unit)
    moves each lip corner of mean (V, 3) by that much, outward away from the face's midline and up, and the mesh
    around it by a Gaussian weight exp(-d^2 / 2 s^2) of the frontal distance d to the corner, s = reach * the face
    outline's width. UserError on an unknown AU or a pull that is not two numbers."""
    result = np.zeros((len(au_names), len(mean), 3))
    if not pulls:
        return result
    sigma = reach * float(np.ptp(mean[face_oval(), 0]))
    midline = float(mean[list(LIP_CORNERS), 0].mean())
    for name, pull in pulls.items():
        if name not in au_names:
            raise UserError(f"edit_basis.corner_pulls: unknown action unit {name!r}")
        if not (isinstance(pull, (list, tuple)) and len(pull) == 2):
            raise UserError(f"edit_basis.corner_pulls.{name}: expected [outward, up], got {pull!r}")
        for corner in LIP_CORNERS:
            distance = np.linalg.norm(mean[:, :2] - mean[corner, :2], axis=1)
            weight = np.exp(-0.5 * (distance / sigma) ** 2)
            side = np.sign(mean[corner, 0] - midline)
            result[au_names.index(name)] += weight[:, None] * np.array([side * pull[0], pull[1], 0.0])
    return result


def anchor_mouth(basis: np.ndarray, mean: np.ndarray, reach: float) -> np.ndarray:
    """(K, V, 3) displacements minus, for each, the mean displacement of the lips' midline (`LIP_MIDLINE`: outer
    and inner edge of both lips) weighted by `lip_weights(mean, reach)`: the middle of the mouth stays in place,
    the lips keep their change of shape (corners up or down, stretch, the lower lip pushed up), and the face around
    them follows less and less of the removed shift."""
    shift = basis[:, list(LIP_MIDLINE)].mean(axis=1)  # (K, 3)
    return basis - shift[:, None, :] * lip_weights(mean, reach)[None, :, None]


class EditGeometry:
    """Displacements in frame pixels for code changes, under each frame's pose."""

    def __init__(self, model: AUMeshModel, mouth_names: tuple[str, ...], config: EditBasisConfig = EditBasisConfig()):
        """model: the raw AU model (`load_au_model()`, not the fit's lip-gap-holding re-parameterisation)."""
        edges = smoothing_edges(config.smooth_across_eyes)
        masks = region_masks(model.au_names, model.mean, config.regions)
        mirror = mirror_vertices(model.mean) if config.symmetric else None
        try:
            stretched = set(model.index(list(config.skull_stretch)))
        except UserError as error:
            raise UserError(f"edit_basis.skull_stretch: {error}") from None
        cleaned = []
        for index, (vector, mask) in enumerate(zip(model.basis, masks)):
            vector = remove_skull_motion(vector, model.mean, stretch=index in stretched)
            if mirror is not None:
                vector = symmetrise(vector, mirror)
            cleaned.append(umbrella_smooth(vector * mask[:, None], edges, config.smoothing_iterations,
                                           config.smoothing_rate))
        cleaned = np.stack(cleaned)
        expression = ~np.isin(model.au_names, mouth_names)
        cleaned += corner_pull_basis(model.au_names, model.mean, config.corner_pulls, config.corner_reach)
        if config.mouth_anchor > 0:
            cleaned[expression] = anchor_mouth(cleaned[expression], model.mean, config.mouth_anchor)
        gap = lip_gap_weights(len(model.mean))
        jaw = model.basis[model.index([config.jaw_name])[0]]
        lips_only = jaw * lip_weights(model.mean, config.lip_reach)[:, None]
        # centred on the lips' midline: closing a gap the expression opened meets the lips in the middle, it does
        # not lift the whole mouth the way raising the jaw would
        lips_only = anchor_mouth(lips_only[None], model.mean, config.lip_reach)[0]
        self.lip_opener = lips_only / float(np.sum(gap * lips_only))  # (V, 3): opens the inner lips by one unit
        opens = np.tensordot(cleaned, gap, axes=([1, 2], [0, 1]))  # (20,) lip-gap change per unit of each AU
        cleaned -= (config.hold_lip_gap * expression * opens)[:, None, None] * self.lip_opener
        fade = border_weights(model.mean, config.border_fade)[None, :, None]  # 1 at the lips: gaps are unchanged
        exempt = np.array([name == config.jaw_name for name in model.au_names])[:, None, None]
        self.au_names = model.au_names
        self.basis = np.where(exempt, cleaned, cleaned * fade)  # (20, V, 3) model space
        self.opens = np.tensordot(self.basis, gap, axes=([1, 2], [0, 1]))  # (20,)
        self.expression = expression  # (20,) bool: the AUs outside mouth_names
        self.max_lip_closing = config.max_lip_closing
        self.open_lips = config.open_lips

    def model_displacement(self, delta_aus: np.ndarray, source_gap: float | None = None) -> np.ndarray:
        """delta_aus (20,) -> (V, 3) model-space displacement.

        Unless `open_lips`, the part of the lip parting that expression AUs add is cancelled (a warp cannot draw
        the inside of a mouth it opens: closed lips stretched apart show a red smear); closing is kept. With
        source_gap (the frame's inner-lip opening, model units), the lips close by at most `max_lip_closing` of
        it: the edited opening stays proportional to the source's, so the speech's rhythm stays in the lips."""
        model_space = np.tensordot(delta_aus, self.basis, axes=([0], [0]))
        opening = float(delta_aus[self.expression] @ self.opens[self.expression])
        correction = 0.0
        if opening > 0 and not self.open_lips:
            correction -= opening
        if source_gap is not None:
            closing_room = self.max_lip_closing * max(source_gap, 0.0)
            change = float(delta_aus @ self.opens) + correction
            correction += max(-closing_room - change, 0.0)
        return model_space + correction * self.lip_opener

    def displacement(self, delta_aus: np.ndarray, rotation: np.ndarray, scale: float,
                     source_gap: float | None = None) -> np.ndarray:
        """delta_aus (20,), R_head (3, 3), scale -> (V, 3) displacement in frame pixels (x right, y down), of
        `model_displacement`."""
        return scale * self.model_displacement(delta_aus, source_gap) @ (FLIP @ rotation).T
