"""One cached SVR fit with its metrics, and the aggregation over held-out subjects and seeds."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from jaxmed import core, svr
from jaxmed.svr.motion import UNITS


def evaluate_volume(model, params, subject, register: bool = False) -> dict:
  """Masked PSNR / SSIM in the simulator's frame; with ``register`` also MetaSVR's registered scores."""
  ph = subject["phantom"]
  vol = svr.sample_volume(model, params, subject["world"], subject["slices"]["bbox"])
  psnr, ssim = svr.masked_psnr_ssim(vol, ph["volume"], ph["mask"])
  out = {"psnr": psnr, "ssim": ssim}
  if register:
    reg = svr.registered_psnr_ssim(vol, ph["volume"], ph["mask"], ph["affine"])
    out.update({"psnr_reg": reg["psnr"], "ssim_reg": reg["ssim"], "reg_rot_deg": reg["reg_rot_deg"]})
  return out


def _start(model, setting, meta, subject):
  """The model and starting params of a setting: the oracle freezes free motion at the truth."""
  if setting == "meta_init":
    return model, dict(meta)
  if setting == "oracle":
    sl = subject["slices"]
    model = dataclasses.replace(model, motion=svr.FreeMotion(len(sl["stack"])))
    return model, {"motion": {"params": {"motion": np.asarray(subject["motion"] / UNITS, np.float32)}}}
  return model, None


def run_fit(config, workdir, subject, model, setting, meta, key, kw, *, tag, register=None, keep_volume=False):
  """Fits one setting on one subject; cached in ``<workdir>/fits/<tag>_<setting>-<settings key>.json``.

  The key hashes the config; for every setting but ``meta_init`` without the Reptile settings.

  Returns ``{metric/setting: value, "history/setting": [{step, time_s, psnr}]}``.
  """
  register = config.eval.register if register is None else register
  settings = core.result_settings(config)
  if setting != "meta_init":  # Reptile's settings do not change the other fits: their caches survive a change
    settings = {k: v for k, v in settings.items() if not k.startswith(("reptile.", "meta_init"))}
  path = os.path.join(workdir, "fits", f"{tag}_{setting}-{core.settings_key(settings)}.json")
  if os.path.exists(path):
    with open(path) as f:
      return json.load(f)
  model, start = _start(model, setting, meta, subject)
  if setting == "oracle":
    kw = dict(kw, lrs=dict(kw["lrs"], motion=0.0))
  sl = subject["slices"]
  params, hist = svr.fit(model, sl, params=start, key=key, eval_fn=lambda p: evaluate_volume(model, p, subject),
                         eval_every=config.fit.eval_every, progress=f"{setting} {tag}", **kw)
  out = {f"{k}/{setting}": v for k, v in evaluate_volume(model, params, subject, register).items()}
  out[f"history/{setting}"] = [{"step": h["step"], "time_s": h["time_s"], "psnr": h["psnr"]} for h in hist]
  out[f"train_time_s/{setting}"] = hist[-1]["time_s"]
  counts = svr.pixel_counts(sl)
  keep = svr.informative_slices(counts)
  clean = keep & ~np.asarray(subject["corrupted"], bool)
  est = np.asarray(model.slice_motion(params, svr.device_slices(sl)))
  out[f"motion_err_deg/{setting}"], out[f"motion_err_mm/{setting}"] = svr.motion_errors(est, subject["motion"], keep)
  # over the clean slices only: a corrupted slice's content does not pin its pose
  out[f"motion_err_deg/{setting}/clean"], out[f"motion_err_mm/{setting}/clean"] = svr.motion_errors(
      est, subject["motion"], clean)
  if setting in ("random_init", "meta_init") and "slice" in params and kw["lrs"].get("slice", 0) > 0:
    # the outlier score is the learned sigma on the volume's intensity scale (sigma_s / c_s)
    sigma = svr.slice_sigma_in_volume_units(params)
    out[f"outlier_auroc/{setting}"] = svr.outlier_auroc(subject["corrupted"], sigma, counts > 0)
    out[f"outlier_auroc/{setting}/raw_sigma"] = svr.outlier_auroc(
        subject["corrupted"], np.exp(np.asarray(params["slice"]["log_sigma"])), counts > 0)
  if keep_volume:
    np.save(os.path.join(workdir, f"volume_{setting}.npy"),
            svr.sample_volume(model, params, subject["world"], sl["bbox"]).astype(np.float32))
    svr.write_outputs(workdir, model, params, sl, spacing=config.fit.output_spacing, prefix=f"{setting}_")
  os.makedirs(os.path.dirname(path), exist_ok=True)
  core.write_json(path, out)
  return out


def steps_to(history: list[dict], target: float, field: str = "step") -> float:
  """``field`` (``step`` or ``time_s``) of the first evaluation whose PSNR reaches ``target`` (NaN if none).

  The step-0 evaluation is skipped: a fit counts as reaching the target at its first evaluation after training
  starts at the earliest (``eval_every`` steps), so a ratio of steps stays finite.
  """
  for h in history[1:] if history and history[0]["step"] == 0 else history:
    if h["psnr"] >= target - 1e-9:
      return float(h[field])
  return float("nan")


def aggregate(records: list[dict], steps: int) -> dict:
  """Means over held-out subjects and seeds, with steps- and time-to-target made honest.

  Per (subject, seed) the target is the random init's PSNR at its final step. A fit that never reaches it
  counts as the whole fit (``steps``, or its whole training time; the mean is then a lower bound) and
  ``.../reached`` is the fraction that did. ``speedup/meta_init`` is the ratio of the mean steps (random /
  meta); ``.../seed_<s>`` the same per seed, and ``psnr/<setting>/seed_sd`` the spread of the per-seed means.
  ``.../ci_lo``, ``.../ci_hi``: 95% cluster-bootstrap intervals over subjects for the speedup and the paired
  PSNR gain of the meta init.
  """
  recs = [dict(r) for r in records]
  for r in recs:
    target = r["history/random_init"][-1]["psnr"]
    for s in ("random_init", "meta_init"):
      hist = r[f"history/{s}"]
      st, t = steps_to(hist, target), steps_to(hist, target, "time_s")
      r[f"steps_to_target/{s}/reached"] = float(not np.isnan(st))
      r[f"steps_to_target/{s}"] = float(steps if np.isnan(st) else st)
      r[f"time_to_target/{s}"] = float(hist[-1]["time_s"] if np.isnan(t) else t)
      # a looser target: within 0.5 dB of the random init's final PSNR (the curves wobble by about that much)
      near = steps_to(hist, target - 0.5)
      r[f"steps_to_within_0.5dB/{s}"] = float(steps if np.isnan(near) else near)
  keys = sorted({k for r in recs for k in r if "/" in k and not k.startswith(("history/", "volume/"))})
  out = {k: float(np.nanmean([core.result_float(r.get(k, np.nan)) for r in recs])) for k in keys}
  out["speedup/meta_init"] = out["steps_to_target/random_init"] / out["steps_to_target/meta_init"]
  out["speedup/meta_init/time"] = out["time_to_target/random_init"] / out["time_to_target/meta_init"]
  out["speedup/meta_init/within_0.5dB"] = (out["steps_to_within_0.5dB/random_init"]
                                           / out["steps_to_within_0.5dB/meta_init"])
  for s in ("random_init", "meta_init"):  # the PSNR each init starts from (step 0, before any fitting)
    out[f"psnr_at_step_0/{s}"] = float(np.mean([r[f"history/{s}"][0]["psnr"] for r in recs]))
  # 95% intervals by a cluster bootstrap over held-out subjects (a subject's seeds are resampled together)
  groups = [r["subject"] for r in recs]
  steps_r = np.array([r["steps_to_target/random_init"] for r in recs])
  steps_m = np.array([r["steps_to_target/meta_init"] for r in recs])
  _, out["speedup/meta_init/ci_lo"], out["speedup/meta_init/ci_hi"] = core.bootstrap_metric(
      lambda a, b: a.mean() / b.mean(), steps_r, [steps_m], groups=groups)
  gain = np.array([r["psnr/meta_init"] - r["psnr/random_init"] for r in recs])
  out["paired_gain/psnr/meta_vs_random"], out["paired_gain/psnr/meta_vs_random/ci_lo"], \
      out["paired_gain/psnr/meta_vs_random/ci_hi"] = core.bootstrap_metric(
          lambda a, b: float(np.mean(a - b)), gain, [np.zeros_like(gain)], groups=groups)
  for seed in sorted({r["seed"] for r in recs}):
    rs = [r for r in recs if r["seed"] == seed]
    out[f"speedup/meta_init/seed_{seed}"] = (np.mean([r["steps_to_target/random_init"] for r in rs])
                                             / np.mean([r["steps_to_target/meta_init"] for r in rs]))
  for s in ("random_init", "meta_init"):
    per_seed = [np.mean([r[f"psnr/{s}"] for r in recs if r["seed"] == seed]) for seed in {r["seed"] for r in recs}]
    out[f"psnr/{s}/seed_sd"] = float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else float("nan")
    for r in recs:
      out[f"steps_to_target/{s}/subject_{r['subject']}_seed_{r['seed']}"] = r[f"steps_to_target/{s}"] \
          if r[f"steps_to_target/{s}/reached"] else float("nan")
  return out
