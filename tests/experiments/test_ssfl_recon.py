"""SSFL-Recon: the official protocol (one acquisition per training subject, every view inside it), the tiny run
end to end, and real cine k-space in (CMRxRecon / dynamic HDF5 / ISMRMRD, own masks, bad files)."""

import json
import math
import os

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.ssfl_recon import config as ssfl_config
from experiments.ssfl_recon import data as D
from experiments.ssfl_recon import train as T
from jaxmed import mri
from jaxmed.io import KSpaceError, load_cmrxrecon
from jaxmed.synth.cine import cine_phantom


def small_config(**data):
  config = ssfl_config.get_config("tiny")
  config.data.update(data)
  return config


def test_ssfl_recon_tiny_end_to_end(tmp_path):
  config = ssfl_config.get_config("tiny")
  results = T.train_and_evaluate(config, str(tmp_path))
  for prefix in ("", "acq_test_r/"):
    for r in config.data.eval_r:
      for method in T.METHODS:
        for metric in ("psnr", "psnr_sd", "ssim", "nmse", "psnr_official", "ssim_official"):
          key = f"{prefix}{metric}/R{r}/{method}"
          assert key in results and math.isfinite(results[key]), key
    assert results[f"{prefix}protocol/unseen_fraction_max"] == 0.0  # measured over the run's real batches
    lo, hi = results[f"{prefix}paired_gain_ci/R8/ssfl_vs_nofeat"]
    assert lo <= results[f"{prefix}paired_gain/R8/ssfl_vs_nofeat"] <= hi
  assert results["protocol/acquired_fraction"] == pytest.approx(0.5, abs=0.05)
  assert results["acq_test_r/protocol/acquired_fraction"] == pytest.approx(1 / 8, abs=0.05)
  assert results["psnr/R4/cg_sense"] > results["psnr/R4/zero_filled"]
  for r in config.data.eval_r:
    assert os.path.exists(tmp_path / f"recon_R{r}.png")
  assert os.path.exists(tmp_path / "psnr_vs_r.png")
  for name in ("features_vicreg", *T.NETS):
    assert os.path.isdir(tmp_path / "acq" / "seed0" / name / "checkpoints"), name
  rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
  assert "acq_test_r/seed0/ssfl" in {r["run"] for r in rows}


def test_every_self_supervised_input_and_loss_mask_lies_inside_the_acquisition():
  config = small_config(num_train=4)
  subjects = D.training_subjects(config, 2.0)
  audit = D.MaskAudit(subjects)
  for step in range(30):
    batch = audit.record(D.parallel_batch(subjects, config, step, 2, (2, 16)))
    acq = np.stack([subjects[i]["acquired"] for i in batch["subject"]])
    for key in ("m1", "m2"):
      assert not (batch[key].astype(bool) & ~acq).any(), key
    for key in ("ssdu_train", "ssdu_loss"):
      assert not (batch[key].astype(bool).any(2) & ~acq).any(), key
    assert not np.abs(batch["kspace"] * ~acq[:, :, None, None, :]).any()  # non-acquired k-space is not even there
    audit.record(D.feature_batch(subjects, config, step, (2, 16)))
  assert audit.unseen_fraction_max() == 0.0
  # the old protocol (fresh masks M1 u M2 of the full k-space every step) is what the audit catches
  t, w = subjects[0]["acquired"].shape
  outside = {"subject": np.asarray([0]), "m1": D.vista(w, t, 2.0, 99)[None]}
  audit.record(outside)
  assert audit.unseen_fraction_max() > 0.2


