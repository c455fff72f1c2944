"""SSFL-Recon: stage 1 self-supervised features, stage 2 feature-assisted parallel self-supervised reconstruction.

The protocol is the official code's (see ``experiments/ssfl_recon/data.py``): each training subject is
acquired once (VISTA, ``data.acquired_r = 2``, fixed seed) and every self-supervised input, loss and SSDU
split is a sub-mask of that acquisition; :class:`~experiments.ssfl_recon.data.MaskAudit` measures it
(``protocol/unseen_fraction_max``). A second setting acquires the training subjects at
``data.prospective_r`` (the test R), the harder prospective case (keys under ``acq_test_r/``).

1. Stage 1: the feature extractor (an unrolled network of the same kind) with one projection head per
   iteration learns from two views of each subject cut from its acquisition: VICReg (25/25/1, the official
   default) or InfoNCE (temperature 0.1, negatives other subjects with ``|R1 - R2| >= 5``), summed over
   iterations.
2. Stage 2: the reconstruction network with the frozen extractor's per-iteration encoder outputs fused
   before each UNet's bottleneck, trained with the parallel loss (image consistency + cross k-space).
3. Methods with the same data, views and network size: zero-filled, CG-SENSE, SSDU (SSDU's 60/40 split of
   ``M1``), the parallel network without features, ``ssfl_random_features`` (the same network with a frozen,
   randomly initialised extractor: the control for the learned features) and ``supervised`` (image L2 to the
   fully sampled truth, the only reader of it; trained in the main setting and reported in both).
4. ``seeds`` repeat stages 1-2 (initialisation, view stream); test subjects are fully sampled and
   retrospectively undersampled with VISTA at each R in ``eval_r`` (fixed seeds). Metrics: fastMRI's
   magnitude PSNR / SSIM / NMSE and the official per-frame convention (``psnr_official``,
   ``ssim_official``), mean and sd over seeds, and the per-subject paired PSNR gain with a bootstrap 95% CI.
"""

from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.ssfl_recon import METHODS
from experiments.ssfl_recon import data as D
from jaxmed import core, mri

NETS = ("ssdu", "parallel_nofeat", "ssfl", "ssfl_random_features", "supervised")
FEATURE_NETS = ("ssfl", "ssfl_random_features")
GAINS = (("ssfl", "parallel_nofeat", "ssfl_vs_nofeat"), ("ssfl", "ssfl_random_features", "ssfl_vs_random_features"),
         ("parallel_nofeat", "ssdu", "nofeat_vs_ssdu"), ("supervised", "ssfl", "supervised_vs_ssfl"))


# ---- networks and losses ----

def zero_filled(kspace, maps, mask):
  """``(x0 [B, T, H, W], y [B, T, C, H, W])`` for a batch under ``mask [B, T, ...]``."""
  y = kspace * jax.vmap(mri.expand_mask)(mask)
  return jax.vmap(mri.sense_adjoint)(y, maps, mask), y


def recon_net(config) -> mri.UnrolledRecon:
  m = config.model
  return mri.UnrolledRecon(iterations=m.iterations, filters=m.filters, levels=m.levels)


def features_of(extractor, params_e, kspace, maps, mask):
  """The frozen extractor's per-iteration encoder outputs for an input (no gradient reaches the extractor)."""
  x0, y = zero_filled(kspace, maps, mask)
  _, feats = extractor.apply(params_e, x0, y, maps, mask)
  return [jax.lax.stop_gradient(f) for f in feats]


def reconstruct(net, params, kspace, maps, mask, feats=None):
  x0, y = zero_filled(kspace, maps, mask)
  return net.apply(params, x0, y, maps, mask, feats)[0]


