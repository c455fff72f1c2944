"""ARC experiment: hypernetwork and dedicated registration models, then their ARC curves.

For every model "<arch>-<transform>" in ``config.models`` (arch: vxm, lku, tm;
transform: disp, svf):
  1. train a HyperMorph hypernetwork over lambda in [0, 1];
  2. for the models in ``config.dedicated.models``, train dedicated models at
     ``config.dedicated.lambdas`` (the same step count each);
  3. evaluate the hypernetwork's ARC at ``config.eval.num_lambdas`` lambdas
     and the dedicated models at their lambda, as Learn2Reg scores
     (nearest-neighbour label warp, Dice, surfel HD95, SDlogJ, NDV, and TRE
     for an NLST root with keypoints).
Then write ``arc.png``, ``examples.png`` and ``results.json``: ARC AUCs over
the SDlogJ range all curves cover, ``hyper_vs_dedicated/{arch}/{lambda}/...``
relative differences, ``dedicated_gap/{model}``.

Each training run lives in ``<workdir>/<model>/<run>/`` with its own
checkpoints and ``metrics.jsonl``; the top-level ``metrics.jsonl`` gathers
all of them with a ``run`` field. A rerun resumes every unfinished run and
skips finished ones.
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.stats

from jaxmed import core
from jaxmed import registration as R
from jaxmed.io import learn2reg_val_pairs, load_learn2reg_keypoints, load_learn2reg_subjects
from jaxmed.synth import NUM_LABELS, atlas_subjects, pair_displacement, registration_pairs


def load_data(config) -> dict[str, np.ndarray]:
  """Train images, and validation (moving, fixed) pairs with labels."""
  d = config.data
  if d.source == "synth":
    kw = dict(deform_scale=None if d.deform_scale < 0 else d.deform_scale, noise=d.noise)
    train = atlas_subjects(d.n_train_subjects, tuple(d.shape), seed=config.seed, **kw)
    val = atlas_subjects(d.n_val_subjects, tuple(d.shape), seed=config.seed + 1, **kw)
    num_labels = NUM_LABELS
  elif d.source == "learn2reg":
    official = learn2reg_val_pairs(d.root) if d.root else None  # Learn2Reg's own pairs, from its JSON
    if not d.root or not all(d.train_names) or (official is None and not all(d.val_names)):
      raise ValueError("config.data: source='learn2reg' needs data.root, data.train_names and data.val_names "
                       "(subject names such as OASIS_0001_0000); data.val_names may be left out when the root "
                       "has Learn2Reg's <TASK>_dataset.json with 'registration_val'")
    train = load_learn2reg_subjects(d.root, d.train_names, ndim=len(d.shape))
    val_names = list(d.val_names) if official is None else sorted({n for pair in official for n in pair})
    val = load_learn2reg_subjects(d.root, val_names, ndim=len(d.shape))
    val["keypoints"] = load_learn2reg_keypoints(d.root, val_names, ndim=len(d.shape))  # NLST; else None
    num_labels = int(max(train["labels"].max(), val["labels"].max())) + 1
  else:
    raise ValueError(f"config.data.source must be 'synth' or 'learn2reg', got {d.source!r}")
  for name, x in (("train", train["images"]), ("val", val["images"])):  # robust [0, 1] scaling per subject
    hi = np.percentile(x.reshape(len(x), -1), 99.5, axis=1).reshape((-1,) + (1,) * (x.ndim - 1))
    x[...] = np.clip(x / np.maximum(hi, 1e-6), 0.0, 1.0)
  if d.source == "learn2reg" and official is not None:
    pairs = np.asarray([(val_names.index(m), val_names.index(f)) for m, f in official])
  else:
    pairs = registration_pairs(len(val["images"]), d.n_val_pairs, seed=config.seed + 2)
  out = {"train_images": train["images"], "val_moving": val["images"][pairs[:, 0]][..., None],
         "val_fixed": val["images"][pairs[:, 1]][..., None], "val_moving_labels": val["labels"][pairs[:, 0]],
         "val_fixed_labels": val["labels"][pairs[:, 1]], "num_labels": num_labels}
  if d.source == "synth":  # the true moving -> fixed deformation: the alignment ceiling
    out["val_oracle_disp"] = np.stack([pair_displacement(val["displacements"][m], val["displacements"][f])
                                       for m, f in pairs])
  if "masks" in val:  # NLST: SDlogJ inside the fixed lung mask
    out["val_fixed_mask"] = val["masks"][pairs[:, 1]]
  if val.get("keypoints") is not None:  # NLST: keypoint TRE
    out["val_keypoints"] = (val["keypoints"][pairs[:, 1]], val["keypoints"][pairs[:, 0]])
  return out


def similarity_loss(config):
  if config.loss.similarity == "ncc":
    return functools.partial(R.ncc_loss, window=config.loss.ncc_window)
  if config.loss.similarity == "mse":
    return R.mse
  raise ValueError(f"config.loss.similarity must be 'ncc' or 'mse', got {config.loss.similarity!r}")


def registration_loss(register, config, lam, batch):
  """``a(lam) * L_sim(fixed, moving o phi) + b(lam) * L_smooth(field)``; ``register(m, f) -> (disp, field)``."""
  disp, field = register(batch["moving"], batch["fixed"])
  sim = similarity_loss(config)(batch["fixed"], R.warp(batch["moving"], disp))
  smooth = R.gradient_loss(field, penalty=config.loss.penalty)
  a, b = R.loss_weights(lam, config.loss.weighting)
  return a * sim + b * smooth, {"similarity": sim, "smoothness": smooth, "lambda": lam}


def fit(run_dir, state, train_step, config, mesh, batch_at, desc, steps=None):
  """One resumable training run (:func:`jaxmed.core.train_loop`); returns the final params."""
  t = config.train
  return core.train_loop(state, train_step, batch_at, mesh=mesh, run_dir=run_dir, steps=steps or t.steps,
                         save_every=t.save_every, keep=t.keep, log_every=t.log_every, desc=desc).params


def train_and_evaluate(config, workdir: str) -> dict:
  core.open_workdir(workdir, config)

  # ---- data ----
  data = load_data(config)
  images = data["train_images"]
  pairs = registration_pairs(len(images), 20_000, seed=config.seed)
  dataset = core.step_batches(core.ArraySource({"moving": pairs[:, 0], "fixed": pairs[:, 1]}),
                              batch_size=config.train.batch_size, seed=config.seed)

  def batch_at(step):
    idx = dataset[step]
    return {"moving": images[idx["moving"]][..., None], "fixed": images[idx["fixed"]][..., None]}

  mesh = core.make_mesh(config.mesh)
  example = jnp.zeros((1, *images.shape[1:], 1), jnp.float32)
  ndim = images.ndim - 1
  val = {k: jnp.asarray(data[k]) for k in ("val_moving", "val_fixed", "val_moving_labels", "val_fixed_labels")}
  labels = tuple(range(1, data["num_labels"]))
  arc_kw = dict(moving=val["val_moving"], fixed=val["val_fixed"], moving_labels=val["val_moving_labels"],
                fixed_labels=val["val_fixed_labels"], labels=labels, num_labels=data["num_labels"],
                label_warp=config.eval.label_warp, fixed_mask=data.get("val_fixed_mask"),
                keypoints=data.get("val_keypoints"))

  def arc(register, lambdas):
    """The ARC at ``lambdas``; the lambda chunk is the config's, or the largest that fits the memory budget."""
    k = config.eval.lambda_batch_size or R.lambda_batch_for_budget(
        lambda lam: R.arc_points(register, lam, pair_batch_size=config.eval.pair_batch_size or None, **arc_kw),
        len(lambdas), config.arc.memory_budget_gb)
    return R.arc_curve(register, lambdas, lambda_batch_size=k, pair_batch_size=config.eval.pair_batch_size or None,
                       **arc_kw)

  sweep = np.linspace(0.0, 1.0, config.eval.num_lambdas)
  ded_lams = tuple(float(v) for v in config.dedicated.lambdas)

  tx = optax.adam(config.train.lr)
  hyper_tx = optax.multi_transform(
      {"head_kernel": optax.adam(config.train.lr * config.hyper.head_kernel_lr_scale), "rest": tx},
      R.head_kernel_labels)
  rng = jax.random.PRNGKey(config.seed)
  curves, at_dedicated, dedicated, hypermorphs, runs = {}, {}, {}, {}, []
  for name in config.models:
    arch, transform = name.split("-")
    net = R.registration_net(arch, transform, ndim=ndim, **config.net.to_dict())
    dtype = jnp.dtype(config.arc.compute_dtype)

    # ---- train: hypernetwork ----
    hm = R.make_hypermorph(net, example.shape, hidden=config.hyper.hidden, head_scale=config.hyper.head_scale)

    def hyper_loss(hp, batch, step_rng, hm=hm):
      # One lambda per step, shared by the batch (HyperMorph trains with batch size 1).
      # A per-sample lambda needs per-sample conv kernels: ~25x slower on a CPU.
      lam = R.sample_lambdas(step_rng, 1, endpoint_prob=config.hyper.endpoint_prob)[0]
      return registration_loss(lambda m, f: hm.apply(hp, lam, m, f, dtype=dtype), config, lam, batch)

    state, sharding = core.create_train_state(hm.init, hyper_tx, rng, mesh)
    step_fn = core.make_train_step(hyper_loss, hyper_tx, state_sharding=sharding, mesh=mesh)
    hp = fit(os.path.join(workdir, name, "hyper"), state, step_fn, config, mesh, batch_at, f"{name} hyper",
             steps=config.hyper.steps)
    hypermorphs[name] = (hm, hp)
    runs.append(f"{name}/hyper")
    hyper_register = lambda lam, m, f, hm=hm, hp=hp: hm.apply(hp, lam, m, f, dtype=dtype)[0]  # noqa: E731
    if name not in config.dedicated.models:
      curves[name] = arc(hyper_register, sweep)
      continue

    # ---- train: dedicated models (lambda travels in the batch, so one compiled step serves all) ----
    def ded_loss(params, batch, step_rng, net=net):
      lam = batch["lambda"][0]
      return registration_loss(lambda m, f: R.apply_in_dtype(net, params, m, f, dtype), config, lam, batch)

    # Every dedicated model starts from the same seeded init (a copy: the step donates its input).
    init_state, sharding = core.create_train_state(lambda r, net=net: net.init(r, example, example), tx, rng, mesh)
    step_fn = core.make_train_step(ded_loss, tx, state_sharding=sharding, mesh=mesh)
    ded_params = []
    for lam in ded_lams:
      with_lam = lambda step, lam=lam: {**batch_at(step), "lambda": np.full(config.train.batch_size, lam,  # noqa: E731
                                                                            np.float32)}
      ded_params.append(fit(os.path.join(workdir, name, f"lam{lam:g}"), jax.tree.map(jnp.copy, init_state),
                            step_fn, config, mesh, with_lam, f"{name} lambda={lam:g}"))
      runs.append(f"{name}/lam{lam:g}")

    # ---- evaluate: ARC of the hypernetwork and the dedicated points ----
    both = arc(hyper_register, np.concatenate([sweep, ded_lams]))
    curves[name] = {k: (v[:len(sweep)] if np.ndim(v) else v) for k, v in both.items()}
    at_dedicated[name] = {k: (v[len(sweep):] if np.ndim(v) else v) for k, v in both.items()}
    stacked = jax.tree.map(lambda *p: jnp.stack(p), *ded_params)
    lam_grid = jnp.asarray(ded_lams, jnp.float32)

    def dedicated_register(lam, m, f, net=net, stacked=stacked):
      i = jnp.argmin(jnp.abs(lam_grid - lam))  # the dedicated model trained at this lambda
      return R.apply_in_dtype(net, jax.tree.map(lambda p: p[i], stacked), m, f, dtype)[0]

    points = arc(dedicated_register, ded_lams)
    dedicated[name] = {k: np.asarray(v).tolist() for k, v in points.items() if k != "auc"}

  # ---- report ----
  # One regularity range that every curve covers, so no curve is scored where it has no point.
  r_lo, r_hi = R.arc_common_range([c["sdlogj_l2r"] for c in curves.values()])
  results = {"arc_auc_range/lo": r_lo, "arc_auc_range/hi": r_hi}
  for name, c in curves.items():
    c["auc"] = np.float64(R.arc_auc(c["sdlogj_l2r"], c["dice"], r_range=(r_lo, r_hi)))
    results[f"arc_auc/{name}"] = float(c["auc"])
    results[f"spearman_lambda_sdlogj/{name}"] = float(scipy.stats.spearmanr(c["lambda"], c["sdlogj_l2r"])[0])
    results[f"spearman_lambda_sdlogj_masked/{name}"] = float(scipy.stats.spearmanr(c["lambda"], c["sdlogj"])[0])
    for key in ("folding_percent", "ndv_percent", "dice", "hd95", "tre"):
      if key not in c:
        continue
      results[f"{key}/{name}/lam0"] = float(c[key][0])
      results[f"{key}/{name}/lam1"] = float(c[key][-1])
  for name in dedicated:
    arch = name.split("-")[0]
    gaps = []
    for i, lam in enumerate(ded_lams):
      for key, metric in (("dice", "dice"), ("sdlogj", "sdlogj_l2r"), ("hd95", "hd95"), ("ndv", "ndv_percent")):
        hyper_v, ded_v = float(at_dedicated[name][metric][i]), float(dedicated[name][metric][i])
        results[f"{key}/{name}/lam{lam:g}"] = hyper_v
        results[f"{key}_dedicated/{name}/lam{lam:g}"] = ded_v
        if key in ("dice", "sdlogj"):  # relative difference, hypernetwork vs the dedicated model
          results[f"hyper_vs_dedicated/{arch}/{lam:g}/{key}"] = (hyper_v - ded_v) / ded_v
      gaps.append(abs(float(at_dedicated[name]["dice"][i]) - dedicated[name]["dice"][i]))
    results[f"dedicated_gap/{name}"] = float(np.mean(gaps))
  results["dice/unregistered"] = float(np.nanmean(R.dice_per_label(val["val_moving_labels"],
                                                                   val["val_fixed_labels"], labels)))
  if "val_oracle_disp" in data:  # ceiling: the generator's own deformation, scored the same way
    oracle_disp = jnp.asarray(data["val_oracle_disp"])
    oracle = R.arc_curve(lambda lam, m, f: oracle_disp, [0.0], lambda_batch_size=1, **arc_kw)
    for key, metric in (("dice", "dice"), ("hd95", "hd95"), ("sdlogj", "sdlogj_l2r"), ("ndv", "ndv_percent")):
      results[f"{key}/oracle"] = float(oracle[metric][0])
  R.plot_arc(curves, os.path.join(workdir, "arc.png"), dedicated=dedicated)
  plot_examples(hypermorphs[config.models[0]], val, os.path.join(workdir, "examples.png"))
  core.write_json(os.path.join(workdir, "arc_curves.json"),
                  {n: {k: np.asarray(v).tolist() for k, v in c.items()} for n, c in curves.items()})
  core.gather_run_metrics(workdir, runs)
  return core.write_results(workdir, results)


