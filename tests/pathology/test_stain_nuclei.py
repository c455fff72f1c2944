"""Macenko stains (recovered vectors; parity with torchstain) and watershed nuclei (counts of known nuclei)."""

import numpy as np
import pytest

from jaxmed import pathology as P
from jaxmed.synth.slides import nuclei_tile, synthetic_slide


def test_macenko_recovers_the_stain_vectors_of_a_two_stain_mixture():
  rng = np.random.default_rng(0)
  s_true = np.array([[0.65, 0.07], [0.70, 0.99], [0.29, 0.11]])
  s_true /= np.linalg.norm(s_true, axis=0)
  conc = rng.gamma(2.0, 0.4, (20_000, 2)) * rng.uniform(0, 1, (20_000, 2)) ** 2  # many near-pure pixels of each
  rgb = np.clip(240 * np.exp(-conc @ s_true.T) - 1, 0, 255).round().astype(np.uint8)[:, None]
  est = P.macenko_stains(rgb, alpha=1.0)
  cos = (est.matrix * s_true).sum(0)
  assert (cos > 0.98).all(), cos  # haematoxylin first, eosin second, each within ~11 degrees
  h, e = P.stain_concentrations(rgb, est)
  assert np.corrcoef(h[:, 0], conc[:, 0])[0, 1] > 0.9 and np.corrcoef(e[:, 0], conc[:, 1])[0, 1] > 0.9


def test_macenko_matches_torchstain():
  pytest.importorskip("torchstain")
  from torchstain.numpy.normalizers.macenko import NumpyMacenkoNormalizer

  rgb, _ = synthetic_slide(0, size=256)
  ref, _, _ = NumpyMacenkoNormalizer().normalize(rgb)
  ours = P.normalise_stains(rgb, P.macenko_stains(rgb))
  assert np.abs(ref.astype(int) - ours.astype(int)).max() <= 1


def test_blank_image_gets_a_clear_error():
  with pytest.raises(ValueError, match="stained pixels"):
    P.macenko_stains(np.full((32, 32, 3), 240, np.uint8))


@pytest.mark.parametrize("mpp,spacing", [(0.5, 2.2), (0.5, 1.6), (1.0, 1.7)])
def test_nucleus_count_within_ten_percent(mpp, spacing):
  # spacing < 2 radii: neighbouring nuclei overlap and must be split by the watershed
  rgb, centres = nuclei_tile(1, size=int(128 / mpp), mpp=mpp, count=80, spacing=spacing)
  h, _ = P.stain_concentrations(rgb, P.macenko_stains(rgb))
  labels = P.segment_nuclei(h, mpp=mpp)
  assert abs(int(labels.max()) - len(centres)) <= 0.1 * len(centres), (labels.max(), len(centres))
  table = P.nucleus_table(labels, mpp=mpp)
  # each found nucleus sits on a true one, and its area is near pi r^2 = 38.5 um^2
  d = np.hypot(*(table["centroid"][:, None, :] - centres[None]).transpose(2, 0, 1)).min(1)
  assert np.median(d) * mpp < 1.0
  assert 25 < np.median(table["area_um2"]) < 50
