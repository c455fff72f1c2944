"""NIfTI reading with validation (nibabel), including Learn2Reg-style image/label pairs.

Learn2Reg's OASIS task ships ``imagesTr/OASIS_XXXX_0000.nii.gz`` with the
label maps under the same name in ``labelsTr/``. :func:`load_image_label`
reads one subject and checks that image and labels share shape and affine;
:func:`load_learn2reg_subjects` reads a list of subjects into stacked arrays.
"""

from __future__ import annotations

import os
from typing import Sequence

import nibabel as nib
import numpy as np


class NiftiError(ValueError):
  """A NIfTI file is missing, unreadable, or inconsistent with its partner."""


def load_nifti(path: str, *, ndim: int | None = None) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
  """Reads ``(data, affine, spacing)`` from a ``.nii``/``.nii.gz`` file.

  Args:
    path: the file.
    ndim: if given, the data must have exactly this many axes (a trailing
      singleton axis is dropped first).

  Raises:
    NiftiError: naming the file and the field when it cannot be read, has the
      wrong number of axes, or holds non-finite values.
  """
  if not os.path.exists(path):
    raise NiftiError(f"{path}: file not found")
  try:
    img = nib.load(path)
    data = np.asarray(img.dataobj)
  except Exception as e:  # nibabel raises several types for a corrupt header
    raise NiftiError(f"{path}: not a readable NIfTI file ({type(e).__name__}: {e})") from e
  if data.ndim > 1 and data.shape[-1] == 1:
    data = data[..., 0]
  if ndim is not None and data.ndim != ndim:
    raise NiftiError(f"{path}: field 'dim' gives shape {data.shape}; expected {ndim} spatial axes")
  if np.issubdtype(data.dtype, np.floating) and not np.isfinite(data).all():
    raise NiftiError(f"{path}: data contains NaN or infinite values")
  spacing = tuple(float(z) for z in img.header.get_zooms()[:data.ndim])
  return data, np.asarray(img.affine, np.float64), spacing


def check_same_grid(path_a: str, shape_a: tuple, affine_a: np.ndarray, path_b: str, shape_b: tuple,
                    affine_b: np.ndarray, *, names: tuple[str, str] = ("image", "label"), atol: float = 1e-4) -> None:
  """Raises :class:`NiftiError` naming both files when two volumes' shapes or affines differ."""
  if tuple(shape_a) != tuple(shape_b):
    raise NiftiError(f"{path_a} and {path_b}: field 'dim' differs: {names[0]} shape {tuple(shape_a)} vs "
                     f"{names[1]} shape {tuple(shape_b)}; expected the same grid")
  if not np.allclose(affine_a, affine_b, atol=atol):
    raise NiftiError(f"{path_a} and {path_b}: field 'affine' (sform/qform) differs; expected the same grid."
                     f"\n{names[0]} affine:\n{affine_a}\n{names[1]} affine:\n{affine_b}")


def load_image_label(image_path: str, label_path: str, *, ndim: int | None = None,
                     atol: float = 1e-4) -> dict[str, np.ndarray]:
  """Reads an image and its label map and checks they live on the same grid.

  Returns:
    ``image`` float32 ``[*S]``, ``labels`` int32 ``[*S]``, ``affine`` ``[4, 4]``,
    ``spacing`` ``[n]``.

  Raises:
    NiftiError: naming both files when the shapes or affines differ, or the
      label map holds non-integer values.
  """
  image, affine, spacing = load_nifti(image_path, ndim=ndim)
  labels, label_affine, _ = load_nifti(label_path, ndim=ndim)
  check_same_grid(image_path, image.shape, affine, label_path, labels.shape, label_affine,
                  names=("image", "label"), atol=atol)
  if not np.array_equal(labels, np.round(labels)):
    raise NiftiError(f"{label_path}: label map holds non-integer values; expected integer labels")
  return {"image": image.astype(np.float32), "labels": labels.astype(np.int32), "affine": affine,
          "spacing": np.asarray(spacing)}


