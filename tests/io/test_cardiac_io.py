"""ViTa readers: the official npz layout round trip, CSV schema reading, and one clear error per bad input."""

import numpy as np
import pytest

from jaxmed.io import CardiacDataError, load_tabular_csv, load_vita_npz
from jaxmed.synth import heart


def _write_npz(path, cohort, i=0, **override):
  to_hwst = lambda a: np.transpose(a, (2, 3, 0, 1))  # noqa: E731  [S, T, H, W] -> [H, W, S, T]
  arrays = {"lax": to_hwst(cohort["cine"][i, :3]), "sax": to_hwst(cohort["cine"][i, 3:]),
            "seg_lax": to_hwst(cohort["seg"][i, :3]), "seg_sax": to_hwst(cohort["seg"][i, 3:])}
  arrays.update(override)
  np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
  return str(path)


def test_vita_npz_round_trip_and_errors(tmp_path):
  cohort = heart.cardiac_cohort(1, seed=0, size=16, frames=5, num_sax=4)
  out = load_vita_npz(_write_npz(tmp_path / "a.npz", cohort))
  assert np.array_equal(out["cine"], cohort["cine"][0]) and np.array_equal(out["seg"], cohort["seg"][0])
  assert out["num_lax"] == 3
  with pytest.raises(CardiacDataError, match="b.npz: field 'seg_sax' is missing"):
    load_vita_npz(_write_npz(tmp_path / "b.npz", cohort, seg_sax=None))
  with pytest.raises(CardiacDataError, match="c.npz: field 'seg_lax'"):
    load_vita_npz(_write_npz(tmp_path / "c.npz", cohort, seg_lax=np.zeros((16, 16, 3, 4))))


def test_tabular_csv_against_a_schema(tmp_path):
  path = tmp_path / "t.csv"
  path.write_text("eid,age,sex,smoking\n1,61.5,1,never\n2,,0,current\n3,70,,\n")
  out = load_tabular_csv(str(path), ["age"], ["sex"], {"smoking": ("never", "former", "current")})
  assert out["ids"] == ["1", "2", "3"]
  assert np.isnan(out["numerical"][1, 0]) and out["numerical"][0, 0] == 61.5
  assert np.isnan(out["binary"][2, 0]) and out["categorical"][:, 0].tolist() == [0, 2, -1]
  path.write_text("eid,age,sex,smoking\n1,61.5,1,sometimes\n")
  with pytest.raises(CardiacDataError, match="row 2, column 'smoking': 'sometimes'"):
    load_tabular_csv(str(path), ["age"], ["sex"], {"smoking": ("never", "former", "current")})
  with pytest.raises(CardiacDataError, match="column 'bmi' is missing"):
    load_tabular_csv(str(path), ["age", "bmi"], ["sex"], {})


def test_tabular_numerics_are_finite_and_in_the_schema_range(tmp_path):
  path = tmp_path / "t.csv"
  schema = dict(numerical=["age", "bmi"], binary=[], categorical={})
  path.write_text("eid,age,bmi\n1,61,NA\n2,nan,24.5\n")  # NA and nan are missing values
  out = load_tabular_csv(str(path), **schema)
  assert np.isnan(out["numerical"][0, 1]) and np.isnan(out["numerical"][1, 0]) and out["numerical"][1, 1] == 24.5
  path.write_text("eid,age,bmi\n1,61,inf\n")
  with pytest.raises(CardiacDataError, match=r"t.csv: row 2, column 'bmi': 'inf'; expected a finite number"):
    load_tabular_csv(str(path), **schema)
  path.write_text("eid,age,bmi\n1,61,22\n2,-999,23\n")
  out = load_tabular_csv(str(path), **schema)  # no range given: -999 is a number
  assert out["numerical"][1, 0] == -999
  with pytest.raises(CardiacDataError, match=r"row 3, column 'age': -999 is outside the schema's range \[18, 110\]"):
    load_tabular_csv(str(path), **schema, ranges={"age": (18, 110)})
  with pytest.raises(ValueError, match="ranges names 'sex'"):
    load_tabular_csv(str(path), **schema, ranges={"sex": (0, 1)})


def test_cine_nifti_must_be_4d(tmp_path):
  import nibabel as nib
  from jaxmed.io import load_cine_nifti
  cine = np.random.default_rng(0).normal(size=(8, 8, 3, 5)).astype(np.float32)
  nib.save(nib.Nifti1Image(cine, np.eye(4)), str(tmp_path / "sa.nii.gz"))
  assert np.allclose(load_cine_nifti(str(tmp_path / "sa.nii.gz")), cine)
  nib.save(nib.Nifti1Image(cine[..., 0], np.eye(4)), str(tmp_path / "flat.nii.gz"))
  with pytest.raises(CardiacDataError, match="flat.nii.gz: field 'dim'"):
    load_cine_nifti(str(tmp_path / "flat.nii.gz"))
