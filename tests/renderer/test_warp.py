"""The piecewise-affine face warp: its resampling, exactness where nothing moves, translations, no holes or tears,
the fold guard, the eyes, and a smile on a real face."""

import cv2
import numpy as np
import pytest

from ned_outlier.reconstruction.au_model import load_au_model
from ned_outlier.reconstruction.topology import INNER_LIP_PAIRS, face_triangles
from ned_outlier.renderer.mesh import ANCHOR_SCALES, anchor_rings, face_oval, skirted_points, skirted_triangles
from ned_outlier.renderer import warp
from ned_outlier.renderer.warp import (
    folded,
    local_move_scales,
    max_safe_fraction,
    resample,
    signed_areas,
    triangle_affines,
    warp_face,
    warp_triangles,
)

LEFT_EYE = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)  # contour, in order
LEFT_UPPER_LID = (246, 161, 160, 159, 158, 157, 173)
MOUTH_CORNERS = (61, 291)


@pytest.fixture(scope="module")
def synthetic_face():
    """A 320x320 textured image and the AU model's neutral mesh (478, 2) drawn on it, about 200 px tall."""
    mean = load_au_model().mean[:, :2] * [1.0, -1.0]  # model space is y up
    points = mean - mean.min(axis=0) + [70.0, 60.0]
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.uniform(0, 255, (320, 320, 3)).astype(np.float32), (0, 0), 1.5)
    image = np.clip(40 + 4 * (texture - 127), 0, 255).astype(np.uint8)
    return image, points


@pytest.fixture(scope="module")
def pexels_face():
    """The Pexels clip's first frame (360, 640, 3) and MediaPipe's mesh (478, 2) on it, frame pixels."""
    from ned_outlier.assets import asset_path
    from ned_outlier.io.video import VideoReader
    from ned_outlier.reconstruction.mediapipe_mesh import MeshLandmarker

    frame = next(iter(VideoReader(asset_path("pexels_video"))))
    with MeshLandmarker() as mesh:
        points = mesh(frame)
    assert points is not None
    return frame, points[:, :2].astype(np.float64)


def outside_outer_ring(source: np.ndarray, shape: tuple[int, int], margin: int = 2) -> np.ndarray:
    """(H, W) bool: pixels more than `margin` pixels outside the outermost anchor ring of mesh `source`."""
    ring = anchor_rings(source)[-len(face_oval()):]
    inside = np.zeros(shape, dtype=np.uint8)
    cv2.fillPoly(inside, [np.round(ring).astype(np.int32)], 1)
    return cv2.dilate(inside, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)) == 0


def bumps(points: np.ndarray, centres, shift, sigma: float) -> np.ndarray:
    """(N, 2) displacement: `shift` at each centre vertex, fading as a Gaussian of `sigma` pixels around it."""
    weights = sum(np.exp(-((points - points[c]) ** 2).sum(axis=1) / (2 * sigma**2)) for c in centres)
    return weights[:, None] * np.asarray(shift, dtype=np.float64)


def source_positions(source: np.ndarray, target: np.ndarray, shape: tuple[int, int]):
    """Where each pixel of the face warp source -> target samples from: warping an image whose pixels hold their own
    (x, y) returns those positions exactly (bilinear sampling of a linear function). (H, W, 2) and coverage."""
    height, width = shape
    grid = np.stack(np.meshgrid(np.arange(width), np.arange(height)), axis=-1).astype(np.float32)
    src_points, dst_points = skirted_points(source, target)
    return warp_triangles(grid, src_points, dst_points, skirted_triangles(), (0, 0, width, height))


def test_the_tessellation_covers_eyes_and_mouth_and_the_skirt_closes_it():
    """One boundary loop (the 36-vertex face oval): the eyes and the mouth interior are triangles. With the skirt,
    the mesh is consistently wound and its only boundary is the outer anchor ring."""
    oval = face_oval()
    assert len(oval) == 36
    assert not set(LEFT_EYE) & set(oval.tolist())
    assert not {v for pair in INNER_LIP_PAIRS for v in pair} & set(oval.tolist())
    triangles = skirted_triangles()
    assert len(triangles) == len(face_triangles()) + 2 * 36 * len(ANCHOR_SCALES)
    directed = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    edges = set(map(tuple, directed.tolist()))
    assert len(edges) == len(directed)  # no edge traversed twice the same way: consistent winding
    boundary = {a for a, b in edges if (b, a) not in edges}
    outer = 468 + 36 * (len(ANCHOR_SCALES) - 1)
    assert boundary == set(range(outer, outer + 36))


