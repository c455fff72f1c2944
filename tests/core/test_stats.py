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
