"""LSI experiment: backbone, frozen features, linear probe, leave-one-out LSI, and what it is used for.

For each dataset (scikit-learn digits; the synthetic organ-and-lesion set):
  1. train a small CNN backbone on a pretraining part with clean labels;
  2. take its frozen 16-d features on the LSI pool (standardised on the pool);
  3. fit a linear probe (damped Newton, float64) and compute exact
     leave-one-out LSI for every pool sample.

On digits the pool is also given 10% flipped labels, and there we report:
  * mislabel detection: AUROC of LSI and of the baselines (loss, EL2N, GraNd,
    self-influence, data-map confidence) for finding the flipped samples;
  * structure agreement: Spearman between diag, KFAC and full LSI;
  * the approximations: Spearman of exact LOO against warm-started
    retraining and the one-step influence approximation;
  * transfer: a larger CNN trained on the noisy pool after dropping the top,
    the bottom or a random 10% by LSI, tested on the clean test part.
On the clean pools: typicality grids, class-wise LSI and dataset difficulty.

Backbone and transfer runs live in ``<workdir>/<run>/`` (checkpoints,
``metrics.jsonl``); a rerun resumes them. The LSI scores are saved in
``lsi_scores.npz``.
"""

from __future__ import annotations

import csv
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.stats
import sklearn.datasets
import sklearn.metrics

from experiments.lsi import figures
from jaxmed import core
from jaxmed import laplace as L
from jaxmed.io.features import load_features_npz
from jaxmed.nn import SmallCNN
from jaxmed.synth import LESION_CLASS_NAMES, lesion_images


# ---- data ----

def load_digits(config) -> dict:
  """scikit-learn's bundled 8x8 digits, scaled to [0, 1] and split pretrain / pool / test (seeded)."""
  d = config.digits
  data = sklearn.datasets.load_digits()
  need = d.n_pretrain + d.n_pool + d.n_test
  if need > len(data.target):
    raise ValueError(f"config.digits: n_pretrain + n_pool + n_test = {need} exceeds the {len(data.target)} digits")
  perm = np.random.default_rng(config.seed).permutation(len(data.target))
  images = (data.images / 16.0).astype(np.float32)[..., None]
  return _split(images, data.target.astype(np.int32), perm, d, tuple(str(i) for i in range(10)))


def load_lesions(config) -> dict:
  d = config.lesions
  n = d.n_pretrain + d.n_pool + d.n_test
  data = lesion_images(n, d.size, difficulty=d.difficulty, seed=config.seed)
  return _split(data["images"][..., None], data["labels"], np.arange(n), d, LESION_CLASS_NAMES)


def _split(images, labels, perm, d, class_names) -> dict:
  cuts = np.cumsum([d.n_pretrain, d.n_pool, d.n_test])
  parts = dict(zip(("pretrain", "pool", "test"), np.split(perm[:cuts[-1]], cuts[:-1])))
  out = {f"{k}_images": images[v] for k, v in parts.items()}
  out.update({f"{k}_labels": labels[v] for k, v in parts.items()})
  out["class_names"] = class_names
  return out