def test_triangle_affines_map_vertices_exactly():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 300, (50, 3, 2))
    dst = src + rng.normal(0, 10, (50, 3, 2))
    affines = triangle_affines(src, dst)
    assert affines.shape == (50, 2, 3)
    mapped = np.einsum("tij,tkj->tki", affines[:, :, :2], src) + affines[:, None, :, 2]
    np.testing.assert_allclose(mapped, dst, atol=1e-9)


def test_a_collapsed_triangle_gets_a_finite_map_along_its_extent():
    src = np.array([[[0.0, 0.0], [10.0, 0.0], [5.0, 1e-9]]])
    dst = np.array([[[0.0, 0.0], [20.0, 0.0], [10.0, 5.0]]])
    affine = triangle_affines(src, dst)[0]
    assert np.isfinite(affine).all() and np.abs(affine).max() < 10
    np.testing.assert_allclose(affine @ [10.0, 0.0, 1.0], [20.0, 5.0 / 3.0], atol=1e-6)  # least squares along x


def test_resampling_at_integer_positions_returns_the_pixels_exactly():
    """Shifted by whole pixels (the first rows past the top edge: replicated), a random image comes back bit-exact."""
    image = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    map_x, map_y = np.meshgrid(np.arange(40, dtype=np.float32) - 3, np.arange(30, dtype=np.float32) - 2)
    out = resample(image, map_x, map_y)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[2:, 3:], image[:-2, :-3])
    np.testing.assert_array_equal(out[:2, 3:], np.repeat(image[:1, :-3], 2, axis=0))


@pytest.mark.parametrize("frequency, tolerance", [(0.2, 0.004), (0.35, 0.012)])
def test_half_pixel_shift_of_a_fine_grating_keeps_its_contrast(frequency, tolerance):
    """cos(2 pi f x) sampled half a pixel on is cos(2 pi f (x + 0.5)): the 2x sinc upsampling gets it to within
    `tolerance` (f = 0.35 cycles per pixel: 0.007), where Lanczos-4 alone is 4x off (0.029), its softening."""
    x = np.arange(200, dtype=np.float32)
    image = np.tile(np.cos(2 * np.pi * frequency * x), (40, 1)).astype(np.float32)
    map_x, map_y = np.meshgrid(x + 0.5, np.arange(40, dtype=np.float32))
    truth = np.cos(2 * np.pi * frequency * (x + 0.5))[30:-30]
    error = np.abs(resample(image, map_x, map_y)[20, 30:-30] - truth).max()
    lanczos = np.abs(cv2.remap(image, map_x, map_y, cv2.INTER_LANCZOS4)[20, 30:-30] - truth).max()
    assert error < tolerance < lanczos


def test_resampling_a_small_region_of_a_large_image_reads_enough_around_it():
    """Maps into the middle of an image give what they give when one more row of the maps spans the whole image
    (so the whole image is upsampled): the region read around them covers the sinc's taps (to a grey level: the
    two boxes' coordinates round differently)."""
    image = np.random.default_rng(1).integers(0, 256, (120, 160), dtype=np.uint8)
    map_x, map_y = np.meshgrid(np.linspace(60.3, 90.7, 25, dtype=np.float32), np.linspace(40.2, 70.9, 20,
                                                                                          dtype=np.float32))
    spanning_x = np.vstack([map_x, np.linspace(0, 159, 25, dtype=np.float32)])
    spanning_y = np.vstack([map_y, np.linspace(0, 119, 25, dtype=np.float32)])
    region, whole = resample(image, map_x, map_y), resample(image, spanning_x, spanning_y)[:-1]
    np.testing.assert_allclose(region.astype(int), whole.astype(int), atol=1)


def test_zero_displacement_returns_the_frame_bit_exactly(synthetic_face):
    image, points = synthetic_face
    out = warp_face(image, points, points)
    np.testing.assert_array_equal(out, image)
    assert out is not image


def test_translation_moves_the_face_interior_and_nothing_outside_the_ring(synthetic_face):
    image, points = synthetic_face
    original = image.copy()
    out = warp_face(image, points, points + [3.0, 2.0])
    np.testing.assert_array_equal(image, original)  # input untouched
    # Well inside the face (around the nose tip, vertex 4) the content moved by exactly (3, 2).
    x, y = np.round(points[4]).astype(int)
    np.testing.assert_array_equal(out[y - 20 : y + 20, x - 20 : x + 20], image[y - 22 : y + 18, x - 23 : x + 17])
    outside = outside_outer_ring(points, image.shape[:2])
    assert outside.mean() > 0.2
    np.testing.assert_array_equal(out[outside], image[outside])
    assert not np.array_equal(out[~outside], image[~outside])