def make_loss(method, net, extractor=None, params_e=None):
  """``loss_fn(params, batch, rng)`` for a reconstruction network trained with ``method``."""
  def feats(batch, mask):
    return None if extractor is None else features_of(extractor, params_e, batch["kspace"], batch["maps"], mask)

  def loss_fn(params, batch, rng):
    k, s = batch["kspace"], batch["maps"]
    voxels = np.prod(batch["gt"].shape[1:])
    if method == "ssdu":
      x = reconstruct(net, params, k, s, batch["ssdu_train"])
      y_loss = k * batch["ssdu_loss"][:, :, None]
      loss = jnp.mean(jax.vmap(mri.ssdu_loss)(x, y_loss, s, batch["ssdu_loss"]))
      return loss, {}
    if method == "supervised":
      x = reconstruct(net, params, k, s, batch["m1"])
      return jnp.mean(jnp.abs(x - batch["gt"]) ** 2) / jnp.mean(jnp.abs(batch["gt"]) ** 2), {}
    x1 = reconstruct(net, params, k, s, batch["m1"], feats(batch, batch["m1"]))
    x2 = reconstruct(net, params, k, s, batch["m2"], feats(batch, batch["m2"]))
    y1 = k * jax.vmap(mri.expand_mask)(batch["m1"])
    y2 = k * jax.vmap(mri.expand_mask)(batch["m2"])
    total, parts = jax.vmap(mri.parallel_loss)(x1, x2, y1, y2, s, batch["m1"], batch["m2"])
    return jnp.mean(total) / voxels, {k_: jnp.mean(v) / voxels for k_, v in parts.items()}

  return loss_fn


def feature_loss(config, extractor, heads):
  """Stage 1: VICReg (or InfoNCE) between the two views' embeddings, summed over the unrolled iterations.

  Each iteration's head embeds every (subject, pooled frame) row, as the official MLP does per frame.
  """
  f = config.features

  def loss_fn(params, batch, rng):
    def embed(mask):
      x0, y = zero_filled(batch["kspace"], batch["maps"], mask)
      _, encoded = extractor.apply(params["extractor"], x0, y, batch["maps"], mask)
      z, _ = heads.apply(params["heads"], encoded, mutable=["batch_stats"])
      return z

    z1, z2 = embed(batch["m1"]), embed(batch["m2"])
    total, parts = 0.0, {}
    for i, (a, b) in enumerate(zip(z1, z2)):
      if f.objective == "vicreg":
        loss, p = mri.vicreg(a, b)
        parts.update({f"{k}_{i}": v for k, v in p.items()})
      else:
        frames = a.shape[0] // batch["subject"].shape[0]
        subj = jnp.repeat(batch["subject"], frames)
        r1, r2 = jnp.repeat(batch["r1"], frames), jnp.repeat(batch["r2"], frames)
        subj2, r = jnp.concatenate([subj, subj]), jnp.concatenate([r1, r2])
        negatives = (subj2[:, None] != subj2[None, :]) & (jnp.abs(r[:, None] - r[None, :]) >= f.min_r_gap)
        loss = mri.info_nce(a, b, temperature=f.temperature, negative_mask=negatives)
      total = total + loss
    return total, parts

  return loss_fn


def optimizer(lr: float, steps: int) -> optax.GradientTransformation:
  """Adam with a cosine decay, then tau and the data-consistency weights projected to ``>= 0``."""
  return optax.chain(optax.adam(optax.cosine_decay_schedule(lr, steps)), mri.nonneg_scalars())


def _mesh(batch_size: int):
  n = math.gcd(batch_size, jax.device_count())  # the batch must split evenly over the devices used
  return core.make_mesh({"data": -1}, devices=jax.devices()[:n])


def train_net(name, loss_fn, init_fn, config, run_dir, steps, batch_at, lr, batch_size):
  tx = optimizer(lr, steps)
  mesh = _mesh(batch_size)
  state, sharding = core.create_train_state(init_fn, tx, jax.random.PRNGKey(config.seed), mesh)
  step = core.make_train_step(loss_fn, tx, state_sharding=sharding, mesh=mesh)
  t = config.train
  state = core.train_loop(state, step, batch_at, mesh=mesh, run_dir=run_dir, steps=steps,
                          save_every=min(t.save_every, steps), keep=t.keep, log_every=min(t.log_every, steps),
                          desc=f"train {name}")
  return jax.device_get(state.params)


# ---- the experiment ----

