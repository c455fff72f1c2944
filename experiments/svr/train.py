"""INR slice-to-volume reconstruction: no correction, an oracle, random and Reptile meta-init, on simulated subjects.

1. Subjects: seeded fetal-brain phantoms (``jaxmed.synth.fetal``), each
   acquired as thick-slice orthogonal stacks with random-walk motion,
   intensity drift, noise and corrupted slices, then pre-processed
   (``config.prep``: percentile intensity normalisation; N4, stack
   pre-alignment and a background halo as options). Meta-training subjects
   (seeds 1000+) and held-out subjects (seeds 6000+) never share a seed.
2. Per seed, Reptile (``jaxmed.svr.meta_learn``) over the training subjects;
   each inner fit is the first ``reptile.inner_steps`` of a test fit (same
   level schedule, learning-rate schedule, group starts and PSF ramp). Saved
   with orbax in ``<workdir>/meta_init_seed<s>`` (a rerun loads it).
3. Each held-out subject and seed: ``random_init`` and ``meta_init`` (joint
   volume + motion + slice scale/variance, same steps, same key); seed 0
   also ``nocorr`` (the floor: the stacks' geometry trusted) and ``oracle``
   (the ceiling: the true motion given and frozen). PSNR is tracked every
   ``eval_every`` steps with the training wall time.
4. Metrics: PSNR/SSIM in the brain mask (the simulator's frame) and after
   rigid registration, 99.9th-percentile clipping and the mask's bounding
   box (MetaSVR's evaluation); motion error over informative slices; outlier
   AUROC; steps and time to the random init's final PSNR.
5. A severe-motion sweep (random walk with inter-slice jumps at
   ``eval.motion_levels`` degrees) and MetaSVR's own options (the
   ``metasvr`` preset's model and fit settings at demo scale).
"""

from __future__ import annotations

import os

import jax
import ml_collections
import numpy as np

from experiments.svr import SETTINGS, plots
from experiments.svr import config as svr_config
from experiments.svr.runs import aggregate, run_fit, steps_to
from jaxmed import core, svr
from jaxmed.io import load_stacks
from jaxmed.synth import fetal

__all__ = ["aggregate", "build_model", "fit_kwargs", "make_subject", "meta_initialisation", "preprocess_stacks",
           "steps_to", "train_and_evaluate"]


def preprocess_stacks(config, stacks: list[dict]) -> list[dict]:
  """``config.prep``: percentile normalisation, N4 and rigid stack pre-alignment (each optional)."""
  p = config.prep
  if p.n4:
    stacks = [{**st, "image": svr.n4_bias_correction(st["image"], st["affine"], st.get("mask"))} for st in stacks]
  if p.normalise:
    stacks = svr.normalise_intensity(stacks, p.percentile)
  if p.prealign:
    stacks = svr.prealign_stacks(stacks)
  return stacks


