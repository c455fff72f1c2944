"""ViTa on a synthetic cohort: MAE pretraining, image-tabular alignment, downstream heads, ablations.

1. Data: ``jaxmed.synth.heart.cardiac_cohort``: per subject 3 LAX + S SAX
   cine slices over T frames, labels, 10 analytic phenotypes, a disease
   label and tabular factors (with missing values). Train and test subjects
   come from different seeds. Numerical tabular features are z-scored with
   the training statistics; missing values become the encoder's mask tokens.
2. Stage 1 (MAE): the cine encoder + decoder on (5, 8, 8) patches, mask 0.7,
   MSE on masked patches; ``<workdir>/mae``.
3. Stage 2 (alignment): the image encoder (from stage 1, unmasked, CLS
   token) and the tabular encoder, each with a SimCLR projection head,
   trained with the symmetric CLIP loss (tau 0.1) over the global batch;
   ``<workdir>/clip``.
4. Stage 3 (heads): MLP heads on frozen embeddings (image: CLS and mean
   patch token; tabular: CLS) for the phenotypes (Huber on z-scored
   targets) and the disease (BCE, pos_weight = negatives / positives):
   ``vita`` = the aligned image encoder (disease: image + tabular
   embeddings), ``image_only`` = the stage-1 encoder (no alignment),
   ``tabular_only`` = the aligned tabular encoder alone (disease), and
   ``scratch`` = the same encoder trained end to end from random init with
   the same steps. Segmentation: a UNETR decoder on the frozen aligned
   encoder (``vita``) vs encoder + decoder from scratch, Dice + CE.
5. Metrics on the test subjects; figures ``mae_reconstruction.png``,
   ``phenotypes.png``, ``retrieval.png``.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmed import cardiac, core
from jaxmed.nn import dice_ce_loss
from jaxmed.synth import heart

PHENO = heart.PHENOTYPES


# ---- 1. data ----

def make_data(config) -> dict:
  d = config.data
  kw = {"size": d.size, "frames": d.frames, "num_sax": d.num_sax, "missing_fraction": d.missing_fraction}
  train = heart.cardiac_cohort(d.num_train, seed=config.seed * 1000 + 1, **kw)
  test = heart.cardiac_cohort(d.num_test, seed=config.seed * 1000 + 2, **kw)
  z, mean, std = cardiac.standardise(train["numerical"])
  train["numerical_z"], test["numerical_z"] = z, cardiac.standardise(test["numerical"], mean, std)[0]
  pm, ps = train["phenotypes"].mean(0), train["phenotypes"].std(0) + 1e-8
  for part in (train, test):
    part["phenotypes_z"] = (part["phenotypes"] - pm) / ps
  return {"train": train, "test": test, "pheno_mean": pm, "pheno_std": ps}


# ---- models ----

def image_encoder(config, shape) -> cardiac.CineEncoder:
  m = config.model
  return cardiac.CineEncoder(shape, 3, tuple(m.patch), m.dim, m.depth, m.heads)


def tabular_encoder(config) -> cardiac.TabularEncoder:
  m = config.model
  return cardiac.TabularEncoder(len(heart.NUMERICAL), len(heart.BINARY),
                                tuple(len(v) for v in heart.CATEGORICAL.values()), m.tab_dim, m.tab_depth, m.heads)


def image_embedding(tokens: jax.Array) -> jax.Array:
  """CLS token and mean patch token, concatenated: ``[B, 2D]``."""
  return jnp.concatenate([tokens[:, 0], tokens[:, 1:].mean(1)], -1)


def fit(config, workdir, name, init_fn, loss_fn, arrays, stage, mesh, seed) -> dict:
  """One stage through :func:`jaxmed.core.train_loop` (resumable); ``arrays``: the training rows."""
  s, t = config[stage], config.train
  tx = optax.adamw(optax.warmup_cosine_decay_schedule(0.0, s.lr, max(1, s.steps // 10), s.steps),
                   weight_decay=t.weight_decay)
  ds = core.step_batches(core.ArraySource(arrays), batch_size=s.batch_size, seed=seed)
  state, sharding = core.create_train_state(init_fn, tx, jax.random.PRNGKey(seed), mesh)
  step = core.make_train_step(loss_fn, tx, state_sharding=sharding, mesh=mesh)
  state = core.train_loop(state, step, lambda i: ds[i], mesh=mesh, run_dir=os.path.join(workdir, name),
                          steps=s.steps, save_every=t.save_every, keep=t.keep, log_every=t.log_every, desc=name)
  return jax.device_get(state.params)


def tab_inputs(part, idx=slice(None)):
  return part["numerical_z"][idx], part["binary"][idx], part["categorical"][idx]


# ---- 2-3. pretraining and alignment ----

def pretrain_mae(config, workdir, data, mesh) -> dict:
  m, tr = config.model, data["train"]
  shape = tr["cine"].shape[1:]
  mae = cardiac.CineMAE(shape, 3, tuple(m.patch), m.dim, m.depth, m.heads, m.decoder_dim, m.decoder_depth)

  def loss_fn(params, batch, rng):
    pred, mask = mae.apply(params, batch["cine"], rng, config.mae.mask_ratio)
    return cardiac.mae_loss(pred, batch["cine"], mask, tuple(m.patch), config.mae.norm_pix), {}

  init = lambda r: mae.init(r, tr["cine"][:1], r, config.mae.mask_ratio)  # noqa: E731
  params = fit(config, workdir, "mae", init, loss_fn, {"cine": tr["cine"]}, "mae", mesh, config.seed)
  return {"mae": mae, "params": params, "encoder": {"params": params["params"]["encoder"]}}


def align(config, workdir, data, encoder_params, mesh) -> dict:
  tr, m = data["train"], config.model
  enc, tab = image_encoder(config, tr["cine"].shape[1:]), tabular_encoder(config)
  proj_i, proj_t = cardiac.ProjectionHead(2 * m.proj_dim, m.proj_dim), cardiac.ProjectionHead(2 * m.proj_dim,
                                                                                              m.proj_dim)

  def init(r):
    k = jax.random.split(r, 3)
    return {"image": encoder_params, "tab": tab.init(k[0], *tab_inputs(tr, slice(0, 1))),
            "proj_i": proj_i.init(k[1], jnp.zeros((1, 2 * m.dim))), "proj_t": proj_t.init(k[2], jnp.zeros((1, m.tab_dim)))}

  def loss_fn(params, batch, rng):
    zi = proj_i.apply(params["proj_i"], image_embedding(enc.apply(params["image"], batch["cine"])[0]))
    zt = proj_t.apply(params["proj_t"], tab.apply(params["tab"], batch["num"], batch["bin"], batch["cat"])[0])
    loss = cardiac.clip_loss(zi, zt, config.clip.temperature)
    acc = jnp.mean(jnp.argmax(cardiac.l2_normalise(zi) @ cardiac.l2_normalise(zt).T, 1) == jnp.arange(zi.shape[0]))
    return loss, {"top1": acc}

  arrays = {"cine": tr["cine"], "num": tr["numerical_z"], "bin": tr["binary"], "cat": tr["categorical"]}
  params = fit(config, workdir, "clip", init, loss_fn, arrays, "clip", mesh, config.seed + 1)
  return {"image": params["image"], "tab": params["tab"]}


def embed_images(config, params, cine, batch=16) -> np.ndarray:
  enc = image_encoder(config, cine.shape[1:])
  f = jax.jit(lambda p, x: image_embedding(enc.apply(p, x)[0]))
  return np.concatenate([np.asarray(f(params, cine[i:i + batch])) for i in range(0, len(cine), batch)])


def embed_tabular(config, params, part) -> np.ndarray:
  return np.asarray(jax.jit(tabular_encoder(config).apply)(params, *tab_inputs(part))[0])


# ---- 4. heads ----

def train_head(config, workdir, name, x_train, y_train, task, mesh, pos_weight=1.0):
  head = cardiac.MLPHead(y_train.shape[1] if task == "pheno" else 1)

  def loss_fn(params, batch, rng):
    out = head.apply(params, batch["x"])
    if task == "pheno":
      return cardiac.huber_loss(out, batch["y"], config.heads.huber_delta), {}
    return cardiac.weighted_bce(out[:, 0], batch["y"], pos_weight), {}

  init = lambda r: head.init(r, x_train[:1])  # noqa: E731
  params = fit(config, workdir, name, init, loss_fn, {"x": x_train, "y": y_train}, "heads", mesh, config.seed + 2)
  return lambda x: np.asarray(jax.jit(head.apply)(params, x))


def train_scratch(config, workdir, name, cine, y, task, mesh, pos_weight=1.0):
  """The image encoder from random init plus the head, trained end to end for the heads' steps."""
  enc = image_encoder(config, cine.shape[1:])
  head = cardiac.MLPHead(y.shape[1] if task == "pheno" else 1)

  def init(r):
    k = jax.random.split(r)
    return {"enc": enc.init(k[0], cine[:1]), "head": head.init(k[1], jnp.zeros((1, 2 * config.model.dim)))}

  def forward(params, x):
    return head.apply(params["head"], image_embedding(enc.apply(params["enc"], x)[0]))

  def loss_fn(params, batch, rng):
    out = forward(params, batch["cine"])
    if task == "pheno":
      return cardiac.huber_loss(out, batch["y"], config.heads.huber_delta), {}
    return cardiac.weighted_bce(out[:, 0], batch["y"], pos_weight), {}

  params = fit(config, workdir, name, init, loss_fn, {"cine": cine, "y": y}, "heads", mesh, config.seed + 3)
  f = jax.jit(forward)
  return lambda x: np.concatenate([np.asarray(f(params, x[i:i + 16])) for i in range(0, len(x), 16)])


