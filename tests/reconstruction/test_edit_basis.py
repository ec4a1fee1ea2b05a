"""The displacement basis an edit uses: rigid skull motion removed, lip gap held, smoothing keeps broad motion."""

import numpy as np

import pytest

from ned_outlier.reconstruction.au_model import load_au_model
from ned_outlier.config import repo_path
from ned_outlier.errors import UserError
from ned_outlier.pipeline import load_edit_config
from ned_outlier.reconstruction.edit_basis import (
    EditBasisConfig, EditGeometry, anchor_mouth, border_weights, corner_pull_basis, mirror_vertices, region_masks,
    region_weights, remove_skull_motion, similarity_tangent, smoothing_edges, symmetrise, umbrella_smooth,
)
from ned_outlier.reconstruction.fit import FLIP
from ned_outlier.reconstruction.mediapipe_au import MOUTH_AUS, mediapipe_au_model
from ned_outlier.reconstruction.topology import (
    INNER_LIP_PAIRS, LIP_CORNERS, LIP_MIDLINE, LOWER_BROWS, LOWER_EYELIDS, LOWER_LID_LINES, LOWER_LIP_EDGE,
    OUTER_LIPS, SUBNASALE, UPPER_INNER_LIP, UPPER_LID_LINES, face_oval, lip_gap_weights, mesh_edges,
)


def test_a_small_rigid_motion_is_removed_entirely():
    model, _ = mediapipe_au_model()
    coefficients = np.array([1.0, -2.0, 0.5, 0.01, -0.02, 0.015, 0.03])  # translation, rotation, scale
    rigid = (similarity_tangent(model.mean) @ coefficients).reshape(-1, 3)
    np.testing.assert_allclose(remove_skull_motion(rigid, model.mean), 0.0, atol=1e-9)


def test_a_horizontal_stretch_of_the_skull_is_removed_only_when_asked():
    model, _ = mediapipe_au_model()
    x = model.mean[:, 0]
    stretch = np.zeros_like(model.mean)
    stretch[:, 0] = 0.05 * (x - x.mean()) + 1.0  # 5 % wider, shifted by 1 unit
    np.testing.assert_allclose(remove_skull_motion(stretch, model.mean, stretch=True), 0.0, atol=1e-9)
    # a similarity cannot widen without also heightening: part of the stretch is left
    assert np.abs(remove_skull_motion(stretch, model.mean)).max() > 1.0
    assert similarity_tangent(model.mean, stretch=True).shape == (3 * len(model.mean), 8)
    with pytest.raises(UserError, match="skull_stretch: unknown action unit 'AU99'"):
        EditGeometry(load_au_model(), MOUTH_AUS, EditBasisConfig(skull_stretch=["AU99"]))


def test_mirror_vertices_pair_each_point_with_its_reflection_in_the_midline():
    # midline points at x = 2 (so the reflection is x -> 4 - x), the pairs listed out of order and 0.1 off
    mean = np.array([[2.0, 0, 0], [0.0, 1, 0], [2.0, 1, 0], [3.1, 2, 0], [4.0, 1, 0], [1.0, 2, 0], [2.0, 3, 0]])
    midline = (0, 2, 6)
    np.testing.assert_array_equal(mirror_vertices(mean, midline), [0, 4, 2, 5, 1, 3, 6])


def test_symmetrise_averages_each_move_with_its_mirror_images_and_keeps_a_symmetric_field():
    mirror = np.array([1, 0, 2])  # vertices 0 and 1 mirror each other; 2 is on the midline
    moves = np.array([[1.0, 2.0, 0.0], [3.0, 0.0, 1.0], [0.5, 1.0, 0.0]])
    # v0: ((1 - 3) / 2, (2 + 0) / 2, (0 + 1) / 2); v1 its mirror; v2 loses its sideways move
    expected = np.array([[-1.0, 1.0, 0.5], [1.0, 1.0, 0.5], [0.0, 1.0, 0.0]])
    np.testing.assert_allclose(symmetrise(moves, mirror), expected)
    np.testing.assert_allclose(symmetrise(expected, mirror), expected)


