"""ViTa's ablation arms, one factor at a time, for one training seed.

Frozen features are read by standardised linear probes (ridge for the
phenotypes, logistic regression with cross-validated C for the disease) on
*all patch tokens* flattened: the input of the official linear regression
head (``models/regression_models.py`` lines 37-38 and 76-77), so the probe
measures what the features carry. Beside each probe, the MLP head on the
mean token (``*_mlp`` keys) shows what a trained head makes of it.

=====================  ==============================================================
arm                    features / model
=====================  ==============================================================
``image_only``         the MAE encoder's tokens
``aligned_image_only`` the aligned image encoder's tokens (official: image-only heads)
``aligned_fused``      aligned image tokens + the aligned tabular encoder's tokens
``tabular_only``       the aligned tabular encoder's tokens
``tabular_logreg``     the raw table (z-scored, mean-imputed, missing flags, one-hot)
``random_init``        an untrained encoder's tokens (the floor)
``aligned_finetuned``  the official protocol: the aligned encoder fine-tuned with a
                       linear head on all tokens (Huber / BCE)
``scratch``            the same network and steps from random init
=====================  ==============================================================
"""

from __future__ import annotations

import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from sklearn.metrics import r2_score, roc_auc_score

from experiments.vita.models import fit, image_encoder, maybe_augment, tab_inputs, tabular_encoder
from jaxmed import cardiac, core
from jaxmed.synth import heart

C_GRID = tuple(np.logspace(-4, 1, 6))
PROBE_ARMS = ("image_only", "aligned_image_only", "aligned_fused", "tabular_only", "tabular_logreg", "random_init")
TRAINED_ARMS = ("aligned_finetuned", "scratch")
MLP_ARMS = ("image_only", "aligned_image_only", "aligned_fused", "tabular_only")
REPORTED_PHENO = ("LVEF", "LVCO", "LVEDV", "LVSV")