def test_stage1_never_reads_a_non_acquired_sample():
  """Two cohorts equal on the acquired lines and different everywhere else give the same stage-1 loss."""
  config = small_config(num_train=2)
  full = D.synthetic_subjects(config, 2, 0)
  t, w = full[0]["mask"].shape
  acq = D.vista(w, t, 2.0, config.data.acquired_seed)
  rng = np.random.default_rng(0)
  other = [dict(s, kspace=(s["kspace"] + ~acq[:, None, None, :] * rng.standard_normal(s["kspace"].shape)
                           ).astype(np.complex64)) for s in full]
  assert all(np.abs(o["kspace"] - s["kspace"]).max() > 0.5 for o, s in zip(other, full))
  a, b = [D.acquire(s, acq) for s in full], [D.acquire(s, acq) for s in other]
  net, heads = T.recon_net(config), mri.ProjectionHeads(config.model.iterations)
  loss_fn = T.feature_loss(config, net, heads)
  ba, bb = D.feature_batch(a, config, 0, (2, 4)), D.feature_batch(b, config, 0, (2, 4))
  x0, y = T.zero_filled(ba["kspace"], ba["maps"], ba["m1"])
  _, enc = net.apply(net.init(jax.random.PRNGKey(0), x0, y, ba["maps"], ba["m1"]), x0, y, ba["maps"], ba["m1"])
  params = {"extractor": net.init(jax.random.PRNGKey(1), x0, y, ba["maps"], ba["m1"]),
            "heads": heads.init(jax.random.PRNGKey(2), [jnp.concatenate([e] * 2) for e in enc])}
  grad = jax.jit(jax.value_and_grad(lambda p, b: loss_fn(p, b, None)[0]))
  la, ga = grad(params, ba)
  lb, gb = grad(params, bb)
  assert float(la) == float(lb)
  jax.tree.map(lambda u, v: np.testing.assert_array_equal(np.asarray(u), np.asarray(v)), ga, gb)
  assert not np.abs(ba["kspace"] * ~acq[None, :, None, None, :]).any()


