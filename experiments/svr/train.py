"""INR slice-to-volume reconstruction: no correction vs random init vs Reptile meta-init, on simulated subjects.

1. Subjects: seeded fetal-brain phantoms (``jaxmed.synth.fetal``); each is
   acquired as thick-slice orthogonal stacks with random-walk motion,
   intensity drift, noise and corrupted slices. Meta-training subjects and
   held-out subjects never share a seed.
2. Reptile (``jaxmed.svr.meta_learn``) over the meta-training subjects; the
   meta-initialisation is saved with orbax in ``<workdir>/meta_init`` (a
   rerun loads it).
3. Each held-out subject is reconstructed three ways with the same steps:
   ``nocorr`` (the stacks' geometry is trusted: no motion parameters),
   ``random_init`` and ``meta_init`` (joint volume + motion + slice
   scale/variance). PSNR is tracked every ``eval_every`` steps.
4. Metrics: PSNR/SSIM in the brain mask after min-max normalisation, motion
   error over informative slices, outlier AUROC of the learned slice sigma,
   steps for the meta-init to reach the random-init final PSNR. Outputs for
   the first held-out subject: NIfTI reconstructions, motion tables, slice
   weights, orthogonal views and the PSNR-vs-step curve.
"""

from __future__ import annotations

import json
import os
import time

import jax
import numpy as np

from experiments.svr import SETTINGS
from jaxmed import core, svr
from jaxmed.io import load_stacks
from jaxmed.synth import fetal


