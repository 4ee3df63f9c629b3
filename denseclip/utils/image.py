"""The one image loader of the API, both demos and the datasets: strict decoding, EXIF orientation,
8- or 16-bit, gray or colour, to an RGB uint8 array."""
from __future__ import annotations

import math
import os
import warnings

import numpy as np
from PIL import Image, ImageOps

__all__ = ['load_image']


def _decode(path: str, max_pixels: int | None) -> np.ndarray:
    """Decode ``path`` with Pillow, refusing truncated or corrupt data (Pillow's default, not
    cv2's: cv2 returns a partly grey picture for a truncated JPEG)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('error', Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if max_pixels and image.width * image.height > max_pixels:
                    scale = math.sqrt(max_pixels / (image.width * image.height))
                    # JPEG: decode at 1/2, 1/4 or 1/8 scale where that still covers the bound
                    image.draft('RGB', (math.ceil(image.width * scale),
                                        math.ceil(image.height * scale)))
                image.load()
                image = ImageOps.exif_transpose(image)  # phone pictures: as they are shown
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ValueError(f'{path}: {err}') from None
    except Image.UnidentifiedImageError:
        raise ValueError(f'{path}: cannot decode the file as an image') from None
    except (OSError, SyntaxError) as err:  # truncated or corrupt data
        raise ValueError(f'{path}: the image data is truncated or corrupt ({err})') from None
    if max_pixels and image.width * image.height > max_pixels:
        scale = math.sqrt(max_pixels / (image.width * image.height))
        size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
        image = image.resize(size, Image.Resampling.BOX)
    if image.mode.startswith('I'):  # 16-bit (I;16*) or 32-bit integer gray
        return np.asarray(image)
    if image.mode == 'F':
        raise TypeError(f'{path}: a floating-point image (mode F); expected 8 or 16 bits')
    return np.asarray(image.convert('RGBA' if 'A' in image.getbands() else 'RGB'))


def load_image(image: str | os.PathLike | np.ndarray, max_pixels: int | None = None
               ) -> np.ndarray:
    """An RGB uint8 (H, W, 3) array from a path or an array.

    Files are decoded strictly: truncated or corrupt data raises instead of giving a partly
    grey picture; the EXIF orientation is applied; gray, palette, RGBA (alpha dropped), CMYK
    and 16-bit images are converted.

    Args:
        image: a file path, or an (H, W), (H, W, 3) or (H, W, 4) uint8 / uint16 array.
        max_pixels: if set, a file of more pixels is downscaled (aspect kept) to at most this
            many (JPEGs are decoded at reduced scale already).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an image, truncated or corrupt data, a decompression bomb, a bad shape.
        TypeError: an array of another dtype.
    """
    if isinstance(image, (str, os.PathLike)):
        if not os.path.isfile(image):
            raise FileNotFoundError(f'image not found: {image}')
        array = _decode(os.fspath(image), max_pixels)
    else:
        array = np.asarray(image)
    if array.dtype == np.int32 and array.size and 0 <= array.min() and array.max() < 2 ** 16:
        array = array.astype(np.uint16)  # Pillow's 'I' mode of a 16-bit PNG
    if array.dtype == np.uint16:
        array = (array / 257.0).round().astype(np.uint8)
    elif array.dtype != np.uint8:
        raise TypeError(f'image dtype {array.dtype}; expected uint8 or uint16')
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f'image of shape {array.shape}; expected (H, W), (H, W, 3) or '
                         '(H, W, 4)')
    return np.ascontiguousarray(array[:, :, :3])
