"""Cine k-space in from real files: CMRxRecon (MATLAB v7.3), OCMR / ISMRMRD and jaxmed's dynamic HDF5.

Every reader returns one dict per slice in one layout:

* ``kspace [T, C, H, W]`` complex64, ``H`` the readout (kx), ``W`` the phase encoding (ky): the lines of a cine
  acquisition run along ``W``, as everywhere in :mod:`jaxmed.mri`;
* ``mask [T, W]`` bool: the (t, ky) lines acquired. A fully sampled file gives all ones; an undersampled one its
  own mask, which is then *the* acquisition;
* ``fully_sampled`` bool, ``coil_maps [C, H, W]`` when the file has them, ``source`` (path) and ``slice``.

Layouts:

* CMRxRecon cine (``cine_sax.mat`` / ``cine_lax.mat``, MATLAB v7.3 = HDF5): ``kspace_full`` or
  ``kspace_sub04`` / ``kspace_sub08`` / ``kspace_sub10``, complex stored as a compound of ``real`` / ``imag``,
  h5py axes ``[T, S, C, ky, kx]`` (SingleCoil ``[T, S, ky, kx]``). Masks ``mask04`` / ``mask08`` / ``mask10``
  (``[ky, kx]`` or ``[T, ky, kx]``) in the same file, in ``mask_path``, or in ``<name>_mask.mat`` beside it
  (the challenge ships ``cine_sax_mask.mat``). Without a mask, the lines that hold data are the mask.
* ISMRMRD (OCMR): acquisitions indexed by ``kspace_encode_step_1``, ``phase``, ``slice``; noise scans are
  skipped, repeated averages are averaged, the line centre is placed at ``W // 2`` and the readout
  oversampling is cropped to the recon field of view. Needs the ``ismrmrd`` package (``pip install ismrmrd``).
* jaxmed's dynamic HDF5 (:func:`jaxmed.io.load_kspace_h5`), with its optional ``mask``.

Errors are :class:`~jaxmed.io.kspace.KSpaceError` naming the file and the field.
"""

from __future__ import annotations

import os

import numpy as np

from jaxmed.io.kspace import KSpaceError, load_kspace_h5, open_h5

ACCELERATIONS = ("04", "08", "10")


def line_mask(mask: np.ndarray, kspace_shape: tuple[int, ...], where: str) -> np.ndarray:
  """A mask broadcastable to ``[T, C, H, W]`` -> the ``[T, W]`` line mask; a partly sampled line is an error."""
  t, c, h, w = kspace_shape
  mask = np.asarray(mask).astype(bool)
  if mask.shape == (t, w):
    return mask
  try:
    full = np.broadcast_to(mask, (t, c, h, w))
  except ValueError:
    raise KSpaceError(f"{where}: mask shape {mask.shape} does not match the k-space [T, C, H, W] = "
                      f"{(t, c, h, w)}") from None
  lines = full.any(axis=(1, 2))
  if not (full == lines[:, None, None, :]).all():
    raise KSpaceError(f"{where}: mask samples part of a phase-encoding line; expected a Cartesian line mask "
                      "(every readout sample of a (t, ky) line acquired or none)")
  return lines


def check_mask_matches(kspace: np.ndarray, mask: np.ndarray, where: str) -> None:
  """Raises if the k-space holds data on lines that ``mask [T, W]`` marks as not acquired."""
  has_data = np.abs(kspace).max(axis=(1, 2)) > 0
  bad = has_data & ~mask
  if bad.any():
    t, ky = np.argwhere(bad)[0]
    raise KSpaceError(f"{where}: the mask does not match the k-space: line ky={ky} of frame {t} holds data but the "
                      f"mask marks it not acquired ({int(bad.sum())} such lines)")
  if not mask.any(axis=1).all():
    raise KSpaceError(f"{where}: the mask acquires no line in frame {int(np.flatnonzero(~mask.any(1))[0])}")


