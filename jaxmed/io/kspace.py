"""k-space HDF5 files: the fastMRI layout and a dynamic (cine) layout, validated.

* fastMRI: dataset ``kspace`` ``[slices, coils, kx, ky]`` complex (single-coil
  files ``[slices, kx, ky]`` get a coil axis of 1);
* dynamic: dataset ``kspace`` ``[slices, frames, coils, kx, ky]`` complex with
  the attribute ``axis_order = "slice,frame,coil,kx,ky"`` on the dataset or
  the file.

Optional datasets: ``mask`` (broadcastable to the k-space of one slice),
``coil_maps`` (or ``sens_maps``) ``[slices, coils, kx, ky]`` and a reference
image ``reconstruction_rss`` / ``reconstruction`` / ``reference``.
:func:`load_kspace_h5` returns everything as numpy arrays with the layout
``[slices, frames, coils, kx, ky]`` (``frames = 1`` for fastMRI files).
"""

from __future__ import annotations

import os

import numpy as np

DYNAMIC_ORDER = "slice,frame,coil,kx,ky"
_REFERENCES = ("reconstruction_rss", "reconstruction", "reference")


class KSpaceError(ValueError):
  """A k-space file is missing, unreadable, or not in a supported layout."""


def open_h5(path: str, kind: str = "HDF5"):
  """``h5py.File(path, "r")``, or a :class:`KSpaceError` naming the file (missing, or not ``kind``)."""
  import h5py

  if not os.path.exists(path):
    raise KSpaceError(f"{path}: file not found")
  try:
    return h5py.File(path, "r")
  except OSError as e:
    raise KSpaceError(f"{path}: not a readable {kind} file ({e})") from e


def load_kspace_h5(path: str) -> dict[str, np.ndarray | str]:
  """Reads ``{"kspace" [S, T, C, X, Y], "layout", optional "mask", "coil_maps" [S, C, X, Y], "reference"}``."""
  with open_h5(path) as f:
    if "kspace" not in f:
      raise KSpaceError(f"{path}: no dataset 'kspace'; expected the fastMRI layout kspace[slices, coils, kx, ky] "
                        f"or the dynamic layout kspace[{DYNAMIC_ORDER}] with an axis_order attribute")
    ds = f["kspace"]
    if not np.issubdtype(ds.dtype, np.complexfloating):
      raise KSpaceError(f"{path}: dataset 'kspace' has dtype {ds.dtype}; expected complex64 or complex128")
    order = ds.attrs.get("axis_order", f.attrs.get("axis_order"))
    order = order.decode() if isinstance(order, bytes) else order
    if ds.ndim == 5:
      if order != DYNAMIC_ORDER:
        raise KSpaceError(f"{path}: dataset 'kspace' is 5-D {ds.shape} but its axis_order attribute is {order!r}; "
                          f"expected {DYNAMIC_ORDER!r}")
      kspace, layout = np.asarray(ds), "dynamic"
    elif ds.ndim == 4:
      kspace, layout = np.asarray(ds)[:, None], "fastmri"
    elif ds.ndim == 3:
      kspace, layout = np.asarray(ds)[:, None, None], "fastmri_singlecoil"
    else:
      raise KSpaceError(f"{path}: dataset 'kspace' has shape {ds.shape}; expected [slices, coils, kx, ky] "
                        f"(fastMRI) or [{DYNAMIC_ORDER}] (dynamic)")
    out: dict[str, np.ndarray | str] = {"kspace": kspace, "layout": layout}
    s, _, c, x, y = kspace.shape
    if "mask" in f:
      mask = np.asarray(f["mask"])
      try:
        np.broadcast_shapes(mask.shape, kspace.shape[1:])
      except ValueError:
        raise KSpaceError(f"{path}: dataset 'mask' has shape {mask.shape}, which does not broadcast to one "
                          f"slice's k-space {kspace.shape[1:]} (frames, coils, kx, ky)") from None
      out["mask"] = mask.astype(bool)
    for name in ("coil_maps", "sens_maps"):
      if name in f:
        maps = np.asarray(f[name])
        if maps.shape != (s, c, x, y):
          raise KSpaceError(f"{path}: dataset '{name}' has shape {maps.shape}; expected (slices, coils, kx, ky) = "
                            f"{(s, c, x, y)}")
        out["coil_maps"] = maps
        break
    for name in _REFERENCES:
      if name in f:
        out["reference"] = np.asarray(f[name])
        break
  return out