def train_setting(config, workdir: str, subjects, view_r, names, audit: D.MaskAudit) -> dict:
  """Stage 1 and every network in ``names`` for one seed (``config.seed``) under one acquisition; returns
  ``{name: params}`` plus ``"extractor"`` (learned) and ``"random_extractor"``."""
  t, f_cfg = config.train, config.features
  net, heads = recon_net(config), mri.ProjectionHeads(config.model.iterations)
  ex = D.parallel_batch(subjects, config, 0, 1, view_r)
  x0, y = zero_filled(ex["kspace"], ex["maps"], ex["m1"])

  def init_plain(rng):
    return net.init(rng, x0, y, ex["maps"], ex["m1"])

  _, encoded = net.apply(init_plain(jax.random.PRNGKey(0)), x0, y, ex["maps"], ex["m1"])
  params_f = train_net(
      f"features_{f_cfg.objective}", feature_loss(config, net, heads),
      lambda r: {"extractor": init_plain(r), "heads": heads.init(r, [jnp.concatenate([e] * 2) for e in encoded])},
      config, os.path.join(workdir, f"features_{f_cfg.objective}"), f_cfg.steps,
      audit.wrap(lambda s: D.feature_batch(subjects, config, s, view_r)), f_cfg.lr, f_cfg.batch_size)
  extractors = {"ssfl": params_f["extractor"],
                "ssfl_random_features": init_plain(jax.random.PRNGKey(config.seed + 1_000))}
  trained = {"extractor": extractors["ssfl"], "random_extractor": extractors["ssfl_random_features"]}
  for name in names:
    params_e = extractors.get(name)
    loss_fn = make_loss("parallel" if name in ("parallel_nofeat", *FEATURE_NETS) else name, net,
                        net if params_e is not None else None, params_e)

    def init(rng, params_e=params_e):
      feats = None if params_e is None else features_of(net, params_e, ex["kspace"], ex["maps"], ex["m1"])
      return net.init(rng, x0, y, ex["maps"], ex["m1"], feats)

    batches = lambda s: D.parallel_batch(subjects, config, s, t.batch_size, view_r)  # noqa: E731
    trained[name] = train_net(name, loss_fn, init, config, os.path.join(workdir, name), t.steps,
                              batches if name == "supervised" else audit.wrap(batches), t.lr, t.batch_size)
  return trained


METRICS = (("psnr", mri.psnr), ("ssim", mri.ssim), ("nmse", mri.nmse), ("psnr_official", mri.psnr_frames),
           ("ssim_official", mri.ssim_frames))


def test_inputs(config, test_subjects) -> dict:
  """Per R in ``eval_r``: the normalised test k-space, masks (VISTA, seed 10,000 + subject), maps and ``gt``."""
  w = test_subjects[0]["mask"].shape[1]
  lines = {r: max(1, int(round(w / r))) for r in config.data.eval_r}  # what vista_mask draws per frame
  if len(set(lines.values())) < len(lines):
    raise ValueError(f"data.eval_r {tuple(config.data.eval_r)}: with W = {w} phase-encoding lines these R give "
                     f"{lines} lines per frame, so some test masks coincide; use a larger W or other R")
  out = {}
  for r in config.data.eval_r:
    ks, masks, gts = [], [], []
    for i, s in enumerate(test_subjects):
      t, w = s["mask"].shape
      m = D.vista(w, t, float(r), 10_000 + i)
      k = s["kspace"] * m[:, None, None, :]
      scale = D.intensity_scale(k, s["maps"], m)
      ks.append(k / scale)
      masks.append(m.astype(np.float32))
      gts.append(s["gt"] / scale)
    out[r] = {"kspace": np.stack(ks).astype(np.complex64), "mask": np.stack(masks),
              "maps": np.stack([s["maps"] for s in test_subjects]), "gt": np.stack(gts)}
  return out


def scores(out: dict, gt) -> dict:
  """``{metric: [subjects]}`` for one method's reconstructions ``out [N, T, H, W]``."""
  return {m: np.asarray([fn(out[i], gt[i]) for i in range(len(gt))]) for m, fn in METRICS}