def test_the_default_basis_is_symmetric_and_au09_no_longer_spreads_the_eyes():
    """The PLS AU09 moved the eye corners apart (outer ones 7.2 units per unit, inner 4.9) and its halves differed by
    up to 47 % of a vector's norm (SynthMEAD's frozen config, which keeps that basis); with the skull's stretch
    removed and the halves averaged, each AU's left half mirrors its right and AU09's corners stay within 3 units."""
    model = load_au_model()
    mirror = mirror_vertices(model.mean)
    np.testing.assert_array_equal(mirror[mirror], np.arange(len(mirror)))
    assert (mirror[[33, 133, 61, 468]] == [263, 362, 291, 473]).all() and mirror[1] == 1

    def asymmetry_and_au09_spread(config):
        basis = EditGeometry(model, MOUTH_AUS, load_edit_config(config).edit_basis).basis
        reflected = basis[:, mirror] * [-1.0, 1.0, 1.0]
        asymmetry = np.linalg.norm(basis - reflected, axis=(1, 2)) / 2 / np.linalg.norm(basis, axis=(1, 2))
        au09 = basis[model.au_names.index("AU09")]
        return asymmetry.max(), au09[263, 0] - au09[33, 0], au09[362, 0] - au09[133, 0]

    asymmetry, outer, inner = asymmetry_and_au09_spread(None)
    assert asymmetry < 0.02 and abs(outer) < 3.0 and abs(inner) < 3.0
    asymmetry, outer, inner = asymmetry_and_au09_spread(repo_path("configs/ned/synthmead_edit.yaml"))
    assert asymmetry > 0.3 and outer > 6.0 and inner > 4.0


def test_umbrella_smoothing_keeps_a_constant_field():
    field = np.tile([1.0, 2.0, 3.0], (478, 1))
    np.testing.assert_allclose(umbrella_smooth(field, mesh_edges(), 5, 0.5), field)


def gap_effects(geometry):
    return np.tensordot(geometry.basis, lip_gap_weights(), axes=([1, 2], [0, 1]))


def test_holding_the_lip_gap_cancels_each_expression_aus_gap_change_by_that_fraction():
    model = load_au_model()
    free = gap_effects(EditGeometry(model, MOUTH_AUS, EditBasisConfig(hold_lip_gap=0.0)))
    held = gap_effects(EditGeometry(model, MOUTH_AUS, EditBasisConfig(hold_lip_gap=1.0)))
    half = gap_effects(EditGeometry(model, MOUTH_AUS, EditBasisConfig(hold_lip_gap=0.5)))
    for name, f, h, m in zip(model.au_names, free, held, half):
        if name not in MOUTH_AUS:
            assert abs(h) < 1e-9, name
            assert m == pytest.approx(0.5 * f, abs=1e-9), name
    assert free[model.au_names.index("AU06")] > 1.0  # a cheek raise parts the lips; removing a grin closes them
    assert held[model.au_names.index("AU26")] > 5  # the jaw still opens the mouth


def test_expression_aus_leave_the_face_outline_and_chin_still():
    model = load_au_model()
    geometry = EditGeometry(model, MOUTH_AUS)
    jaw = model.au_names.index("AU26")
    outline = face_oval()
    for k, name in enumerate(model.au_names):
        if k != jaw:
            np.testing.assert_allclose(geometry.basis[k, outline], 0.0, atol=1e-12, err_msg=name)
    assert np.abs(geometry.basis[jaw, 152]).max() > 5  # the jaw drop moves the chin
    np.testing.assert_allclose(border_weights(model.mean, 0.0), 1.0)


def test_border_weights_rise_from_the_outline_to_one_a_band_inside():
    square = np.array([[0, 0, 0], [10, 0, 0], [10, 10, 0], [0, 10, 0]], dtype=float)
    mean = np.zeros((468, 3))
    mean[face_oval()] = square[np.arange(len(face_oval())) % 4]  # an outline tracing the square's corners
    mean[0] = [5, 5, 0]  # 5 from every side
    mean[1] = [1, 5, 0]  # 1 from the left side
    weights = border_weights(mean, band=0.2)  # band 2 units: width 10
    x = 0.5
    assert weights[1] == pytest.approx(3 * x**2 - 2 * x**3)
    assert weights[0] == 1.0


def test_a_closing_change_closes_at_most_its_share_of_the_source_opening():
    model = load_au_model()
    geometry = EditGeometry(model, MOUTH_AUS)
    delta = np.zeros(20)
    delta[model.au_names.index("AU06")] = -2.0  # closes the lips by 2 * AU06's opening
    closing = -float(delta @ geometry.opens)
    assert closing > 2.0
    gap = lip_gap_weights()
    wide = 2 * closing / geometry.max_lip_closing  # room enough: the whole closing
    narrow = 0.5 * closing / geometry.max_lip_closing  # room for half of it
    for source_gap, expected in [(wide, -closing), (narrow, -0.5 * closing)]:
        move = geometry.displacement(delta, np.eye(3), 1.0, source_gap=source_gap) @ FLIP  # FLIP undoes FLIP
        assert np.sum(move * gap) == pytest.approx(expected)


