"""External rib masks: binary, TotalSegmentator's rib labels, or the official stump-rib model's labels.

A user who already has ribs segmented (TotalSegmentator's ``total`` task, the
official nnU-Net of Moeller et al. 2025, a manual mask) skips our U-Net. The
label scheme is detected from the values, or given:

* ``binary``: {0, 1} (any single foreground value is accepted too);
* ``totalseg``: TotalSegmentator v2 ``rib_left_1..12`` = 92..103 and
  ``rib_right_1..12`` = 104..115 (a full ``total`` multilabel file works:
  other labels are ignored);
* ``official_semantic``: 63 (left) / 64 (right), as
  :mod:`jaxmed.io.spine_labels`;
* ``official_instance``: the vertebra index + 32 (T12's rib = 51).

Every scheme is binarised for our assignment, length and features (the
official pipeline binarises too); the source label under each assigned rib
is kept so the two can be compared (``source_labels``).

A mask on another grid than the CT (TotalSegmentator often writes at its own
resolution) is resampled to the CT's grid by nearest neighbour with a
warning; a mask of another shape whose header holds no affine (qform and
sform codes 0) cannot be placed and raises :class:`NiftiError`.
"""

from __future__ import annotations

import warnings

import nibabel as nib
import numpy as np

from jaxmed.io.nifti import NiftiError
from jaxmed.io.spine_labels import RIB_LEFT, RIB_OFFSET, RIB_RIGHT, VERTEBRA_NAMES

TOTALSEG_RIBS = {**{91 + k: f"rib_left_{k}" for k in range(1, 13)}, **{103 + k: f"rib_right_{k}" for k in range(1, 13)}}
OFFICIAL_INSTANCE = {v + RIB_OFFSET: f"rib_{VERTEBRA_NAMES[v]}" for v in VERTEBRA_NAMES}
SCHEMES = ("auto", "binary", "totalseg", "official_semantic", "official_instance")


def detect_rib_scheme(values, path: str = "rib mask") -> str:
  """The label scheme of a rib mask from its unique values (module docstring)."""
  vals = {int(v) for v in np.asarray(values).ravel()} - {0}
  if not vals:
    raise NiftiError(f"{path}: the rib mask holds no foreground (all zero); expected rib labels")
  if len(vals) == 1 and not vals & set(TOTALSEG_RIBS):
    return "binary"
  if vals & set(TOTALSEG_RIBS):
    return "totalseg"
  if vals <= {RIB_LEFT, RIB_RIGHT}:
    return "official_semantic"
  if vals <= set(OFFICIAL_INSTANCE):
    return "official_instance"
  raise NiftiError(f"{path}: rib labels {sorted(vals)[:12]} match no known scheme; expected binary {{0, 1}}, "
                   "TotalSegmentator v2 ribs (92-115), official semantic (63/64) or official instance (vertebra + 32);"
                   " set --config.data.rib_labels to one of " + ", ".join(SCHEMES[1:]))


def rib_foreground(labels: np.ndarray, scheme: str) -> np.ndarray:
  """``[...]`` bool: the rib voxels of a label map under ``scheme``."""
  if scheme == "totalseg":
    return np.isin(labels, list(TOTALSEG_RIBS))
  if scheme == "official_semantic":
    return np.isin(labels, (RIB_LEFT, RIB_RIGHT))
  if scheme == "official_instance":
    return np.isin(labels, list(OFFICIAL_INSTANCE))
  return labels > 0


def label_name(label: int, scheme: str) -> str:
  """A readable name of one source label (``rib_left_12``, ``rib_T12``, ``right``, ...)."""
  if scheme == "totalseg":
    return TOTALSEG_RIBS.get(int(label), str(label))
  if scheme == "official_instance":
    return OFFICIAL_INSTANCE.get(int(label), str(label))
  if scheme == "official_semantic":
    return {RIB_LEFT: "left", RIB_RIGHT: "right"}.get(int(label), str(label))
  return str(label)


def load_rib_mask(path: str, ct_shape, ct_affine: np.ndarray, *, scheme: str = "auto",
                  ct_path: str = "the CT") -> tuple[np.ndarray, np.ndarray, str]:
  """Reads a rib mask onto the CT's grid.

  Args:
    path: the rib mask NIfTI.
    ct_shape, ct_affine: the CT's grid (as stored, before reorienting).
    scheme: one of :data:`SCHEMES`; ``auto`` detects it.
    ct_path: the CT's file, for messages.

  Returns:
    ``(rib_mask bool, source_labels int32, scheme)`` on the CT's grid;
    ``source_labels`` holds the input's labels on rib voxels, 0 elsewhere.

  Raises:
    NiftiError: naming the file and the field for an unreadable file, a
      non-integer or empty mask, an unknown scheme, or a grid that cannot be
      placed on the CT's.
  """
  if scheme not in SCHEMES:
    raise NiftiError(f"{path}: rib label scheme {scheme!r} unknown; expected one of {SCHEMES}")
  try:
    img = nib.load(path)
    data = np.asarray(img.dataobj)
  except FileNotFoundError as e:
    raise NiftiError(f"{path}: file not found") from e
  except Exception as e:  # nibabel raises several types for a corrupt header
    raise NiftiError(f"{path}: not a readable NIfTI file ({type(e).__name__}: {e})") from e
  if data.ndim == 4 and data.shape[-1] == 1:
    data = data[..., 0]
  if data.ndim != 3:
    raise NiftiError(f"{path}: field 'dim' gives shape {data.shape}; expected a 3D rib mask")
  if not np.array_equal(data, np.round(data)):
    raise NiftiError(f"{path}: the rib mask holds non-integer values; expected integer labels")
  data = data.astype(np.int32)
  ct_shape = tuple(int(n) for n in ct_shape)
  no_affine = int(img.header["qform_code"]) == 0 and int(img.header["sform_code"]) == 0
  same_grid = data.shape == ct_shape and np.allclose(img.affine, ct_affine, atol=1e-3)
  if not same_grid:
    if no_affine and data.shape != ct_shape:
      raise NiftiError(f"{path}: field 'dim' gives shape {data.shape}, the CT ({ct_path}) has {ct_shape}, and the "
                       "header has no affine (qform_code and sform_code are 0), so the mask cannot be placed on the "
                       "CT; expected a mask on the CT's grid or one with a valid affine")
    if no_affine:
      warnings.warn(f"{path}: no affine in the header (qform/sform code 0); the shape matches the CT, so the mask "
                    f"is taken to be on the CT's grid ({ct_path})", stacklevel=2)
    else:
      from nibabel.processing import resample_from_to
      warnings.warn(f"{path}: grid {data.shape} differs from the CT's {ct_shape} ({ct_path}); resampled to the CT's "
                    "grid by nearest neighbour", stacklevel=2)
      moved = resample_from_to(nib.Nifti1Image(data, img.affine), (ct_shape, np.asarray(ct_affine)), order=0)
      data = np.asarray(moved.dataobj).astype(np.int32)
  found = detect_rib_scheme(np.unique(data), path) if scheme == "auto" else scheme
  mask = rib_foreground(data, found)
  if not mask.any():
    raise NiftiError(f"{path}: no voxel carries a rib label of scheme {found!r}; expected at least one rib")
  return mask, np.where(mask, data, 0).astype(np.int32), found