def evaluate(config, inputs, trained) -> tuple[dict, dict]:
  """``({(name, R): {metric: [subjects]}}, {R: {name: reconstructions}})`` for the trained networks."""
  net = recon_net(config)
  recon = jax.jit(lambda p, k, s, m: reconstruct(net, p, k, s, m))
  recon_f = jax.jit(lambda p, pe, k, s, m: reconstruct(net, p, k, s, m, features_of(net, pe, k, s, m)))
  extractor = {"ssfl": trained["extractor"], "ssfl_random_features": trained["random_extractor"]}
  res, outs = {}, {}
  for r, b in inputs.items():
    outs[r] = {}
    for name in NETS:
      if name not in trained:
        continue
      args = (b["kspace"], b["maps"], b["mask"])
      x = recon_f(trained[name], extractor[name], *args) if name in FEATURE_NETS else recon(trained[name], *args)
      outs[r][name] = np.asarray(x)
      res[(name, r)] = scores(outs[r][name], b["gt"])
  return res, outs


def classical(config, inputs) -> tuple[dict, dict]:
  """Zero-filled and CG-SENSE (no training, no seed)."""
  cg = jax.jit(jax.vmap(lambda y, s, m: mri.cg_sense(y, s, m, iters=config.eval.cg_iters)))
  res, outs = {}, {}
  for r, b in inputs.items():
    x0, y = zero_filled(b["kspace"], b["maps"], b["mask"])
    outs[r] = {"zero_filled": np.asarray(x0), "cg_sense": np.asarray(cg(y, b["maps"], b["mask"]))}
    for name, x in outs[r].items():
      res[(name, r)] = scores(x, b["gt"])
  return res, outs


def summarise(per_seed: list[dict], prefix: str, gain_r: int) -> dict:
  """Means and sds over seeds (of the subject means), and paired per-subject gains (seed-averaged) with CIs."""
  out = {}
  for (name, r) in per_seed[0]:
    for metric in per_seed[0][(name, r)]:
      vals = np.stack([s[(name, r)][metric] for s in per_seed])  # [seeds, subjects]
      out[f"{prefix}{metric}/R{r}/{name}"] = float(vals.mean())
      out[f"{prefix}{metric}_sd/R{r}/{name}"] = float(vals.mean(1).std(ddof=1)) if len(vals) > 1 else 0.0
  for a, b, label in GAINS:
    if (a, gain_r) in per_seed[0] and (b, gain_r) in per_seed[0]:
      pa = np.mean([s[(a, gain_r)]["psnr"] for s in per_seed], axis=0)
      pb = np.mean([s[(b, gain_r)]["psnr"] for s in per_seed], axis=0)
      mean, lo, hi = core.paired_bootstrap(pa, pb)
      out[f"{prefix}paired_gain/R{gain_r}/{label}"] = mean
      out[f"{prefix}paired_gain_ci/R{gain_r}/{label}"] = [lo, hi]
  return out


def train_and_evaluate(config, workdir: str) -> dict:
  core.open_workdir(workdir, config)
  d = config.data
  test = D.test_subjects(config)
  inputs = test_inputs(config, test)
  base, base_outs = classical(config, inputs)
  settings = [("", d.acquired_r, tuple(d.view_r))]
  if d.prospective_r:
    settings.append(("acq_test_r/", d.prospective_r, tuple(d.prospective_view_r)))
  results: dict = {"num_subjects/test": len(test), "seeds": list(config.seeds)}
  supervised, runs = {}, []
  for prefix, acq_r, view_r in settings:
    subjects = D.training_subjects(config, acq_r)
    results["num_subjects/train"] = len(subjects)
    # undersampled training files have no fully sampled image: there is nothing to supervise with
    has_gt = all("gt" in s for s in subjects)
    if not has_gt and not prefix:
      print("ssfl_recon: training data without fully sampled images; 'supervised' is not trained")
    audit = D.MaskAudit(subjects)
    per_seed = []
    for seed in config.seeds:
      cfg = config.copy_and_resolve_references()
      cfg.seed = int(seed)
      run_dir = os.path.join(workdir, prefix.rstrip("/") or "acq", f"seed{seed}")
      names = NETS if not prefix and has_gt else tuple(n for n in NETS if n != "supervised")
      trained = train_setting(cfg, run_dir, subjects, view_r, names, audit)
      if "supervised" in trained:
        supervised[seed] = trained["supervised"]
      elif seed in supervised:
        trained["supervised"] = supervised[seed]
      res, outs = evaluate(cfg, inputs, trained)
      per_seed.append({**base, **res})
      runs += [os.path.relpath(os.path.join(run_dir, n), workdir) for n in (f"features_{config.features.objective}",
                                                                            *names)]
      if not prefix and seed == config.seeds[0]:
        for r in d.eval_r:
          plot_r({**base_outs[r], **outs[r]}, inputs[r]["gt"][0], test[0]["heart"], r,
                 os.path.join(workdir, f"recon_R{r}.png"))
    results[f"{prefix}protocol/acquired_r"] = float(acq_r)
    results[f"{prefix}protocol/acquired_fraction"] = float(np.mean([s["acquired"].mean() for s in subjects]))
    results[f"{prefix}protocol/unseen_fraction_max"] = audit.unseen_fraction_max()
    results.update(summarise(per_seed, prefix, d.gain_r))
  plot_seeds(results, d.eval_r, os.path.join(workdir, "psnr_vs_r.png"))
  core.gather_run_metrics(workdir, runs)
  return core.write_results(workdir, results)


