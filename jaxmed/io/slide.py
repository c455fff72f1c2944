"""Whole-slide images: read through openslide, write tiled pyramidal TIFF with tifffile.

:func:`open_slide` wraps ``openslide.OpenSlide`` (vendor formats: Aperio SVS,
Hamamatsu, MIRAX, ... and generic tiled pyramidal TIFF) as a :class:`Slide`
that returns RGB ``uint8`` numpy arrays. :func:`write_pyramidal_tiff` writes a
level-0 image plus 2x-downsampled levels as a tiled TIFF whose reduced levels
are ``subfiletype=1`` pages in the main IFD chain, the layout openslide's
generic-TIFF driver reads, so synthetic slides go through the same reader as
real ones.

  write_pyramidal_tiff("slide.tiff", rgb, levels=3, mpp=0.5)
  slide = open_slide("slide.tiff")
  slide.level_dimensions       # ((W, H), (W/2, H/2), (W/4, H/4))  -- openslide's (width, height)
  tile = slide.read_region((x, y), level=1, size=(w, h))   # [h, w, 3] uint8; (x, y) in level-0 pixels
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np


class SlideError(ValueError):
  """A slide file is missing, unreadable, truncated, or asked for a region it does not have."""


@dataclasses.dataclass
class Slide:
  """An open whole-slide image. Coordinates follow openslide: ``(x, y)`` and ``(width, height)``."""

  path: str
  handle: Any  # openslide.OpenSlide

  @property
  def level_count(self) -> int:
    return self.handle.level_count

  @property
  def level_dimensions(self) -> tuple[tuple[int, int], ...]:
    return tuple(self.handle.level_dimensions)

  @property
  def level_downsamples(self) -> tuple[float, ...]:
    return tuple(float(d) for d in self.handle.level_downsamples)

  @property
  def mpp(self) -> tuple[float, float] | None:
    """Microns per level-0 pixel ``(x, y)``, or None when the file does not record it."""
    props = self.handle.properties
    try:
      return float(props["openslide.mpp-x"]), float(props["openslide.mpp-y"])
    except (KeyError, ValueError):
      return None

  def best_level_for_downsample(self, downsample: float) -> int:
    return int(self.handle.get_best_level_for_downsample(downsample))

  def read_region(self, location: tuple[int, int], level: int, size: tuple[int, int]) -> np.ndarray:
    """RGB ``[h, w, 3]`` uint8 of ``size=(w, h)`` pixels at ``level``; ``location=(x, y)`` in level-0 pixels.

    Transparent (outside-the-scan) pixels come back white, as slide glass.
    """
    if not 0 <= level < self.level_count:
      raise SlideError(f"{self.path}: level {level} requested; the slide has levels 0..{self.level_count - 1}")
    try:
      rgba = np.asarray(self.handle.read_region(tuple(int(v) for v in location), level,
                                                tuple(int(v) for v in size)))
    except Exception as e:  # openslide.OpenSlideError on a truncated or corrupt tile
      raise SlideError(f"{self.path}: cannot read level {level} region at {location} of size {size} "
                       f"({type(e).__name__}: {e}); the file may be truncated") from e
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    return (rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)

  def read_level(self, level: int) -> np.ndarray:
    """The whole of ``level`` as RGB ``[H, W, 3]`` uint8."""
    return self.read_region((0, 0), level, self.level_dimensions[level])

  def close(self) -> None:
    self.handle.close()

  def __enter__(self) -> "Slide":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


def open_slide(path: str) -> Slide:
  """Opens ``path`` with openslide; a missing, unsupported or corrupt file raises :class:`SlideError`."""
  import openslide

  if not os.path.exists(path):
    raise SlideError(f"{path}: file not found")
  try:
    handle = openslide.OpenSlide(path)
    handle.level_dimensions  # noqa: B018  (forces the header to be parsed)
  except Exception as e:  # OpenSlideUnsupportedFormatError, OpenSlideError
    raise SlideError(f"{path}: not a slide openslide can read ({type(e).__name__}: {e}); expected a "
                     "vendor whole-slide format or a tiled pyramidal TIFF") from e
  slide = Slide(path, handle)
  try:  # a truncated file often opens but fails on its last tile
    w, h = slide.level_dimensions[-1]
    slide.read_region((0, 0), slide.level_count - 1, (w, h))
  except SlideError:
    slide.close()
    raise
  return slide


def downsample2(image: np.ndarray) -> np.ndarray:
  """2x2 box average of ``[H, W, C]`` uint8 (odd edges dropped)."""
  h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
  x = image[:h, :w].astype(np.float32)
  return ((x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]) / 4.0).round().astype(np.uint8)


def write_pyramidal_tiff(path: str, image: np.ndarray, *, levels: int = 3, tile: int = 256,
                         mpp: float | None = None, compression: str = "zlib") -> list[np.ndarray]:
  """Writes ``image`` ``[H, W, 3]`` uint8 and ``levels - 1`` 2x-downsampled copies as a tiled pyramidal TIFF.

  ``compression`` is lossless by default (``"zlib"``), so level 0 reads back
  pixel-identical; ``"jpeg"`` matches most scanners. ``mpp`` (microns per
  level-0 pixel) is stored as the TIFF resolution in centimetres, which
  openslide reports as ``openslide.mpp-x/y``. Returns the written levels.
  """
  image = np.asarray(image)
  if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
    raise ValueError(f"write_pyramidal_tiff({path}): expected an RGB uint8 image [H, W, 3], got "
                     f"{image.dtype} {image.shape}")
  pyramid = [image]
  for _ in range(levels - 1):
    pyramid.append(downsample2(pyramid[-1]))
  write_pyramidal_tiff_tiles(path, image.shape[:2], lambda k, r, c, h, w: pyramid[k][r:r + h, c:c + w],
                             levels=levels, tile=tile, mpp=mpp, compression=compression)
  return pyramid


def write_pyramidal_tiff_tiles(path: str, shape: tuple[int, int], tile_fn, *, levels: int, tile: int = 256,
                               mpp: float | None = None, compression: str = "zlib", glass: int = 242) -> None:
  """Streams a pyramidal TIFF of level-0 ``shape = (H, W)`` tile by tile; memory is one tile, not one level.

  ``tile_fn(level, row, col, h, w)`` returns RGB uint8 ``[h, w, 3]`` of that
  level (``(H, W) // 2**level``); edge tiles are padded with ``glass``. Level
  ``k`` is what the caller renders at ``2**k`` times the level-0 pixel size.
  """
  import tifffile

  if tile % 16:
    raise ValueError(f"write_pyramidal_tiff({path}): tile must be a multiple of 16 (TIFF), got {tile}")
  H, W = (int(v) for v in shape)

  def tiles(k, h, w):
    for r in range(0, h, tile):
      for c in range(0, w, tile):
        th, tw = min(tile, h - r), min(tile, w - c)
        out = np.full((tile, tile, 3), glass, np.uint8)
        out[:th, :tw] = tile_fn(k, r, c, th, tw)
        yield out

  big = H * W * 3 * 4 // 3 > 2**31
  with tifffile.TiffWriter(path, bigtiff=big) as tif:
    for k in range(levels):
      h, w = H >> k, W >> k
      kw: dict[str, Any] = {}
      if mpp:
        res = 1e4 / (mpp * 2**k)  # pixels per centimetre
        kw = dict(resolution=(res, res), resolutionunit="CENTIMETER")
      tif.write(tiles(k, h, w), shape=(h, w, 3), dtype=np.uint8, photometric="rgb", tile=(tile, tile),
                compression=compression, subfiletype=0 if k == 0 else 1, metadata=None, **kw)