def make_subject(config, seed: int, *, motion: str | None = None, max_rot_deg: float | None = None,
                 max_trans_mm: float | None = None) -> dict:
  d = config.data
  ph = fetal.fetal_brain_phantom(d.size, d.spacing, seed=seed)
  stacks = fetal.simulate_stacks(
      ph["volume"], ph["affine"], seed=seed + 1, mask=ph["mask"], inplane=d.inplane, thickness=d.thickness,
      orientations=tuple(d.orientations), motion=motion or d.motion,
      max_rot_deg=d.max_rot_deg if max_rot_deg is None else max_rot_deg,
      max_trans_mm=d.max_trans_mm if max_trans_mm is None else max_trans_mm, drift=d.drift, noise=d.noise,
      corrupt_fraction=d.corrupt_fraction)
  sl = svr.prepare(preprocess_stacks(config, stacks), halo_mm=config.prep.halo_mm)
  sl = svr.pad_pixels(sl, -(-len(sl["values"]) // 65536) * 65536)  # shared shapes: fits reuse compilations
  ijk = np.stack(np.meshgrid(*[np.arange(d.size)] * 3, indexing="ij"), -1)
  world = ijk @ ph["affine"][:3, :3].T + ph["affine"][:3, 3]
  return {"phantom": ph, "stacks": stacks, "slices": sl, "world": world, "seed": seed,
          "motion": np.concatenate([s["motion"] for s in stacks]).astype(np.float32),
          "corrupted": np.concatenate([s["corrupted"] for s in stacks])}


def build_model(config, sl, correct_motion: bool = True) -> svr.SVRModel:
  m = config.model
  if m.volume == "hash":
    volume = svr.volume_inr("hash", levels=m.levels, log2_table=m.log2_table, base_resolution=m.base_resolution,
                            per_level_scale=m.per_level_scale)
  elif m.volume == "siren":
    volume = svr.volume_inr("siren", hidden=m.siren_hidden, layers=m.siren_layers, first_omega=m.siren_first_omega,
                            hidden_omega=m.siren_hidden_omega)
  else:
    raise ValueError(f"model.volume {m.volume!r}; expected 'hash' or 'siren'")
  kw = {"hidden": m.motion_hidden, "layers": m.motion_layers} if m.motion in ("inr", "siren") else {}
  motion = svr.motion_model(m.motion, len(sl["stack"]), int(sl["num_stacks"]), **kw) if correct_motion else None
  return svr.SVRModel(volume, motion, data_term=m.data_term, pixel_variance=m.pixel_variance,
                      bias_field=m.bias_field, drift_weight=m.drift_weight, smooth_weight=m.smooth_weight,
                      zero_mean_motion=m.zero_mean_motion, outlier_drift_power=m.outlier_drift_power)


def fit_kwargs(config, steps: int, horizon: int | None = None) -> dict:
  """``svr.fit`` keywords; ``horizon`` (default ``fit.steps``) is the length the schedules are defined over."""
  f = config.fit
  return {"steps": steps, "horizon": f.steps if horizon is None else horizon,
          "lrs": {"volume": f.lr_volume, "motion": f.lr_motion, "slice": f.lr_slice, "pixel": f.lr_slice,
                  "bias": f.lr_slice},
          "samples_per_step": f.samples_per_step, "psf_max": f.psf_max, "psf_schedule": f.psf_schedule,
          "final_fraction": f.final_fraction, "level_steps": f.level_steps,
          "starts": {"motion": f.start_motion, "slice": f.start_slice, "pixel": f.start_slice}}


def meta_initialisation(config, workdir: str, key, seed: int = 0) -> dict:
  """Reptile over the training subjects (``data.meta_seed`` + 10 i); cached in ``<workdir>/meta_init_seed<seed>``."""
  path = os.path.join(workdir, f"meta_init_seed{seed}")
  if os.path.isdir(path):
    return svr.load_meta_init(path)
  subjects = [make_subject(config, config.data.meta_seed + 10 * i) for i in range(config.data.num_meta)]
  model = build_model(config, subjects[0]["slices"])
  kw = fit_kwargs(config, config.reptile.inner_steps)  # the first inner_steps of a test fit

  def inner(params, sl, k):
    fitted, _ = svr.fit(model, sl, params=params, key=k, progress=None, **kw)
    return fitted

  meta = svr.meta_learn(model, [s["slices"] for s in subjects], inner, epochs=config.reptile.epochs,
                        meta_lr=config.reptile.meta_lr, key=key, optimizer=config.reptile.optimizer,
                        meta_motion=config.reptile.meta_motion)
  svr.save_meta_init(path, meta)
  return meta


def held_out(config, workdir, metas, keys) -> list[dict]:
  """Every held-out subject x seed: the settings' fits, one record per (subject, seed)."""
  records = []
  for i in range(config.data.num_test):
    subject = make_subject(config, config.data.test_seed + 10 * i)
    for s, seed in enumerate(config.eval.seeds):
      rec = {"subject": i, "seed": seed}
      for setting in SETTINGS if s == 0 else ("random_init", "meta_init"):
        model = build_model(config, subject["slices"], correct_motion=setting != "nocorr")
        rec.update(run_fit(config, workdir, subject, model, setting, metas[seed], keys[seed],
                           fit_kwargs(config, config.fit.steps), tag=f"s{i}_seed{seed}",
                           keep_volume=(i == 0 and s == 0)))
      records.append(rec)
  return records


def motion_sweep(config, workdir, meta, key) -> dict:
  """Random walk with inter-slice jumps at each severity: random vs meta init (seed 0's meta-init)."""
  out = {}
  for level in config.eval.motion_levels:
    recs = []
    for i in range(config.eval.motion_subjects):
      subject = make_subject(config, config.data.test_seed + 10 * i, motion="random_walk_jumps",
                             max_rot_deg=float(level), max_trans_mm=float(min(level, 10)))
      rec = {}
      for setting in ("random_init", "meta_init"):
        model = build_model(config, subject["slices"])
        rec.update(run_fit(config, workdir, subject, model, setting, meta, key, fit_kwargs(config, config.fit.steps),
                           tag=f"motion{level}_s{i}", register=False))
      keep = svr.informative_slices(svr.pixel_counts(subject["slices"]))
      rec["motion_err_deg/nocorr"], rec["motion_err_mm/nocorr"] = svr.motion_errors(
          np.zeros_like(subject["motion"]), subject["motion"], keep)
      recs.append(rec)
    for k in recs[0]:
      if not k.startswith(("history", "volume")):
        metric, setting = k.split("/", 1)
        out[f"{metric}/motion_{level}deg/{setting}"] = float(np.nanmean([core.result_float(r[k]) for r in recs]))
  return out


def metasvr_options(config, workdir, key) -> dict:
  """MetaSVR's model and fit settings (the ``metasvr`` preset) at this config's data scale, random init."""
  c = svr_config.metasvr(ml_collections.ConfigDict(config.to_dict()))
  c.fit.samples_per_step = config.eval.metasvr_samples
  recs = []
  for i in range(config.eval.metasvr_subjects):
    subject = make_subject(c, config.data.test_seed + 10 * i)
    model = build_model(c, subject["slices"])
    recs.append(run_fit(c, workdir, subject, model, "random_init", None, key, fit_kwargs(c, c.fit.steps),
                        tag=f"metasvr_s{i}", register=config.eval.register))
  keys = [k for k in recs[0] if "/" in k and not k.startswith(("history", "volume"))]
  return {k.replace("random_init", "metasvr_preset"): float(np.nanmean([core.result_float(r[k]) for r in recs]))
          for k in keys}


def reconstruct_user_stacks(config, workdir: str, key) -> dict:
  d = config.data
  paths = [p for p in d.stacks.split(",") if p]
  masks = [p for p in d.masks.split(",") if p] or None
  stacks = preprocess_stacks(config, load_stacks(paths, masks, d.thickness_user or None))
  sl = svr.prepare(stacks, halo_mm=config.prep.halo_mm)
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
  seeds = tuple(config.eval.seeds)
  metas, keys = {}, {}
  for seed in seeds:
    k_meta, keys[seed] = jax.random.split(jax.random.fold_in(key, seed))
    metas[seed] = meta_initialisation(config, workdir, k_meta, seed)
  records = held_out(config, workdir, metas, keys)
  results = aggregate(records, config.fit.steps)
  results.update(motion_sweep(config, workdir, metas[seeds[0]], keys[seeds[0]]))
  results.update(metasvr_options(config, workdir, keys[seeds[0]]))
  results.update({"num_subjects/test": config.data.num_test, "num_subjects/meta": config.data.num_meta,
                  "num_seeds": len(seeds)})
  plots.plot_views(make_subject(config, config.data.test_seed), workdir, results, os.path.join(workdir, "views.png"))
  plots.plot_curves(records, results, os.path.join(workdir, "psnr_curve.png"))
  return core.write_results(workdir, results)
