"""Synthetic slides: seeded, stage drives tumour burden, and the H&E rendering deconvolves back to its stains."""

import numpy as np

from jaxmed.synth.slides import TISSUES, synthetic_slide


def test_seeded_and_stage_sets_burden():
  a, ia = synthetic_slide(3, size=256)
  b, ib = synthetic_slide(3, size=256)
  np.testing.assert_array_equal(a, b)
  assert ia["time"] == ib["time"] and a.dtype == np.uint8 and a.shape == (256, 256, 3)
  burden = {s: np.mean([synthetic_slide(k, size=256, stage=s)[1]["tumour_burden"] for k in range(3)])
            for s in range(3)}
  assert burden[0] < burden[1] < burden[2], burden
  _, info = synthetic_slide(0, size=256, stage=2)
  assert (info["tissue"] == TISSUES.index("necrosis")).any() and info["event"] in (0, 1) and info["time"] > 0


def test_nuclei_are_haematoxylin_dense_where_tissue_says_so():
  from skimage.color import rgb2hed

  rgb, info = synthetic_slide(1, size=384, stage=1)
  h = rgb2hed(rgb)[..., 0]
  t = info["tissue"]
  mean = {name: h[t == i].mean() for i, name in enumerate(TISSUES) if (t == i).any()}
  assert mean["lymphocytes"] > mean["stroma"] and mean["tumour"] > mean["stroma"] > mean["glass"] - 0.01
