import numpy as np
import pytest

from jaxmed.core import paired_bootstrap


def test_paired_bootstrap_of_a_constant_shift_is_that_shift_with_zero_width():
  a = np.random.default_rng(0).normal(size=50)
  assert paired_bootstrap(a + 0.3, a) == pytest.approx((0.3, 0.3, 0.3))


def test_paired_bootstrap_width_matches_the_normal_approximation():
  rng = np.random.default_rng(1)
  a, b = rng.integers(0, 2, 400), rng.integers(0, 2, 400)
  diff, lo, hi = paired_bootstrap(a, b, num_resamples=20_000)
  d = a - b
  half = 1.96 * d.std() / np.sqrt(len(d))
  assert lo < diff < hi
  assert (hi - lo) / 2 == pytest.approx(half, rel=0.1)
  assert diff == pytest.approx(d.mean())


def test_paired_bootstrap_rejects_unpaired_input():
  with pytest.raises(ValueError, match="equal-length"):
    paired_bootstrap(np.zeros(3), np.zeros(4))


def test_cluster_bootstrap_is_wider_than_the_row_bootstrap_for_clustered_rows():
  """Rows that repeat a subject's value carry one subject's information: resampling subjects widens the CI to
  what the subjects alone give, while resampling rows pretends there are 20x more subjects."""
  import numpy as np
  from jaxmed.core.stats import bootstrap_metric
  rng = np.random.default_rng(0)
  subject_values = rng.standard_normal(10)
  y = np.repeat(subject_values, 20)
  groups = np.repeat(np.arange(10), 20)
  mean = lambda yy, pp: float(np.mean(yy - pp))  # noqa: E731
  _, lo_rows, hi_rows = bootstrap_metric(mean, y, [np.zeros_like(y)], num_resamples=400)
  _, lo_subj, hi_subj = bootstrap_metric(mean, y, [np.zeros_like(y)], num_resamples=400, groups=groups)
  _, lo_ref, hi_ref = bootstrap_metric(mean, subject_values, [np.zeros(10)], num_resamples=400)
  assert hi_subj - lo_subj > 2.5 * (hi_rows - lo_rows)
  assert (hi_subj - lo_subj) == pytest.approx(hi_ref - lo_ref, rel=0.35)
