"""ViTa on a synthetic cohort: the official recipe stage by stage, and ablations that change one factor at a time.

1. Data (:func:`make_data`): ``jaxmed.synth.heart.cardiac_cohort``, in which
   disease has tabular-only and image-only causes; the official frame
   selection (``render_frames -> frames``) and min-max scaling per subject.
   The oracle AUROCs of the generating variables (image, tabular, joint) are
   computed first, so the ceilings are known before any model runs.
2. Per training seed (``config.seeds``), in ``<workdir>/seed<k>``:
   stage I MAE (mask 0.7, MSE on every patch, sigmoid output); stage II
   alignment (the MAE encoder with 50% of its tokens masked and the tabular
   encoder, mean of all tokens, SimCLR heads, CLIP); then the arms of
   :mod:`experiments.vita.arms`.
3. Segmentation (first seed): a UNETR decoder on the MAE encoder, frozen vs
   fine-tuned.
4. Metrics: means over seeds with bootstrap 95% CIs over test subjects;
   figures ``ablation.png`` and ``mae_reconstruction.png``.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from experiments.vita import arms, figures
from experiments.vita.models import fit, image_encoder, maybe_augment, tab_inputs, tabular_encoder
from jaxmed import cardiac, core
from jaxmed.cardiac import preprocess
from jaxmed.nn import dice_ce_loss
from jaxmed.synth import heart


def make_data(config) -> dict:
  d = config.data
  kw = {"size": d.size, "frames": d.render_frames, "num_sax": d.num_sax, "missing_fraction": d.missing_fraction}
  train = heart.cardiac_cohort(d.num_train, seed=config.seed * 1000 + 1, **kw)
  test = heart.cardiac_cohort(d.num_test, seed=config.seed * 1000 + 2, **kw)
  keep = preprocess.keep_frames(d.render_frames, d.frames)
  for part in (train, test):
    part["cine"] = np.stack([preprocess.minmax(c[:, keep]) for c in part["cine"]])
    part["seg"] = part["seg"][:, :, keep]
  positives = int(test["disease"].sum())
  if positives < d.min_test_positives:
    raise ValueError(f"vita: the test split has {positives} positives; config.data.min_test_positives is "
                     f"{d.min_test_positives} (raise data.num_test)")
  z, mean, std = cardiac.standardise(train["numerical"])
  train["numerical_z"], test["numerical_z"] = z, cardiac.standardise(test["numerical"], mean, std)[0]
  pm, ps = train["phenotypes"].mean(0), train["phenotypes"].std(0) + 1e-8
  for part in (train, test):
    part["phenotypes_z"] = (part["phenotypes"] - pm) / ps
  return {"train": train, "test": test, "pheno_mean": pm, "pheno_std": ps}


def pretrain_mae(config, run_dir, data, mesh, seed) -> dict:
  m, tr, s = config.model, data["train"], config.mae
  mae = cardiac.CineMAE(tr["cine"].shape[1:], 3, tuple(m.patch), m.dim, m.depth, m.heads, m.decoder_dim,
                        m.decoder_depth, s.sigmoid, m.ln_epsilon)

  def loss_fn(params, batch, rng):
    k_aug, k_mask = jax.random.split(rng)
    cine = maybe_augment(s.augment, k_aug, batch["cine"])
    pred, mask = mae.apply(params, cine, k_mask, s.mask_ratio)
    return cardiac.mae_loss(pred, cine, mask, tuple(m.patch), s.norm_pix, s.mask_loss), {}

  init = lambda r: mae.init(r, tr["cine"][:1], r, s.mask_ratio)  # noqa: E731
  params = fit(config, os.path.join(run_dir, "mae"), init, loss_fn, {"cine": tr["cine"]}, "mae", mesh, seed)
  return {"mae": mae, "params": params, "encoder": {"params": params["params"]["encoder"]}}


def align(config, run_dir, data, encoder_params, mesh, seed) -> dict:
  """Stage II: image encoder (50% of tokens masked) and tabular encoder, mean of all tokens, SimCLR heads, CLIP."""
  tr, m, s = data["train"], config.model, config.clip
  enc, tab = image_encoder(config, tr["cine"].shape[1:]), tabular_encoder(config)
  proj_i, proj_t = cardiac.ProjectionHead(m.dim, m.proj_dim), cardiac.ProjectionHead(m.tab_dim, m.proj_dim)

  def init(r):
    k = jax.random.split(r, 3)
    return {"image": encoder_params, "tab": tab.init(k[0], *tab_inputs(tr, slice(0, 1))),
            "proj_i": proj_i.init(k[1], jnp.zeros((1, m.dim))), "proj_t": proj_t.init(k[2], jnp.zeros((1, m.tab_dim)))}

  def loss_fn(params, batch, rng):
    k_aug, k_mask = jax.random.split(rng)
    cine = maybe_augment(s.augment, k_aug, batch["cine"])
    zi = proj_i.apply(params["proj_i"], enc.apply(params["image"], cine, k_mask, s.mask_ratio)[0].mean(1))
    zt = proj_t.apply(params["proj_t"], tab.apply(params["tab"], batch["num"], batch["bin"], batch["cat"])[1].mean(1))
    acc = jnp.mean(jnp.argmax(cardiac.l2_normalise(zi) @ cardiac.l2_normalise(zt).T, 1) == jnp.arange(zi.shape[0]))
    return cardiac.clip_loss(zi, zt, s.temperature), {"top1": acc}

  arrays = {"cine": tr["cine"], "num": tr["numerical_z"], "bin": tr["binary"], "cat": tr["categorical"]}
  params = fit(config, os.path.join(run_dir, "clip"), init, loss_fn, arrays, "clip", mesh, seed + 1)
  return {"image": params["image"], "tab": params["tab"]}


def train_segmentation(config, run_dir, data, mesh, encoder_params, finetune: bool, seed: int):
  """UNETR decoder on the MAE encoder, frozen or fine-tuned with it (Dice + CE); test Dice per class."""
  tr, te, m = data["train"], data["test"], config.model
  shape = tr["cine"].shape[1:]
  enc = image_encoder(config, shape)
  dec = cardiac.UNETRDecoder(shape, tuple(m.patch), 4, m.seg_width,
                             skip_blocks=(max(0, m.depth // 3), max(0, 2 * m.depth // 3)))

  def init(r):
    tokens, _, _, hidden = enc.apply(encoder_params, tr["cine"][:1])
    return {"dec": dec.init(r, hidden, tokens[:, 1:], tr["cine"][:1]), **({"enc": encoder_params} if finetune else {})}

  def forward(params, x):
    ep = params["enc"] if finetune else jax.lax.stop_gradient(encoder_params)
    tokens, _, _, hidden = enc.apply(ep, x)
    return dec.apply(params["dec"], hidden, tokens[:, 1:], x)

  def loss_fn(params, batch, rng):
    return dice_ce_loss(forward(params, batch["cine"]), batch["seg"], 4)

  params = fit(config, run_dir, init, loss_fn, {"cine": tr["cine"], "seg": tr["seg"]}, "seg", mesh, seed + 4)
  f = jax.jit(forward)
  pred = np.concatenate([np.asarray(f(params, te["cine"][i:i + 16])).argmax(-1)
                         for i in range(0, len(te["cine"]), 16)])
  dice = [2 * ((pred == c) & (te["seg"] == c)).sum() / max((pred == c).sum() + (te["seg"] == c).sum(), 1)
          for c in (1, 2, 3)]
  return float(np.mean(dice)), [float(x) for x in dice]


def train_and_evaluate(config, workdir: str) -> dict:
  core.open_workdir(workdir, config)
  mesh = core.make_mesh(config.mesh)
  data = make_data(config)
  tr, te = data["train"], data["test"]
  n_fit = config.eval.oracle_fit
  results: dict = {f"oracle/disease_auroc/{k}": v
                   for k, v in heart.oracle_disease_auroc(te["subjects"], num_fit=n_fit).items()}
  for name, by_modality in heart.oracle_phenotype_r2(te["subjects"], num_fit=n_fit).items():
    results.update({f"oracle/pheno_r2/{name}/{k}": v for k, v in by_modality.items()})
  print("vita: oracles " + ", ".join(f"{k} {v:.3f}" for k, v in results.items()), flush=True)
  per_seed, recon = [], None
  for seed in config.seeds:
    run_dir = os.path.join(workdir, f"seed{seed}")
    stage1 = pretrain_mae(config, run_dir, data, mesh, seed)
    aligned = align(config, run_dir, data, stage1["encoder"], mesh, seed)
    per_seed.append(arms.run_arms(config, run_dir, data, stage1["encoder"], aligned, mesh, seed))
    print(f"vita: seed {seed}: " + arms.seed_line(per_seed[-1], data), flush=True)
    if recon is None:
      recon = arms.reconstruction_metrics(config, stage1, data, results)
      for name, finetune in (("frozen", False), ("finetuned", True)):
        mean_dice, per_class = train_segmentation(config, os.path.join(run_dir, f"seg_{name}"), data, mesh,
                                                  stage1["encoder"], finetune, seed)
        results[f"seg/dice/{name}"] = mean_dice
        for cls, v in zip(("lv", "myo", "rv"), per_class):
          results[f"seg/dice/{cls}/{name}"] = v
  results.update(arms.summarise(per_seed, data, config.eval.bootstrap))
  results["num_subjects/train"], results["num_subjects/test"] = float(len(tr["cine"])), float(len(te["cine"]))
  results["disease/positives/test"] = float(te["disease"].sum())
  results["num_seeds"] = float(len(config.seeds))
  figures.plot_reconstruction(config, te["cine"][0], recon["pred"], recon["mask"],
                              os.path.join(workdir, "mae_reconstruction.png"))
  figures.plot_ablation(results, os.path.join(workdir, "ablation.png"))
  return core.write_results(workdir, results)
