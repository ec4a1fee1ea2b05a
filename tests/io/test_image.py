"""Photos: read upright whatever their EXIF orientation, as one-frame videos; written once, atomically."""

import numpy as np
import pytest
from PIL import Image

from ned_outlier.errors import UserError
from ned_outlier.io.image import PhotoWriter, read_image
from ned_outlier.io.video import VideoReader


def stored_with_orientation(path, orientation: int, stored: np.ndarray) -> None:
    """`stored` written to `path` with EXIF orientation tag `orientation`."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(path, exif=exif)


@pytest.mark.parametrize("orientation, store", [
    (1, lambda a: a),
    (3, lambda a: np.rot90(a, 2)),      # upside down
    (6, lambda a: np.rot90(a, 1)),      # stored turned 90 degrees counter-clockwise: display turns it clockwise
    (8, lambda a: np.rot90(a, -1)),     # the other way
    (2, lambda a: a[:, ::-1]),          # mirrored
])
def test_every_exif_orientation_reads_upright(tmp_path, orientation, store):
    rng = np.random.default_rng(orientation)
    upright = rng.integers(0, 255, (6, 4, 3), dtype=np.uint8)  # not square: a turn shows in the shape
    path = tmp_path / "photo.png"  # lossless, so the pixels compare exactly
    stored_with_orientation(path, orientation, np.ascontiguousarray(store(upright)))
    assert np.array_equal(read_image(path), upright)
    reader = VideoReader(path)
    assert reader.is_photo and (reader.info.width, reader.info.height, reader.info.frame_count) == (4, 6, 1)
    (frame,) = list(reader)
    assert np.array_equal(frame, upright) and reader.frame_times() is None


def test_grey_and_alpha_photos_become_rgb_and_the_fingerprint_follows_the_pixels(tmp_path):
    Image.fromarray(np.full((5, 5), 100, np.uint8)).save(tmp_path / "grey.png")
    Image.fromarray(np.full((5, 5, 4), 200, np.uint8)).save(tmp_path / "alpha.webp", lossless=True)
    assert np.array_equal(read_image(tmp_path / "grey.png"), np.full((5, 5, 3), 100))
    assert np.array_equal(read_image(tmp_path / "alpha.webp"), np.full((5, 5, 3), 200))
    Image.fromarray(np.full((5, 5), 101, np.uint8)).save(tmp_path / "other.png")
    assert VideoReader(tmp_path / "grey.png").fingerprint() != VideoReader(tmp_path / "other.png").fingerprint()
    with pytest.raises(UserError, match="broken.jpg: not a readable image"):
        (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really")
        read_image(tmp_path / "broken.jpg")


def test_a_photo_writer_writes_its_one_frame_at_the_end_and_nothing_after_an_error(tmp_path):
    frame = np.zeros((4, 6, 3), np.uint8)
    frame[:, :3] = 255
    with PhotoWriter(tmp_path / "out.png") as writer:
        writer.write(frame)
        assert not (tmp_path / "out.png").exists()  # only when the block ends
        with pytest.raises(UserError, match="a photo holds one frame"):
            writer.write(frame)
    assert np.array_equal(read_image(tmp_path / "out.png"), frame)
    with pytest.raises(RuntimeError), PhotoWriter(tmp_path / "failed.png") as writer:
        writer.write(frame)
        raise RuntimeError("the edit failed")
    assert not (tmp_path / "failed.png").exists()