def plot_seeds(results, eval_r, path):
  """PSNR (mean +- sd over seeds) against R for every method, one panel per acquisition setting."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  prefixes = [p for p in ("", "acq_test_r/") if f"{p}psnr/R{eval_r[0]}/ssfl" in results]
  fig, axes = plt.subplots(1, len(prefixes), figsize=(5 * len(prefixes) + 1.8, 4), squeeze=False)
  for ax, p in zip(axes[0], prefixes):
    for name in METHODS:
      if f"{p}psnr/R{eval_r[0]}/{name}" not in results:
        continue
      m = [results[f"{p}psnr/R{r}/{name}"] for r in eval_r]
      sd = [results[f"{p}psnr_sd/R{r}/{name}"] for r in eval_r]
      ax.errorbar(eval_r, m, yerr=sd, marker="o", capsize=3, label=name)
    acq = results.get(f"{p}protocol/acquired_r")
    ax.set_title(f"training data acquired at R = {acq:g}")
    ax.set_xlabel("test R")
    ax.set_xticks(list(eval_r))
  axes[0, 0].set_ylabel("PSNR (dB), mean ± sd over seeds")
  axes[0, -1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
  fig.tight_layout()
  core.save_figure(fig, path, dpi=90)
  plt.close(fig)


def plot_r(out, gt, heart, r, path):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  frame = gt.shape[0] // 2
  cy, cx = np.argwhere(heart[frame]).mean(0).round().astype(int) if heart[frame].any() else (gt.shape[1] // 2,) * 2
  methods = [n for n in METHODS if n in out]
  names = ["ground truth", *methods]
  imgs = [gt, *[out[n][0] for n in methods]]
  vmax = np.abs(gt).max()
  fig, ax = plt.subplots(3, len(names), figsize=(2.2 * len(names), 7))
  for j, (name, img) in enumerate(zip(names, imgs)):
    ax[0, j].imshow(np.abs(img[frame]), cmap="gray", vmin=0, vmax=vmax)
    ax[0, j].set_title(name if j == 0 else f"{name}\n{mri.psnr(img, gt):.1f} dB", fontsize=8)
    ax[1, j].imshow(np.abs(np.abs(img[frame]) - np.abs(gt[frame])), cmap="inferno", vmin=0, vmax=0.3 * vmax)
    ax[2, j].imshow(np.abs(img[:, :, cx]).T, cmap="gray", vmin=0, vmax=vmax, aspect="auto")
    for a in ax[:, j]:
      a.set_xticks([])
      a.set_yticks([])
  ax[1, 0].set_ylabel("|error| x 3")
  ax[2, 0].set_ylabel("x-t profile")
  fig.suptitle(f"R = {r}, frame {frame}")
  fig.tight_layout()
  core.save_figure(fig, path, dpi=90)
  plt.close(fig)