def test_displacement_is_in_frame_pixels_under_the_pose():
    model, _ = mediapipe_au_model()
    geometry = EditGeometry(model, MOUTH_AUS)
    delta = np.zeros(20)
    delta[model.au_names.index("AU12")] = 1.0
    frontal = geometry.displacement(delta, np.eye(3), scale=2.0)
    np.testing.assert_allclose(frontal, 2.0 * geometry.basis[model.au_names.index("AU12")] @ FLIP.T)
    corner = 61  # the mouth corner rises in the image for a smile: y goes down the image, so dy < 0
    assert frontal[corner, 1] < -1.0


def test_expression_aus_part_the_lips_only_when_allowed_and_the_jaw_always_does():
    model = load_au_model()
    delta = np.zeros(20)
    delta[model.au_names.index("AU06")] = 1.0  # a cheek raise parts the lips in the raw model
    gap = lip_gap_weights()
    opening = lambda geometry, d: float(np.sum(geometry.model_displacement(d) * gap))  # noqa: E731
    closed = EditGeometry(model, MOUTH_AUS)
    free = EditGeometry(model, MOUTH_AUS, EditBasisConfig(open_lips=True))
    assert opening(closed, delta) == pytest.approx(0.0, abs=1e-9)
    assert opening(free, delta) == pytest.approx(float(delta @ free.opens)) and opening(free, delta) > 1.0
    assert opening(closed, -delta) == pytest.approx(-float(delta @ closed.opens))  # closing is kept
    jaw = np.zeros(20)
    jaw[model.au_names.index("AU26")] = 1.0
    assert opening(closed, jaw) > 5.0


def levels_mesh() -> np.ndarray:
    """A 478-vertex mesh at y = 0 but for the landmarks the regions are defined by: the brows' lower edge at y 12 and
    the upper lids at y 4 (each a flat line from x -10 to 10, the brow's outer tail drooping to y 8 and the lid's
    to 2 at x -10), lower lids at 0, subnasale at -10, upper inner lip at -20, lower lip edge at -30."""
    mean = np.zeros((478, 3))
    for lines, height, droop in ((UPPER_LID_LINES, 4.0, 2.0), (LOWER_BROWS, 12.0, 8.0)):
        line = [v for one in lines for v in one]
        mean[line, 0] = np.linspace(-10.0, 10.0, len(line))
        mean[line, 1] = height
        mean[line[0], 1] = droop
    mean[list(LOWER_EYELIDS), 1] = 0.0
    mean[SUBNASALE, 1] = -10.0
    mean[UPPER_INNER_LIP, 1] = -20.0
    mean[LOWER_LIP_EDGE, 1] = -30.0
    return mean


def test_region_weights_follow_a_smoothstep_between_their_landmark_heights():
    mean = levels_mesh()
    probe = 400  # a free vertex moved to the heights tested
    for y, upper in [(5.0, 1.0), (0.0, 1.0), (-5.0, 0.5), (-7.5, 0.15625), (-10.0, 0.0), (-40.0, 0.0)]:
        mean[probe, 1] = y
        assert region_weights(mean, "upper")[probe] == pytest.approx(upper)
        assert region_weights(mean, "lower")[probe] == pytest.approx(1.0 - upper)
    mean[probe, 1] = -22.5  # 3/4 of the way up from the lower lip's edge to the upper inner lip
    assert region_weights(mean, "above_mouth")[probe] == pytest.approx(0.84375)
    # brows: 0 up to the upper lid, 1 from the brows' lower edge, read at the probe's x; eyes: upper minus brows
    for x, y, brows in [(0.0, -5.0, 0.0), (0.0, 4.0, 0.0), (0.0, 6.0, 0.15625), (0.0, 8.0, 0.5), (0.0, 12.0, 1.0),
                        (0.0, 30.0, 1.0), (-10.0, 5.0, 0.5), (-20.0, 8.0, 1.0)]:  # at the droop, and beyond it
        mean[probe, :2] = x, y
        assert region_weights(mean, "brows")[probe] == pytest.approx(brows)
        assert region_weights(mean, "eyes")[probe] == pytest.approx(region_weights(mean, "upper")[probe] * (1 - brows))
    mean[probe, :2] = 0.0, -5.0  # below the lower lids the eyes fade out as the upper face does
    assert region_weights(mean, "eyes")[probe] == pytest.approx(0.5)
    with pytest.raises(UserError, match="unknown region 'nose'"):
        region_weights(mean, "nose")