def pheno_metrics(pred_z, data, setting) -> dict:
  te = data["test"]
  pred = pred_z * data["pheno_std"] + data["pheno_mean"]
  out = {}
  for j, name in enumerate(PHENO):
    err = pred[:, j] - te["phenotypes"][:, j]
    out[f"pheno/mae/{name}/{setting}"] = float(np.abs(err).mean())
    ss = ((te["phenotypes"][:, j] - te["phenotypes"][:, j].mean()) ** 2).sum()
    out[f"pheno/r2/{name}/{setting}"] = float(1 - (err ** 2).sum() / max(ss, 1e-12))
  return out


def auroc(y, score) -> float:
  from sklearn.metrics import roc_auc_score
  return float(roc_auc_score(y, score)) if len(np.unique(y)) == 2 else float("nan")


# ---- 4b. segmentation ----

def train_segmentation(config, workdir, name, data, mesh, encoder_params=None):
  """UNETR decoder on the frozen encoder (``encoder_params``) or encoder + decoder from scratch."""
  tr, m = data["train"], config.model
  shape = tr["cine"].shape[1:]
  enc = image_encoder(config, shape)
  dec = cardiac.UNETRDecoder(shape, tuple(m.patch), 4, m.seg_width, skip_blocks=(max(0, m.depth // 3),
                                                                               max(0, 2 * m.depth // 3)))
  frozen = encoder_params is not None

  def init(r):
    k = jax.random.split(r)
    ep = encoder_params if frozen else enc.init(k[0], tr["cine"][:1])
    tokens, _, _, hidden = enc.apply(ep, tr["cine"][:1])
    return {"dec": dec.init(k[1], hidden, tokens[:, 1:], tr["cine"][:1]), **({} if frozen else {"enc": ep})}

  def forward(params, x):
    ep = jax.lax.stop_gradient(encoder_params) if frozen else params["enc"]
    tokens, _, _, hidden = enc.apply(ep, x)
    return dec.apply(params["dec"], hidden, tokens[:, 1:], x)

  def loss_fn(params, batch, rng):
    return dice_ce_loss(forward(params, batch["cine"]), batch["seg"], 4)

  params = fit(config, workdir, name, init, loss_fn, {"cine": tr["cine"], "seg": tr["seg"]}, "seg", mesh,
               config.seed + 4)
  f = jax.jit(forward)
  te = data["test"]
  pred = np.concatenate([np.asarray(f(params, te["cine"][i:i + 4])).argmax(-1) for i in range(0, len(te["cine"]), 4)])
  dice = []
  for c in (1, 2, 3):
    a, b = pred == c, te["seg"] == c
    dice.append(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))
  return float(np.mean(dice)), [float(x) for x in dice]


# ---- the run ----

def train_and_evaluate(config, workdir: str) -> dict:
  core.open_workdir(workdir, config)
  mesh = core.make_mesh(config.mesh)
  data = make_data(config)
  tr, te = data["train"], data["test"]
  results: dict = {}

  stage1 = pretrain_mae(config, workdir, data, mesh)
  pred, mask = jax.jit(lambda p, x, k: stage1["mae"].apply(p, x, k, config.mae.mask_ratio))(
      stage1["params"], te["cine"], jax.random.PRNGKey(123))
  results["mae/recon_mse"] = float(cardiac.mae_loss(pred, te["cine"], mask, tuple(config.model.patch)))
  results["mae/mean_baseline_mse"] = float(cardiac.mae_loss(jnp.full_like(pred, float(tr["cine"].mean())),
                                                            te["cine"], mask, tuple(config.model.patch)))
  # a stronger baseline: every masked patch predicted by the training cohort's mean image at that position
  mean_image = jnp.broadcast_to(jnp.asarray(tr["cine"].mean(0)), te["cine"].shape)
  results["mae/position_mean_baseline_mse"] = float(cardiac.mae_loss(
      cardiac.patchify(mean_image, tuple(config.model.patch)), te["cine"], mask, tuple(config.model.patch)))
  aligned = align(config, workdir, data, stage1["encoder"], mesh)

  feats = {"vita": (embed_images(config, aligned["image"], tr["cine"]), embed_images(config, aligned["image"], te["cine"])),
           "image_only": (embed_images(config, stage1["encoder"], tr["cine"]),
                          embed_images(config, stage1["encoder"], te["cine"]))}
  tab_tr, tab_te = embed_tabular(config, aligned["tab"], tr), embed_tabular(config, aligned["tab"], te)
  pos_weight = float((1 - tr["disease"]).sum() / max(tr["disease"].sum(), 1))
  preds = {}
  for setting, (f_tr, f_te) in feats.items():
    head = train_head(config, workdir, f"pheno_{setting}", f_tr, tr["phenotypes_z"], "pheno", mesh)
    preds[setting] = head(f_te)
    results.update(pheno_metrics(preds[setting], data, setting))
  scratch = train_scratch(config, workdir, "pheno_scratch", tr["cine"], tr["phenotypes_z"], "pheno", mesh)
  preds["scratch"] = scratch(te["cine"])
  results.update(pheno_metrics(preds["scratch"], data, "scratch"))

  disease_inputs = {"vita": (np.concatenate([feats["vita"][0], tab_tr], 1), np.concatenate([feats["vita"][1], tab_te], 1)),
                    "image_only": feats["image_only"], "tabular_only": (tab_tr, tab_te)}
  for setting, (f_tr, f_te) in disease_inputs.items():
    head = train_head(config, workdir, f"disease_{setting}", f_tr, tr["disease"], "disease", mesh, pos_weight)
    score = head(f_te)[:, 0]
    results[f"disease/auroc/{setting}"] = auroc(te["disease"], score)
    results[f"disease/accuracy/{setting}"] = float(((score > 0) == (te["disease"] > 0.5)).mean())
  scratch = train_scratch(config, workdir, "disease_scratch", tr["cine"], tr["disease"], "disease", mesh, pos_weight)
  score = scratch(te["cine"])[:, 0]
  results["disease/auroc/scratch"] = auroc(te["disease"], score)
  results["disease/accuracy/scratch"] = float(((score > 0) == (te["disease"] > 0.5)).mean())

  for setting, enc_params in (("vita", aligned["image"]), ("scratch", None)):
    mean_dice, per_class = train_segmentation(config, workdir, f"seg_{setting}", data, mesh, enc_params)
    results[f"seg/dice/{setting}"] = mean_dice
    for name, v in zip(("lv", "myo", "rv"), per_class):
      results[f"seg/dice/{name}/{setting}"] = v
  results["num_subjects/train"], results["num_subjects/test"] = float(len(tr["cine"])), float(len(te["cine"]))
  results["disease/prevalence/test"] = float(te["disease"].mean())

  plot_reconstruction(config, te["cine"][0], np.asarray(pred[0]), np.asarray(mask[0]),
                      os.path.join(workdir, "mae_reconstruction.png"))
  plot_phenotypes(preds, data, os.path.join(workdir, "phenotypes.png"))
  plot_retrieval(feats["vita"][1], te, os.path.join(workdir, "retrieval.png"))
  return core.write_results(workdir, results)


# ---- 5. figures ----

def plot_reconstruction(config, cine, pred, mask, path) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  patch = tuple(config.model.patch)
  shape = cine.shape
  recon = np.asarray(cardiac.unpatchify(jnp.asarray(pred)[None], shape, patch))[0]
  m = np.asarray(cardiac.unpatchify(jnp.repeat(jnp.asarray(mask)[None, :, None], int(np.prod(patch)), -1),
                                    shape, patch))[0]
  shown = [0, 3, 3 + (shape[0] - 3) // 2]
  fig, axes = plt.subplots(3, len(shown), figsize=(3 * len(shown), 8))
  for j, s in enumerate(shown):
    for i, (img, title) in enumerate(((cine[s, 0], "input"), (np.where(m[s, 0] > 0, np.nan, cine[s, 0]), "visible"),
                                      (np.where(m[s, 0] > 0, recon[s, 0], cine[s, 0]), "reconstruction"))):
      axes[i, j].imshow(img, cmap="gray", vmin=0, vmax=1.1)
      axes[i, j].set_title(f"{'LAX' if s < 3 else 'SAX'} {s} frame 0: {title}", fontsize=8)
      axes[i, j].axis("off")
  fig.tight_layout()
  core.save_figure(fig, path, dpi=100)
  plt.close(fig)


def plot_phenotypes(preds, data, path) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  te = data["test"]
  names = ("LVEDV", "LVEF", "LVM", "RVEDV")
  fig, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names), 3.2))
  for ax, name in zip(axes, names):
    j = PHENO.index(name)
    true = te["phenotypes"][:, j]
    for setting, color in (("vita", "tab:orange"), ("image_only", "tab:blue"), ("scratch", "tab:gray")):
      p = preds[setting][:, j] * data["pheno_std"][j] + data["pheno_mean"][j]
      ax.scatter(true, p, s=8, alpha=0.6, color=color, label=setting)
    lo, hi = true.min(), true.max()
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set_xlabel(f"true {name} ({heart.PHENOTYPE_UNITS[name]})")
    ax.set_ylabel("predicted")
  axes[0].legend(fontsize=7)
  fig.tight_layout()
  core.save_figure(fig, path, dpi=100)
  plt.close(fig)


def plot_retrieval(emb, te, path, k: int = 4) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  z = emb / (np.linalg.norm(emb, axis=1, keepdims=True) + 1e-8)
  sim = z @ z[0]
  order = np.argsort(-sim)[:k + 1]
  mid = 3 + (te["cine"].shape[1] - 3) // 2
  fig, axes = plt.subplots(1, k + 1, figsize=(2.6 * (k + 1), 3))
  ef = te["phenotypes"][:, PHENO.index("LVEF")]
  for ax, i in zip(axes, order):
    ax.imshow(te["cine"][i, mid, 0], cmap="gray", vmin=0, vmax=1.1)
    ax.set_title(("query" if i == order[0] else f"cos {sim[i]:.2f}") + f"\nLVEF {ef[i]:.0f}%, "
                 f"disease {int(te['disease'][i])}", fontsize=8)
    ax.axis("off")
  fig.tight_layout()
  core.save_figure(fig, path, dpi=100)
  plt.close(fig)
