"""A vertebra's own (posterior, inferior, right) frame from its subregion masks.

The official code measures rib features in the orientation of the vertebra
(``rib_length_measurement/calc_orientation.py`` in Hendrik-code/rib-segmentation
reads the frame from TPTBox's ``Vertebra_Direction_{Posterior,Inferior,Right}``
points, which ``calc_orientation_of_vertebra_PIR`` computes). The same
construction here, from the masks alone:

* **inferior**: the tangent, at this vertebra, of an interpolating spline
  through the corpus centres (labels 49 + 50) of all vertebrae in the mask,
  ordered cranial to caudal and parameterised by chord length (two
  vertebrae: their difference; one: the corpus' shortest principal axis);
* **posterior**: from the corpus centre to the centroid of the arcus and
  spinous process (41, 42) voxels within ``slab_mm`` of the plane through
  the corpus centre normal to the inferior direction (TPTBox thickens the
  arcus by 15 voxels along S/I and cuts it with that plane), made
  orthogonal to the inferior direction (TPTBox leaves it as is; orthogonal
  here so that the frame is a rotation);
* **right** = posterior x inferior (in ``P, I, R`` axes, P x I = R).

A vector ``v`` (``P, I, R`` mm) has components ``frame @ v`` in it; a rigid
rotation ``Q`` of the whole CT maps ``frame`` to ``frame @ Q.T``, so these
components do not change (tested for a 20 degree rotation).
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import make_interp_spline

from jaxmed.io import spine_labels as L

CORPUS_LABELS = (L.CORPUS, L.CORPUS_BORDER)


def _order_key(vertebra: int) -> float:
  """Cranio-caudal order of TPTBox vertebra indices (T13 = 28 sits between T12 = 19 and L1 = 20)."""
  return 19.5 if vertebra == 28 else float(vertebra)


def corpus_centres_mm(vertebra_instance: np.ndarray, subregions: np.ndarray, spacing) -> dict[int, np.ndarray]:
  """``{vertebra: (3,) mm}`` centre of mass of every vertebra's corpus (labels 49 and 50)."""
  spacing = np.asarray(spacing, np.float64)
  corpus = np.isin(subregions, CORPUS_LABELS) & (vertebra_instance > 0)
  idx = np.argwhere(corpus)
  ids = vertebra_instance[corpus]
  return {int(v): idx[ids == v].mean(0) * spacing for v in np.unique(ids)}


def inferior_direction(vertebra_instance: np.ndarray, subregions: np.ndarray, vertebra: int, spacing,
                       centres: dict[int, np.ndarray] | None = None) -> np.ndarray:
  """``(3,)`` unit tangent of the corpus-centre spline at ``vertebra``, pointing caudally."""
  centres = corpus_centres_mm(vertebra_instance, subregions, spacing) if centres is None else centres
  if vertebra not in centres:
    raise ValueError(f"vertebra_frame: vertebra {vertebra} has no corpus voxels (labels 49/50)")
  order = sorted(centres, key=_order_key)
  pts = np.stack([centres[v] for v in order])
  k = order.index(vertebra)
  if len(pts) >= 3:
    u = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    spline = make_interp_spline(u, pts, k=min(3, len(pts) - 1))
    d = spline.derivative()(u[k])
  elif len(pts) == 2:
    d = pts[1] - pts[0]
  else:
    m = (vertebra_instance == vertebra) & np.isin(subregions, CORPUS_LABELS)
    x = np.argwhere(m) * np.asarray(spacing, np.float64)
    d = np.linalg.eigh(np.cov((x - x.mean(0)).T))[1][:, 0]   # the corpus is flatter than it is wide
    d = d if d[1] >= 0 else -d
  return d / np.linalg.norm(d)


def vertebra_frame(vertebra_instance: np.ndarray, subregions: np.ndarray, vertebra: int, spacing, *,
                   slab_mm: float = 10.0, centres: dict[int, np.ndarray] | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
  """The frame of one vertebra (module docstring).

  Args:
    vertebra_instance, subregions: ``[P, I, R]`` SPINEPS/TPTBox masks.
    vertebra: the vertebra index.
    spacing: ``(3,)`` mm.
    slab_mm: half-thickness of the slab around the corpus plane whose arcus
      and spinous voxels give the posterior direction.
    centres: precomputed :func:`corpus_centres_mm` (optional).

  Returns:
    ``(frame [3, 3], corpus_centre_mm (3,))``: the rows of ``frame`` are the
    posterior, inferior and right unit vectors in ``P, I, R`` mm.

  Raises:
    ValueError: naming the vertebra when it has no corpus or no arcus /
      spinous process voxels.
  """
  spacing = np.asarray(spacing, np.float64)
  centres = corpus_centres_mm(vertebra_instance, subregions, spacing) if centres is None else centres
  inf = inferior_direction(vertebra_instance, subregions, vertebra, spacing, centres)
  c = centres[vertebra]
  back = np.argwhere((vertebra_instance == vertebra) & np.isin(subregions, (L.ARCUS, L.SPINOSUS))) * spacing
  if len(back) == 0:
    raise ValueError(f"vertebra_frame: vertebra {vertebra} has no arcus or spinous process voxels (41/42); "
                     "expected a SPINEPS/TPTBox subregion mask")
  near = back[np.abs((back - c) @ inf) <= slab_mm]
  post = (near if len(near) else back).mean(0) - c
  post = post - (post @ inf) * inf
  post /= np.linalg.norm(post)
  return np.stack([post, inf, np.cross(post, inf)]), c
