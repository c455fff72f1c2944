"""The fair meta-init schedule, MetaSVR's options, pre-processing of real stacks and the registered evaluation."""

import jax
import jax.numpy as jnp
import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.transform import Rotation

from jaxmed import svr
from jaxmed.io import load_stacks
from jaxmed.synth import fetal


@pytest.fixture(scope="module")
def subject():
  ph = fetal.fetal_brain_phantom(24, 1.6, seed=2)
  stacks = fetal.simulate_stacks(ph["volume"], ph["affine"], seed=3, mask=ph["mask"], inplane=1.6, thickness=4.0,
                                 motion="none", noise=0.01)
  return ph, stacks


def _model(sl, motion=True):
  vol = svr.volume_inr("hash", levels=4, log2_table=12, base_resolution=4, per_level_scale=1.5)
  return svr.SVRModel(vol, svr.motion_model("free", len(sl["stack"]), 3) if motion else None)


KW = {"lrs": {"volume": 3e-3, "motion": 1e-2, "slice": 1e-2}, "samples_per_step": 1024, "psf_max": 4,
      "starts": {"motion": 0.1, "slice": 0.3}, "level_steps": 12}


def test_level_schedule_is_absolute_and_an_inner_fit_is_the_start_of_a_test_fit(subject):
  assert [svr.level_progress(i, 12) for i in (0, 6, 12, 100)] == [0.0, 0.5, 1.0, 1.0]
  assert svr.level_progress(0, 0) == 1.0
  sl = svr.prepare(subject[1])
  model, key = _model(sl), jax.random.PRNGKey(0)
  inner, _ = svr.fit(model, sl, steps=8, horizon=40, key=key, progress=None, **KW)
  seen = {}

  def capture(p):
    seen[len(seen)] = p
    return {}
  svr.fit(model, sl, steps=40, key=key, progress=None, eval_fn=capture, eval_every=8, **KW)
  # the short fit's parameters are the long fit's after 8 steps: same levels, learning rates, starts, PSF samples
  for a, b in zip(jax.tree.leaves(inner), jax.tree.leaves(seen[1])):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
  # a fit of another length compressed its schedules before; it still differs from the inner fit
  short, _ = svr.fit(model, sl, steps=8, key=key, progress=None, **KW)
  assert not all(np.allclose(a, b) for a, b in zip(jax.tree.leaves(inner), jax.tree.leaves(short)))
  with pytest.raises(ValueError, match="horizon"):
    svr.fit(model, sl, steps=8, horizon=4, key=key, progress=None, **KW)


def _psnr_after_fit(ph, stacks, normalise):
  if normalise:
    stacks = svr.normalise_intensity(stacks)
  sl = svr.prepare(stacks)
  model = _model(sl, motion=False)
  params, _ = svr.fit(model, sl, steps=200, key=jax.random.PRNGKey(1), progress=None,
                      **{**KW, "lrs": {"volume": 1e-2, "slice": 1e-2}})
  ijk = np.stack(np.meshgrid(*[np.arange(24)] * 3, indexing="ij"), -1)
  vol = svr.sample_volume(model, params, ijk @ ph["affine"][:3, :3].T + ph["affine"][:3, 3], sl["bbox"])
  return svr.masked_psnr_ssim(vol, ph["volume"], ph["mask"])[0]


def test_intensities_times_1000_reach_the_same_psnr_after_normalisation(subject):
  ph, stacks = subject
  scaled = [{**st, "image": st["image"] * 1000.0} for st in stacks]
  base = _psnr_after_fit(ph, stacks, normalise=True)
  assert abs(_psnr_after_fit(ph, scaled, normalise=True) - base) < 0.5
  assert base > 14.0
  # without it the same fit collapses (the learning rates and the softplus output assume values near 1)
  assert _psnr_after_fit(ph, scaled, normalise=False) < base - 3.0
  with pytest.raises(ValueError, match="stack 0"):
    svr.normalise_intensity([{**stacks[0], "image": np.zeros_like(stacks[0]["image"])}])


