"""Surface Dice (the surface-distance package's definition) on cubes with a closed-form answer."""

import numpy as np

from jaxmed.registration.surface import surface_dice


def test_surface_dice_of_a_cube_shifted_by_one_voxel():
  a = np.zeros((1, 40, 40, 40), bool)
  a[0, 10:30, 10:30, 10:30] = True
  b = np.roll(a, 1, axis=1)
  assert surface_dice(a, a, 0.5)[0] == 1.0
  # the 4 faces parallel to the shift still coincide, the 2 faces across it are 1 voxel apart: 4/6 at 0.5
  assert abs(surface_dice(a, b, 0.5)[0] - 2 / 3) < 0.01
  assert surface_dice(a, b, 1.0)[0] == 1.0
  # at 2 mm along the shifted axis those faces are 2 mm apart: out at 1 mm tolerance, in at 2 mm
  assert surface_dice(a, b, 1.0, spacing=(2.0, 1.0, 1.0))[0] < 0.9
  assert surface_dice(a, b, 2.0, spacing=(2.0, 1.0, 1.0))[0] == 1.0
  assert np.isnan(surface_dice(np.zeros_like(a), np.zeros_like(a), 1.0)[0])
