"""k-space HDF5: fastMRI and dynamic layouts read back exactly; malformed files name the file and dataset."""

import h5py
import numpy as np
import pytest

from jaxmed.io import KSpaceError, load_kspace_h5


def _k(shape, seed=0):
  rng = np.random.default_rng(seed)
  return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def test_fastmri_and_dynamic_layouts(tmp_path):
  k4 = _k((2, 4, 16, 12))
  with h5py.File(tmp_path / "fm.h5", "w") as f:
    f["kspace"] = k4
    f["mask"] = np.ones(12, bool)
    f["reconstruction_rss"] = np.abs(k4).sum(1)
  out = load_kspace_h5(str(tmp_path / "fm.h5"))
  assert out["layout"] == "fastmri" and out["kspace"].shape == (2, 1, 4, 16, 12)
  np.testing.assert_array_equal(out["kspace"][:, 0], k4)
  assert out["reference"].shape == (2, 16, 12) and out["mask"].all()
  k5 = _k((1, 6, 4, 16, 12))
  with h5py.File(tmp_path / "cine.h5", "w") as f:
    f.create_dataset("kspace", data=k5).attrs["axis_order"] = "slice,frame,coil,kx,ky"
    f["coil_maps"] = _k((1, 4, 16, 12), 1)
  out = load_kspace_h5(str(tmp_path / "cine.h5"))
  assert out["layout"] == "dynamic" and out["coil_maps"].shape == (1, 4, 16, 12)
  np.testing.assert_array_equal(out["kspace"], k5)


@pytest.mark.parametrize("case,match", [
    ("missing", "file not found"), ("not_h5", "not a readable HDF5"), ("no_kspace", "no dataset 'kspace'"),
    ("real", "dtype float32"), ("no_order", "axis_order"), ("rank", "shape"), ("maps", "coil_maps"),
    ("mask", "'mask'")])
def test_malformed_files(tmp_path, case, match):
  path = tmp_path / f"{case}.h5"
  if case == "not_h5":
    path.write_bytes(b"nope")
  elif case != "missing":
    with h5py.File(path, "w") as f:
      if case == "no_kspace":
        f["data"] = np.zeros(3)
      elif case == "real":
        f["kspace"] = np.zeros((1, 2, 4, 4), np.float32)
      elif case == "no_order":
        f["kspace"] = _k((1, 2, 2, 4, 4))
      elif case == "rank":
        f["kspace"] = _k((4, 4))
      elif case == "maps":
        f["kspace"] = _k((1, 2, 4, 4))
        f["coil_maps"] = _k((1, 3, 4, 4))
      elif case == "mask":
        f["kspace"] = _k((1, 2, 4, 4))
        f["mask"] = np.ones(5, bool)
  with pytest.raises(KSpaceError, match=match) as err:
    load_kspace_h5(str(path))
  assert path.name in str(err.value)
