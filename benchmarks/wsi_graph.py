"""Benchmark: a gigapixel slide to graphs tile by tile (wall time, peak RSS, Mpx/s) against the whole-level path,
and the train step on power-of-two buckets vs exact (unpadded) shapes.

  python benchmarks/wsi_graph.py [--height 30000 --width 40000] [--graph-mpp 2.0] [--json PATH]

1. ``large/*``: a synthetic 40,000 x 30,000 px pyramidal TIFF at 0.25 um/px
   (mostly glass, three H&E islands; :func:`jaxmed.synth.large_slide.write_large_slide`)
   goes through :func:`jaxmed.pathology.slide_graphs` at ``--graph-mpp`` in a
   fresh process, whose peak RSS (``resource.getrusage``) is reported.
   ``mpx_per_s`` counts the pixels of the tissue tiles read at ``graph_mpp``.
2. ``whole_level/*``: the same slide with ``tile=0`` (the whole ``graph_mpp``
   level read and processed at once), the baseline, in its own process;
   ``mpx_per_s`` counts the whole level. ``tiled_vs_whole/*`` are the ratios.
3. ``train_step/*``: one jitted region-graph step per slide on demo-sized
   slides, padded to power-of-two buckets (``pad_to_bucket``) or by exactly
   one node (every slide its own shape, the baseline); compilations counted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from benchmarks.figures import write_figures  # noqa: E402

SETTINGS = dict(region_mpp=8.0, mask_mpp=16.0, region_um2=5000.0, patch_um=256.0)


def write_child(path: str, height: int, width: int) -> None:
  """Runs in a fresh process, so the islands it renders do not count towards the measured processes' RSS
  (Linux carries ``ru_maxrss`` over fork and exec)."""
  from jaxmed.synth.large_slide import write_large_slide

  info = write_large_slide(path, height=height, width=width, mpp=0.25)
  print(json.dumps({"islands": len(info["islands"])}))


def child(path: str, graph_mpp: float, tile: int) -> None:
  """Runs in a fresh process: one slide to graphs; prints a JSON line with wall time and peak RSS."""
  from jaxmed.io import open_slide
  from jaxmed.pathology import slide_graphs

  t = time.perf_counter()
  with open_slide(path) as s:
    out = slide_graphs(s, graph_mpp=graph_mpp, tile=tile, progress=False, **SETTINGS)
  wall = time.perf_counter() - t
  print(json.dumps({"wall_s": wall, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
                    "megapixels": float(out["megapixels"]), "tiles": int(out["tiles_read"]),
                    "nodes": int(out["region/x"].shape[0]), "patches": int(out["patch/x"].shape[0])}))


def run_child(*args) -> dict:
  p = subprocess.run([sys.executable, os.path.abspath(__file__), *(str(a) for a in args)], capture_output=True,
                     text=True)
  if p.returncode:
    return {"failed": p.returncode, "stderr": p.stderr[-500:]}
  return json.loads(p.stdout.strip().splitlines()[-1])


def train_step_figures(slides: int, size: int, epochs: int, tmp: str) -> dict:
  import jax
  import jraph
  import optax

  from jaxmed import core, pathology
  from jaxmed.io import open_slide, write_pyramidal_tiff
  from jaxmed.synth import synthetic_slide

  graphs = []
  for i in range(slides):
    rgb, info = synthetic_slide(i, size=size)
    path = os.path.join(tmp, f"s{i}.tiff")
    write_pyramidal_tiff(path, rgb, levels=3, tile=128, mpp=0.5)
    with open_slide(path) as s:
      g = pathology.slide_graphs(s, graph_mpp=1.0, region_mpp=2.0, mask_mpp=4.0, region_um2=600.0, patch_um=24.0,
                                 min_tissue_um2=2000.0, min_hole_um2=400.0, tile=256, progress=False)
    x = (g["region/x"] - g["region/x"].mean(0)) / (g["region/x"].std(0) + 1e-6)
    graphs.append((pathology.region_graph(x, g["region/edges"], g["region/area_um2"], g["region/pos_um"]),
                   info["stage"]))

  def timed(pad):
    model = pathology.RegionGraphNet(3, hidden=64, heads=4)
    tx = optax.adam(1e-3)
    params = model.init(jax.random.PRNGKey(0), pad(graphs[0][0]))
    opt_state = tx.init(params)

    def train_step(params, opt_state, graph, label):
      def loss(p):
        return optax.softmax_cross_entropy_with_integer_labels(model.apply(p, graph)["logits"][:1], label).mean()
      u, opt_state = tx.update(jax.grad(loss)(params), opt_state)
      return optax.apply_updates(params, u), opt_state

    step = jax.jit(train_step)
    padded = [(pad(g), np.asarray([y])) for g, y in graphs]
    t = time.perf_counter()
    with core.count_compiles("train_step") as compiles:
      for _ in range(epochs):
        for g, y in padded:
          params, opt_state = step(params, opt_state, g, y)
      jax.block_until_ready(params)
    return time.perf_counter() - t, compiles.count

  exact = lambda g: jraph.pad_with_graphs(g, int(g.n_node[0]) + 1, int(g.n_edge[0]), 2)  # noqa: E731
  t_exact, c_exact = timed(exact)
  t_bucket, c_bucket = timed(pathology.pad_to_bucket)
  return {"train_step/unpadded_s": t_exact, "train_step/unpadded_compiles": c_exact, "train_step/buckets_s": t_bucket,
          "train_step/buckets_compiles": c_bucket, "train_step/speedup": t_exact / t_bucket}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--height", type=int, default=30_000)
  parser.add_argument("--width", type=int, default=40_000)
  parser.add_argument("--graph-mpp", type=float, default=2.0)
  parser.add_argument("--tile", type=int, default=1024)
  parser.add_argument("--slides", type=int, default=8)
  parser.add_argument("--epochs", type=int, default=2)
  parser.add_argument("--json", default="", help="write the figures to this JSON file")
  args = parser.parse_args()
  figures: dict = {}
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "large.tiff")
    t = time.perf_counter()
    info = run_child("--write", path, args.height, args.width)
    figures["large/write_s"] = time.perf_counter() - t
    figures["large/level0_gpx"] = args.height * args.width / 1e9
    figures["large/file_mb"] = os.path.getsize(path) / 1e6
    print(f"large slide: {args.width} x {args.height} px at 0.25 um/px ({figures['large/level0_gpx']:.2f} Gpx, "
          f"{figures['large/file_mb']:.0f} MB, {info['islands']} islands), written in {figures['large/write_s']:.0f} s")
    tiled = run_child("--child", path, args.graph_mpp, args.tile)
    whole = run_child("--child", path, args.graph_mpp, 0)
    figures.update({"large/wall_s": tiled["wall_s"], "large/peak_rss_gb": tiled["peak_rss_gb"],
                    "large/mpx_per_s": tiled["megapixels"] / tiled["wall_s"],
                    "large/level0_mpx_per_s": 1e3 * figures["large/level0_gpx"] / tiled["wall_s"],
                    "large/tiles_read": tiled["tiles"], "large/regions": tiled["nodes"]})
    print(f"large/tiled at {args.graph_mpp} um/px: {tiled['wall_s']:.1f} s, peak RSS {tiled['peak_rss_gb']:.2f} GB, "
          f"{tiled['tiles']} tissue tiles ({tiled['megapixels']:.1f} Mpx, {figures['large/mpx_per_s']:.2f} Mpx/s; "
          f"{figures['large/level0_mpx_per_s']:.0f} level-0 Mpx/s of slide), {tiled['nodes']} regions")
    if "failed" in whole:
      figures["whole_level/failed"] = whole["failed"]
      print(f"whole_level: failed ({whole['failed']}): {whole['stderr']}")
    else:
      figures.update({"whole_level/wall_s": whole["wall_s"], "whole_level/peak_rss_gb": whole["peak_rss_gb"],
                      "whole_level/mpx_per_s": whole["megapixels"] / whole["wall_s"],
                      "tiled_vs_whole/speedup": whole["wall_s"] / tiled["wall_s"],
                      "tiled_vs_whole/rss_ratio": whole["peak_rss_gb"] / tiled["peak_rss_gb"]})
      print(f"whole_level (baseline): {whole['wall_s']:.1f} s, peak RSS {whole['peak_rss_gb']:.2f} GB, "
            f"{whole['megapixels']:.1f} Mpx at {figures['whole_level/mpx_per_s']:.2f} Mpx/s; tiled is "
            f"{figures['tiled_vs_whole/speedup']:.1f}x faster with {figures['tiled_vs_whole/rss_ratio']:.1f}x less memory")
    figures.update(train_step_figures(args.slides, 768, args.epochs, tmp))
  print(f"train_step/unpadded: {figures['train_step/unpadded_s']:.2f} s, {figures['train_step/unpadded_compiles']} "
        f"compilations (baseline); buckets: {figures['train_step/buckets_s']:.2f} s, "
        f"{figures['train_step/buckets_compiles']} compilations ({figures['train_step/speedup']:.1f}x)")
  write_figures(args.json, figures)


if __name__ == "__main__":
  if len(sys.argv) > 1 and sys.argv[1] == "--child":
    child(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
  elif len(sys.argv) > 1 and sys.argv[1] == "--write":
    write_child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
  else:
    main()
