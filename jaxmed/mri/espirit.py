"""ESPIRiT coil sensitivity estimation (Uecker et al., MRM 2014) from a calibration region.

For cine with VISTA sampling there is no per-frame calibration region, so
the calibration data is the *time-averaged* k-space centre, which VISTA
samples fully.

1. Calibration matrix: every ``kernel x kernel`` window of the ``[C, cal, cal]``
   centre, flattened over coils, is a row.
2. Its right singular vectors with singular value above ``threshold x`` the
   largest span the null-space complement: they are the ESPIRiT kernels.
3. Each kernel, zero-padded to the image size and transformed to image
   space, gives at every pixel a ``C x C`` operator ``G(r) = sum_j k_j(r) k_j(r)^H``;
   the coil maps are its eigenvector with eigenvalue 1 (the largest), kept
   where that eigenvalue exceeds ``crop``.
4. The phase is referred to the first coil, and the maps are normalised to
   ``sum_c |S_c|^2 = 1`` inside the support.
"""

from __future__ import annotations

import numpy as np


def time_average(kspace: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """Time-averaged k-space ``[C, H, W]`` of ``kspace [T, C, H, W]`` under a ``[T, W]`` or ``[T, H, W]`` mask.

  Each location is averaged over the frames that acquired it (0 where none did).
  """
  m = np.asarray(mask, np.float32)
  m = m[:, None, None, :] if m.ndim == 2 else m[:, None]
  count = m.sum(0)
  return (kspace * m).sum(0) / np.maximum(count, 1)


def espirit_maps(calib_kspace: np.ndarray, shape: tuple[int, int], *, calib: int = 24, kernel: int = 6,
                 threshold: float = 0.02, crop: float = 0.95) -> np.ndarray:
  """Coil maps ``[C, H, W]`` complex64 from k-space ``[C, h, w]`` whose centre holds the calibration data."""
  c, h, w = calib_kspace.shape
  calib = min(calib, h, w)
  y0, x0 = h // 2 - calib // 2, w // 2 - calib // 2
  cal = np.asarray(calib_kspace)[:, y0:y0 + calib, x0:x0 + calib]
  n = calib - kernel + 1
  rows = np.stack([cal[:, i:i + kernel, j:j + kernel].ravel() for i in range(n) for j in range(n)])
  _, s, vh = np.linalg.svd(rows, full_matrices=False)
  kernels = vh[s > threshold * s[0]].reshape(-1, c, kernel, kernel)  # [K, C, k, k]
  H, W = shape
  # the rows are correlations with the windows: in image space each kernel is flipped and conjugated
  padded = np.zeros((len(kernels), c, H, W), np.complex128)
  ky, kx = H // 2 - kernel // 2, W // 2 - kernel // 2
  padded[:, :, ky:ky + kernel, kx:kx + kernel] = np.conj(kernels[:, :, ::-1, ::-1])
  img = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(padded, axes=(-2, -1)), axes=(-2, -1)), axes=(-2, -1))
  img *= (H * W) / kernel  # unnormalised DFT over sqrt(kernel^2): eigenvalue 1 on the support
  g = np.einsum("kchw,kdhw->hwcd", img, np.conj(img))  # [H, W, C, C], Hermitian
  vals, vecs = np.linalg.eigh(g)
  top, vec = vals[..., -1], vecs[..., -1]  # [H, W], [H, W, C]
  vec = vec * np.exp(-1j * np.angle(vec[..., :1]))  # phase relative to coil 0
  maps = np.moveaxis(np.conj(vec), -1, 0) * (top > crop)[None]
  rss = np.sqrt((np.abs(maps) ** 2).sum(0, keepdims=True))
  return np.where(rss > 0, maps / np.maximum(rss, 1e-12), 0).astype(np.complex64)
