"""SSFL-Recon: stage 1 self-supervised features, stage 2 feature-assisted parallel self-supervised reconstruction.

Data: seeded multi-coil cine phantoms (``jaxmed.synth.cine``). No network
ever sees fully-sampled data except the ``supervised`` baseline. Each
training step draws, per subject, two VISTA masks ``M1``, ``M2`` with
``R1, R2 ~ U[r_min, r_max]`` (fresh seeds): the acquisition is ``M1 u M2``
and the two re-undersampled inputs are ``y1 = M1 y`` and ``y2 = M2 y``.

1. Stage 1: the feature extractor (an unrolled network of the same kind)
   with a projection head learns from two views of each subject at the same
   R under different mask seeds: InfoNCE (temperature 0.1, negatives other
   subjects with ``|R diff| >= 5``) or VICReg (25/25/1).
2. Stage 2: the reconstruction network with the frozen extractor's
   per-iteration features at each UNet bottleneck, trained with the parallel
   loss (image consistency + cross k-space).
3. Baselines with the same data and network size: zero-filled, CG-SENSE,
   SSDU (input ``M1 u M2`` split 60/40, normalised L1+L2 on the held-out part),
   the parallel network without features, and supervised (image L2 to the
   fully-sampled truth, input ``y1``).
4. Held-out phantoms at R in ``eval_r``: PSNR / SSIM / NMSE per method and
   R, one figure per R (a frame, error maps, an x-t profile through the heart).

Simplification, stated: the phantom's own coil maps are used for every
method (ESPIRiT from the time-averaged centre is implemented and tested in
``jaxmed.mri``, but running it per training mask is not worth its time here).
"""

from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmed import core, mri
from experiments.ssfl_recon import METHODS
from jaxmed.synth.cine import cine_phantom

NETS = ("ssdu", "parallel_nofeat", "ssfl", "supervised")


# ---- data ----

def make_subjects(config, n: int, offset: int) -> list[dict]:
  """``n`` subjects ``{"kspace" [T, C, H, W], "maps" [C, H, W], "image" [T, H, W], "heart"}``: phantoms, or the
  slices of the HDF5 files in ``data.h5_train`` / ``data.h5_test`` (offset 0 / otherwise)."""
  d = config.data
  if d.h5_train:
    return h5_subjects(d.h5_train if offset == 0 else d.h5_test)
  return [cine_phantom(config.seed * 10_000 + offset + i, size=(d.size, d.size), frames=d.frames, coils=d.coils,
                       noise=d.noise) for i in range(n)]


def h5_subjects(pattern: str) -> list[dict]:
  """Fully-sampled dynamic k-space files (``jaxmed.io.load_kspace_h5``) -> one subject per slice.

  Coil maps: the file's ``coil_maps`` when present, else ESPIRiT on the
  time-averaged k-space; the reference image is the coil combination of the
  fully-sampled data with those maps.
  """
  import glob

  from jaxmed.io import load_kspace_h5

  files = sorted(glob.glob(pattern))
  if not files:
    raise FileNotFoundError(f"data.h5 pattern {pattern!r} matches no file")
  subjects = []
  for path in files:
    data = load_kspace_h5(path)
    for s, k in enumerate(data["kspace"]):
      t, c, h, w = k.shape
      maps = data["coil_maps"][s] if "coil_maps" in data else mri.espirit_maps(k.mean(0), (h, w))
      full = np.ones((t, w), np.float32)
      image = np.asarray(mri.sense_adjoint(jnp.asarray(k), jnp.asarray(maps), full))
      subjects.append({"kspace": k.astype(np.complex64), "maps": maps.astype(np.complex64),
                       "image": image.astype(np.complex64), "heart": np.zeros((t, h, w), bool)})
  return subjects


def draw_r(rng, d) -> float:
  return float(rng.uniform(d.r_min, d.r_max))


def vista(rng, d, r) -> np.ndarray:
  return mri.vista_mask(d.size, d.frames, r, seed=int(rng.integers(2**31)))