def make_subject(config, seed: int) -> dict:
  d = config.data
  ph = fetal.fetal_brain_phantom(d.size, d.spacing, seed=seed)
  stacks = fetal.simulate_stacks(ph["volume"], ph["affine"], seed=seed + 1, mask=ph["mask"], inplane=d.inplane,
                                 thickness=d.thickness, orientations=tuple(d.orientations), motion=d.motion,
                                 max_rot_deg=d.max_rot_deg, max_trans_mm=d.max_trans_mm, drift=d.drift,
                                 noise=d.noise, corrupt_fraction=d.corrupt_fraction)
  sl = svr.prepare(stacks)
  sl = svr.pad_pixels(sl, -(-len(sl["values"]) // 65536) * 65536)  # shared shapes: fits reuse compilations
  ijk = np.stack(np.meshgrid(*[np.arange(d.size)] * 3, indexing="ij"), -1)
  world = ijk @ ph["affine"][:3, :3].T + ph["affine"][:3, 3]
  return {"phantom": ph, "stacks": stacks, "slices": sl, "world": world,
          "motion": np.concatenate([s["motion"] for s in stacks]).astype(np.float32),
          "corrupted": np.concatenate([s["corrupted"] for s in stacks])}


def build_model(config, sl, correct_motion: bool = True) -> svr.SVRModel:
  m = config.model
  if m.volume == "hash":
    volume = svr.volume_inr("hash", levels=m.levels, log2_table=m.log2_table, base_resolution=m.base_resolution,
                            per_level_scale=m.per_level_scale)
  else:
    volume = svr.volume_inr(m.volume, hidden=m.siren_hidden, layers=m.siren_layers)
  motion = svr.motion_model(m.motion, len(sl["stack"]), int(sl["num_stacks"])) if correct_motion else None
  return svr.SVRModel(volume, motion, data_term=m.data_term, pixel_variance=m.pixel_variance,
                      bias_field=m.bias_field, drift_weight=m.drift_weight,
                      smooth_weight=m.smooth_weight,
                      zero_mean_motion=m.zero_mean_motion, outlier_drift_power=m.outlier_drift_power)


def fit_kwargs(config, steps: int) -> dict:
  f = config.fit
  return {"steps": steps, "lrs": {"volume": f.lr_volume, "motion": f.lr_motion, "slice": f.lr_slice,
                                  "pixel": f.lr_slice, "bias": f.lr_slice},
          "samples_per_step": f.samples_per_step, "psf_max": f.psf_max, "psf_schedule": f.psf_schedule,
          "final_fraction": f.final_fraction, "coarse_to_fine": f.coarse_to_fine,
          "starts": {"motion": f.start_motion, "slice": f.start_slice, "pixel": f.start_slice}}


def evaluate_volume(model, params, subject) -> dict:
  ph = subject["phantom"]
  vol = svr.sample_volume(model, params, subject["world"], subject["slices"]["bbox"])
  psnr, ssim = svr.masked_psnr_ssim(vol, ph["volume"], ph["mask"])
  return {"psnr": psnr, "ssim": ssim}


def meta_initialisation(config, workdir: str, key) -> dict:
  path = os.path.join(workdir, "meta_init")
  if os.path.isdir(path):
    return svr.load_meta_init(path)
  subjects = [make_subject(config, 1000 + 10 * i) for i in range(config.data.num_meta)]
  model = build_model(config, subjects[0]["slices"])
  kw = fit_kwargs(config, config.reptile.inner_steps)

  def inner(params, sl, k):
    fitted, _ = svr.fit(model, sl, params=params, key=k, progress=None, **kw)
    return fitted

  meta = svr.meta_learn(model, [s["slices"] for s in subjects], inner, epochs=config.reptile.epochs,
                        meta_lr=config.reptile.meta_lr, key=key, optimizer=config.reptile.optimizer)
  svr.save_meta_init(path, meta)
  return meta


def steps_to(history: list[dict], target: float) -> float:
  """First evaluated step whose PSNR reaches ``target`` (NaN if none)."""
  for h in history:
    if h["psnr"] >= target - 1e-9:
      return float(h["step"])
  return float("nan")


def run_subject(config, subject, meta, workdir: str, index: int, key) -> dict:
  """The three settings on one held-out subject; cached in ``<workdir>/subject_<i>-<settings key>.json``."""
  cache = os.path.join(workdir, f"subject_{index}-{core.settings_key(core.result_settings(config))}.json")
  if os.path.exists(cache):
    with open(cache) as f:
      return json.load(f)
  sl, steps = subject["slices"], config.fit.steps
  counts = svr.pixel_counts(sl)   # not np.bincount(sl["slice"]): the pixel arrays are padded
  keep, has = svr.informative_slices(counts), counts > 0
  out: dict = {"history": {}}
  for setting in SETTINGS:
    model = build_model(config, sl, correct_motion=setting != "nocorr")
    start = ({g: meta[g] for g in meta} if setting == "meta_init" else None)
    t0 = time.time()
    params, hist = svr.fit(model, sl, params=start, key=key, eval_fn=lambda p, m=model: evaluate_volume(m, p, subject),
                           eval_every=config.fit.eval_every, progress=f"{setting} #{index}", **fit_kwargs(config, steps))
    out[f"wall_time_s/{setting}"] = time.time() - t0
    out["history"][setting] = [{"step": h["step"], "psnr": h["psnr"]} for h in hist]
    out.update({f"{k}/{setting}": v for k, v in evaluate_volume(model, params, subject).items()})
    est = np.asarray(model.slice_motion(params, svr.device_slices(sl)))
    out[f"motion_err_deg/{setting}"], out[f"motion_err_mm/{setting}"] = svr.motion_errors(est, subject["motion"], keep)
    # the same over the clean slices only: a corrupted slice's content does not pin its pose (its sigma grows,
    # so the data term stops constraining it), and its estimate can drift beyond the injected motion
    clean = keep & ~np.asarray(subject["corrupted"], bool)
    out[f"motion_err_deg/{setting}/clean"], out[f"motion_err_mm/{setting}/clean"] = svr.motion_errors(
        est, subject["motion"], clean)
    if setting == "random_init":
      # the outlier score is the learned sigma on the volume's intensity scale (sigma_s / c_s): a slice
      # whose whole signal dropped is otherwise explained by its scale and fits with a small raw sigma
      sigma = svr.slice_sigma_in_volume_units(params)
      out["outlier_auroc"] = svr.outlier_auroc(subject["corrupted"], sigma, has)
      out["outlier_auroc/informative"] = svr.outlier_auroc(subject["corrupted"], sigma, keep)
      out["outlier_auroc/raw_sigma"] = svr.outlier_auroc(
          subject["corrupted"], np.exp(np.asarray(params["slice"]["log_sigma"])), has)
    if index == 0:
      svr.write_outputs(workdir, model, params, sl, spacing=config.fit.output_spacing, prefix=f"{setting}_")
      out[f"volume/{setting}"] = svr.sample_volume(model, params, subject["world"], sl["bbox"]).tolist()
  target = out["history"]["random_init"][-1]["psnr"]
  out["steps_to_target/random_init"] = steps_to(out["history"]["random_init"], target)
  out["steps_to_target/meta_init"] = steps_to(out["history"]["meta_init"], target)
  core.write_json(cache, out)
  return out


def reconstruct_user_stacks(config, workdir: str, key) -> dict:
  d = config.data
  paths = [p for p in d.stacks.split(",") if p]
  masks = [p for p in d.masks.split(",") if p] or None
  stacks = load_stacks(paths, masks, d.thickness_user or None)
  sl = svr.prepare(stacks)
  model = build_model(config, sl)
  start = svr.load_meta_init(config.meta_init) if config.meta_init else None
  params, _ = svr.fit(model, sl, params=start, key=key, **fit_kwargs(config, config.fit.steps))
  paths_out = svr.write_outputs(workdir, model, params, sl, spacing=config.fit.output_spacing)
  print(f"wrote {paths_out}")
  return {"num_slices": len(sl["stack"]), "num_pixels": len(sl["values"])}


def train_and_evaluate(config, workdir: str) -> dict:
  core.open_workdir(workdir, config)
  key = jax.random.PRNGKey(config.seed)
  if config.data.stacks:
    return core.write_results(workdir, reconstruct_user_stacks(config, workdir, key))
  k_meta, k_fit = jax.random.split(key)
  meta = meta_initialisation(config, workdir, k_meta)
  per_subject = []
  first = None
  for i in range(config.data.num_test):
    subject = make_subject(config, 5000 + 10 * i)
    per_subject.append(run_subject(config, subject, meta, workdir, i, k_fit))
    if i == 0:
      first = subject
  results = aggregate(per_subject, config.fit.steps)
  results["num_subjects/test"] = config.data.num_test
  results["num_subjects/meta"] = config.data.num_meta
  plot_views(first, per_subject[0], os.path.join(workdir, "views.png"))
  plot_curves(per_subject, os.path.join(workdir, "psnr_curve.png"))
  return core.write_results(workdir, results)


def aggregate(per_subject: list[dict], steps: int) -> dict:
  """Mean of every scalar over the held-out subjects (NaN-aware), with steps-to-target made honest.

  A subject whose fit never reaches the target counts as the whole fit (``steps``; the mean is then a
  lower bound) and ``steps_to_target/<setting>/reached`` is the fraction that did; a plain NaN-mean would
  silently report only the subjects that reached it. The per-subject steps are kept as ``.../subject_<i>``.
  """
  keys = [k for k in per_subject[0] if k != "history" and not k.startswith("volume/")]
  # result_float: a cached subject's NaN comes back from JSON as "nan"
  results = {k: float(np.nanmean([core.result_float(s[k]) for s in per_subject])) for k in keys}
  for k in [k for k in keys if k.startswith("steps_to_target/")]:
    vals = np.array([core.result_float(s[k]) for s in per_subject], np.float64)
    results[k] = float(np.mean(np.where(np.isnan(vals), steps, vals)))
    results[f"{k}/reached"] = float(np.mean(~np.isnan(vals)))
    results.update({f"{k}/subject_{i}": float(v) for i, v in enumerate(vals)})
  return results


def plot_views(subject, res, path):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  gt = subject["phantom"]["volume"]
  vols = [("ground truth", gt)] + [(s, np.asarray(res[f"volume/{s}"])) for s in SETTINGS]
  c = np.array(gt.shape) // 2
  fig, axes = plt.subplots(3, len(vols), figsize=(2.6 * len(vols), 7.6))
  for j, (name, v) in enumerate(vols):
    m = subject["phantom"]["mask"]
    v = np.clip((v - v[m].min()) / (np.ptp(v[m]) + 1e-8), 0, 1)
    for i, view in enumerate((v[c[0]], v[:, c[1]], v[:, :, c[2]])):
      axes[i, j].imshow(np.rot90(view), cmap="gray", vmin=0, vmax=1)
      axes[i, j].axis("off")
    title = name if j == 0 else f"{name}\n{res[f'psnr/{name}']:.1f} dB"
    axes[0, j].set_title(title, fontsize=9)
  fig.tight_layout()
  core.save_figure(fig, path, dpi=110)
  plt.close(fig)


def plot_curves(per_subject, path):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(5, 3.4))
  for setting, color in zip(SETTINGS, ("tab:gray", "tab:blue", "tab:orange")):
    for i, res in enumerate(per_subject):
      h = res["history"][setting]
      ax.plot([x["step"] for x in h], [x["psnr"] for x in h], color=color, alpha=0.8,
              label=setting if i == 0 else None)
  ax.set_xlabel("step")
  ax.set_ylabel("PSNR in mask (dB)")
  ax.legend(fontsize=8)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  core.save_figure(fig, path, dpi=110)
  plt.close(fig)