def flip_labels(labels: np.ndarray, fraction: float, num_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Flip ``fraction`` of the labels to a different class, uniformly; returns (noisy labels, flipped mask)."""
  rng = np.random.default_rng(seed)
  flipped = np.zeros(len(labels), bool)
  flipped[rng.choice(len(labels), int(round(fraction * len(labels))), replace=False)] = True
  noisy = labels.copy()
  noisy[flipped] = (labels[flipped] + rng.integers(1, num_classes, flipped.sum())) % num_classes
  return noisy, flipped


# ---- CNN training (backbone and transfer) ----

def train_cnn(run_dir, model, images, labels, cfg, train_cfg, mesh, seed, desc):
  """Cross-entropy training with Adam through :func:`jaxmed.core.train_loop`; returns params."""
  tx = optax.adam(cfg.lr)
  ds = core.step_batches(core.ArraySource({"i": np.arange(len(labels))}), batch_size=cfg.batch_size, seed=seed)

  def batch_at(step):
    i = ds[step]["i"]
    return {"x": images[i], "y": labels[i]}

  def loss_fn(params, batch, rng):
    logits = model.apply(params, batch["x"])
    loss = jnp.mean(L.per_sample_loss(logits, batch["y"]))
    return loss, {"accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["y"])}

  init = lambda r: model.init(r, jnp.zeros((1,) + images.shape[1:], jnp.float32))  # noqa: E731
  state, sharding = core.create_train_state(init, tx, jax.random.PRNGKey(seed), mesh)
  step = core.make_train_step(loss_fn, tx, state_sharding=sharding, mesh=mesh)
  state = core.train_loop(state, step, batch_at, mesh=mesh, run_dir=run_dir, steps=cfg.steps,
                          save_every=train_cfg.save_every, keep=train_cfg.keep, log_every=train_cfg.log_every,
                          desc=desc)
  return jax.device_get(state.params)


def accuracy(model, params, images, labels) -> float:
  logits = jax.jit(model.apply)(params, jnp.asarray(images))
  return float(np.mean(np.argmax(np.asarray(logits), -1) == labels))


def frozen_features(model, params, pool_images, test_images):
  """Penultimate features, standardised with the pool's mean and std: ``[N, D]`` float64 each."""
  fn = jax.jit(lambda x: model.apply(params, x, features_only=True))
  pool, test = (np.asarray(fn(jnp.asarray(x)), np.float64) for x in (pool_images, test_images))
  mean, std = pool.mean(0), pool.std(0) + 1e-6
  return (pool - mean) / std, (test - mean) / std


# ---- LSI and baselines on the linear probe (float64) ----

def probe_scores(phi, labels, num_classes, config, *, structures=("full",), approximations=False,
                 baselines=False) -> dict[str, np.ndarray]:
  """Exact LOO LSI per structure (``lsi/<structure>``), and optionally warm/influence LSI and baselines."""
  c = config.lsi
  with jax.enable_x64(True):
    phi = jnp.asarray(phi, jnp.float64)
    y = jnp.asarray(labels)
    probe = L.LinearProbe(num_classes)
    init = jax.tree.map(lambda p: p.astype(jnp.float64), probe.init(jax.random.PRNGKey(config.seed), phi[:1]))
    fit = L.linear_probe_newton_fit_fn(probe.apply, phi, y, prior_precision=c.prior_precision,
                                       steps=c.newton_steps, tol=c.newton_tol)
    kw = dict(likelihood="classification", prior_precision=c.prior_precision, chunk=c.chunk or None,
              linear_probe=True, memory_budget_gb=c.memory_budget_gb)
    lsi = jax.jit(lambda: L.laplace_sample_information(fit, probe.apply, init, phi, structure=structures, **kw))()
    out = {f"lsi/{s}": np.asarray(v["lsi"]) for s, v in lsi.items()}
    out.update({f"{piece}/{s}": np.asarray(v[piece]) for s, v in lsi.items()
                for piece in ("trace", "mahalanobis", "logdet")})
    theta = jax.jit(fit)(init, jnp.ones(len(labels)))
    logits = probe.apply(theta, phi)
    out["train_accuracy"] = np.asarray(jnp.mean(jnp.argmax(logits, -1) == y))
    if approximations:
      warm_fit = L.linear_probe_newton_fit_fn(probe.apply, phi, y, prior_precision=c.prior_precision,
                                              steps=c.warm_steps)
      warm = jax.jit(lambda: L.laplace_sample_information(fit, probe.apply, init, phi, structure="full",
                                                          method="warm", warm_fit_fn=warm_fit, targets=y, **kw))()
      infl = jax.jit(lambda: L.laplace_sample_information(fit, probe.apply, init, phi, structure="full",
                                                          method="influence", targets=y, **kw))()
      out["lsi/warm"], out["lsi/influence"] = np.asarray(warm["lsi"]), np.asarray(infl["lsi"])
      closed = L.lsi_closed_form(phi, logits, y, likelihood="classification", prior_precision=c.prior_precision)
      out["lsi/closed_form"] = np.asarray(closed["lsi"])
    if baselines:
      full = L.laplace(probe.apply, theta, phi, likelihood="classification", structure="full",
                       prior_precision=c.prior_precision, linear_probe=True)
      out["loss"] = np.asarray(L.per_sample_loss(logits, y))
      out["el2n"] = np.asarray(L.el2n(logits, y))
      out["grand"] = np.asarray(L.grand(probe.apply, theta, phi, y))
      out["influence"] = np.asarray(L.self_influence(probe.apply, theta, phi, y, full.precision))
      probs = probe_training_dynamics(probe.apply, init, phi, y, c)
      dm = L.data_map(probs)
      out["datamap_confidence"], out["datamap_variability"] = (np.asarray(dm["confidence"]),
                                                               np.asarray(dm["variability"]))
    out["params"] = theta
  return out


def probe_training_dynamics(apply_fn, init, phi, y, c) -> jax.Array:
  """True-label probabilities ``[E, N]`` every ``datamap_every`` steps of full-batch Adam on the probe."""
  tx = optax.adam(c.datamap_lr)
  ones = jnp.ones(phi.shape[0], phi.dtype)
  grad = jax.grad(lambda p: L.probe_objective(apply_fn, p, phi, y, ones, c.prior_precision))

  def step(_, carry):
    params, opt_state = carry
    updates, opt_state = tx.update(grad(params), opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  def epoch(carry, _):
    carry = jax.lax.fori_loop(0, c.datamap_every, step, carry)
    p = jax.nn.softmax(apply_fn(carry[0], phi), -1)
    return carry, jnp.take_along_axis(p, y[:, None], 1)[:, 0]

  epochs = c.datamap_steps // c.datamap_every
  return jax.jit(lambda p: jax.lax.scan(epoch, (p, tx.init(p)), None, length=epochs)[1])(init)


# ---- the experiment ----

def train_and_evaluate(config, workdir: str) -> dict:
  core.open_workdir(workdir, config)
  if config.data.features:
    return features_study(config, workdir)
  mesh = core.make_mesh(config.mesh)
  results, runs, scores, datasets = {}, [], {}, {}

  for name, loader in (("digits", load_digits), ("lesions", load_lesions)):
    data = loader(config)
    k = len(data["class_names"])
    b = config.backbone
    model = SmallCNN(k, widths=tuple(b.widths), feature_dim=b.feature_dim)
    params = train_cnn(os.path.join(workdir, f"{name}_backbone"), model, data["pretrain_images"],
                       data["pretrain_labels"], b, config.train, mesh, config.seed, f"{name} backbone")
    runs.append(f"{name}_backbone")
    results[f"backbone_test_accuracy/{name}"] = accuracy(model, params, data["test_images"], data["test_labels"])
    phi, phi_test = frozen_features(model, params, data["pool_images"], data["test_images"])
    clean = probe_scores(phi, data["pool_labels"], k, config)
    results[f"probe_test_accuracy/{name}"] = _probe_accuracy(clean["params"], phi_test, data["test_labels"], k)
    scores[f"{name}/clean"], datasets[name] = clean, data
    lsi = clean["lsi/full"]
    results[f"lsi_mean/{name}"] = float(lsi.mean())
    results[f"lsi_median/{name}"] = float(np.median(lsi))
    for ci, cname in enumerate(data["class_names"]):
      sel = data["pool_labels"] == ci
      results[f"lsi_class_mean/{name}/{cname}"] = float(lsi[sel].mean())
      results[f"lsi_class_std/{name}/{cname}"] = float(lsi[sel].std())

    if name == "digits":
      noisy_labels, flipped = flip_labels(data["pool_labels"], config.flip_fraction, k, config.seed + 1)
      noisy = probe_scores(phi, noisy_labels, k, config, structures=("diag", "full", "kfac"), approximations=True,
                           baselines=True)
      scores["digits/noisy"] = noisy
      auroc = lambda s: float(sklearn.metrics.roc_auc_score(flipped, s))  # noqa: E731
      results["auroc/mislabel/lsi"] = auroc(noisy["lsi/full"])
      for s in ("diag", "kfac", "warm", "influence", "closed_form"):
        results[f"auroc/mislabel/lsi_{s}"] = auroc(noisy[f"lsi/{s}"])
      results["auroc/closed_form"] = results["auroc/mislabel/lsi_closed_form"]
      for s in ("el2n", "grand", "loss", "influence"):
        results[f"auroc/mislabel/{s}"] = auroc(noisy[s])
      results["auroc/mislabel/datamap"] = auroc(-noisy["datamap_confidence"])
      rho = lambda a, b: float(scipy.stats.spearmanr(noisy[f"lsi/{a}"], noisy[f"lsi/{b}"])[0])  # noqa: E731
      results["spearman/diag_full"] = rho("diag", "full")
      results["spearman/kfac_full"] = rho("kfac", "full")
      results["spearman/diag_kfac"] = rho("diag", "kfac")
      results["spearman/exact_vs_warm"] = rho("full", "warm")
      results["spearman/exact_vs_influence"] = rho("full", "influence")
      results["spearman/closed_vs_exact"] = rho("closed_form", "full")
      results["lsi_mean/digits_noisy/flipped"] = float(noisy["lsi/full"][flipped].mean())
      results["lsi_mean/digits_noisy/clean"] = float(noisy["lsi/full"][~flipped].mean())
      results.update(prune_transfer(workdir, data, noisy_labels, noisy["lsi/full"], config, mesh, runs))

  # ---- report ----
  scores["digits/noisy"]["flipped"] = flipped
  np.savez(os.path.join(workdir, "lsi_scores.npz"),
           **{f"{k}/{s}": v for k, d in scores.items() for s, v in d.items() if s != "params"})
  figures.plot_typicality({n: (datasets[n], scores[f"{n}/clean"]["lsi/full"]) for n in datasets},
                          config.figures.per_class, os.path.join(workdir, "typicality.png"))
  figures.plot_mislabel(scores["digits/noisy"], flipped, results, os.path.join(workdir, "mislabel.png"))
  figures.plot_classwise({n: (datasets[n], scores[f"{n}/clean"]["lsi/full"]) for n in datasets},
                         os.path.join(workdir, "classwise.png"))
  core.gather_run_metrics(workdir, runs)
  return core.write_results(workdir, results)


def _probe_accuracy(theta, phi_test, labels, k) -> float:
  with jax.enable_x64(True):
    logits = L.LinearProbe(k).apply(theta, jnp.asarray(phi_test))
    return float(np.mean(np.argmax(np.asarray(logits), -1) == labels))


def prune_transfer(workdir, data, noisy_labels, lsi, config, mesh, runs) -> dict:
  """Test accuracy of a larger CNN trained on the noisy pool minus the top / bottom / a random fraction by LSI."""
  t = config.transfer
  n = len(lsi)
  drop = int(round(t.prune_fraction * n))
  order = np.argsort(lsi)  # ascending LSI
  model = SmallCNN(10, widths=tuple(t.widths), feature_dim=t.feature_dim)
  accs = {k: [] for k in ("none", "top", "bottom", "random")}
  for seed in t.seeds:
    keep = {"none": np.arange(n), "top": order[:n - drop], "bottom": order[drop:],
            "random": np.sort(np.random.default_rng(seed + 1000).permutation(n)[drop:])}
    for variant, idx in keep.items():
      run = f"transfer/{variant}_seed{seed}"
      params = train_cnn(os.path.join(workdir, run), model, data["pool_images"][idx], noisy_labels[idx], t,
                         config.train, mesh, seed, f"transfer {variant} s{seed}")
      runs.append(run)
      accs[variant].append(accuracy(model, params, data["test_images"], data["test_labels"]))
  out = {}
  for variant, a in accs.items():
    out[f"acc/prune/{variant}"] = float(np.mean(a))
    out[f"acc_std/prune/{variant}"] = float(np.std(a))
  return out


# ---- a user's own features ----

def features_study(config, workdir: str) -> dict:
  """LSI of every ``train`` sample of ``config.data.features`` (see :mod:`jaxmed.io.features`).

  The features are standardised on the train rows, a linear probe is fitted (damped Newton to a gradient
  tolerance, float64) and every train sample gets its closed-form LSI; exact leave-one-out LSI on
  ``config.lsi.byo_exact_samples`` random train samples checks the closed form (``spearman/closed_vs_exact``).
  Writes ``lsi_scores.csv`` (``index`` is the row in the .npz) and ``results.json``.
  """
  c = config.lsi
  data = load_features_npz(config.data.features)
  train = np.flatnonzero(data["split"] == "train")
  x, labels, k = data["features"], data["labels"], data["num_classes"]
  mean, std = x[train].mean(0), x[train].std(0) + 1e-6
  phi_all = (x - mean) / std
  results = {"data/num_train": int(len(train)), "data/num_features": int(x.shape[1]), "data/num_classes": k}
  with jax.enable_x64(True):
    phi, y = jnp.asarray(phi_all[train]), jnp.asarray(labels[train])
    probe = L.LinearProbe(k)
    init = jax.tree.map(lambda p: p.astype(jnp.float64), probe.init(jax.random.PRNGKey(config.seed), phi[:1]))
    fit = L.linear_probe_newton_fit_fn(probe.apply, phi, y, prior_precision=c.prior_precision,
                                       steps=c.newton_steps, tol=c.newton_tol)
    theta = jax.jit(fit)(init, jnp.ones(len(train)))
    logits = probe.apply(theta, phi)
    closed = jax.tree.map(np.asarray, L.lsi_closed_form(phi, logits, y, likelihood="classification",
                                                        prior_precision=c.prior_precision,
                                                        memory_budget_gb=c.memory_budget_gb))
    loss = np.asarray(L.per_sample_loss(logits, y))
    results["probe_train_accuracy"] = float(np.mean(np.argmax(np.asarray(logits), -1) == labels[train]))
    held = np.flatnonzero(data["split"] != "train")
    if len(held):
      results["probe_heldout_accuracy"] = float(np.mean(
          np.argmax(np.asarray(probe.apply(theta, jnp.asarray(phi_all[held]))), -1) == labels[held]))
    m = min(int(c.byo_exact_samples), len(train))
    if m >= 3:
      subset = np.sort(np.random.default_rng(config.seed).choice(len(train), m, replace=False))
      exact = jax.jit(lambda: L.laplace_sample_information(
          fit, probe.apply, init, phi, likelihood="classification", structure="full", linear_probe=True,
          prior_precision=c.prior_precision, indices=jnp.asarray(subset), chunk=c.chunk or None,
          memory_budget_gb=c.memory_budget_gb)["lsi"])()
      results["spearman/closed_vs_exact"] = float(scipy.stats.spearmanr(closed["lsi"][subset], exact)[0])
      results["data/num_exact"] = m
  results["lsi_mean"], results["lsi_median"] = float(closed["lsi"].mean()), float(np.median(closed["lsi"]))
  with open(os.path.join(workdir, "lsi_scores.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["index", "label", "lsi", "trace", "mahalanobis", "logdet", "loss"])
    for j, i in enumerate(train):
      w.writerow([int(i), int(labels[i])] + [f"{float(closed[key][j]):.8g}" for key in
                                               ("lsi", "trace", "mahalanobis", "logdet")] + [f"{loss[j]:.8g}"])
  return core.write_results(workdir, results)