@pytest.mark.parametrize("shape", [(30, 32), (16, 12)])
def test_network_runs_and_is_adjoint_consistent_on_any_shape(shape):
  h, w = shape
  p = cine_phantom(3, size=shape, frames=5, coils=4, noise=0.0)
  mask = mri.vista_mask(w, 5, 3.0, seed=1)
  rng = np.random.default_rng(0)
  x = rng.standard_normal((5, h, w)) + 1j * rng.standard_normal((5, h, w))
  yk = rng.standard_normal((5, 4, h, w)) + 1j * rng.standard_normal((5, 4, h, w))
  ax = mri.sense_forward(jnp.asarray(x, jnp.complex64), p["maps"], mask)
  ahy = mri.sense_adjoint(jnp.asarray(yk, jnp.complex64), p["maps"], mask)
  np.testing.assert_allclose(np.vdot(np.asarray(ax), yk), np.vdot(x, np.asarray(ahy)), rtol=1e-4)
  net = mri.UnrolledRecon(iterations=1, filters=4, levels=2)
  k, maps, m = p["kspace"][None], p["maps"][None], mask[None].astype(np.float32)
  x0, y = T.zero_filled(k, maps, m)
  params = net.init(jax.random.PRNGKey(0), x0, y, maps, m)
  out, (enc,) = net.apply(params, x0, y, maps, m)
  assert out.shape == (1, 5, h, w) and np.isfinite(np.asarray(out)).all()
  assert enc.shape == (1, 2, -(-h // 4), -(-w // 4), 8)  # padded to a multiple of 4, pooled twice, 2F channels
  # tau = 0 and lambda = 1 with a full mask: the step is x - A^H(A x - y) = A^H y (A^H A = I)
  full = np.ones((1, 5, w), np.float32)
  params = jax.tree_util.tree_map_with_path(
      lambda path, v: jnp.zeros_like(v) if "tau_0" in jax.tree_util.keystr(path) else v, params)
  x0f, yf = T.zero_filled(k, maps, full)
  out, _ = net.apply(params, jnp.zeros_like(x0f), yf, maps, full)
  np.testing.assert_allclose(np.asarray(out), np.asarray(x0f), atol=1e-4)


def test_features_are_fused_before_the_bottleneck():
  net = mri.ComplexUNet(filters=4, levels=2)
  x = jnp.ones((1, 8, 16, 16, 1), jnp.complex64)
  _, enc = net.apply(net.init(jax.random.PRNGKey(0), x), x)
  params = net.init(jax.random.PRNGKey(0), x, enc)
  # the bottleneck's first (spatial) conv reads the encoder output (2F = 8) and the features (8): 16 channels
  conv = params["params"]["ComplexConvFrames_2"]["ComplexConv_0"]["re"]["kernel"]
  assert conv.shape == (5, 5, 16, 16)
  assert enc.shape == (1, 2, 4, 4, 8)


def test_tau_and_lambda_stay_nonnegative_under_steps_that_push_them_negative():
  net = mri.UnrolledRecon(iterations=2, filters=2, levels=1)
  x0 = jnp.ones((1, 4, 8, 8), jnp.complex64)
  y, maps, m = jnp.zeros((1, 4, 4, 8, 8), jnp.complex64), jnp.ones((1, 4, 8, 8), jnp.complex64) / 2, jnp.ones((1, 4, 8))
  params = net.init(jax.random.PRNGKey(0), x0, y, maps, m)
  scalars = lambda p: {k: v for k, v in p["params"].items() if k.startswith(("tau_", "lambda_"))}  # noqa: E731
  tx = T.optimizer(0.05, 100)
  opt = tx.init(params)
  push = jax.grad(lambda p: sum(jax.tree.leaves(scalars(p))))  # d/d(scalar) = +1: descent drives them down

  @jax.jit
  def step(params, opt):
    u, opt = tx.update(push(params), opt, params)
    return jax.tree.map(lambda a, b: a + b, params, u), opt

  for _ in range(60):
    params, opt = step(params, opt)
  vals = np.asarray(jax.tree.leaves(scalars(params)))
  assert (vals >= 0).all() and (vals == 0).all()  # projected onto 0, as Keras' NonNeg
  # without the projection Adam alone takes them negative, and the forward pass still reads max(., 0)
  bad = jax.tree_util.tree_map_with_path(
      lambda path, v: -jnp.ones_like(v) if "tau_" in jax.tree_util.keystr(path) else v, params)
  np.testing.assert_allclose(np.asarray(net.apply(bad, x0, y, maps, m)[0]),
                             np.asarray(net.apply(params, x0, y, maps, m)[0]), atol=1e-6)


def _write_cmrxrecon(path, kspace_tsc_yx, name, mask_file=None, mask=None):
  """CMRxRecon's MATLAB v7.3 layout as h5py sees it: compound real/imag, [T, S, C, ky, kx]."""
  dt = np.dtype([("real", "<f4"), ("imag", "<f4")])
  arr = np.empty(kspace_tsc_yx.shape, dt)
  arr["real"], arr["imag"] = kspace_tsc_yx.real, kspace_tsc_yx.imag
  with h5py.File(path, "w") as f:
    f[name] = arr
  if mask_file is not None:
    with h5py.File(mask_file, "w") as f:
      f["mask08"] = mask


def test_undersampled_cmrxrecon_file_is_read_with_its_own_mask(tmp_path):
  p = cine_phantom(5, size=(20, 16), frames=6, coils=4, noise=0.0)  # [T, C, H=kx, W=ky]
  lines = np.zeros(16, bool)
  lines[::4] = True
  lines[5:11] = True  # ACS
  k = p["kspace"] * lines[None, None, None, :]
  raw = k.transpose(0, 1, 3, 2)[:, None]  # [T, S=1, C, ky, kx]
  mask_2d = np.broadcast_to(lines[:, None], (16, 20)).astype(np.uint8)  # [ky, kx]
  _write_cmrxrecon(tmp_path / "cine_sax.mat", raw, "kspace_sub08", tmp_path / "cine_sax_mask.mat", mask_2d)
  (s,) = load_cmrxrecon(str(tmp_path / "cine_sax.mat"), mask_path=str(tmp_path / "cine_sax_mask.mat"))
  assert s["kspace"].shape == (6, 4, 20, 16) and not s["fully_sampled"]
  np.testing.assert_array_equal(s["mask"], np.broadcast_to(lines, (6, 16)))
  np.testing.assert_allclose(s["kspace"], k, atol=1e-6)
  # the mask is the acquisition of the training subject (and without a mask file, the lines holding data are)
  (s2,) = load_cmrxrecon(str(tmp_path / "cine_sax.mat"))
  np.testing.assert_array_equal(s2["mask"], s["mask"])
  config = small_config(train_files=str(tmp_path / "cine_sax.mat"))
  (sub,) = D.training_subjects(config, 2.0)
  np.testing.assert_array_equal(sub["acquired"], s["mask"])
  assert sub["maps"].shape == (4, 20, 16) and "gt" not in sub
  # the mask file disagrees with the data: an error naming the file and the field
  bad = mask_2d.copy()
  bad[0] = 0
  _write_cmrxrecon(tmp_path / "cine_sax.mat", raw, "kspace_sub08", tmp_path / "bad_mask.mat", bad)
  with pytest.raises(KSpaceError, match="kspace_sub08: the mask does not match"):
    load_cmrxrecon(str(tmp_path / "cine_sax.mat"), mask_path=str(tmp_path / "bad_mask.mat"))


def test_undersampled_training_files_run_end_to_end_without_supervised(tmp_path):
  """Real undersampled training data: its own mask is the acquisition and there is no image to supervise with."""
  lines = np.zeros(14, bool)
  lines[::3] = True
  lines[4:11] = True  # 7 calibration lines for ESPIRiT
  for i in range(2):
    p = cine_phantom(20 + i, size=(17, 14), frames=6, coils=4, noise=0.0)
    k = p["kspace"] * lines[None, None, None, :]
    _write_cmrxrecon(tmp_path / f"train{i}.mat", k.transpose(0, 1, 3, 2)[:, None], "kspace_sub04")
  p = cine_phantom(30, size=(17, 14), frames=6, coils=4, noise=0.0)
  _write_cmrxrecon(tmp_path / "test.mat", p["kspace"].transpose(0, 1, 3, 2)[:, None], "kspace_full")
  config = small_config(train_files=str(tmp_path / "train*.mat"), test_files=str(tmp_path / "test.mat"),
                        prospective_r=0.0)
  results = T.train_and_evaluate(config, str(tmp_path / "run"))
  assert results["num_subjects/train"] == 2 and results["protocol/unseen_fraction_max"] == 0.0
  assert results["protocol/acquired_fraction"] == pytest.approx(lines.mean())
  assert "psnr/R8/supervised" not in results and not any(k.startswith("acq_test_r/") for k in results)
  for method in ("zero_filled", "cg_sense", "ssdu", "parallel_nofeat", "ssfl", "ssfl_random_features"):
    assert math.isfinite(results[f"psnr/R8/{method}"]), method


def test_bad_cine_files_get_one_clear_error(tmp_path):
  with h5py.File(tmp_path / "none.mat", "w") as f:
    f["kspace"] = np.zeros(3)
  with pytest.raises(KSpaceError, match="none.mat: no dataset among"):
    load_cmrxrecon(str(tmp_path / "none.mat"))
  _write_cmrxrecon(tmp_path / "rank.mat", np.zeros((4, 3, 5), np.complex64), "kspace_full")
  with pytest.raises(KSpaceError, match=r"rank.mat:kspace_full: shape \(4, 3, 5\)"):
    load_cmrxrecon(str(tmp_path / "rank.mat"))
  for i, size in enumerate(((12, 12), (12, 10))):
    p = cine_phantom(i, size=size, frames=4, coils=4, noise=0.0)
    _write_cmrxrecon(tmp_path / f"s{i}.mat", p["kspace"].transpose(0, 1, 3, 2)[:, None], "kspace_full")
  with pytest.raises(KSpaceError, match=r"s1.mat slice 0: kspace \[T, C, H, W\] = \(4, 4, 12, 10\) differs"):
    D.file_subjects(str(tmp_path / "s*.mat"))
  # sizes and frames come from the files, not the config (the config says 17 x 14, 6 frames)
  config = small_config(train_files=str(tmp_path / "s0.mat"), test_files=str(tmp_path / "s0.mat"))
  (sub,) = D.training_subjects(config, 2.0)
  assert sub["kspace"].shape == (4, 4, 12, 12) and sub["acquired"].mean() == pytest.approx(0.5, abs=0.1)
  batch = D.parallel_batch([sub], config, 0, 1, (2, 4))
  loss = T.make_loss("parallel", T.recon_net(config))
  x0, y = T.zero_filled(batch["kspace"], batch["maps"], batch["m1"])
  params = T.recon_net(config).init(jax.random.PRNGKey(0), x0, y, batch["maps"], batch["m1"])
  assert np.isfinite(float(loss(params, batch, None)[0]))


def test_test_rs_that_draw_the_same_mask_are_refused():
  config = small_config(shape=(16, 24), eval_r=(4, 8, 12, 16))  # 24 lines: R 12 and 16 both draw 2 per frame
  with pytest.raises(ValueError, match=r"eval_r \(4, 8, 12, 16\): with W = 24"):
    T.test_inputs(config, D.test_subjects(config))


def test_dynamic_h5_mask_is_the_acquisition(tmp_path):
  p = cine_phantom(0, size=(16, 16), frames=4, coils=4, noise=0.0)
  mask = mri.vista_mask(16, 4, 4.0, seed=0)
  with h5py.File(tmp_path / "a.h5", "w") as f:
    f.create_dataset("kspace", data=(p["kspace"] * mask[:, None, None, :])[None]).attrs["axis_order"] = \
        "slice,frame,coil,kx,ky"
    f["coil_maps"] = p["maps"][None]
    f["mask"] = mask[:, None, None, :]
  config = small_config(train_files=str(tmp_path / "a.h5"))
  (sub,) = D.training_subjects(config, 2.0)
  np.testing.assert_array_equal(sub["acquired"], mask)
  np.testing.assert_allclose(sub["maps"], p["maps"])


def test_ismrmrd_file_is_read_with_its_lines_and_phases(tmp_path):
  ismrmrd = pytest.importorskip("ismrmrd")
  p = cine_phantom(1, size=(16, 12), frames=3, coils=4, noise=0.0)  # readout 16 (x), 12 phase-encoding lines
  ny = 12
  x = ismrmrd.xsd
  enc = x.encodingType(
      trajectory=x.trajectoryType.CARTESIAN,
      encodedSpace=x.encodingSpaceType(matrixSize=x.matrixSizeType(x=32, y=ny, z=1),
                                       fieldOfView_mm=x.fieldOfViewMm(x=600, y=300, z=8)),
      reconSpace=x.encodingSpaceType(matrixSize=x.matrixSizeType(x=16, y=ny, z=1),
                                     fieldOfView_mm=x.fieldOfViewMm(x=300, y=300, z=8)),
      encodingLimits=x.encodingLimitsType(kspace_encoding_step_1=x.limitType(minimum=0, maximum=ny - 1, center=ny // 2),
                                          phase=x.limitType(minimum=0, maximum=2, center=1), slice=x.limitType(minimum=0, maximum=0, center=0)))
  header = x.ismrmrdHeader(encoding=[enc], experimentalConditions=x.experimentalConditionsType(H1resonanceFrequency_Hz=63_500_000))
  # readout oversampled 2x: the image padded to 32 along x, then back to k-space
  img = np.fft.fftshift(np.fft.ifft(np.fft.ifftshift(p["kspace"], axes=2), axis=2, norm="ortho"), axes=2)
  over = np.zeros((3, 4, 32, ny), complex)
  over[:, :, 8:24] = img
  kover = np.fft.fftshift(np.fft.fft(np.fft.ifftshift(over, axes=2), axis=2, norm="ortho"), axes=2)
  mask = mri.vista_mask(ny, 3, 2.0, seed=0)
  dset = ismrmrd.Dataset(str(tmp_path / "ocmr.h5"), "dataset", create_if_needed=True)
  dset.write_xml_header(x.ToXML(header))
  noise = ismrmrd.Acquisition.from_array(np.zeros((4, 32), np.complex64))
  noise.set_flag(ismrmrd.ACQ_IS_NOISE_MEASUREMENT)
  dset.append_acquisition(noise)
  for t in range(3):
    for ky in np.flatnonzero(mask[t]):
      acq = ismrmrd.Acquisition.from_array(kover[t, :, :, ky].astype(np.complex64))
      acq.idx.kspace_encode_step_1, acq.idx.phase, acq.idx.slice = int(ky), t, 0
      dset.append_acquisition(acq)
  dset.close()
  (s,) = D.load_cine(str(tmp_path / "ocmr.h5"))
  np.testing.assert_array_equal(s["mask"], mask)
  np.testing.assert_allclose(s["kspace"], p["kspace"] * mask[:, None, None, :], atol=1e-4)


def test_metrics_match_fastmri():
  fastmri_eval = pytest.importorskip("fastmri.evaluate")
  rng = np.random.default_rng(0)
  gt = np.abs(rng.standard_normal((4, 24, 20))).astype(np.float32)
  x = np.abs(gt + 0.1 * rng.standard_normal(gt.shape)).astype(np.float32)  # magnitudes, as ours read
  assert mri.psnr(x, gt) == pytest.approx(float(np.mean(fastmri_eval.psnr(gt, x))), abs=1e-3)
  assert mri.ssim(x, gt) == pytest.approx(float(np.mean(fastmri_eval.ssim(gt, x))), abs=1e-4)
  assert mri.nmse(x, gt) == pytest.approx(float(np.mean(fastmri_eval.nmse(gt, x))), rel=1e-4)


def test_official_frame_metrics_follow_the_official_definition():
  rng = np.random.default_rng(1)
  gt = (rng.standard_normal((3, 8, 8)) + 1j * rng.standard_normal((3, 8, 8))).astype(np.complex64)
  x = gt + 0.05 * (1 + 1j)
  gt[1] *= 3  # frame 1 is brighter, but the official peak is frame 0's
  x[1] = gt[1] + 0.05 * (1 + 1j)
  peak = np.abs(gt[0]).max()
  expect = np.mean([10 * np.log10(peak ** 2 / np.mean(np.abs(gt[t] - x[t]) ** 2)) for t in range(3)])
  assert mri.psnr_frames(x, gt) == pytest.approx(expect, rel=1e-6)
  assert mri.psnr_frames(gt, gt) > 200