def _complex(ds, where: str) -> np.ndarray:
  arr = np.asarray(ds)
  if arr.dtype.names and {"real", "imag"} <= set(arr.dtype.names):
    return (arr["real"] + 1j * arr["imag"]).astype(np.complex64)
  if np.iscomplexobj(arr):
    return arr.astype(np.complex64)
  raise KSpaceError(f"{where}: dtype {arr.dtype}; expected complex or a compound of 'real' and 'imag'")


def load_cmrxrecon(path: str, *, mask_path: str | None = None) -> list[dict]:
  """Slices of a CMRxRecon cine file (see the module docstring); the reader picks ``kspace_full`` if present."""
  with open_h5(path, "MATLAB v7.3 / HDF5") as f:
    names = ["kspace_full"] + [f"kspace_sub{a}" for a in ACCELERATIONS]
    name = next((n for n in names if n in f), None)
    if name is None:
      raise KSpaceError(f"{path}: no dataset among {names}; keys are {sorted(f.keys())}")
    where = f"{path}:{name}"
    k = _complex(f[name], where)
    mask = None
    if name != "kspace_full":
      acc = name[-2:]
      beside = os.path.splitext(path)[0] + "_mask.mat"  # the challenge's cine_sax.mat -> cine_sax_mask.mat
      if mask_path is None and f"mask{acc}" not in f and os.path.exists(beside):
        mask_path = beside
      for src in (f, None):
        if src is None:
          if mask_path is None:
            break
          with open_h5(mask_path, "MATLAB v7.3 / HDF5 mask") as g:
            if f"mask{acc}" not in g:
              raise KSpaceError(f"{mask_path}: no dataset 'mask{acc}' for {where}; keys are {sorted(g.keys())}")
            mask = np.asarray(g[f"mask{acc}"])
        elif f"mask{acc}" in src:
          mask = np.asarray(src[f"mask{acc}"])
          break
  if k.ndim == 4:  # CMRxRecon SingleCoil: [T, S, ky, kx]
    k = k[:, :, None]
  if k.ndim != 5:
    raise KSpaceError(f"{where}: shape {k.shape}; expected [T, S, C, ky, kx] (h5py order of MATLAB's kx, ky, C, S, T)")
  k = k.transpose(1, 0, 2, 4, 3)  # [S, T, C, kx, ky]: readout H, phase encoding W
  subjects = []
  for s, ks in enumerate(k):
    if name == "kspace_full":
      m = np.ones((ks.shape[0], ks.shape[-1]), bool)
    elif mask is None:
      m = np.abs(ks).max(axis=(1, 2)) > 0
    else:
      mm = np.asarray(mask)
      mm = np.swapaxes(mm, -1, -2) if mm.ndim >= 2 else mm  # [.., ky, kx] -> [.., kx, ky]
      m = line_mask(mm[:, None] if mm.ndim == 3 else mm, ks.shape, f"{mask_path or path}:mask{name[-2:]}")
    check_mask_matches(ks, m, where)
    subjects.append({"kspace": ks * m[:, None, None, :], "mask": m, "fully_sampled": bool(m.all()),
                     "source": path, "slice": s})
  return subjects


def load_dynamic_h5(path: str) -> list[dict]:
  """Slices of a jaxmed dynamic HDF5 file (:func:`jaxmed.io.load_kspace_h5`), its ``mask`` as the acquisition."""
  data = load_kspace_h5(path)
  if data["layout"] != "dynamic":
    raise KSpaceError(f"{path}: layout {data['layout']!r}; cine needs the dynamic layout kspace[slice,frame,coil,kx,ky]")
  subjects = []
  for s, ks in enumerate(data["kspace"]):
    ks = ks.astype(np.complex64)
    m = (line_mask(data["mask"], ks.shape, f"{path}:mask") if "mask" in data
         else np.ones((ks.shape[0], ks.shape[-1]), bool))
    check_mask_matches(ks, m, f"{path}:kspace")
    sub = {"kspace": ks * m[:, None, None, :], "mask": m, "fully_sampled": bool(m.all()), "source": path, "slice": s}
    if "coil_maps" in data:
      sub["coil_maps"] = np.asarray(data["coil_maps"][s], np.complex64)
    subjects.append(sub)
  return subjects


