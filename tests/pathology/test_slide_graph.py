"""Slides to graphs at physical resolutions: tiled equals whole-level, levels chosen by microns, clear errors."""

import numpy as np
import pytest

from jaxmed import pathology as P
from jaxmed.io.slide import SlideError, open_slide, write_pyramidal_tiff
from jaxmed.synth.slides import synthetic_slide

KW = dict(graph_mpp=1.0, region_mpp=2.0, mask_mpp=4.0, region_um2=600.0, patch_um=24.0, min_tissue_um2=2000.0,
          min_hole_um2=400.0, progress=False)


@pytest.fixture(scope="module")
def slide_path(tmp_path_factory):
  rgb, info = synthetic_slide(3, size=512, mpp=0.5)
  path = str(tmp_path_factory.mktemp("wsi") / "slide.tiff")
  write_pyramidal_tiff(path, rgb, levels=4, tile=128, mpp=0.5)
  return path, rgb


def test_levels_are_chosen_by_microns_per_pixel(slide_path):
  path, rgb = slide_path
  with open_slide(path) as s:  # levels at 0.5, 1, 2, 4 um/px
    assert P.level_for_mpp(s, 1.0) == (1, 1.0)
    assert P.level_for_mpp(s, 3.0) == (2, 2.0)  # the coarsest level at least as fine, then a resize
    assert P.level_for_mpp(s, 0.3) == (0, 0.5)
    box = (10, 20, 30, 40)
    np.testing.assert_array_equal(P.read_at_mpp(s, 0.5, box), rgb[10:40, 20:60])
    # 2 um/px from level 0 by 4x4 box averaging equals level 2 (written the same way), within rounding
    whole = P.read_at_mpp(s, 2.0)
    assert whole.shape == (128, 128, 3)
    tiled = np.concatenate([P.read_at_mpp(s, 2.0, (r, 0, 32, 128)) for r in range(0, 128, 32)])
    np.testing.assert_array_equal(whole, tiled)
    odd = P.read_at_mpp(s, 3.0)  # a non-integer factor from level 2: nearest sampling
    assert odd.shape == (85, 85, 3)


def test_tiled_processing_equals_whole_level(slide_path):
  path, _ = slide_path
  with open_slide(path) as s:
    tiled = P.slide_graphs(s, tile=96, overlap=32, **KW)
    whole = P.slide_graphs(s, tile=0, **KW)
  assert int(tiled["tiles_read"]) > 4 and int(whole["tiles_read"]) == 1
  for kind in ("region", "patch"):
    np.testing.assert_array_equal(tiled[f"{kind}/labels"], whole[f"{kind}/labels"])
    np.testing.assert_array_equal(tiled[f"{kind}/edges"], whole[f"{kind}/edges"])
    a, b = tiled[f"{kind}/x"], whole[f"{kind}/x"]
    assert a.shape == b.shape and a.shape[0] > 20 and np.isfinite(a).all()
    pixelwise = [i for i, n in enumerate(P.FEATURE_NAMES) if not n.startswith("nuclei/") or n == "nuclei/h_fraction"]
    np.testing.assert_allclose(a[:, pixelwise], b[:, pixelwise], rtol=1e-5, atol=1e-6)  # exact sums, any tiling
    # nuclei: only those cut by a seam beyond the margin can differ
    count = P.FEATURE_NAMES.index("nuclei/count")
    assert abs(a[:, count].sum() - b[:, count].sum()) <= 0.02 * b[:, count].sum()
    assert np.abs(a[:, count] - b[:, count]).mean() < 0.1


def test_min_tissue_is_in_square_microns_and_blank_slides_fail_clearly(tmp_path, slide_path):
  path, _ = slide_path
  with open_slide(path) as s:
    with pytest.raises(SlideError, match="no tissue"):
      P.slide_graphs(s, **{**KW, "min_tissue_um2": 1e9})
  blank = str(tmp_path / "blank.tiff")
  write_pyramidal_tiff(blank, np.full((256, 256, 3), 240, np.uint8), levels=2, mpp=0.5)
  with open_slide(blank) as s, pytest.raises(SlideError, match="blank.tiff.*no tissue"):
    P.slide_graphs(s, **KW)
  nompp = str(tmp_path / "nompp.tiff")
  write_pyramidal_tiff(nompp, synthetic_slide(1, size=256)[0], levels=2)
  with open_slide(nompp) as s:
    with pytest.raises(SlideError, match="nompp.tiff.*slide_mpp"):
      P.slide_graphs(s, **KW)
    out = P.slide_graphs(s, slide_mpp=0.5, **KW)  # the fallback resolution
    assert out["region/x"].shape[0] > 0


def test_large_reads_go_in_strips_with_the_same_pixels(slide_path, monkeypatch):
  from jaxmed.pathology import slide_graph

  path, _ = slide_path
  with open_slide(path) as s:
    whole = {mpp: P.read_at_mpp(s, mpp) for mpp in (0.5, 2.0, 3.0)}
    monkeypatch.setattr(slide_graph, "MAX_READ_PX", 5000)  # forces many strips
    for mpp, ref in whole.items():
      np.testing.assert_array_equal(P.read_at_mpp(s, mpp), ref)