def load_learn2reg_subjects(root: str, names: Sequence[str], *, ndim: int = 3) -> dict[str, np.ndarray]:
  """Reads subjects ``root/imagesTr/<name>.nii.gz`` and ``root/labelsTr/<name>.nii.gz``.

  All subjects must share one grid (Learn2Reg data are preprocessed to a
  common space). Returns stacked ``images`` ``[N, *S]``, ``labels``
  ``[N, *S]``, ``affine`` and ``spacing``, and ``masks`` ``[N, *S]`` (bool)
  when ``root/masksTr/<name>.nii.gz`` exist (NLST's lung masks).
  """
  subjects = []
  for name in names:
    subjects.append(load_image_label(os.path.join(root, "imagesTr", f"{name}.nii.gz"),
                                     os.path.join(root, "labelsTr", f"{name}.nii.gz"), ndim=ndim))
  first = subjects[0]
  for name, s in zip(names, subjects):
    if s["image"].shape != first["image"].shape or not np.allclose(s["affine"], first["affine"], atol=1e-4):
      raise NiftiError(f"{os.path.join(root, 'imagesTr', name + '.nii.gz')}: grid differs from "
                       f"{names[0]} (shape {s['image'].shape} vs {first['image'].shape}); expected one "
                       "common space for all subjects")
  out = {"images": np.stack([s["image"] for s in subjects]), "labels": np.stack([s["labels"] for s in subjects]),
         "affine": first["affine"], "spacing": first["spacing"]}
  mask_paths = [os.path.join(root, "masksTr", f"{name}.nii.gz") for name in names]
  if all(os.path.exists(p) for p in mask_paths):
    masks = []
    for p in mask_paths:
      mask, affine, _ = load_nifti(p, ndim=ndim)
      check_same_grid(p, mask.shape, affine, mask_paths[0], out["images"].shape[1:], first["affine"])
      masks.append(mask > 0)
    out["masks"] = np.stack(masks)
  return out


def reorient(data: np.ndarray, affine: np.ndarray, axcodes: tuple[str, ...] = ("P", "I", "R")
             ) -> tuple[np.ndarray, np.ndarray]:
  """``data`` (first three axes) and its affine in the orientation ``axcodes``, e.g. ``("P", "I", "R")``.

  A pure permutation/flip of the voxel grid (no resampling): the world
  position of every voxel is unchanged, spacing moves with its axis. The
  inverse is ``reorient(out, out_affine, nib.aff2axcodes(affine))``, exact.
  """
  from nibabel import orientations as ornt
  current = ornt.io_orientation(affine)
  transform = ornt.ornt_transform(current, ornt.axcodes2ornt(tuple(axcodes)))
  out = ornt.apply_orientation(np.asarray(data), transform)
  return np.ascontiguousarray(out), affine @ ornt.inv_ornt_aff(transform, np.asarray(data).shape[:3])


def axcodes(affine: np.ndarray) -> tuple[str, ...]:
  """The orientation code of an affine, e.g. ``("R", "A", "S")``."""
  return tuple(nib.aff2axcodes(affine))


def save_nifti(path: str, data: np.ndarray, affine: np.ndarray) -> str:
  """Writes ``data`` with ``affine`` (label maps as int16 when they fit, images as float32); returns ``path``."""
  data = np.asarray(data)
  if np.issubdtype(data.dtype, np.integer) or data.dtype == bool:
    data = data.astype(np.int16 if data.max(initial=0) < 2 ** 15 else np.int32)
  else:
    data = data.astype(np.float32)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  nib.save(nib.Nifti1Image(data, np.asarray(affine, np.float64)), path)
  return path


def load_spine_ct(ct_path: str, vertebra_path: str, subregion_path: str,
                  axcodes_out: tuple[str, ...] = ("P", "I", "R")) -> dict:
  """Reads a CT with its SPINEPS/TPTBox vertebra instance and subregion masks, reoriented to ``axcodes_out``.

  Returns ``ct`` float32 HU, ``vertebra_instance`` and ``subregions`` int32,
  ``spacing`` (of the reoriented axes), ``affine`` (reoriented) and
  ``source_affine`` (to write results back in the CT's own orientation).

  Raises:
    NiftiError: naming the file and the field when a mask's grid differs
      from the CT's, a mask holds non-integer values, or the subregion mask
      has no corpus (label 49 or 50).
  """
  ct, affine, _ = load_nifti(ct_path, ndim=3)
  out = {"ct": ct.astype(np.float32)}
  for key, path in (("vertebra_instance", vertebra_path), ("subregions", subregion_path)):
    data, aff, _ = load_nifti(path, ndim=3)
    check_same_grid(ct_path, ct.shape, affine, path, data.shape, aff, names=("CT", key))
    if not np.array_equal(data, np.round(data)):
      raise NiftiError(f"{path}: {key} holds non-integer values; expected integer labels")
    out[key] = data.astype(np.int32)
  if not np.isin(out["subregions"], (49, 50)).any():
    raise NiftiError(f"{subregion_path}: subregions hold no corpus label (49 or 50); expected a SPINEPS/TPTBox "
                     "subregion mask")
  for key in ("ct", "vertebra_instance", "subregions"):
    out[key], new_affine = reorient(out[key], affine, axcodes_out)
  out["affine"], out["source_affine"] = new_affine, affine
  out["spacing"] = np.sqrt((new_affine[:3, :3] ** 2).sum(0))
  return out
