"""Cine MRI reconstruction (SSFL-Recon, Xu, Kuestner et al., IEEE TMI 2025) and its operators.

Centred orthonormal FFTs, multi-coil multi-frame SENSE with CG-SENSE, ESPIRiT
coil maps from the time-averaged k-space centre, VISTA / SSDU / fastMRI
masks.
"""

from jaxmed.mri.espirit import espirit_maps, time_average
from jaxmed.mri.fft import fft2c, ifft2c
from jaxmed.mri.masks import (expand_line_mask, fastmri_equispaced_mask, fastmri_random_mask, ssdu_split,
                              vista_mask)
from jaxmed.mri.sense import cg_sense, data_consistency, expand_mask, normalize_maps, sense_adjoint, sense_forward

__all__ = ["cg_sense", "data_consistency", "espirit_maps", "expand_line_mask", "expand_mask",
           "fastmri_equispaced_mask", "fastmri_random_mask", "fft2c", "ifft2c", "normalize_maps", "sense_adjoint",
           "sense_forward", "ssdu_split", "time_average", "vista_mask"]
