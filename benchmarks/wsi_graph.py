"""Benchmark: graph construction per slide, and the train step on power-of-two buckets vs exact (unpadded) shapes.

  python benchmarks/wsi_graph.py [--slides 16] [--size 768] [--epochs 2]

Construction: synthetic slide -> pyramidal TIFF -> openslide level 1 ->
tissue mask -> SLIC (250 segments) -> named features -> adjacency, timed per
stage. Training: one jitted region-graph step per slide (batch of one graph),
``epochs`` passes over the slides, once with every graph padded to its
power-of-two bucket (``pad_to_bucket``) and once padded by exactly one node
(every slide its own shape, the baseline): XLA compilations are counted and
the total time (compiles included) compared.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import jax
import jraph
import numpy as np
import optax

from jaxmed import core, pathology
from jaxmed.io import open_slide, write_pyramidal_tiff
from jaxmed.synth import synthetic_slide


def build(n: int, size: int, tmp: str):
  times: dict[str, float] = {}

  def timed(name, fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    times[name] = times.get(name, 0.0) + time.perf_counter() - t
    return out

  def read_level1(path):
    with open_slide(path) as s:
      return s.read_level(1)

  graphs = []
  for i in range(n):
    rgb, info = synthetic_slide(i, size=size)
    path = os.path.join(tmp, f"s{i}.tiff")
    timed("write_tiff", write_pyramidal_tiff, path, rgb, levels=3, tile=128)
    img = timed("read_level", read_level1, path)
    mask = timed("tissue_mask", pathology.tissue_mask, img)
    labels = timed("slic", pathology.slic_regions, img, mask, n_segments=250)
    feats, extra = timed("features", pathology.region_features, img, labels)
    edges = timed("adjacency", pathology.region_adjacency, labels)
    feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-6)
    graphs.append((pathology.region_graph(feats, edges, extra["area"], extra["centroid"]), info["stage"]))
  return graphs, {k: v / n for k, v in times.items()}


def train_time(graphs, pad, epochs: int) -> tuple[float, int]:
  model = pathology.RegionGraphNet(3, hidden=64, heads=4)
  tx = optax.adam(1e-3)
  params = model.init(jax.random.PRNGKey(0), pad(graphs[0][0]))
  opt_state = tx.init(params)

  def train_step(params, opt_state, graph, label):
    def loss(p):
      return optax.softmax_cross_entropy_with_integer_labels(model.apply(p, graph)["logits"][:1], label).mean()
    g = jax.grad(loss)(params)
    u, opt_state = tx.update(g, opt_state)
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


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--slides", type=int, default=16)
  parser.add_argument("--size", type=int, default=768)
  parser.add_argument("--epochs", type=int, default=2)
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as tmp:
    graphs, per_stage = build(args.slides, args.size, tmp)
  total = sum(per_stage.values())
  nodes = [int(g.n_node[0]) for g, _ in graphs]
  print(f"slides: {args.slides} of {args.size}^2 px, graphs at level 1: {np.mean(nodes):.0f} nodes on average "
        f"({min(nodes)}..{max(nodes)})")
  for k, v in per_stage.items():
    print(f"graph_build/{k}: {1e3 * v:.0f} ms/slide ({v / total:.0%} of construction)")
  print(f"graph_build/total: {total:.2f} s/slide")
  exact = lambda g: jraph.pad_with_graphs(g, int(g.n_node[0]) + 1, int(g.n_edge[0]), 2)  # noqa: E731
  t_exact, c_exact = train_time(graphs, exact, args.epochs)
  t_bucket, c_bucket = train_time(graphs, pathology.pad_to_bucket, args.epochs)
  steps = args.epochs * len(graphs)
  print(f"train_step/unpadded: {t_exact:.2f} s for {steps} steps, {c_exact} compilations (baseline)")
  print(f"train_step/buckets: {t_bucket:.2f} s for {steps} steps, {c_bucket} compilations "
        f"({t_exact / t_bucket:.1f}x faster than unpadded)")


if __name__ == "__main__":
  main()
