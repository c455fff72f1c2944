"""Benchmark: rib segmentation inference throughput and rib-length time per rib, each against a baseline.

  python benchmarks/ribs.py [--spacing 1.5] [--widths 8,16,32] [--patch 32] [--ribs 8]

1. Sliding-window inference (Gaussian weights, overlap 0.5, batches of 4
   patches) of an untrained U-Net on one phantom CT, in voxels/s, against
   one whole-volume forward pass of the same fully convolutional network
   (no overlap, no weighting: the cheapest possible inference), in the
   same run. Both are compiled first.
2. Rib length (the iterative centreline algorithm at 0.5 mm) per rib of
   phantom CTs, against the textbook alternative on the same resampled
   mask: a 3D skeletonisation (scikit-image) whose voxel count times the
   resolution approximates the length. Times and mean absolute errors
   against the phantoms' true centreline lengths are printed.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed import ribs
from jaxmed.nn import UNet3D
from jaxmed.synth import ribs as phantoms


def inference(spacing: float, widths, patch: int) -> None:
  ph = phantoms.thoracolumbar_phantom(spacing, seed=0)
  model = UNet3D(2, widths)
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, patch, patch, patch, 1)))
  vox = ph["ct"].size
  ribs.rib_probability(model, params, ph["ct"][:patch, :patch, :patch], (patch,) * 3)   # compile
  t0 = time.perf_counter()
  ribs.rib_probability(model, params, ph["ct"], (patch,) * 3, overlap=0.5, batch_size=4)
  sliding = time.perf_counter() - t0
  f = 2 ** (len(widths) - 1)
  shape = [-(-n // f) * f for n in ph["ct"].shape]
  x = np.zeros((1, *shape, 1), np.float32)
  x[0, :ph["ct"].shape[0], :ph["ct"].shape[1], :ph["ct"].shape[2]] = ribs.normalise_ct(ph["ct"])
  whole = jax.jit(lambda p, v: jax.nn.softmax(model.apply(p, v), -1))
  whole(params, x).block_until_ready()
  t0 = time.perf_counter()
  whole(params, x).block_until_ready()
  single = time.perf_counter() - t0
  print(f"ribs/sliding_window_inference: {vox / sliding:.3g} voxels/s "
        f"({sliding / single:.2f}x the time of one whole-volume pass, {vox / single:.3g} voxels/s; "
        f"{ph['ct'].shape} CT, patch {patch}, overlap 0.5)")


def skeleton_length(mask: np.ndarray, resolution: float) -> float:
  from skimage.morphology import skeletonize
  return float(skeletonize(mask).sum() * resolution)


def lengths(spacing: float, num: int) -> None:
  t_alg, t_skel, e_alg, e_skel, n = 0.0, 0.0, [], [], 0
  seed = 0
  while n < num:
    ph = phantoms.thoracolumbar_phantom(spacing, seed=seed)
    seed += 1
    for rib in ph["ribs"]:
      if n >= num:
        break
      mask = (ph["rib_instance"] == rib["vertebra"] + 32) & (ph["rib_semantic"] == (63 if rib["left"] else 64))
      com = ribs.corpus_centre_mm(ph["vertebra_instance"], ph["subregions"], rib["vertebra"], ph["spacing"])
      t0 = time.perf_counter()
      res = ribs.rib_length(mask, ph["spacing"], com)
      t_alg += time.perf_counter() - t0
      t0 = time.perf_counter()
      work = ribs.smooth_mask(ribs.resample_mask(mask, ph["spacing"], 0.5))
      skel = skeleton_length(work, 0.5)
      t_skel += time.perf_counter() - t0
      e_alg.append(abs(res.length_mm - rib["length_mm"]))
      e_skel.append(abs(skel - rib["length_mm"]))
      n += 1
  print(f"ribs/rib_length: {1e3 * t_alg / n:.1f} ms/rib ({t_alg / t_skel:.2f}x the 3D-skeleton baseline, "
        f"{1e3 * t_skel / n:.1f} ms/rib; MAE {np.mean(e_alg):.2f} mm vs {np.mean(e_skel):.2f} mm, {n} ribs)")


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--spacing", type=float, default=1.5)
  ap.add_argument("--widths", default="8,16,32")
  ap.add_argument("--patch", type=int, default=32)
  ap.add_argument("--ribs", type=int, default=8)
  args = ap.parse_args()
  print(f"device: {jax.devices()[0].device_kind}")
  inference(args.spacing, tuple(int(w) for w in args.widths.split(",")), args.patch)
  lengths(args.spacing, args.ribs)


if __name__ == "__main__":
  main()
