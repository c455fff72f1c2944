"""Slice-to-volume reconstruction with implicit neural representations (MetaSVR, Dannecker et al. 2025).

Geometry and rotations, the Monte-Carlo slice PSF with its sample ramp, SIREN
and pure-JAX hash-grid volume INRs, free or INR slice motion, the imaging
model with per-slice scale and learned variance (outlier weights), optional
pixel variance and bias field, per-group optimisers, the fitting loop,
volume sampling and export, and Reptile meta-learning of the initialisation.
"""

from jaxmed.svr.geometry import (axis_angle_matrix, compose, euler_zxz_matrix, invert, matrix_axis_angle, rigid_matrix,
                                 rotation_error_deg, rotation_matrix)
from jaxmed.svr.export import reconstruct_volume, slice_weights, target_grid, write_motion_table, write_outputs
from jaxmed.svr.inr import HashGrid, Siren, VoxelGrid, volume_inr
from jaxmed.svr.metrics import (informative_slices, masked_psnr_ssim, motion_errors, outlier_auroc,
                                registered_psnr_ssim, slice_sigma_in_volume_units)
from jaxmed.svr.motion import FreeMotion, MotionINR, SirenMotion, drift_penalty, motion_model, smoothness_penalty
from jaxmed.svr.preprocess import n4_bias_correction, normalise_intensity, prealign_stacks
from jaxmed.svr.psf import psf_offsets, psf_ramp, psf_sigmas
from jaxmed.svr.reconstruct import (GROUPS, SVRModel, device_slices, fit, level_progress, make_optimizer,
                                    outlier_drift_weights, sample_volume)
from jaxmed.svr.reptile import load_meta_init, meta_groups, meta_learn, reptile_update, save_meta_init
from jaxmed.svr.slices import acquire, normalise, pad_pixels, pixel_counts, pixel_points, prepare

__all__ = ["GROUPS", "FreeMotion", "HashGrid", "MotionINR", "SirenMotion", "SVRModel", "level_progress", "Siren", "acquire", "axis_angle_matrix",
           "compose", "drift_penalty", "smoothness_penalty", "euler_zxz_matrix", "fit", "invert", "make_optimizer", "matrix_axis_angle",
           "motion_model", "normalise", "pad_pixels", "pixel_counts", "pixel_points", "prepare", "n4_bias_correction", "normalise_intensity", "prealign_stacks", "psf_offsets", "psf_ramp", "psf_sigmas",
           "rigid_matrix", "rotation_error_deg", "rotation_matrix", "sample_volume", "volume_inr", "VoxelGrid",
           "device_slices", "load_meta_init", "meta_groups", "meta_learn", "reptile_update", "save_meta_init",
           "reconstruct_volume", "slice_weights", "target_grid", "write_motion_table", "write_outputs",
           "informative_slices", "masked_psnr_ssim", "registered_psnr_ssim", "outlier_drift_weights", "motion_errors", "outlier_auroc", "slice_sigma_in_volume_units"]
