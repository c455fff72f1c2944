"""Pyramidal TIFF written by jaxmed, read back through openslide; bad files give one clear error."""

import numpy as np
import pytest

from jaxmed.io.slide import SlideError, downsample2, open_slide, write_pyramidal_tiff


@pytest.fixture(scope="module")
def slide_path(tmp_path_factory):
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (600, 700, 3), dtype=np.uint8)  # not a multiple of the tile size
  path = str(tmp_path_factory.mktemp("wsi") / "slide.tiff")
  write_pyramidal_tiff(path, image, levels=3, tile=128, mpp=0.25)
  return path, image


def test_round_trip_levels_pixels_and_mpp(slide_path):
  path, image = slide_path
  with open_slide(path) as slide:
    assert slide.level_count == 3
    assert slide.level_dimensions == ((700, 600), (350, 300), (175, 150))
    np.testing.assert_allclose(slide.level_downsamples, (1.0, 2.0, 4.0))
    np.testing.assert_allclose(slide.mpp, (0.25, 0.25), rtol=1e-6)
    np.testing.assert_array_equal(slide.read_level(0), image)  # lossless: pixel-identical
    level1 = slide.read_level(1)
    np.testing.assert_array_equal(level1, downsample2(image))
    # a downsampled level agrees with box-averaging level 0 (up to rounding)
    coarse = image[:, :, :].astype(float).reshape(150, 4, 175, 4, 3).mean((1, 3))
    assert np.abs(slide.read_level(2).astype(float) - coarse).max() <= 1.0
    # read_region takes level-0 coordinates
    np.testing.assert_array_equal(slide.read_region((100, 40), 1, (30, 20)), level1[20:40, 50:80])
    assert slide.best_level_for_downsample(4.5) == 2


def test_bad_files_name_the_file(tmp_path, slide_path):
  path, _ = slide_path
  truncated = tmp_path / "truncated.tiff"
  truncated.write_bytes(open(path, "rb").read()[:20000])
  garbage = tmp_path / "garbage.svs"
  garbage.write_bytes(b"not a slide" * 100)
  for bad in (truncated, garbage, tmp_path / "missing.tiff"):
    with pytest.raises(SlideError, match=str(bad.name)):
      open_slide(str(bad))
  with open_slide(path) as slide, pytest.raises(SlideError, match="levels 0..2"):
    slide.read_region((0, 0), 5, (4, 4))
  with pytest.raises(ValueError, match="RGB uint8"):
    write_pyramidal_tiff(str(tmp_path / "x.tiff"), np.zeros((8, 8), np.uint8))