def test_smooth_warp_has_no_holes_and_no_tears(synthetic_face, monkeypatch):
    """A smooth field of up to 5 px: every pixel inside the outer ring is covered, a checkerboard keeps its two
    grey levels' range (no black from holes; bilinear here, as the sinc rings past the range at the squares' edges),
    and the source positions change smoothly between neighbours, across triangle edges included."""
    monkeypatch.setattr(warp, "resample", lambda image, map_x, map_y: cv2.remap(
        image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
    _, points = synthetic_face
    centre = points[:468].mean(axis=0)
    field = 5.0 * np.stack([np.sin((points[:, 1] - centre[1]) / 25.0), np.cos((points[:, 0] - centre[0]) / 30.0)], 1)
    target = points + field
    assert max_safe_fraction(points, target) == 1.0
    shape = (320, 320)
    positions, covered = source_positions(points, target, shape)
    inside_ring = ~outside_outer_ring(points, shape, margin=0)
    inner = cv2.erode(inside_ring.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert covered[inner].all()
    assert np.isfinite(positions).all()
    # Neighbouring output pixels sample source positions about one pixel apart: no jump anywhere.
    steps = np.concatenate([np.abs(np.diff(positions, axis=0)).ravel(), np.abs(np.diff(positions, axis=1)).ravel()])
    assert steps.max() < 2.0, steps.max()
    squares = ((np.indices(shape) // 8).sum(axis=0) % 2).astype(np.uint8)
    checkerboard = np.repeat((60 + 140 * squares)[:, :, None], 3, axis=2).astype(np.uint8)
    out = warp_face(checkerboard, points, target)
    assert out.min() >= 60 and out.max() <= 200
    assert (out != checkerboard).any(axis=2)[inner].mean() > 0.05


def test_fold_guard_scales_the_move_down_until_nothing_folds(synthetic_face):
    image, points = synthetic_face
    target = points.copy()
    target[4] += [45.0, 0.0]  # the nose tip pushed through the cheek
    fraction = max_safe_fraction(points, target)
    assert 0.0 < fraction < 1.0
    triangles = skirted_triangles()

    def folds_at(t: float) -> bool:
        src, dst = skirted_points(points, points + t * (target - points))
        return folded(src[triangles], dst[triangles]).any()

    assert folds_at(1.0) and not folds_at(fraction) and folds_at(fraction + 0.01)
    np.testing.assert_array_equal(
        warp_face(image, points, target), warp_face(image, points, points + fraction * (target - points))
    )


def test_local_fold_limit_lowers_the_move_only_around_the_fold(synthetic_face):
    """A fold at the nose tip scales the nose's move down and leaves a forehead move whole; nothing folds after."""
    _, points = synthetic_face
    target = points.copy()
    target[4] += [45.0, 0.0]  # the nose tip pushed through the cheek
    target[10] += [0.0, -3.0]  # the top of the forehead raised a little, far from the fold
    scales = local_move_scales(points, target)
    assert scales[4] < 0.7
    assert scales[10] == 1.0
    moved = points.copy()
    moved[:468] += scales[:, None] * (target[:468] - points[:468])
    assert max_safe_fraction(points, moved) == 1.0
    np.testing.assert_array_equal(local_move_scales(points, points + 0.5), 1.0)  # a fold-free move is kept whole


def test_fold_guard_lets_triangles_folded_in_the_source_unfold(synthetic_face):
    """A closed mouth whose inner lips overlap by 2 px (as MediaPipe reports) may open: that is no tearing."""
    _, points = synthetic_face
    source = points.copy()
    for upper, lower in INNER_LIP_PAIRS:
        middle = 0.5 * (source[upper, 1] + source[lower, 1])
        source[upper, 1], source[lower, 1] = middle + 1.0, middle - 1.0
    areas = signed_areas(skirted_points(source, source)[0][skirted_triangles()])
    assert (np.sign(areas) != np.sign(areas.sum())).sum() >= 10  # the inner-lip triangles face backwards
    opened = source + bumps(source, [14], (0.0, 8.0), 12.0)  # the lower lip drops
    assert max_safe_fraction(source, opened) == 1.0


def test_eye_interior_moves_with_the_eyelids(synthetic_face):
    """Lifting the upper eyelid by 4 px: every pixel inside the target eye contour samples from inside the source
    eye contour (the eye is not smeared with skin), and the lid itself moved."""
    _, points = synthetic_face
    target = points + bumps(points, LEFT_UPPER_LID, (0.0, -4.0), 3.0).clip(-4.0, 0.0)
    assert np.abs(target[159, 1] - points[159, 1] + 4.0) < 0.5
    positions, _ = source_positions(points, target, (320, 320))
    target_eye, source_eye = (mesh[list(LEFT_EYE)].astype(np.float32) for mesh in (target, points))
    x0, y0, w, h = cv2.boundingRect(target_eye)
    pixels = [(x, y) for y in range(y0, y0 + h) for x in range(x0, x0 + w)]
    inside = [(x, y) for x, y in pixels if cv2.pointPolygonTest(target_eye, (float(x), float(y)), True) > 0.5]
    assert len(inside) > 50
    depths = [cv2.pointPolygonTest(source_eye, tuple(map(float, positions[y, x])), True) for x, y in inside]
    assert min(depths) > -0.5, min(depths)  # inside the source eye, to half a pixel


def test_squashing_an_eye_shut_samples_nothing_from_afar(synthetic_face):
    """The upper lid pulled down onto the lower one squashes the eye's triangles to slivers whose maps magnify
    ~50x; the pixels along them must still sample near where they are: no farther than the largest move + 1 px."""
    _, points = synthetic_face
    opening = points[145, 1] - points[159, 1]
    closing = bumps(points, LEFT_UPPER_LID, (0.0, 1.0), 3.0).clip(0.0, 1.0) * (opening - 0.2)
    target = points + max_safe_fraction(points, points + closing) * closing
    positions, _ = source_positions(points, target, (320, 320))
    pixels = np.stack(np.meshgrid(np.arange(320), np.arange(320)), axis=-1)
    largest_move = np.abs(target - points).max()
    assert largest_move > 8.0
    assert np.linalg.norm(positions - pixels, axis=-1).max() <= largest_move + 1.0


def test_lids_pressed_past_each_other_are_a_closing_not_a_fold(synthetic_face):
    """The lower lid of one eye pushed 3 px above the upper lid (a cheek raise on a squinting eye) crosses only the
    eye slit's triangles: the guard keeps the full move; the same push on the cheek below the eye is scaled down."""
    _, points = synthetic_face
    lower_lid = [145, 144, 153, 163, 7, 154, 155]  # the right eye's lower lid
    opening = points[145, 1] - points[159, 1]
    push = np.zeros_like(points)
    push[lower_lid, 1] = -(opening + 3.0)
    assert max_safe_fraction(points, points + push) == 1.0
    cheek = np.zeros_like(points)
    cheek[[117, 118, 119, 100, 101, 50], 1] = -40.0  # through the lid: a real fold
    assert max_safe_fraction(points, points + cheek) < 1.0


@pytest.mark.slow
def test_real_face_zero_displacement_is_bit_exact(pexels_face):
    frame, points = pexels_face
    np.testing.assert_array_equal(warp_face(frame, points, points), frame)


@pytest.mark.slow
def test_real_face_smile_lifts_the_mouth_corners(pexels_face):
    """Mouth corners lifted 6 px, smoothly over the mouth: a small patch around each corner is found 6 px higher in
    the warped frame, and nothing outside the outer anchor ring changed."""
    frame, points = pexels_face
    target = points + bumps(points, MOUTH_CORNERS, (0.0, -6.0), 25.0)
    assert max_safe_fraction(points, target) == 1.0
    out = warp_face(frame, points, target)
    grey_in, grey_out = (cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) for image in (frame, out))
    for corner in MOUTH_CORNERS:
        x, y = np.round(points[corner]).astype(int)
        template = grey_in[y - 6 : y + 7, x - 6 : x + 7]
        search = grey_out[y - 16 : y + 17, x - 16 : x + 17]
        scores = cv2.matchTemplate(search, template, cv2.TM_CCOEFF_NORMED)
        dy, dx = np.array(np.unravel_index(np.argmax(scores), scores.shape)) - 10
        assert abs(dx) <= 1 and abs(dy + 6) <= 1, (corner, dx, dy)
    outside = outside_outer_ring(points, frame.shape[:2])
    np.testing.assert_array_equal(out[outside], frame[outside])
