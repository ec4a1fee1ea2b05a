"""MTCNN on real media: one astronaut, five people in a group photo, none in a cartoon."""

import cv2
import numpy as np
import pytest
import skimage.data

from ned_outlier.assets import asset_path
from ned_outlier.face.detector import DetectorConfig, small_face_hint
from ned_outlier.face.tracker import box_iou


def test_astronaut_has_exactly_one_face_with_landmarks_inside_it(detector):
    (faces,) = detector.detect([skimage.data.astronaut()])
    assert len(faces) == 1 and faces.scores[0] >= 0.9
    assert faces.boxes.dtype == np.float32 and faces.landmarks.shape == (1, 5, 2)
    x0, y0, x1, y1 = faces.boxes[0]
    assert 60 < x1 - x0 < 150 and 60 < y1 - y0 < 150  # her face is about 90 x 110 pixels
    (left_eye, right_eye, nose, mouth_left, mouth_right) = faces.landmarks[0]
    assert (x0 < faces.landmarks[0, :, 0]).all() and (faces.landmarks[0, :, 0] < x1).all()
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])


def test_downscaled_detection_maps_boxes_back_to_frame_pixels(detector):
    astronaut = skimage.data.astronaut()
    enlarged = cv2.resize(astronaut, (1280, 1280), interpolation=cv2.INTER_CUBIC)  # detected at 640 x 640
    (native,), (large,) = detector.detect([astronaut]), detector.detect([enlarged])
    assert box_iou(native.boxes, large.boxes / 2.5)[0, 0] > 0.85
    np.testing.assert_allclose(large.landmarks / 2.5, native.landmarks, atol=4.0)


def test_group_photo_has_five_faces(detector):
    photo = cv2.cvtColor(cv2.imread(str(asset_path("multi_face_image"))), cv2.COLOR_BGR2RGB)
    (faces,) = detector.detect([photo])
    assert len(faces) == 5
    assert (faces.scores >= 0.9).all()


def test_cartoon_without_a_face_has_no_detections(detector, video_frames):
    detections = detector.detect(video_frames("no_face_video", 30))
    assert len(detections) == 30
    assert all(len(faces) == 0 and faces.boxes.shape == (0, 4) for faces in detections)


def test_batches_mixed_sizes_and_matches_one_by_one(detector):
    astronaut = skimage.data.astronaut()
    small = np.ascontiguousarray(astronaut[::2, ::2])
    batch = detector.detect([astronaut, astronaut, small, astronaut])
    (alone,) = detector.detect([astronaut])
    assert [len(faces) for faces in batch] == [1, 1, 1, 1]
    np.testing.assert_allclose(batch[3].boxes, alone.boxes, atol=0.05)
    assert detector.detect([]) == []


def test_frame_smaller_than_the_smallest_face_has_no_detections(detector):
    (faces,) = detector.detect([np.zeros((50, 60, 3), np.uint8)])
    assert len(faces) == 0


def test_small_frames_get_a_hint_at_the_minimum_face_size():
    config = DetectorConfig()  # min_face_size 80, max_side 640
    hint = small_face_hint(config, 64, 64)
    assert "detector.min_face_size 80 px, is larger than these 64x64 frames" in hint and "e.g. 32" in hint
    assert "faces under about 40 px are not found" in small_face_hint(config, 200, 150)
    assert "faces under about 160 px" in small_face_hint(config, 2560, 480)  # seen at 640x120 by the detector
    assert small_face_hint(config, 640, 360) == small_face_hint(config, 1920, 1080) == ""
    assert small_face_hint(config, 0, 0) == ""  # a video without frames


def test_rejects_frames_that_are_not_rgb_uint8(detector):
    with pytest.raises(ValueError, match="RGB uint8"):
        detector.detect([np.zeros((32, 32), np.uint8)])


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="min_score"):
        DetectorConfig(min_score=1.5)