def plot_examples(hypermorph, val, path, lambdas=(0.0, 0.25, 0.5, 1.0)):
  """One validation pair registered at several lambdas: warped image and log-Jacobian map (2D middle slice)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  hm, hp = hypermorph
  m, f = val["val_moving"][:1], val["val_fixed"][:1]
  mid = lambda x: np.asarray(x[0, ..., 0] if x.ndim == 4 else x[0, x.shape[1] // 2, ..., 0])  # noqa: E731
  fig, axes = plt.subplots(2, len(lambdas) + 1, figsize=(3 * (len(lambdas) + 1), 6))
  axes[0, 0].imshow(mid(m), cmap="gray")
  axes[0, 0].set_title("moving")
  axes[1, 0].imshow(mid(f), cmap="gray")
  axes[1, 0].set_title("fixed")
  register = jax.jit(lambda lam: hm.apply(hp, lam, m, f)[0])
  for i, lam in enumerate(lambdas, start=1):
    disp = register(jnp.float32(lam))
    jac = R.jacobian_determinant(disp)[..., None]
    axes[0, i].imshow(mid(R.warp(m, disp)), cmap="gray")
    axes[0, i].set_title(f"warped, lambda={lam:g}")
    im = axes[1, i].imshow(mid(jnp.log(jnp.clip(jac, 1e-3))), cmap="RdBu_r", vmin=-1.5, vmax=1.5)
    axes[1, i].set_title(f"log J, folds: {float(R.folding_percent(jac[..., 0])[0]):.2f}%")
  fig.colorbar(im, ax=axes[1, -1], fraction=0.046)
  for ax in axes.ravel():
    ax.axis("off")
  fig.tight_layout()
  core.save_figure(fig, path, dpi=100)
  plt.close(fig)
