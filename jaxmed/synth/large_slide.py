"""A gigapixel-sized synthetic slide for scale checks: mostly glass, a few H&E tissue islands, streamed to disk.

  write_large_slide("big.tiff", height=30_000, width=40_000, mpp=0.25)   # 1.2 Gpx, 7 levels

Each island is a :func:`jaxmed.synth.slides.synthetic_slide` section rendered
at the slide's resolution and kept with its own 2x pyramid; the TIFF is
written tile by tile (:func:`jaxmed.io.slide.write_pyramidal_tiff_tiles`), so
the writer holds the islands, never a level of the slide.
"""

from __future__ import annotations

import numpy as np

from jaxmed.io.slide import downsample2, write_pyramidal_tiff_tiles
from jaxmed.synth.slides import synthetic_slide

GLASS = 242


def write_large_slide(path: str, *, height: int = 30_000, width: int = 40_000, mpp: float = 0.25, islands: int = 3,
                      island_px: int = 3072, levels: int = 7, tile: int = 512, seed: int = 0) -> dict:
  """Writes the slide; returns ``{"islands": [(row, col, size)], "stages": [...], "tissue_mpx": float}``."""
  rng = np.random.default_rng(seed)
  placed: list[tuple[int, int]] = []
  pyramids, stages = [], []
  for i in range(islands):
    for _ in range(1000):
      r, c = int(rng.integers(0, height - island_px)), int(rng.integers(0, width - island_px))
      if all(abs(r - a) >= island_px or abs(c - b) >= island_px for a, b in placed):
        break
    placed.append((r, c))
    rgb, info = synthetic_slide(seed * 1000 + i, size=island_px, mpp=mpp)
    rgb[info["tissue"] == 0] = GLASS  # the island's glass is the slide's
    pyr = [rgb]
    for _ in range(levels - 1):
      pyr.append(downsample2(pyr[-1]))
    pyramids.append(pyr)
    stages.append(info["stage"])

  def tile_fn(k, r, c, h, w):
    out = np.full((h, w, 3), GLASS, np.uint8)
    for (ir, ic), pyr in zip(placed, pyramids):
      img = pyr[k]
      r0, c0 = ir >> k, ic >> k
      a0, a1 = max(r, r0), min(r + h, r0 + img.shape[0])
      b0, b1 = max(c, c0), min(c + w, c0 + img.shape[1])
      if a0 < a1 and b0 < b1:
        out[a0 - r:a1 - r, b0 - c:b1 - c] = img[a0 - r0:a1 - r0, b0 - c0:b1 - c0]
    return out

  write_pyramidal_tiff_tiles(path, (height, width), tile_fn, levels=levels, tile=tile, mpp=mpp, glass=GLASS)
  return {"islands": [(r, c, island_px) for r, c in placed], "stages": stages,
          "tissue_mpx": float(sum((p[0] != GLASS).any(-1).sum() for p in pyramids) / 1e6)}
