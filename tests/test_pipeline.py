"""The editing pipeline: per-frame factors smooth in time and never above what a frame allows; hands kept."""

import dataclasses

import cv2
import numpy as np

from ned_outlier.compose.blend import hull_mask
from ned_outlier.io.video import EncoderConfig
from ned_outlier.pipeline import EditConfig, FrameEditor, load_edit_config, smooth_limits, target_codes
from ned_outlier.reconstruction.au_model import load_au_model
from ned_outlier.reconstruction.mediapipe_au import mediapipe_au_model
from ned_outlier.reconstruction.topology import OUTER_LIPS
from ned_outlier.renderer.mouth import MouthConfig
from ned_outlier.renderer.occlusion import OcclusionConfig, hand_mask, present_hands
from tests.factories import face_params


def test_a_one_frame_limit_ramps_in_and_out_and_never_exceeds_the_frame():
    limits = np.ones((21, 2))
    limits[10, 0] = 0.2  # vertex 0 folds on frame 10 only
    smoothed = smooth_limits(limits, np.ones(21, dtype=bool), sigma=2.0)
    assert (smoothed <= limits).all()
    assert smoothed[10, 0] == 0.2
    ramp = smoothed[10:, 0]
    assert (np.diff(ramp) >= 0).all() and ramp[1] < 0.9 and ramp[-1] == 1.0  # radius 4 + 4 frames later: whole
    assert (np.abs(np.diff(smoothed[:, 0])) < 0.5).all()  # no 0.8 step between two frames
    np.testing.assert_array_equal(smoothed[:, 1], 1.0)  # the other vertex is untouched


def test_runs_of_face_frames_are_smoothed_apart_and_sigma_zero_is_the_identity():
    limits = np.ones((12, 1))
    limits[5] = 0.3
    found = np.ones(12, dtype=bool)
    found[6] = False  # the face is lost between frames 5 and 7
    smoothed = smooth_limits(limits, found, sigma=2.0)
    assert smoothed[7:].min() == 1.0  # the next run does not inherit frame 5's limit
    assert smoothed[4] < 1.0
    np.testing.assert_array_equal(smooth_limits(limits, found, sigma=0.0), limits)


def synthetic_clip(hand: bool):
    """One 320x320 textured frame with the AU model's neutral mesh on it (face ~200 px tall), its FaceParams (frontal,
    scale 1, neutral codes) and, with `hand`, a flat hand of 21 landmarks lying over the left cheek."""
    mean = load_au_model().mean * [1.0, -1.0, -1.0]  # model y up -> image y down
    points = mean - mean.min(axis=0) + [70.0, 60.0, 0.0]
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.uniform(0, 255, (320, 320, 3)).astype(np.float32), (0, 0), 1.5)
    frame = np.clip(40 + 4 * (texture - 127), 0, 255).astype(np.uint8)
    _, schema = mediapipe_au_model()
    params = face_params(np.zeros((1, len(schema.expression_names))), np.zeros((1, len(schema.mouth_names))))
    hands = np.full((1, 2, 21, 2), np.nan, np.float32)
    if hand:
        wrist = points[234, :2] + [-40.0, 40.0]  # below and outside the cheek, fingers pointing up and in
        hands[0, 0] = wrist + np.linspace(0.0, 1.0, 21)[:, None] * [70.0, -70.0] + (np.arange(21) % 4)[:, None] * 3
    params = dataclasses.replace(params, video=dataclasses.replace(params.video, width=320, height=320),
                                 landmarks=points[None].astype(np.float32), rotation=np.eye(3)[None],
                                 scale=np.ones(1), hands=hands)
    return frame, params


def test_hand_pixels_are_the_sources_and_the_face_beside_them_still_changes():
    frame, params = synthetic_clip(hand=True)
    config = dataclasses.replace(load_edit_config(), mouth=MouthConfig(enabled=False))
    target = target_codes(config, params, "happy", None, 1.0, "keep")
    edited = FrameEditor(params, target, config).render(0, frame)
    silhouette = hand_mask(present_hands(params.hands[0]), frame.shape[:2], 0.0, 0.0) > 0.5
    assert silhouette.sum() > 500
    np.testing.assert_array_equal(edited[silhouette], frame[silhouette])
    assert (edited != frame).any(axis=2).sum() > 2000  # the smile elsewhere on the face
    ignoring = dataclasses.replace(config, occlusion=OcclusionConfig(enabled=False))
    warped_hand = FrameEditor(params, target, ignoring).render(0, frame)
    assert (warped_hand[silhouette] != frame[silhouette]).any(axis=1).mean() > 0.05  # without it the hand moved


def test_a_hand_flagged_at_the_mouth_but_not_outlined_holds_the_lips_still():
    # MediaPipe Hands found the hand on the frames around this one, not on it: the reconstruction flags the mouth as
    # covered but holds no hand. The pixels around the lips (where that hand is) stay the source's; the eyes change.
    frame, params = synthetic_clip(hand=False)
    params = dataclasses.replace(params, mouth_occluded=np.ones(1, bool))
    config = dataclasses.replace(load_edit_config(), mouth=MouthConfig(enabled=False))
    target = target_codes(config, params, "sad", None, 1.0, "keep")  # brows up and in, lip corners down
    lips = params.landmarks[0, list(OUTER_LIPS), :2]
    around_lips = hull_mask(lips, frame.shape[:2], 0.0) > 0.5
    edited = FrameEditor(params, target, config).render(0, frame)
    np.testing.assert_array_equal(edited[around_lips], frame[around_lips])
    assert (edited != frame).any(axis=2).sum() > 2000  # the brows and lids elsewhere on the face
    unheld = dataclasses.replace(config, occlusion=dataclasses.replace(config.occlusion, unseen_reach=0.0))
    moved = FrameEditor(params, target, unheld).render(0, frame)
    assert (moved[around_lips] != frame[around_lips]).any(axis=1).mean() > 0.05  # without the hold the lips moved


def test_an_edit_is_encoded_finer_than_other_videos_whether_or_not_its_config_says_so():
    shipped, without_section = load_edit_config().encoder, EditConfig().encoder  # an older config: no encoder section
    assert shipped == without_section
    assert shipped.crf < EncoderConfig().crf  # SynthMEAD's clips and the others keep the writer's default