def image_tokens(config, params, cine, batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
  """``(all patch tokens flattened [N, L*D], mean of all tokens [N, D])`` of an unmasked encoder."""
  enc = image_encoder(config, cine.shape[1:])
  f = jax.jit(lambda p, x: enc.apply(p, x)[0])
  toks = np.concatenate([np.asarray(f(params, cine[i:i + batch])) for i in range(0, len(cine), batch)])
  return toks[:, 1:].reshape(len(toks), -1), toks.mean(1)


def tabular_tokens(config, params, part) -> tuple[np.ndarray, np.ndarray]:
  toks = np.asarray(jax.jit(tabular_encoder(config).apply)(params, *tab_inputs(part))[1])
  return toks.reshape(len(toks), -1), toks.mean(1)


def raw_table(part, train) -> np.ndarray:
  """The table as numbers: numerical z-scores (train mean for a missing value), binary (train mean), smoking
  one-hot, and a 0/1 missing flag per column."""
  num, b = part["numerical_z"].copy(), part["binary"].copy()
  miss = np.concatenate([np.isnan(num), np.isnan(b), part["categorical"] < 0], 1).astype(np.float32)
  num[np.isnan(num)] = 0.0
  b = np.where(np.isnan(b), np.nanmean(train["binary"], 0), b)
  cats = len(heart.CATEGORICAL["smoking"])
  onehot = (part["categorical"][:, :1] == np.arange(cats)).astype(np.float32)
  return np.concatenate([num, b, onehot, miss], 1)


def probe(f_tr, data, f_te) -> dict:
  tr = data["train"]
  score = core.logistic_probe(f_tr, tr["disease"], f_te, num_classes=2, c=C_GRID)[:, 1]
  return {"disease": score, "pheno": core.ridge_probe(f_tr, tr["phenotypes_z"], f_te)}


def mlp_head(config, run_dir, x_tr, data, x_te, mesh, seed) -> dict:
  """MLP heads (phenotypes: Huber on z-scores; disease: weighted BCE) on frozen mean tokens."""
  tr, out = data["train"], {}
  pos_weight = float((1 - tr["disease"]).sum() / max(tr["disease"].sum(), 1))
  for task, y in (("pheno", tr["phenotypes_z"]), ("disease", tr["disease"])):
    head = cardiac.MLPHead(y.shape[1] if task == "pheno" else 1)

    def loss_fn(params, batch, rng, head=head, task=task):
      o = head.apply(params, batch["x"])
      if task == "pheno":
        return cardiac.huber_loss(o, batch["y"], config.heads.huber_delta), {}
      return cardiac.weighted_bce(o[:, 0], batch["y"], pos_weight), {}

    params = fit(config, os.path.join(run_dir, f"mlp_{task}"), lambda r, head=head: head.init(r, x_tr[:1]),
                 loss_fn, {"x": x_tr, "y": y}, "heads", mesh, seed + 2)
    o = np.asarray(jax.jit(head.apply)(params, x_te))
    out[task] = o if task == "pheno" else o[:, 0]
  return out


class TokenHead(nn.Module):
  """The official linear head on all patch tokens: ``tokens [B, 1 + L, D] -> [B, out]``."""
  out: int

  @nn.compact
  def __call__(self, tokens):
    return nn.Dense(self.out, name="linear")(tokens[:, 1:].reshape(tokens.shape[0], -1))


def finetune(config, run_dir, data, encoder_params, mesh, seed) -> dict:
  """The encoder (from ``encoder_params``, or random init when ``None``) and a :class:`TokenHead`, trained end to
  end per task (Huber on z-scored phenotypes; BCE with pos_weight for the disease)."""
  tr, te = data["train"], data["test"]
  enc = image_encoder(config, tr["cine"].shape[1:])
  pos_weight = float((1 - tr["disease"]).sum() / max(tr["disease"].sum(), 1))
  out = {}
  for task, y in (("pheno", tr["phenotypes_z"]), ("disease", tr["disease"])):
    head = TokenHead(y.shape[1] if task == "pheno" else 1)

    def init(r, head=head):
      k = jax.random.split(r)
      ep = encoder_params if encoder_params is not None else enc.init(k[0], tr["cine"][:1])
      return {"enc": ep, "head": head.init(k[1], enc.apply(ep, tr["cine"][:1])[0])}

    def forward(params, x, head=head):
      return head.apply(params["head"], enc.apply(params["enc"], x)[0])

    def loss_fn(params, batch, rng, forward=forward, task=task):
      o = forward(params, maybe_augment(config.finetune.augment, rng, batch["cine"]))
      if task == "pheno":
        return cardiac.huber_loss(o, batch["y"], config.finetune.huber_delta), {}
      return cardiac.weighted_bce(o[:, 0], batch["y"], pos_weight), {}

    params = fit(config, os.path.join(run_dir, f"finetune_{task}"), init, loss_fn, {"cine": tr["cine"], "y": y},
                 "finetune", mesh, seed + 3)
    f = jax.jit(forward)
    o = np.concatenate([np.asarray(f(params, te["cine"][i:i + 16])) for i in range(0, len(te["cine"]), 16)])
    out[task] = o if task == "pheno" else o[:, 0]
  return out


def run_arms(config, run_dir, data, mae_encoder, aligned, mesh, seed) -> dict:
  """``{"probe": {arm: {"disease": [N], "pheno": [N, 10]}}, "mlp": {...}}`` on the test subjects."""
  tr, te = data["train"], data["test"]
  random_params = image_encoder(config, tr["cine"].shape[1:]).init(jax.random.PRNGKey(10_000 + seed),
                                                                    tr["cine"][:1])
  feats = {}
  for name, params in (("image_only", mae_encoder), ("aligned_image_only", aligned["image"]),
                       ("random_init", random_params)):
    feats[name] = (image_tokens(config, params, tr["cine"]), image_tokens(config, params, te["cine"]))
  feats["tabular_only"] = (tabular_tokens(config, aligned["tab"], tr), tabular_tokens(config, aligned["tab"], te))
  feats["aligned_fused"] = tuple(tuple(np.concatenate([a, b], 1) for a, b in zip(img, tab))
                                 for img, tab in zip(feats["aligned_image_only"], feats["tabular_only"]))
  raw = (raw_table(tr, tr), raw_table(te, tr))
  out = {"probe": {name: probe(f_tr[0], data, f_te[0]) for name, (f_tr, f_te) in feats.items()}, "mlp": {}}
  out["probe"]["tabular_logreg"] = probe(raw[0], data, raw[1])
  for name in MLP_ARMS:
    f_tr, f_te = feats[name]
    out["mlp"][name] = mlp_head(config, os.path.join(run_dir, name), f_tr[1], data, f_te[1], mesh, seed)
  out["probe"]["aligned_finetuned"] = finetune(config, os.path.join(run_dir, "aligned"), data, aligned["image"],
                                               mesh, seed)
  out["probe"]["scratch"] = finetune(config, os.path.join(run_dir, "scratch"), data, None, mesh, seed)
  return out


def reconstruction_metrics(config, stage1, data, results) -> dict:
  """Test MSE of the MAE on every patch and on the masked ones, beside two baselines; the example for the figure."""
  tr, te, patch = data["train"], data["test"], tuple(config.model.patch)
  pred, mask = jax.jit(lambda p, x, k: stage1["mae"].apply(p, x, k, config.mae.mask_ratio))(
      stage1["params"], te["cine"], jax.random.PRNGKey(123))
  mean_image = cardiac.patchify(jnp.broadcast_to(jnp.asarray(tr["cine"].mean(0)), te["cine"].shape), patch)
  for name, p in (("", pred), ("mean_baseline_", jnp.full_like(pred, float(tr["cine"].mean()))),
                  ("position_mean_baseline_", mean_image)):
    results[f"mae/{name}mse_masked"] = float(cardiac.mae_loss(p, te["cine"], mask, patch))
    results[f"mae/{name}mse_all"] = float(cardiac.mae_loss(p, te["cine"], mask, patch, mask_loss=False))
  return {"pred": np.asarray(pred[0]), "mask": np.asarray(mask[0])}


def seed_line(out: dict, data) -> str:
  """One seed's disease AUROC and LVEF R^2 per arm, for the log."""
  te, j = data["test"], heart.PHENOTYPES.index("LVEF")
  return ", ".join(f"{arm} AUROC {roc_auc_score(te['disease'], r['disease']):.3f} / LVEF R^2 "
                   f"{r2_score(te['phenotypes_z'][:, j], r['pheno'][:, j]):.3f}" for arm, r in out["probe"].items())


def _r2(j):
  return lambda y, p: r2_score(y[:, j], p[:, j])


def summarise(per_seed: list[dict], data, num_boot: int) -> dict:
  """Means over seeds with bootstrap 95% CIs over test subjects (``_ci`` = ``[lo, hi]``)."""
  te, res = data["test"], {}
  y_d = te["disease"]
  y_p = te["phenotypes_z"]
  for kind, arms_ in (("probe", PROBE_ARMS + TRAINED_ARMS), ("mlp", MLP_ARMS)):
    for arm in arms_:
      runs = [s[kind][arm] for s in per_seed]
      suffix = "" if kind == "probe" else "_mlp"
      v, lo, hi = core.bootstrap_metric(roc_auc_score, y_d, [r["disease"] for r in runs], num_resamples=num_boot)
      res[f"disease/auroc{suffix}/{arm}"], res[f"disease/auroc{suffix}/{arm}_ci"] = v, [lo, hi]
      res[f"disease/auroc{suffix}_sd/{arm}"] = float(np.std([roc_auc_score(y_d, r["disease"]) for r in runs]))
      for name in REPORTED_PHENO:
        j = heart.PHENOTYPES.index(name)
        v, lo, hi = core.bootstrap_metric(_r2(j), y_p, [r["pheno"] for r in runs], num_resamples=num_boot)
        res[f"pheno/r2{suffix}/{name}/{arm}"], res[f"pheno/r2{suffix}/{name}/{arm}_ci"] = v, [lo, hi]
  return res