def test_region_masks_confine_listed_aus_and_reject_unknown_or_twice_listed_ones():
    mean = levels_mesh()
    names = ("AU01", "AU12", "AU26")
    masks = region_masks(names, mean, {"upper": ["AU01"], "lower": ["AU12"]})
    np.testing.assert_allclose(masks[0], region_weights(mean, "upper"))
    np.testing.assert_allclose(masks[1], region_weights(mean, "lower"))
    np.testing.assert_allclose(masks[2], 1.0)  # listed nowhere: the whole face
    with pytest.raises(UserError, match="unknown action unit 'AU99'"):
        region_masks(names, mean, {"upper": ["AU99"]})
    with pytest.raises(UserError, match="AU01 is listed in two regions"):
        region_masks(names, mean, {"upper": ["AU01"], "lower": ["AU01"]})


def test_confined_aus_no_longer_move_the_other_half_of_the_face():
    model = load_au_model()
    regions = {"upper": ["AU01"], "lower": ["AU15"]}
    free = EditGeometry(model, MOUTH_AUS)
    confined = EditGeometry(model, MOUTH_AUS, EditBasisConfig(regions=regions))
    brow, lips = model.au_names.index("AU01"), list(OUTER_LIPS)
    assert np.abs(free.basis[brow, lips, 1]).max() > 2.0  # the PLS fit's inner-brow raise slides the mouth down
    np.testing.assert_allclose(confined.basis[brow, lips], 0.0, atol=0.01)  # (smoothing spreads a trace)
    inner_brows = [107, 336]
    np.testing.assert_allclose(confined.basis[brow, inner_brows], free.basis[brow, inner_brows], atol=0.2)
    frown = model.au_names.index("AU15")
    np.testing.assert_allclose(confined.basis[frown, inner_brows], 0.0, atol=0.01)


def test_brow_aus_leave_the_lid_margins_and_lid_aus_the_brows():
    """The PLS fit's AU01 drops the lower lids, and its AU05 lifts the brows more than the upper lids and drops the
    lower lids too; confined to "brows" and "upper_lids", AU01 moves the brows and AU05 only the upper lids."""
    model = load_au_model()
    regions = {"brows": ["AU01", "AU02", "AU04"], "eyes": ["AU07", "AU43"], "upper_lids": ["AU05"]}
    free = EditGeometry(model, MOUTH_AUS)
    confined = EditGeometry(model, MOUTH_AUS, EditBasisConfig(regions=regions))
    inner_brow, lower_lids, upper_lids = model.au_names.index("AU01"), list(LOWER_EYELIDS), [159, 386]
    lid_raiser, brows = model.au_names.index("AU05"), [v for brow in LOWER_BROWS for v in brow]
    assert np.abs(free.basis[inner_brow, lower_lids, 1]).max() > 1.0
    assert np.abs(confined.basis[inner_brow, lower_lids, 1]).max() < 0.1
    assert confined.basis[inner_brow, brows, 1].mean() > 0.8 * free.basis[inner_brow, brows, 1].mean() > 0  # y up
    free_brows = free.basis[lid_raiser, brows, 1].mean()
    assert free_brows > free.basis[lid_raiser, upper_lids, 1].mean() > 0
    # (what is left is the skull motion removal's share: the eye corners are skull points, and the lid AUs move them)
    confined_brows = np.abs(confined.basis[lid_raiser, brows, 1]).mean()
    assert confined_brows < 0.5 * confined.basis[lid_raiser, upper_lids, 1].mean()
    assert confined_brows < 0.25 * free_brows
    assert free.basis[lid_raiser, lower_lids, 1].mean() < -0.2  # y up: the raw AU05 drops the lower lids
    lower_moves = np.abs(confined.basis[lid_raiser, lower_lids, 1])
    assert lower_moves.max() < 0.1 * confined.basis[lid_raiser, upper_lids, 1].min()