def parallel_batch(subjects, config, step: int, batch_size: int) -> dict[str, np.ndarray]:
  """Two re-undersampled views per subject (``M1``, ``M2``), plus the SSDU split of ``M1 u M2`` and the truth."""
  d = config.data
  rng = np.random.default_rng([config.seed, step])
  rows = []
  for i in rng.choice(len(subjects), batch_size, replace=len(subjects) < batch_size):
    s = subjects[i]
    m1, m2 = vista(rng, d, draw_r(rng, d)), vista(rng, d, draw_r(rng, d))
    acquired = mri.expand_line_mask(m1 | m2, d.size)
    train_m, loss_m = mri.ssdu_split(acquired, rho=0.4, seed=int(rng.integers(2**31)))
    rows.append({"kspace": s["kspace"], "maps": s["maps"], "gt": s["image"], "m1": m1.astype(np.float32),
                 "m2": m2.astype(np.float32), "ssdu_train": train_m.astype(np.float32),
                 "ssdu_loss": loss_m.astype(np.float32)})
  return {k: np.stack([r[k] for r in rows]) for k in rows[0]}


def feature_batch(subjects, config, step: int) -> dict[str, np.ndarray]:
  """Two views per subject at the same R (different seeds) for stage 1; ``r [N]`` for the negative rule."""
  d, f = config.data, config.features
  rng = np.random.default_rng([config.seed, 7, step])
  idx = rng.choice(len(subjects), f.batch_size, replace=len(subjects) < f.batch_size)
  rs = np.asarray([draw_r(rng, d) for _ in idx], np.float32)
  v1 = [vista(rng, d, r) for r in rs]
  v2 = [vista(rng, d, r) for r in rs]
  return {"kspace": np.stack([subjects[i]["kspace"] for i in idx]), "maps": np.stack([subjects[i]["maps"] for i in idx]),
          "m1": np.stack(v1).astype(np.float32), "m2": np.stack(v2).astype(np.float32), "r": rs,
          "subject": idx.astype(np.int32)}


# ---- networks and losses ----

def zero_filled(kspace, maps, mask):
  """``(x0 [B, T, H, W], y [B, T, C, H, W])`` for a batch under ``mask [B, T, ...]``."""
  y = kspace * jax.vmap(mri.expand_mask)(mask)
  return jax.vmap(mri.sense_adjoint)(y, maps, mask), y


def recon_net(config) -> mri.UnrolledRecon:
  m = config.model
  return mri.UnrolledRecon(iterations=m.iterations, filters=m.filters, levels=m.levels)


def features_of(extractor, params_e, kspace, maps, mask):
  """The frozen extractor's per-iteration bottleneck features for an input."""
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


def feature_loss(config, extractor, head):
  f = config.features

  def loss_fn(params, batch, rng):
    def embed(mask):
      x0, y = zero_filled(batch["kspace"], batch["maps"], mask)
      _, bottlenecks = extractor.apply(params["extractor"], x0, y, batch["maps"], mask)
      z, _ = head.apply(params["head"], bottlenecks[-1], mutable=["batch_stats"])
      return z

    z1, z2 = embed(batch["m1"]), embed(batch["m2"])
    if f.objective == "vicreg":
      loss, parts = mri.vicreg(z1, z2)
      return loss, parts
    subj = jnp.concatenate([batch["subject"], batch["subject"]])
    r = jnp.concatenate([batch["r"], batch["r"]])
    negatives = (subj[:, None] != subj[None, :]) & (jnp.abs(r[:, None] - r[None, :]) >= f.min_r_gap)
    return mri.info_nce(z1, z2, temperature=f.temperature, negative_mask=negatives), {}

  return loss_fn


def _mesh(batch_size: int):
  n = math.gcd(batch_size, jax.device_count())  # the batch must split evenly over the devices used
  return core.make_mesh({"data": -1}, devices=jax.devices()[:n])


def train_net(name, loss_fn, init_fn, config, workdir, steps, batch_at, lr, batch_size):
  tx = optax.adam(optax.cosine_decay_schedule(lr, steps))
  mesh = _mesh(batch_size)
  state, sharding = core.create_train_state(init_fn, tx, jax.random.PRNGKey(config.seed), mesh)
  step = core.make_train_step(loss_fn, tx, state_sharding=sharding, mesh=mesh)
  t = config.train
  state = core.train_loop(state, step, batch_at, mesh=mesh, run_dir=os.path.join(workdir, name), steps=steps,
                          save_every=min(t.save_every, steps), keep=t.keep, log_every=min(t.log_every, steps),
                          desc=f"train {name}")
  return jax.device_get(state.params)


