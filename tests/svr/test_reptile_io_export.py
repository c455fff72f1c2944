"""Reptile's update and persistence, the stack reader's validation, the simulator on a real volume, exports."""

import json
import os
import warnings

import jax
import jax.numpy as jnp
import nibabel as nib
import numpy as np
import optax
import pytest

from jaxmed import svr
from jaxmed.io import NiftiError, load_stacks
from jaxmed.synth import fetal


def test_reptile_update_moves_towards_inner_by_epsilon():
  meta = {"volume": {"w": jnp.zeros(3)}}
  inner = {"volume": {"w": jnp.array([1.0, 2.0, 4.0])}, "slice": {"log_sigma": jnp.ones(2)}}
  tx = optax.sgd(0.5)
  new, _ = svr.reptile_update(meta, inner, tx, tx.init(meta))
  np.testing.assert_allclose(np.asarray(new["volume"]["w"]), [0.5, 1.0, 2.0])
  assert set(new) == {"volume"}   # per-subject groups are not meta-learned


def test_meta_groups_and_orbax_round_trip(tmp_path):
  vol = svr.volume_inr("hash", levels=2, log2_table=8)
  assert svr.meta_groups(svr.SVRModel(vol, svr.motion_model("free", 4, 1))) == ("volume",)
  assert svr.meta_groups(svr.SVRModel(vol, svr.motion_model("inr", 4, 2))) == ("volume", "motion")
  meta = {"volume": vol.init(jax.random.PRNGKey(0), jnp.zeros((1, 3)))}
  svr.save_meta_init(str(tmp_path / "meta"), meta)
  back = svr.load_meta_init(str(tmp_path / "meta"))
  for a, b in zip(jax.tree.leaves(meta), jax.tree.leaves(back)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  with pytest.raises(FileNotFoundError, match="no meta-initialisation"):
    svr.load_meta_init(str(tmp_path / "missing"))


def _write(path, data, affine):
  nib.save(nib.Nifti1Image(np.asarray(data, np.float32), affine), str(path))
  return str(path)


def test_load_stacks_validates_masks_and_thickness(tmp_path):
  affine = np.diag([1.0, 1.0, 3.0, 1.0])
  img = _write(tmp_path / "s.nii.gz", np.ones((8, 8, 4)), affine)
  good = _write(tmp_path / "m.nii.gz", np.ones((8, 8, 4)), affine)
  bad_shape = _write(tmp_path / "m_shape.nii.gz", np.ones((8, 8, 5)), affine)
  bad_affine = _write(tmp_path / "m_aff.nii.gz", np.ones((8, 8, 4)), np.diag([1.0, 1.0, 2.0, 1.0]))
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    st = load_stacks([img], [good], thickness=2.5)
  assert st[0]["thickness"] == 2.5 and st[0]["mask"].all()
  with pytest.warns(UserWarning, match="no slice thickness"):
    assert load_stacks([img])[0]["thickness"] == 3.0
  with pytest.raises(NiftiError, match="s.nii.gz and .*m_shape.nii.gz: field 'dim'"):
    load_stacks([img], [bad_shape], thickness=3.0)
  with pytest.raises(NiftiError, match="m_aff.nii.gz: field 'affine'"):
    load_stacks([img], [bad_affine], thickness=3.0)
  with pytest.raises(ValueError, match="thickness"):
    svr.prepare([{"image": np.ones((4, 4, 2)), "affine": np.eye(4)}])


def test_simulator_runs_on_nibabels_anatomical_volume():
  path = os.path.join(os.path.dirname(nib.__file__), "tests", "data", "anatomical.nii")
  img = nib.load(path)
  vol = np.asarray(img.dataobj, np.float32)
  vol = vol / vol.max()
  stacks = fetal.simulate_stacks(vol, img.affine, seed=0, inplane=4.0, thickness=8.0, max_rot_deg=3,
                                 max_trans_mm=2, corrupt_fraction=0.1, psf_points=(1, 1, 3))
  assert [s["orientation"] for s in stacks] == ["axial", "coronal", "sagittal"]
  for s in stacks:
    assert s["image"].ndim == 3 and np.isfinite(s["image"]).all() and s["image"].std() > 0
    assert s["motion"].shape == (s["image"].shape[2], 6) and s["corrupted"].sum() >= 1
  allm = np.concatenate([s["motion"] for s in stacks])
  np.testing.assert_allclose(allm.mean(0), 0.0, atol=1e-9)   # the mean pose is the reference frame


def test_fit_improves_and_exports_a_valid_reconstruction(tmp_path):
  ph = fetal.fetal_brain_phantom(20, 2.0, seed=0)
  stacks = fetal.simulate_stacks(ph["volume"], ph["affine"], mask=ph["mask"], seed=0, inplane=2.0, thickness=4.0,
                                 motion="none", noise=0.0, drift=0.0, psf_points=(1, 1, 3))
  sl = svr.prepare(stacks)
  model = svr.SVRModel(svr.volume_inr("hash", levels=4, log2_table=12), svr.motion_model("free", len(sl["stack"]), 3))
  world = np.stack(np.meshgrid(*[np.arange(20)] * 3, indexing="ij"), -1) @ ph["affine"][:3, :3].T + ph["affine"][:3, 3]

  def psnr(p):
    return {"psnr": svr.masked_psnr_ssim(svr.sample_volume(model, p, world, sl["bbox"]), ph["volume"], ph["mask"])[0]}

  params, hist = svr.fit(model, sl, steps=200, lrs={"volume": 1e-2, "motion": 1e-3, "slice": 1e-2},
                         key=jax.random.PRNGKey(0), samples_per_step=2048, psf_max=4, eval_fn=psnr, eval_every=100,
                         progress=None)
  assert hist[-1]["psnr"] > hist[0]["psnr"] + 3.0, hist
  paths = svr.write_outputs(str(tmp_path), model, params, sl, spacing=1.5)
  img = nib.load(paths["volume"])
  np.testing.assert_allclose(np.diag(img.affine)[:3], 1.5)
  np.testing.assert_allclose(img.affine[:3, 3], sl["bbox"][0], atol=1e-5)
  weights = json.load(open(paths["weights"]))
  has = svr.pixel_counts(sl) > 0
  assert [w is not None for w in weights["weight"]] == has.tolist()
  assert abs(np.mean([w for w in weights["weight"] if w is not None]) - 1.0) < 1e-6


def test_whole_slice_signal_drop_is_flagged_on_the_volume_scale_not_by_raw_sigma():
  ph = fetal.fetal_brain_phantom(20, 2.0, seed=1)
  stacks = fetal.simulate_stacks(ph["volume"], ph["affine"], mask=ph["mask"], seed=1, inplane=2.0, thickness=4.0,
                                 motion="none", noise=0.0, drift=0.0, psf_points=(1, 1, 3))
  rng = np.random.default_rng(0)
  z = stacks[0]["image"].shape[2] // 2
  stacks[0]["image"][:, :, z] *= 0.2            # the whole slice's signal drops: its scale can explain it
  for st in stacks:
    st["image"] = st["image"] + 0.01 * rng.standard_normal(st["image"].shape).astype(np.float32)
  sl = svr.prepare(stacks)
  model = svr.SVRModel(svr.volume_inr("hash", levels=4, log2_table=12), None)
  params, _ = svr.fit(model, sl, steps=300, lrs={"volume": 1e-2, "slice": 1e-2}, key=jax.random.PRNGKey(0),
                      samples_per_step=4096, psf_max=4, progress=None)
  has = svr.pixel_counts(sl) > 0
  dropped = np.zeros(len(has), bool)
  dropped[z] = True                              # stack 0's slices come first
  assert np.exp(params["slice"]["log_scale"][z]) < 0.4
  rel = svr.slice_sigma_in_volume_units(params)
  np.testing.assert_allclose(rel, np.exp(np.asarray(params["slice"]["log_sigma"]) -
                                         np.asarray(params["slice"]["log_scale"])), rtol=1e-6)
  assert svr.outlier_auroc(dropped, rel, has) == 1.0
  assert svr.outlier_auroc(dropped, np.exp(np.asarray(params["slice"]["log_sigma"])), has) < 0.5
