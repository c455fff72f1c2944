"""Reading user slice stacks (NIfTI) with their brain masks and explicit slice thickness, for SVR."""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np

from jaxmed.io.nifti import check_same_grid, load_nifti


def load_stacks(image_paths: Sequence[str], mask_paths: Sequence[str | None] | None = None,
                thickness: float | Sequence[float | None] | None = None, *, atol: float = 1e-3) -> list[dict[str, Any]]:
  """Reads 2D-slice stacks (slices along the third voxel axis) for :func:`jaxmed.svr.prepare`.

  Args:
    image_paths: one NIfTI per stack.
    mask_paths: a brain mask per stack (or ``None`` entries); each must match its stack's shape and affine.
    thickness: slice thickness in mm, one for all stacks or one per stack. It is never silently taken from
      the header: when missing, the third voxel spacing is used *with a warning*, because thick-slice
      acquisitions often have gaps or overlaps that make spacing and thickness differ.

  Returns:
    ``[{"image", "affine", "thickness", "mask", "path"}]``.

  Raises:
    NiftiError: naming the files when a mask's shape or affine differs from its stack's, or a stack is not 3D.
  """
  n = len(image_paths)
  masks = list(mask_paths) if mask_paths is not None else [None] * n
  if len(masks) != n:
    raise ValueError(f"{len(masks)} mask paths for {n} stacks; expected one (or None) per stack")
  thick = list(thickness) if isinstance(thickness, (list, tuple)) else [thickness] * n
  if len(thick) != n:
    raise ValueError(f"{len(thick)} thickness values for {n} stacks; expected one per stack")
  stacks = []
  for path, mpath, t in zip(image_paths, masks, thick):
    image, affine, spacing = load_nifti(path, ndim=3)
    if t is None:
      t = float(spacing[2])
      warnings.warn(f"{path}: no slice thickness given; using the slice spacing {t:.3g} mm from the header "
                    "(pass thickness= explicitly: spacing and thickness differ when slices have gaps)", stacklevel=2)
    st = {"image": image.astype(np.float32), "affine": affine, "thickness": float(t), "mask": None, "path": path}
    if mpath is not None:
      mask, maffine, _ = load_nifti(mpath, ndim=3)
      check_same_grid(path, image.shape, affine, mpath, mask.shape, maffine, names=("stack", "mask"), atol=atol)
      st["mask"] = mask > 0
    stacks.append(st)
  return stacks