def test_oblique_stack_round_trips_through_nifti_and_matches_the_simulator(tmp_path):
  ph = fetal.fetal_brain_phantom(24, 1.6, seed=4)
  # zero-padded, so that SciPy's and JAX's constant modes agree at the edge (they interpolate it differently)
  ph = {"volume": np.pad(ph["volume"], 3), "affine": ph["affine"] @ np.diag([1.0, 1, 1, 1]) - np.c_[
      np.zeros((4, 3)), np.r_[3 * 1.6 * np.ones(3), 0]]}
  oblique = Rotation.from_rotvec([0.4, -0.3, 0.5]).as_matrix()
  st = fetal.simulate_stacks(ph["volume"], ph["affine"], seed=5, orientations=(oblique,), inplane=1.6,
                             thickness=4.0, motion="none", drift=0.0, noise=0.0)[0]
  nib.save(nib.Nifti1Image(st["image"], st["affine"]), tmp_path / "oblique.nii.gz")
  back = load_stacks([str(tmp_path / "oblique.nii.gz")], thickness=4.0)[0]
  np.testing.assert_allclose(back["affine"], st["affine"], atol=1e-5)
  # the imaging model through the loaded affine reproduces the simulator's oblique slices
  sl = svr.device_slices(svr.prepare([back]))
  offsets, weights = fetal.psf_quadrature((1.6, 1.6), 4.0)
  inv = jnp.asarray(np.linalg.inv(ph["affine"]), jnp.float32)

  def volume_fn(x):
    v = x @ inv[:3, :3].T + inv[:3, 3]
    return jax.scipy.ndimage.map_coordinates(jnp.asarray(ph["volume"]), list(v.T), order=1, mode="constant")
  pred = svr.acquire(volume_fn, sl, jnp.arange(len(sl["values"])), jnp.asarray(offsets),
                     jnp.zeros((len(sl["stack"]), 6)), jnp.asarray(weights))
  np.testing.assert_allclose(np.asarray(pred), np.asarray(sl["values"]), atol=1e-4)
  with pytest.raises(ValueError, match="rotation"):
    fetal.slice_frame(np.ones((3, 3)))


def test_siren_motion_network_and_quadratic_psf_ramp_shapes():
  net = svr.SirenMotion(num_stacks=3)
  stack, pos = jnp.array([0, 0, 1, 2, 2]), jnp.array([0.0, 1.0, 0.5, 0.0, 1.0])
  params = net.init(jax.random.PRNGKey(0), stack, pos)
  assert net.apply(params, stack, pos).shape == (5, 6)
  np.testing.assert_array_equal(net.apply(params, stack, pos), 0.0)         # starts at the stacks' geometry
  kernels = [v for k, v in jax.tree_util.tree_leaves_with_path(params) if "kernel" in jax.tree_util.keystr(k)]
  assert [k.shape for k in kernels] == [(2, 64), (64, 64), (64, 6)]        # (slice, stack) -> 2 x 64 -> 6
  moved = jax.tree.map(lambda x: x + 0.01, params)
  out = np.asarray(net.apply(moved, stack, pos))
  assert np.abs(out[0] - out[3]).max() > 1e-4                              # the stack id matters
  assert svr.meta_groups(svr.SVRModel(svr.Siren(), net)) == ("volume", "motion")
  assert svr.meta_groups(svr.SVRModel(svr.Siren(), net), meta_motion=False) == ("volume",)
  ramp = [svr.psf_ramp(i, 1000, 128, "quadratic") for i in range(0, 1000, 50)]
  assert ramp[0] == 1 and max(ramp) == 128 and ramp == sorted(ramp)
  assert svr.psf_ramp(500, 1000, 128, "quadratic") == 32                    # 128 * 0.5^2
  assert svr.psf_offsets(jax.random.PRNGKey(0), (7,), 128, jnp.ones(3)).shape == (7, 128, 3)


