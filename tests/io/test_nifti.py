"""NIfTI reader: round trip, and one clear error per kind of bad input."""

import nibabel as nib
import numpy as np
import pytest

from jaxmed.io import NiftiError, load_image_label, load_learn2reg_subjects, load_nifti


def _save(path, data, affine=None):
  nib.save(nib.Nifti1Image(data, np.diag([1.5, 1.5, 2.0, 1.0]) if affine is None else affine), str(path))
  return str(path)


def test_round_trip_and_spacing(tmp_path):
  img = np.random.default_rng(0).normal(size=(6, 7, 5)).astype(np.float32)
  data, affine, spacing = load_nifti(_save(tmp_path / "a.nii.gz", img), ndim=3)
  np.testing.assert_array_equal(data, img)
  assert spacing == (1.5, 1.5, 2.0) and affine[2, 2] == 2.0


def test_packaged_nifti_file_reads():
  import os
  from nibabel.testing import data_path
  data, affine, spacing = load_nifti(os.path.join(data_path, "example4d.nii.gz"))
  assert data.ndim == 4 and affine.shape == (4, 4) and len(spacing) == 4


def test_image_label_pair_mismatches_name_both_files(tmp_path):
  img = _save(tmp_path / "img.nii.gz", np.zeros((6, 6, 6), np.float32))
  lab_shape = _save(tmp_path / "lab_shape.nii.gz", np.zeros((6, 6, 5), np.int16))
  with pytest.raises(NiftiError, match=r"img\.nii\.gz and .*lab_shape\.nii\.gz: field 'dim'"):
    load_image_label(img, lab_shape)
  lab_aff = _save(tmp_path / "lab_aff.nii.gz", np.zeros((6, 6, 6), np.int16), np.eye(4))
  with pytest.raises(NiftiError, match=r"lab_aff\.nii\.gz: field 'affine'"):
    load_image_label(img, lab_aff)
  lab_float = _save(tmp_path / "lab_float.nii.gz", np.full((6, 6, 6), 0.5, np.float32))
  with pytest.raises(NiftiError, match="non-integer"):
    load_image_label(img, lab_float)
  ok = load_image_label(img, _save(tmp_path / "lab.nii.gz", np.ones((6, 6, 6), np.int16)))
  assert ok["labels"].dtype == np.int32 and ok["image"].shape == (6, 6, 6)


def test_missing_corrupt_and_wrong_rank(tmp_path):
  with pytest.raises(NiftiError, match="file not found"):
    load_nifti(str(tmp_path / "nope.nii.gz"))
  bad = tmp_path / "bad.nii.gz"
  bad.write_bytes(b"not a nifti")
  with pytest.raises(NiftiError, match="bad.nii.gz: not a readable NIfTI"):
    load_nifti(str(bad))
  with pytest.raises(NiftiError, match="expected 2 spatial axes"):
    load_nifti(_save(tmp_path / "c.nii.gz", np.zeros((4, 4, 4), np.float32)), ndim=2)
  nan = np.zeros((4, 4, 4), np.float32)
  nan[0, 0, 0] = np.nan
  with pytest.raises(NiftiError, match="NaN"):
    load_nifti(_save(tmp_path / "n.nii.gz", nan))


def test_learn2reg_layout(tmp_path):
  (tmp_path / "imagesTr").mkdir()
  (tmp_path / "labelsTr").mkdir()
  for i in range(3):
    name = f"OASIS_{i:04d}_0000.nii.gz"
    _save(tmp_path / "imagesTr" / name, np.full((8, 8, 8), i, np.float32))
    _save(tmp_path / "labelsTr" / name, np.full((8, 8, 8), i, np.int16))
  out = load_learn2reg_subjects(str(tmp_path), [f"OASIS_{i:04d}_0000" for i in range(3)])
  assert out["images"].shape == (3, 8, 8, 8) and out["labels"][2].max() == 2
  _save(tmp_path / "imagesTr" / "OASIS_0009_0000.nii.gz", np.zeros((8, 8, 7), np.float32))
  _save(tmp_path / "labelsTr" / "OASIS_0009_0000.nii.gz", np.zeros((8, 8, 7), np.int16))
  with pytest.raises(NiftiError, match="OASIS_0009_0000.nii.gz: grid differs"):
    load_learn2reg_subjects(str(tmp_path), ["OASIS_0000_0000", "OASIS_0009_0000"])


