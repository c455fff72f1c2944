"""Centred, orthonormal 2D FFTs over the last two axes (the fastMRI convention).

``fft2c(x) = fftshift(fft2(ifftshift(x))) / sqrt(H W)``: the DC sample sits
at index ``(H // 2, W // 2)`` and the transform is unitary (Parseval holds).
"""

from __future__ import annotations

import jax.numpy as jnp

_AXES = (-2, -1)


def fft2c(x: jnp.ndarray) -> jnp.ndarray:
  """Image ``[..., H, W]`` (complex) -> centred k-space ``[..., H, W]``."""
  return jnp.fft.fftshift(jnp.fft.fft2(jnp.fft.ifftshift(x, axes=_AXES), axes=_AXES, norm="ortho"), axes=_AXES)


def ifft2c(k: jnp.ndarray) -> jnp.ndarray:
  """Centred k-space ``[..., H, W]`` -> image ``[..., H, W]``; the inverse (and adjoint) of :func:`fft2c`."""
  return jnp.fft.fftshift(jnp.fft.ifft2(jnp.fft.ifftshift(k, axes=_AXES), axes=_AXES, norm="ortho"), axes=_AXES)
