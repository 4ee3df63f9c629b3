"""load_image: strict decoding (a truncated JPEG is an error, not a grey half), EXIF orientation,
gray / palette / RGBA / 16-bit files, and the pixel bound the browser demo uses."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from denseclip.utils.image import load_image


def picture(h: int = 40, w: int = 60) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_png_round_trip_and_arrays(tmp_path):
    rgb = picture()
    Image.fromarray(rgb).save(tmp_path / 'a.png')
    assert np.array_equal(load_image(tmp_path / 'a.png'), rgb)
    assert np.array_equal(load_image(rgb), rgb)
    rgba = np.concatenate([rgb, np.full((40, 60, 1), 7, np.uint8)], axis=2)
    Image.fromarray(rgba).save(tmp_path / 'rgba.png')
    assert np.array_equal(load_image(tmp_path / 'rgba.png'), rgb)  # alpha dropped
    Image.fromarray(rgb[:, :, 0]).save(tmp_path / 'gray.png')
    assert np.array_equal(load_image(tmp_path / 'gray.png'), np.repeat(rgb[:, :, :1], 3, 2))
    Image.fromarray(rgb).convert('P').save(tmp_path / 'palette.png')
    palette = Image.open(tmp_path / 'palette.png').convert('RGB')
    assert np.array_equal(load_image(tmp_path / 'palette.png'), np.asarray(palette))


def test_16_bit_png_scales_to_8_bits(tmp_path):
    values = np.array([[0, 257, 65535, 32896]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / 'deep.png')
    got = load_image(tmp_path / 'deep.png')
    assert got.shape == (1, 4, 3) and got[0, :, 0].tolist() == [0, 1, 255, 128]


def test_truncated_jpeg_is_refused(tmp_path):
    Image.fromarray(picture()).save(tmp_path / 'full.jpg', quality=90)
    data = (tmp_path / 'full.jpg').read_bytes()
    (tmp_path / 'cut.jpg').write_bytes(data[:len(data) // 2])
    assert load_image(tmp_path / 'full.jpg').shape == (40, 60, 3)
    with pytest.raises(ValueError, match=r'cut\.jpg: the image data is truncated or corrupt'):
        load_image(tmp_path / 'cut.jpg')
    (tmp_path / 'text.jpg').write_text('not a picture')
    with pytest.raises(ValueError, match='cannot decode the file as an image'):
        load_image(tmp_path / 'text.jpg')
    with pytest.raises(FileNotFoundError, match='image not found'):
        load_image(tmp_path / 'missing.jpg')


def test_exif_orientation_is_applied(tmp_path):
    """A phone picture stored landscape with Orientation 6 (rotate 90° clockwise to show) is
    returned as shown: portrait, its first stored column as the top row reversed."""
    rgb = picture(20, 30)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgb).save(tmp_path / 'phone.png', exif=exif)
    got = load_image(tmp_path / 'phone.png')
    assert got.shape == (30, 20, 3)
    assert np.array_equal(got, np.rot90(rgb, k=-1))


def test_max_pixels_downscales_keeping_the_aspect(tmp_path):
    Image.fromarray(picture(300, 600)).save(tmp_path / 'big.png')
    got = load_image(tmp_path / 'big.png', max_pixels=20_000)
    h, w = got.shape[:2]
    assert h * w <= 20_000 and abs(w / h - 2) < 0.05 and h * w > 15_000
    Image.fromarray(picture(300, 600)).save(tmp_path / 'big.jpg')
    h, w = load_image(tmp_path / 'big.jpg', max_pixels=20_000).shape[:2]  # JPEG draft path
    assert h * w <= 20_000 and abs(w / h - 2) < 0.05
    assert load_image(tmp_path / 'big.png').shape == (300, 600, 3)  # no bound: as stored
