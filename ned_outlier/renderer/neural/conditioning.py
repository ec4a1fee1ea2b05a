"""The neural renderer's conditioning images, rendered with pytorch3d from the reconstructed mesh in crop pixels.

As in NED (Head2Head-style renderer), a frame is conditioned on images of the reconstructed face, not on the mesh:

    renderer = ConditionRenderer(ConditioningConfig(size=256))          # MediaPipe's topology (mediapipe-au)
    conditions = renderer(vertices)          # (B, 478, 3) crop pixels -> (B, 7, 256, 256) in [-1, 1]
    flame = ConditionRenderer(config, backend_topology("flame-deca"))   # FLAME's, from the user's files
    conditions = flame(vertices)             # (B, 5023, 3) -> (B, 7, 256, 256)

The mesh's topology (ConditioningTopology) says what is drawn; `backend_topology` picks it from a reconstruction
schema's backend: mediapipe-au -> `mediapipe_topology()`, flame-* (flame-deca, flame-emoca, flame-fit) ->
`flame_topology(model, embedding)` from the user's FLAME generic_model.pkl and DECA's landmark_embedding.npy.

Channels (CONDITION_CHANNELS = 7), all -1 where no face is rasterised:
  0-2  NMFC: each vertex coloured by its coordinate in the topology's neutral template (model space: x right, y up,
       z toward the camera), min-max normalised per axis to [0, 1], interpolated over the surface, mapped to [-1, 1].
       MediaPipe: the mean template of the AU model (its 468 surface vertices). FLAME: FLAME's v_template, the mean
       head, as NED's NMFC (its Normalised Mean Face Coordinates are the mean FLAME face's).
  3-5  unit normal of the rasterised surface (vertex normals interpolated and renormalised), x, y, z in crop axes;
       a face seen from the front has z < 0 (toward the camera).
  6    eyes: +1 on the two eye contours (closed polylines), -1 elsewhere. MediaPipe: the 16-point eyelid contours
       (EYE_CONTOURS) and a pupil disc at each iris centre. FLAME: the eye contours of DECA's 68 landmarks (iBUG
       points 37-42 and 43-48, fixed on the mesh by the landmark embedding), no pupil: FLAME's eyeballs turn with
       its eye joints, which the reconstruction does not track. NED draws this channel from the landmarks of a
       separate 2D detector on the real frame (eyes and gaze as seen); here both come from the mesh, so an edit
       moves them with it and the eyes' gaze is not conditioned.

Conventions. Vertices are (B, V, 3) crop pixels: x right, y down, z away from the camera (bigger z = farther),
pixel centres at integer coordinates (as everywhere in this project), so a crop of S pixels covers [-0.5, S - 0.5].
Projection is orthographic: x, y are the image position, z only orders the surfaces (the nearest wins). The surface
is the first len(template) vertices: MediaPipe's 898 tessellation triangles over vertices 0-467 (the iris points
468-477 feed the eyes channel only: iris 468, ring 469-472, is the eye of EYE_CONTOURS[0], which starts at landmark
33, the subject's right eye, on the image's left in an unmirrored frontal view; iris 473, ring 474-477, is
EYE_CONTOURS[1]'s); FLAME's whole mesh (head, neck, ears, eyeballs), its triangles `f`.

Winding: pytorch3d's vertex normals are area-weighted sums of (v2 - v1) x (v0 - v1); both meshes are wound so that
these point out of the surface, so toward the camera (-z in crop axes) where it faces the camera (the model frame
and the crop frame are right-handed, and a frontal placement is a half-turn about x). MediaPipe's tessellation is
used as shipped. FLAME's triangles are as shipped too (DECA's renderer takes the same cross product on the mesh
projected with y and z flipped, our crop axes, and treats normal z < 0 as facing the camera: yfeng95/DECA
decalib/utils/renderer.py), but the user's file is checked: `outward_triangles` flips every triangle if the
area-weighted normals point into the template's centroid rather than out of it.

Rasterisation. pytorch3d's CPU rasteriser is naive (every pixel tests every face: about 3 s for 8 crops of 256),
so the crop is cut into square tiles (`tile_size`) and each tile is rasterised as its own small mesh holding only
the faces whose bounding box reaches it: the same pixels, over ten times faster. pytorch3d's NDC: +X left, +Y up,
+Z into the screen; the centre of pixel column j of a W-wide square image is at X = 1 - (2 j + 1) / W (row i
likewise in Y), so a crop-pixel coordinate p maps to 1 - (2 p + 1) / S. Surfaces with NDC depth below 0 are
dropped by pytorch3d, so depths are shifted to start at 1.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch
from pytorch3d.ops import interpolate_face_attributes
from pytorch3d.renderer.mesh import rasterize_meshes
from pytorch3d.structures import Meshes

from ned_outlier.errors import UserError
from ned_outlier.reconstruction.au_model import load_au_model
from ned_outlier.reconstruction.flame.landmarks import (DECA_REGISTRATION_URL, LANDMARK_EMBEDDING_ENV, FlameLandmarks,
                                                        LandmarkEmbedding, barycentric_landmarks,
                                                        load_landmark_embedding)
from ned_outlier.reconstruction.flame.model_file import FLAME_MODEL_ENV, FlameModel, load_flame_model
from ned_outlier.reconstruction.mediapipe_au import BACKEND
from ned_outlier.reconstruction.topology import EYE_CONTOURS, OUTER_LIPS, face_triangles
from ned_outlier.reconstruction.user_files import FLAME_REGISTRATION_URL, resolve_file
from ned_outlier.renderer.mesh import N_FACE_VERTICES

CONDITION_CHANNELS = 7  # nmfc (3) + normals (3) + eyes (1)
IRIS_CENTRES = (468, 473)  # of the eyes EYE_CONTOURS[0] and EYE_CONTOURS[1]
IRIS_RINGS = ((469, 470, 471, 472), (474, 475, 476, 477))
REFERENCE_SIZE = 256  # crop size at which ConditioningConfig.eye_thickness is given
MIN_EYE_LINE = 1.0  # pixels: thinner lines would vanish between pixel centres in small crops
FLAME_BACKEND_PREFIX = "flame-"  # flame-deca, flame-emoca, flame-fit: FLAME meshes
IBUG_EYES = (tuple(range(36, 42)), tuple(range(42, 48)))  # 0-based iBUG 37-42 (subject's right eye), 43-48
IBUG_OUTER_LIPS = tuple(range(48, 60))  # 0-based iBUG 49-60
FLAME_MODEL_KEY = "data.flame_model"  # the renderer training config's keys of the user's files
LANDMARK_EMBEDDING_KEY = "data.landmark_embedding"


@dataclass(frozen=True)
class ConditioningConfig:
    """size: side of the square crop, pixels. eye_thickness: line width of the eye contours, in pixels of a 256-pixel
    crop (scaled with size). pupil_radius: radius of the pupil disc as a fraction of the iris radius (the mean
    distance from the iris centre to its four ring points, measured in the image); 0.35 is about a human pupil of
    4 mm in a 11.7 mm iris. The disc is never narrower than the contour lines, so it stays visible in small crops."""

    size: int = 256
    eye_thickness: float = 1.5
    pupil_radius: float = 0.35


@dataclass(frozen=True, eq=False)
class ConditioningTopology:
    """What the conditioning images are drawn from, for meshes of `n_vertices` vertices (module docstring).

    name: "mediapipe" or "flame". template (S, 3): the neutral surface, vertices 0..S-1 of the mesh, in
    model space (its NMFC colours). triangles (F, 3) int64 into 0..S-1, wound so pytorch3d's normals point out of the
    surface. Landmark points, P of them, fixed on the mesh: point p is sum_k point_weights[p, k] * vertex
    point_corners[p, k], point_corners (P, 3) int64, point_weights (P, 3) float32. eye_contours: two closed contours
    of point indices (the subject's right eye first); outer_lips: point indices around the mouth (the mouth
    discriminator's window); pupils: per eye (centre point, ring points) of its iris, or () without pupils."""

    name: str
    n_vertices: int
    template: np.ndarray
    triangles: np.ndarray
    point_corners: np.ndarray
    point_weights: np.ndarray
    eye_contours: tuple[tuple[int, ...], tuple[int, ...]]
    outer_lips: tuple[int, ...]
    pupils: tuple[tuple[int, tuple[int, ...]], ...]

    def require_mesh(self, n_vertices: int, what: str) -> None:
        """UserError unless `what`'s meshes have this topology's vertex count."""
        if n_vertices != self.n_vertices:
            hint = ": give the FLAME model file it was reconstructed with" if self.name == "flame" else ""
            raise UserError(f"{what} has meshes of {n_vertices} vertices, but the conditioning's {self.name} "
                            f"topology has {self.n_vertices}{hint}")


def mediapipe_topology() -> ConditioningTopology:
    """The 478-point MediaPipe mesh (mediapipe-au): the AU model's mean template over the 468 surface vertices, the
    shipped tessellation, every vertex a landmark point (weight 1 on itself), EYE_CONTOURS and OUTER_LIPS, pupils at
    the iris centres."""
    mean = load_au_model().mean
    vertices = np.arange(len(mean), dtype=np.int64)
    weights = np.zeros((len(mean), 3), np.float32)
    weights[:, 0] = 1.0
    return ConditioningTopology(
        name="mediapipe", n_vertices=len(mean), template=mean[:N_FACE_VERTICES],
        triangles=np.asarray(face_triangles(), np.int64), point_corners=np.repeat(vertices[:, None], 3, axis=1),
        point_weights=weights, eye_contours=EYE_CONTOURS, outer_lips=OUTER_LIPS,
        pupils=tuple(zip(IRIS_CENTRES, IRIS_RINGS)))


def outward_triangles(template: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """triangles (F, 3) of the closed-ish surface template (V, 3) -> (F, 3), wound so that pytorch3d's face normals
    (v2 - v1) x (v0 - v1) point out of it: as given when their area-weighted sum of dot products with the offsets of
    the faces' centroids from the template's centroid is >= 0, else with corners 1 and 2 swapped in every face."""
    template = np.asarray(template, np.float64)
    corners = template[triangles]  # (F, 3, 3)
    normals = np.cross(corners[:, 2] - corners[:, 1], corners[:, 0] - corners[:, 1])  # twice the area long
    outward = float(np.sum(normals * (corners.mean(axis=1) - template.mean(axis=0))))
    return triangles if outward >= 0 else triangles[:, [0, 2, 1]]


def flame_topology(model: FlameModel, embedding: LandmarkEmbedding) -> ConditioningTopology:
    """FLAME's mesh (flame-* backends): v_template as the NMFC template (the whole mesh is the surface), the
    triangles `f` wound outward (`outward_triangles`), DECA's 68 fixed 3D landmarks (the embedding's `full_*`
    entries, barycentric in the file's `f`) as the points, their iBUG eye contours and outer lips, no pupils.
    UserError when the embedding names faces the model does not have."""
    FlameLandmarks(embedding, model.f)  # refuses an embedding of another model
    return ConditioningTopology(
        name="flame", n_vertices=model.num_vertices, template=model.v_template,
        triangles=outward_triangles(model.v_template, model.f), point_corners=model.f[embedding.full_faces],
        point_weights=embedding.full_bary, eye_contours=IBUG_EYES, outer_lips=IBUG_OUTER_LIPS, pupils=())


def _where(key: str, env: str, what: str, registration: str) -> str:
    return (f"give its path with the config key {key} or the environment variable {env} ({what}, registration at "
            f"{registration}; nothing is downloaded)")


def backend_topology(backend: str, flame_model: str | os.PathLike | None = None,
                     landmark_embedding: str | os.PathLike | None = None) -> ConditioningTopology:
    """The topology of `backend`'s meshes: mediapipe-au -> MediaPipe's; flame-* -> FLAME's, read now from
    `flame_model` (else FLAME_MODEL_PATH) and `landmark_embedding` (else FLAME_LANDMARK_EMBEDDING_PATH). A one-line
    UserError for another backend or a missing file (naming the renderer config's key and the variable)."""
    if backend == BACKEND:
        return mediapipe_topology()
    if not backend.startswith(FLAME_BACKEND_PREFIX):
        raise UserError(f"the neural renderer's conditioning is drawn from {BACKEND} or FLAME (flame-*) meshes, "
                        f"not {backend!r} ones")
    model_path = resolve_file(flame_model, f"FLAME model (the {backend} meshes' topology)", FLAME_MODEL_ENV,
                              _where(FLAME_MODEL_KEY, FLAME_MODEL_ENV, "FLAME 2020's generic_model.pkl",
                                     FLAME_REGISTRATION_URL))
    embedding_path = resolve_file(landmark_embedding, "FLAME landmark embedding (the eyes channel)",
                                  LANDMARK_EMBEDDING_ENV,
                                  _where(LANDMARK_EMBEDDING_KEY, LANDMARK_EMBEDDING_ENV,
                                         "DECA's landmark_embedding.npy", DECA_REGISTRATION_URL))
    return flame_topology(load_flame_model(model_path), load_landmark_embedding(embedding_path))


def nmfc_colours(template: np.ndarray) -> np.ndarray:
    """template (V, 3) -> (V, 3) float32 NMFC colours in [0, 1]: each coordinate min-max normalised over the
    vertices, per axis (a flat axis maps to 0)."""
    template = np.asarray(template, dtype=np.float64)
    low, high = template.min(axis=0), template.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    return ((template - low) / span).astype(np.float32)


def pixel_to_ndc(coordinates: torch.Tensor, size: int) -> torch.Tensor:
    """Crop-pixel coordinates (...) of a square image of `size` pixels (centres at integers, x right / y down) ->
    pytorch3d NDC (...) (+X left / +Y up): p -> 1 - (2 p + 1) / size, so pixel centre j lands where pytorch3d
    samples pixel j."""
    return 1 - (2 * coordinates + 1) / size


def vertex_normals(vertices: torch.Tensor, triangles: torch.Tensor) -> torch.Tensor:
    """vertices (B, V, 3), triangles (F, 3) int64 -> (B, V, 3) unit vertex normals, in the vertices' axes."""
    faces = triangles.expand(vertices.shape[0], -1, -1)
    return Meshes(verts=vertices, faces=faces).verts_normals_padded()


def tile_size(size: int) -> int:
    """Side of the tiles a crop of `size` pixels is rasterised in. pytorch3d's CPU rasteriser pays per tile mesh
    (tens of microseconds), per pixel, and per face tested at each pixel; about 11 tiles a side balances these
    (measured for crops of 64 to 512 pixels), with at least 12 pixels a tile."""
    return max(12, round(size / 11))


def face_tile_pairs(corners: torch.Tensor, size: int, tile: int) -> torch.Tensor:
    """corners (B, F, 3, 2) crop-pixel x, y of each face's vertices -> (M, 4) int64 rows (b, ty, tx, f): face f of
    image b has a bounding box reaching the pixel centres of tile (ty, tx), sorted by b, ty, tx, then f."""
    n = math.ceil(size / tile)
    low, high = corners.amin(dim=2), corners.amax(dim=2)  # (B, F, 2)
    first = torch.arange(n, device=corners.device) * tile  # first pixel centre of each tile, either axis
    reach = (high[..., None] >= first) & (low[..., None] <= first + tile - 1)  # (B, F, 2, n)
    overlap = reach[:, :, 1, :, None] & reach[:, :, 0, None, :]  # (B, F, n_y, n_x)
    return overlap.permute(0, 2, 3, 1).nonzero()


@dataclass(frozen=True)
class TileLayout:
    """Which faces each tile mesh holds. n x n tiles of `tile` pixels per image; the K tiles holding any face have
    flat ids tiles (K,) = b * n * n + ty * n + tx, ascending. Pair m of `pairs` (M, 4) (rows b, ty, tx, f) is face
    slot[m] of tile mesh owner[m]; each tile mesh holds `counts` (K,) faces, at most `capacity`."""

    tile: int
    n: int
    pairs: torch.Tensor
    tiles: torch.Tensor
    owner: torch.Tensor
    slot: torch.Tensor
    counts: torch.Tensor
    capacity: int


def tile_layout(corners: torch.Tensor, size: int, tile: int) -> TileLayout:
    """corners (B, F, 3, 2) crop-pixel x, y of each face's vertices -> their TileLayout (empty pairs when no face
    reaches the crop)."""
    n = math.ceil(size / tile)
    pairs = face_tile_pairs(corners, size, tile)
    flat = (pairs[:, 0] * n + pairs[:, 1]) * n + pairs[:, 2]
    tiles, owner, counts = torch.unique_consecutive(flat, return_inverse=True, return_counts=True)
    slot = torch.arange(len(flat), device=flat.device) - (torch.cumsum(counts, 0) - counts)[owner]
    return TileLayout(tile, n, pairs, tiles, owner, slot, counts, int(counts.max()) if len(counts) else 0)


def tile_meshes(corners: torch.Tensor, layout: TileLayout) -> Meshes:
    """corners (B, F, 3, 3) crop-pixel x, y, z of each face's vertices -> Meshes of K triangle soups, one a tile:
    verts (K, 3 * capacity, 3) in the pytorch3d NDC of the tile, faces (K, capacity, 3) padded with -1 at the end,
    in the order of layout.pairs (so the packed faces are the pairs). Depth is shifted to start at 1 in each image
    and scaled like x and y."""
    b, ty, tx, f = layout.pairs.unbind(dim=1)
    face_corners = corners[b, f]  # (M, 3, 3)
    origin = torch.stack([tx, ty], dim=1).to(corners.dtype) * layout.tile  # (M, 2) first pixel centre x, y
    xy = pixel_to_ndc(face_corners[..., :2] - origin[:, None], layout.tile)
    near = corners[..., 2].flatten(1).amin(dim=1)[b]  # (M,)
    z = 1 + (face_corners[..., 2:] - near[:, None, None]) * (2 / layout.tile)
    verts = corners.new_zeros(len(layout.tiles), layout.capacity, 3, 3)
    verts[layout.owner, layout.slot] = torch.cat([xy, z], dim=2)
    ids = torch.arange(3 * layout.capacity, device=corners.device).view(1, layout.capacity, 3)
    used = torch.arange(layout.capacity, device=corners.device) < layout.counts[:, None]  # (K, capacity)
    faces = torch.where(used[..., None], ids, torch.full_like(ids, -1))
    return Meshes(verts=verts.flatten(1, 2), faces=faces)


def rasterize_tiles(meshes: Meshes, tile: int) -> tuple[torch.Tensor, torch.Tensor]:
    """K tile meshes in NDC -> (pix_to_face (K, tile, tile, 1) int64 index into the packed faces or -1, barycentric
    coordinates (K, tile, tile, 1, 3)). The nearest face wins; back faces are kept."""
    pix_to_face, _, bary, _ = rasterize_meshes(
        meshes, image_size=tile, blur_radius=0.0, faces_per_pixel=1, bin_size=0, perspective_correct=False
    )
    return pix_to_face, bary


def untile(values: torch.Tensor, layout: TileLayout, batch: int, size: int) -> torch.Tensor:
    """values (K, t, t, D) of the tiles of `layout` -> (batch, D, size, size) images, 0 in the other tiles."""
    tile, n, depth = layout.tile, layout.n, values.shape[-1]
    canvas = values.new_zeros(batch * n * n, tile, tile, depth)
    canvas[layout.tiles] = values
    grid = canvas.view(batch, n, n, tile, tile, depth).permute(0, 5, 1, 3, 2, 4)
    return grid.reshape(batch, depth, n * tile, n * tile)[:, :, :size, :size]


def rasterize_attributes(
    vertices: torch.Tensor, triangles: torch.Tensor, attributes: torch.Tensor, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rasterise B meshes and interpolate per-vertex attributes over them.

    vertices (B, V, 3) crop pixels (z away from the camera), triangles (F, 3) int64, attributes (B, V, D) ->
    (values (B, D, size, size), 0 off the mesh; covered (B, size, size) bool).
    """
    batch, tile = vertices.shape[0], tile_size(size)
    corners = vertices[:, triangles]  # (B, F, 3, 3)
    layout = tile_layout(corners[..., :2], size, tile)
    if len(layout.pairs) == 0:
        empty = attributes.new_zeros(batch, attributes.shape[-1] + 1, size, size)
        return empty[:, :-1], empty[:, -1] > 0
    pix_to_face, bary = rasterize_tiles(tile_meshes(corners, layout), tile)
    face_attributes = attributes[layout.pairs[:, :1], triangles[layout.pairs[:, 3]]]  # (M, 3, D), packed order
    values = interpolate_face_attributes(pix_to_face, bary.to(attributes.dtype), face_attributes)[..., 0, :]
    covered = (pix_to_face[..., :1] >= 0).to(attributes.dtype)
    images = untile(torch.cat([values, covered], dim=-1), layout, batch, size)
    return images[:, :-1], images[:, -1] > 0.5


def squared_segment_distances(points: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
    """points (P, 2), segments starts, ends (B, K, 2) -> (B, P) squared distance from each point to the nearest
    segment."""
    direction = ends - starts  # (B, K, 2)
    offset = points[None, :, None, :] - starts[:, None]  # (B, P, K, 2)
    length2 = (direction * direction).sum(-1).clamp_min(1e-12)[:, None]  # (B, 1, K)
    along = ((offset * direction[:, None]).sum(-1) / length2).clamp(0, 1)  # (B, P, K)
    gap = offset - along[..., None] * direction[:, None]
    return (gap * gap).sum(-1).amin(dim=-1)


def pupil_disc(points: torch.Tensor, centre: int, ring: tuple[int, ...], fraction: float,
               minimum: float) -> tuple[torch.Tensor, torch.Tensor]:
    """points (B, P, 3) crop pixels -> (the iris centre point's x, y (B, 2); radius (B,): `fraction` of the mean
    image distance from the centre to its ring points, at least `minimum`)."""
    middle = points[:, centre, :2]
    radius = (points[:, list(ring), :2] - middle[:, None]).norm(dim=-1).mean(dim=-1)
    return middle, (fraction * radius).clamp_min(minimum)


def contour_segments(points: torch.Tensor, contour: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """points (B, P, 3) crop pixels, a closed contour of K point ids -> (starts, ends) (B, K, 2) of its edges."""
    loop = list(contour)
    return points[:, loop, :2], points[:, loop[1:] + loop[:1], :2]


def pixel_window(low: torch.Tensor, high: torch.Tensor, size: int) -> tuple[slice, slice, torch.Tensor]:
    """Corners low, high (2,) x, y crop pixels -> (rows, columns) slices of the crop's pixels whose centres lie in
    the box, and their centres (P, 2) x, y, row-major (P = 0 when the box misses the crop)."""
    x0, y0 = low.ceil().clamp(0, size).long().tolist()
    x1, y1 = high.floor().add(1).clamp(0, size).long().tolist()
    x1, y1 = max(x0, x1), max(y0, y1)
    ys, xs = torch.meshgrid(torch.arange(y0, y1, device=low.device), torch.arange(x0, x1, device=low.device),
                            indexing="ij")
    return slice(y0, y1), slice(x0, x1), torch.stack([xs, ys], dim=-1).reshape(-1, 2).to(low.dtype)


def draw_eye(mask: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor, half_width: float,
             pupil: tuple[torch.Tensor, torch.Tensor] | None) -> None:
    """Set in mask (B, S, S) bool the pixels within half_width of the contour edges starts, ends (B, K, 2) or inside
    the pupil disc (centre (B, 2), radius (B,)), if any. Only the window around this eye across the batch is
    evaluated."""
    reach, extent = [starts.reshape(-1, 2) - half_width], [starts.reshape(-1, 2) + half_width]
    if pupil is not None:
        reach.append(pupil[0] - pupil[1][:, None])
        extent.append(pupil[0] + pupil[1][:, None])
    rows, columns, grid = pixel_window(torch.cat(reach).amin(dim=0), torch.cat(extent).amax(dim=0), mask.shape[-1])
    if len(grid) == 0:
        return
    on = squared_segment_distances(grid, starts, ends) <= half_width**2
    if pupil is not None:
        offset = grid[None] - pupil[0][:, None]  # (B, P, 2)
        on = on | ((offset * offset).sum(-1) <= (pupil[1] ** 2)[:, None])
    window = mask[:, rows, columns]
    mask[:, rows, columns] = window | on.view(window.shape)


def eyes_mask(points: torch.Tensor, topology: ConditioningTopology, config: ConditioningConfig) -> torch.Tensor:
    """points (B, P, 3) the topology's landmark points in crop pixels -> (B, size, size) bool: pixel centres within
    half the line width of an eye contour, or inside a pupil disc (radius at least that half width)."""
    half_width = max(config.eye_thickness * config.size / REFERENCE_SIZE, MIN_EYE_LINE) / 2
    mask = torch.zeros(points.shape[0], config.size, config.size, dtype=torch.bool, device=points.device)
    for eye, contour in enumerate(topology.eye_contours):
        starts, ends = contour_segments(points, contour)
        pupil = (pupil_disc(points, *topology.pupils[eye], config.pupil_radius, half_width) if topology.pupils
                 else None)
        draw_eye(mask, starts, ends, half_width, pupil)
    return mask


def unit_vectors(vectors: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> the vectors scaled to unit length along dim 1 (zero vectors stay zero)."""
    return vectors * torch.rsqrt((vectors * vectors).sum(dim=1, keepdim=True).clamp_min(1e-12))


def finite_vertices(vertices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """vertices (B, V, 3) -> (the vertices with every non-finite mesh collapsed to zeros (no area, renders
    nothing), finite (B,) bool)."""
    finite = torch.isfinite(vertices).flatten(1).all(dim=1)
    return torch.where(finite[:, None, None], vertices, torch.zeros_like(vertices)), finite


class ConditionRenderer(torch.nn.Module):
    """(B, V, 3) crop-pixel vertices of `topology`'s meshes (MediaPipe's when None) -> (B, CONDITION_CHANNELS, size,
    size) conditioning images. No weights; runs on the device of its input (its constants follow it there)."""

    def __init__(self, config: ConditioningConfig = ConditioningConfig(),
                 topology: ConditioningTopology | None = None):
        super().__init__()
        self.config = config
        self.topology = mediapipe_topology() if topology is None else topology
        self._constants = tuple(torch.as_tensor(array) for array in (
            self.topology.triangles, nmfc_colours(self.topology.template), self.topology.point_corners,
            self.topology.point_weights))
        self._on_device: dict[torch.device, tuple[torch.Tensor, ...]] = {}

    def constants(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        """(triangles (F, 3) int64, NMFC colours (S, 3) float32, point corners (P, 3) int64, point weights (P, 3)
        float32) on `device`."""
        if device not in self._on_device:
            self._on_device[device] = tuple(constant.to(device) for constant in self._constants)
        return self._on_device[device]

    def points(self, vertices: torch.Tensor) -> torch.Tensor:
        """vertices (B, V, 3) -> (B, P, 3) the topology's landmark points (eye contours, lips, irises)."""
        _, _, corners, weights = self.constants(vertices.device)
        every = torch.arange(len(corners), device=vertices.device)
        return barycentric_landmarks(vertices, corners, every, weights.to(vertices.dtype))

    def lips(self, vertices: torch.Tensor) -> torch.Tensor:
        """vertices (B, V, 3) -> (B, K, 2) image x, y of the topology's outer lip points."""
        return self.points(vertices)[:, list(self.topology.outer_lips), :2]

    def forward(self, vertices: torch.Tensor) -> torch.Tensor:
        """(B, V, 3) crop-pixel vertices -> (B, 7, size, size) float32 in [-1, 1]: channels 0-2 NMFC colour, 3-5
        unit surface normal (x, y, z in crop axes), 6 eyes (+1 on contours and pupils); -1 off the face, and
        everywhere for a mesh with a non-finite coordinate. Not differentiable (the vertices are detached)."""
        vertices, finite = finite_vertices(vertices.detach().float())
        triangles, colours, _, _ = self.constants(vertices.device)
        face = vertices[:, :len(colours)]
        attributes = torch.cat([colours.expand(len(face), -1, -1), vertex_normals(face, triangles)], dim=2)
        values, covered = rasterize_attributes(face, triangles, attributes, self.config.size)
        covered = covered & finite[:, None, None]
        nmfc = values[:, :3] * 2 - 1
        normals = unit_vectors(values[:, 3:])
        eyes = eyes_mask(self.points(vertices), self.topology, self.config)[:, None].float() * 2 - 1
        images = torch.cat([nmfc, normals, eyes], dim=1)
        return torch.where(covered[:, None], images, torch.full_like(images, -1.0))