def load_ismrmrd(path: str) -> list[dict]:
  """Slices of an ISMRMRD file (OCMR), see the module docstring."""
  try:
    import ismrmrd
  except ImportError as e:
    raise KSpaceError(f"{path}: reading ISMRMRD needs the 'ismrmrd' package (pip install ismrmrd)") from e
  if not os.path.exists(path):
    raise KSpaceError(f"{path}: file not found")
  dset = ismrmrd.Dataset(path, "dataset", create_if_needed=False)
  try:
    header = ismrmrd.xsd.CreateFromDocument(dset.read_xml_header())
    enc = header.encoding[0]
    nx, ny = enc.encodedSpace.matrixSize.x, enc.encodedSpace.matrixSize.y
    rx = enc.reconSpace.matrixSize.x
    lim = enc.encodingLimits
    frames = (lim.phase.maximum + 1) if lim.phase is not None else 1
    slices = (lim.slice.maximum + 1) if lim.slice is not None else 1
    centre = lim.kspace_encoding_step_1.center if lim.kspace_encoding_step_1 is not None else ny // 2
    acc_sum, count, coils = None, np.zeros((slices, frames, ny), np.int32), None
    for i in range(dset.number_of_acquisitions()):
      acq = dset.read_acquisition(i)
      if acq.is_flag_set(ismrmrd.ACQ_IS_NOISE_MEASUREMENT):
        continue
      data = acq.data  # [C, readout]
      if acc_sum is None:
        coils = data.shape[0]
        acc_sum = np.zeros((slices, frames, coils, data.shape[1], ny), np.complex64)
      ky = acq.idx.kspace_encode_step_1 - centre + ny // 2
      s, t = acq.idx.slice, acq.idx.phase
      if not (0 <= ky < ny and s < slices and t < frames and data.shape == (coils, acc_sum.shape[3])):
        raise KSpaceError(f"{path}: acquisition {i} (ky {acq.idx.kspace_encode_step_1}, phase {t}, slice {s}, data "
                          f"{data.shape}) lies outside the header's encoding limits / matrix {(nx, ny)}")
      acc_sum[s, t, :, :, ky] += data
      count[s, t, ky] += 1
  finally:
    dset.close()
  if acc_sum is None:
    raise KSpaceError(f"{path}: no imaging acquisition (only noise scans or none)")
  k = acc_sum / np.maximum(count, 1)[:, :, None, None, :]
  if k.shape[3] > rx:  # readout oversampling: crop the field of view along x in image space
    img = np.fft.fftshift(np.fft.ifft(np.fft.ifftshift(k, axes=3), axis=3, norm="ortho"), axes=3)
    x0 = (k.shape[3] - rx) // 2
    k = np.fft.fftshift(np.fft.fft(np.fft.ifftshift(img[:, :, :, x0:x0 + rx], axes=3), axis=3, norm="ortho"), axes=3)
  masks = count > 0
  out = []
  for s in range(slices):
    check_mask_matches(k[s], masks[s], f"{path}:acquisitions")
    out.append({"kspace": k[s].astype(np.complex64), "mask": masks[s], "fully_sampled": bool(masks[s].all()),
                "source": path, "slice": s})
  return out


def load_cine(path: str, *, mask_path: str | None = None) -> list[dict]:
  """Dispatches on the file: ``.mat`` -> CMRxRecon, ``.mrd`` / an ISMRMRD ``dataset`` group -> ISMRMRD,
  else jaxmed's dynamic HDF5."""
  if path.endswith(".mat"):
    return load_cmrxrecon(path, mask_path=mask_path)
  if path.endswith(".mrd"):
    return load_ismrmrd(path)
  is_mrd = False
  with open_h5(path) as f:
    is_mrd = "dataset" in f and "xml" in f["dataset"]
  return load_ismrmrd(path) if is_mrd else load_dynamic_h5(path)
