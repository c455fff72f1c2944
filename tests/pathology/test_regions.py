"""Tissue mask, regions, adjacency and named features on a synthetic slide with a known tissue map."""

import numpy as np
import pytest

from jaxmed import pathology as P
from jaxmed.synth.slides import TISSUES, synthetic_slide


@pytest.fixture(scope="module")
def slide():
  return synthetic_slide(5, size=384, stage=2)


def test_tissue_mask_finds_the_stained_tissue(slide):
  rgb, info = slide
  truth = (info["tissue"] > 0) & (info["tissue"] != TISSUES.index("fat"))  # fat is unstained, like glass
  for otsu in (False, True):
    mask = P.tissue_mask(rgb, otsu=otsu)
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou > 0.85, (otsu, iou)


def test_regions_and_adjacency(slide):
  rgb, _ = slide
  mask = P.tissue_mask(rgb)
  for labels in (P.slic_regions(rgb, mask, n_segments=150), P.grid_regions(mask, 24)):
    n = labels.max()
    assert set(np.unique(labels)) == set(range(n + 1)) and not labels[~mask].any()
    edges = P.region_adjacency(labels)
    assert (edges[:, 0] < edges[:, 1]).all() and edges.max() < n and len(np.unique(edges, axis=0)) == len(edges)
    # every listed pair really touches: some pixel of one has a 4-neighbour in the other
    i, j = edges[0] + 1
    touch = ((labels[:, :-1] == i) & (labels[:, 1:] == j)) | ((labels[:, :-1] == j) & (labels[:, 1:] == i))
    touch = touch.any() or (((labels[:-1] == i) & (labels[1:] == j)) | ((labels[:-1] == j) & (labels[1:] == i))).any()
    assert touch


def test_named_features_separate_tumour_from_stroma(slide):
  rgb, info = slide  # 384 px at 0.5 um/px; 50 regions of ~500 um^2, a few nuclei each
  labels = P.slic_regions(rgb, P.tissue_mask(rgb), n_segments=50)
  feats, extra = P.region_features(rgb, labels, mpp=0.5)
  assert feats.shape == (labels.max(), len(P.FEATURE_NAMES)) and np.isfinite(feats).all()
  np.testing.assert_allclose(extra["area_um2"].sum(), (labels > 0).sum() * 0.25)
  np.testing.assert_allclose(feats[:, P.FEATURE_NAMES.index("morphology/log_area_um2")], np.log(extra["area_um2"]),
                             rtol=1e-5)
  majority = np.asarray([np.bincount(info["tissue"][labels == k], minlength=len(TISSUES)).argmax()
                         for k in range(1, labels.max() + 1)])
  for name in ("nuclei/h_fraction", "nuclei/density_per_mm2"):
    v = feats[:, P.FEATURE_NAMES.index(name)]
    tumour, stroma = v[majority == TISSUES.index("tumour")], v[majority == TISSUES.index("stroma")]
    assert len(tumour) and len(stroma) and tumour.mean() > 2 * stroma.mean(), name
  # tumour nuclei (radius 4.5 um, 64 um^2) are larger than stromal ones (2 x 5 um, 31 um^2)
  area = feats[:, P.FEATURE_NAMES.index("nuclei/mean_area_um2")]
  count = feats[:, P.FEATURE_NAMES.index("nuclei/count")]
  mean_area = {t: (area * count)[majority == TISSUES.index(t)].sum() / count[majority == TISSUES.index(t)].sum()
               for t in ("tumour", "stroma")}
  assert mean_area["tumour"] > 1.3 * mean_area["stroma"], mean_area
  lbp = feats[:, [P.FEATURE_NAMES.index(f"texture/lbp_{k}") for k in range(10)]]
  np.testing.assert_allclose(lbp.sum(1), 1.0, atol=1e-5)