def test_the_upper_lid_region_is_the_eye_region_above_the_lower_lids():
    mean = load_au_model().mean
    upper_lids, eyes = region_weights(mean, "upper_lids"), region_weights(mean, "eyes")
    np.testing.assert_allclose(upper_lids[[159, 386]], eyes[[159, 386]])  # the middle of each upper lid
    np.testing.assert_allclose(upper_lids[[145, 374, 33, 133, 263, 362]], 0.0)  # lower lids and eye corners
    assert (upper_lids <= eyes + 1e-12).all()


def test_anchoring_removes_the_lips_midline_shift_on_the_lips_and_keeps_it_far_away():
    model = load_au_model()
    shift = np.array([1.0, -4.0, 0.5])
    field = np.tile(shift, (478, 1))
    field[LIP_MIDLINE[0]] += [0.0, 2.0, 0.0]  # a change of shape on the midline: its mean (0.5 up) goes too
    anchored = anchor_mouth(field[None], model.mean, reach=0.1)[0]
    np.testing.assert_allclose(anchored[list(LIP_MIDLINE)].mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(anchored[LIP_CORNERS[0]], -np.array([0.0, 0.5, 0.0]), atol=1e-12)  # inside the lips
    forehead = 10
    np.testing.assert_allclose(anchored[forehead], shift)


def test_corner_pulls_move_each_corner_outward_and_up_with_a_gaussian_falloff():
    mean = np.zeros((478, 3))
    oval = face_oval()
    mean[oval, 0] = np.where(np.arange(len(oval)) % 2, -50.0, 50.0)  # an outline 100 wide: sigma 0.1 * 100 = 10
    mean[oval, 1] = 100.0
    mean[LIP_CORNERS[0], 0], mean[LIP_CORNERS[1], 0] = -10.0, 10.0
    pulls = corner_pull_basis(("AU12", "AU15"), mean, {"AU12": [1.0, 2.0]}, reach=0.1)
    other = np.exp(-2.0)  # the other corner is 20 = 2 sigma away
    np.testing.assert_allclose(pulls[0, LIP_CORNERS[0]], [-1.0 + other, 2.0 * (1 + other), 0.0])
    np.testing.assert_allclose(pulls[0, LIP_CORNERS[1]], [1.0 - other, 2.0 * (1 + other), 0.0])
    np.testing.assert_allclose(pulls[0, 0], [0.0, 4.0 * np.exp(-0.5), 0.0])  # midway: 1 sigma from both
    np.testing.assert_allclose(pulls[1], 0.0)
    with pytest.raises(UserError, match="expected \\[outward, up\\]"):
        corner_pull_basis(("AU12",), mean, {"AU12": [1.0]}, reach=0.1)


def test_smoothing_keeps_the_inner_lips_edges_but_none_across_the_mouth():
    edges = set(map(tuple, smoothing_edges().tolist()))
    upper = {u for u, _ in INNER_LIP_PAIRS}
    lower = {lo for _, lo in INNER_LIP_PAIRS}
    assert not any((a in upper and b in lower) or (a in lower and b in upper) for a, b in edges)
    assert (78, 191) in edges and (14, 87) in edges  # along the ring
    assert any(a in upper and b not in upper | lower for a, b in edges)  # to the lips around the ring


def test_smoothing_keeps_each_lid_contour_but_no_edge_across_an_eye():
    edges = set(map(tuple, smoothing_edges().tolist()))
    all_edges = set(map(tuple, mesh_edges().tolist()))
    for lower, upper in zip(LOWER_LID_LINES, UPPER_LID_LINES):
        lower_only, upper_only = set(lower[1:-1]), set(upper[1:-1])  # the corners belong to both
        across = {(a, b) for a, b in all_edges if {a, b} & lower_only and {a, b} & upper_only}
        assert across and not across & edges  # the tessellation bridges each eye; smoothing does not
        assert across <= set(map(tuple, smoothing_edges(across_eyes=True).tolist()))  # the earlier smoothing did
        assert all((a, b) in edges or (b, a) in edges for a, b in zip(upper[:-1], upper[1:]))  # along the lid


def test_closing_an_expression_opening_meets_the_lips_in_the_middle():
    model = load_au_model()
    geometry = EditGeometry(model, MOUTH_AUS)
    assert float(np.sum(geometry.lip_opener * lip_gap_weights())) == pytest.approx(1.0)
    np.testing.assert_allclose(geometry.lip_opener[list(LIP_MIDLINE)].mean(axis=0), 0.0, atol=1e-9)