def test_learn2reg_official_validation_pairs(tmp_path):
  import json

  from jaxmed.io import learn2reg_val_pairs
  assert learn2reg_val_pairs(str(tmp_path)) is None  # no dataset JSON: the caller draws its own pairs
  pairs = [{"fixed": "./imagesTr/OASIS_0438_0000.nii.gz", "moving": "./imagesTr/OASIS_0439_0000.nii.gz"},
           {"fixed": "./imagesTr/OASIS_0439_0000.nii.gz", "moving": "./imagesTr/OASIS_0440_0000.nii.gz"}]
  (tmp_path / "OASIS_dataset.json").write_text(json.dumps({"registration_val": pairs}))
  assert learn2reg_val_pairs(str(tmp_path)) == [("OASIS_0439_0000", "OASIS_0438_0000"),
                                                ("OASIS_0440_0000", "OASIS_0439_0000")]
  (tmp_path / "OASIS_dataset.json").write_text(json.dumps({"registration_val": ["a.nii.gz"]}))
  with pytest.raises(NiftiError, match="OASIS_dataset.json: field 'registration_val'"):
    learn2reg_val_pairs(str(tmp_path))


def test_reorient_las_to_ras_and_pir_round_trips_exactly(tmp_path):
  from jaxmed.io.nifti import axcodes, reorient, save_nifti
  rng = np.random.default_rng(0)
  data = rng.normal(size=(5, 6, 7)).astype(np.float32)
  las = np.diag([-1.5, 2.0, 3.0, 1.0])
  las[:3, 3] = [10.0, -4.0, 2.0]
  assert axcodes(las) == ("L", "A", "S")
  ras, ras_aff = reorient(data, las, ("R", "A", "S"))
  assert axcodes(ras_aff) == ("R", "A", "S") and ras.shape == (5, 6, 7)
  assert np.array_equal(ras, data[::-1])
  pir, pir_aff = reorient(data, las, ("P", "I", "R"))
  assert pir.shape == (6, 7, 5) and axcodes(pir_aff) == ("P", "I", "R")
  # every voxel keeps its world position
  ijk = np.array([1, 2, 3])
  world = las[:3, :3] @ ijk + las[:3, 3]
  value = data[tuple(ijk)]
  hit = np.argwhere(pir == value)[0]
  assert np.allclose(pir_aff[:3, :3] @ hit + pir_aff[:3, 3], world)
  back, back_aff = reorient(pir, pir_aff, axcodes(las))
  assert np.array_equal(back, data) and np.allclose(back_aff, las)
  path = save_nifti(str(tmp_path / "x.nii.gz"), pir, pir_aff)
  img = nib.load(path)
  assert np.allclose(img.affine, pir_aff) and np.allclose(np.asarray(img.dataobj), pir)


def _spine_files(tmp_path, affine=None, corpus=True):
  from jaxmed.io.nifti import save_nifti
  rng = np.random.default_rng(0)
  aff = np.diag([-1.0, 1.0, 2.0, 1.0]) if affine is None else affine   # LAS
  ct = rng.normal(size=(6, 7, 8)).astype(np.float32)
  vert = np.zeros((6, 7, 8), np.int32)
  vert[2:4, 2:5, 3:6] = 19
  sub = np.where(vert > 0, 50 if corpus else 41, 0)
  paths = [save_nifti(str(tmp_path / f"{n}.nii.gz"), d, a) for n, d, a in
           (("ct", ct, np.diag([-1.0, 1.0, 2.0, 1.0])), ("vert", vert, aff), ("sub", sub, np.diag([-1.0, 1.0, 2.0, 1.0])))]
  return paths, ct


def test_load_spine_ct_reorients_to_pir_and_validates(tmp_path):
  from jaxmed.io import load_spine_ct
  paths, ct = _spine_files(tmp_path)
  scan = load_spine_ct(*paths)
  assert nib.aff2axcodes(scan["affine"]) == ("P", "I", "R")
  assert scan["ct"].shape == (7, 8, 6) and np.allclose(sorted(scan["spacing"]), [1.0, 1.0, 2.0])
  assert np.allclose(scan["source_affine"], np.diag([-1.0, 1.0, 2.0, 1.0]))
  assert (scan["subregions"][scan["vertebra_instance"] == 19] == 50).all()
  bad, _ = _spine_files(tmp_path / "b", affine=np.diag([1.0, 1.0, 2.0, 1.0]))
  with pytest.raises(NiftiError, match="vert.nii.gz.*affine"):
    load_spine_ct(*bad)
  nocorpus, _ = _spine_files(tmp_path / "c", corpus=False)
  with pytest.raises(NiftiError, match="sub.nii.gz.*corpus"):
    load_spine_ct(*nocorpus)