def test_prealignment_recovers_a_stack_offset(subject):
  _, stacks = subject
  shift = np.eye(4)
  shift[:3, 3] = [3.0, -2.0, 2.5]
  moved = [stacks[0], {**stacks[1], "affine": shift @ stacks[1]["affine"]}, stacks[2]]
  aligned = svr.prealign_stacks(moved)
  c = stacks[1]["affine"] @ np.r_[(np.array(stacks[1]["image"].shape) - 1) / 2, 1.0]
  err = np.linalg.norm(aligned[1]["affine"] @ np.linalg.inv(stacks[1]["affine"]) @ c - c)
  assert err < 0.6 < np.linalg.norm(shift[:3, 3])
  np.testing.assert_array_equal(aligned[0]["affine"], stacks[0]["affine"])


def test_n4_reduces_a_smooth_bias_field():
  # 48^3: on a 24^3 phantom's stack the few N4 control points cannot separate the field from the anatomy
  ph = fetal.fetal_brain_phantom(48, 1.2, seed=2)
  st = fetal.simulate_stacks(ph["volume"], ph["affine"], seed=3, mask=ph["mask"], inplane=1.2, thickness=3.6,
                             motion="none", noise=0.01)[0]
  x = np.linspace(-1, 1, st["image"].shape[0])
  biased = st["image"] * np.exp(0.3 * x)[:, None, None]
  corrected = svr.n4_bias_correction(biased, st["affine"], st["mask"])
  m = st["mask"] & (st["image"] > 0.2)
  assert np.std(np.log(corrected[m] / st["image"][m])) < 0.7 * np.std(np.log(biased[m] / st["image"][m]))


def test_halo_adds_background_pixels_within_the_distance(subject):
  _, stacks = subject
  n0 = int(svr.prepare(stacks)["num_pixels"])
  sl = svr.prepare(stacks, halo_mm=3.2)
  grown = svr.slices.halo(stacks[0]["mask"], (1.6, 1.6), 3.2)
  assert int(sl["num_pixels"]) > n0 and (grown >= stacks[0]["mask"]).all()
  d = ndimage.distance_transform_edt(~stacks[0]["mask"][:, :, 5], sampling=1.6)
  np.testing.assert_array_equal(grown[:, :, 5], d <= 3.2)


def test_registered_evaluation_undoes_a_global_rotation():
  ph = fetal.fetal_brain_phantom(48, 1.2, seed=6)
  rotated = ndimage.rotate(ph["volume"], 4.0, axes=(0, 1), reshape=False, order=1)
  plain = svr.registered_psnr_ssim(rotated, ph["volume"], ph["mask"], ph["affine"], register=False)
  reg = svr.registered_psnr_ssim(rotated, ph["volume"], ph["mask"], ph["affine"])
  assert abs(reg["reg_rot_deg"] - 4.0) < 0.5 and reg["psnr"] > plain["psnr"] + 2.0
  same = svr.registered_psnr_ssim(ph["volume"], ph["volume"], ph["mask"], ph["affine"], register=False)
  assert same["psnr"] > 100 and same["ssim"] > 0.999


def test_severe_motion_has_inter_slice_jumps():
  rng = np.random.default_rng(0)
  walk = fetal.draw_motion(rng, 200, "random_walk", 20.0, 10.0)
  jumps = fetal.draw_motion(np.random.default_rng(0), 200, "random_walk_jumps", 20.0, 10.0)
  np.testing.assert_allclose(np.abs(jumps).max(0), [np.radians(20)] * 3 + [10.0] * 3, rtol=1e-6)
  # heavy-tailed inter-slice steps: the share of steps over 4x the median step, per component
  big = lambda m: np.mean(np.abs(np.diff(m, axis=0)) > 4 * np.median(np.abs(np.diff(m, axis=0)), 0))  # noqa: E731
  assert big(jumps) > 0.05 > 0.02 > big(walk)