# ---- the experiment ----

def train_and_evaluate(config, workdir: str) -> dict:
  core.open_workdir(workdir, config)
  d, t = config.data, config.train
  train_subjects = make_subjects(config, d.num_train, 0)
  test_subjects = make_subjects(config, d.num_test, 5_000)
  net = recon_net(config)
  example = parallel_batch(train_subjects, config, 0, 1)
  x0, y = zero_filled(example["kspace"], example["maps"], example["m1"])

  def init_recon(with_features_from=None):
    def init(rng):
      feats = None
      if with_features_from is not None:
        feats = features_of(net, with_features_from, example["kspace"], example["maps"], example["m1"])
      return net.init(rng, x0, y, example["maps"], example["m1"], feats)
    return init

  # stage 1: features
  head = mri.ProjectionHead()
  _, bottlenecks = net.apply(net.init(jax.random.PRNGKey(0), x0, y, example["maps"], example["m1"]), x0, y,
                             example["maps"], example["m1"])
  f_cfg = config.features
  params_f = train_net(
      f"features_{f_cfg.objective}", feature_loss(config, net, head),
      lambda r: {"extractor": net.init(r, x0, y, example["maps"], example["m1"]),
                 "head": head.init(r, jnp.concatenate([bottlenecks[-1]] * 2))},
      config, workdir, f_cfg.steps, lambda s: feature_batch(train_subjects, config, s), f_cfg.lr, f_cfg.batch_size)
  params_e = params_f["extractor"]

  # stage 2 and the trained baselines: same data stream, same steps
  trained = {}
  for name in NETS:
    loss_fn = make_loss("parallel" if name in ("ssfl", "parallel_nofeat") else name, net,
                        net if name == "ssfl" else None, params_e if name == "ssfl" else None)
    init = init_recon(params_e if name == "ssfl" else None)
    trained[name] = train_net(name, loss_fn, init, config, workdir, t.steps,
                              lambda s: parallel_batch(train_subjects, config, s, t.batch_size), t.lr, t.batch_size)

  # evaluation
  results: dict[str, float] = {"num_subjects/train": d.num_train, "num_subjects/test": d.num_test}
  cg = jax.jit(jax.vmap(lambda y, s, m: mri.cg_sense(y, s, m, iters=config.eval.cg_iters)))
  recon = jax.jit(lambda p, k, s, m: reconstruct(net, p, k, s, m))
  recon_f = jax.jit(lambda p, k, s, m: reconstruct(net, p, k, s, m, features_of(net, params_e, k, s, m)))
  k = np.stack([s["kspace"] for s in test_subjects])
  maps = np.stack([s["maps"] for s in test_subjects])
  gt = np.stack([s["image"] for s in test_subjects])
  for r in d.eval_r:
    mask = np.stack([mri.vista_mask(d.size, d.frames, r, seed=10_000 + i) for i in range(len(test_subjects))])
    mask = mask.astype(np.float32)
    x0, y = zero_filled(k, maps, mask)
    out = {"zero_filled": x0, "cg_sense": cg(y, maps, mask)}
    for name in NETS:
      out[name] = (recon_f if name == "ssfl" else recon)(trained[name], k, maps, mask)
    out = {n: np.asarray(v) for n, v in out.items()}
    for name in METHODS:
      for metric, fn in (("psnr", mri.psnr), ("ssim", mri.ssim), ("nmse", mri.nmse)):
        results[f"{metric}/R{r}/{name}"] = float(np.mean([fn(out[name][i], gt[i]) for i in range(len(gt))]))
    plot_r(out, gt[0], test_subjects[0]["heart"], r, os.path.join(workdir, f"recon_R{r}.png"))
  core.gather_run_metrics(workdir, [f"features_{f_cfg.objective}", *NETS])
  return core.write_results(workdir, results)


def plot_r(out, gt, heart, r, path):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  frame = gt.shape[0] // 2
  cy, cx = np.argwhere(heart[frame]).mean(0).round().astype(int) if heart[frame].any() else (gt.shape[1] // 2,) * 2
  names = ["ground truth", *METHODS]
  imgs = [gt, *[out[n][0] for n in METHODS]]
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
