"""Deformable registration and ARC curves (alignment-regularity characteristic).

Spatial transformer, SVF integration, losses, Jacobian-based regularity
metrics, VoxelMorph/LKU-Net style networks, a HyperMorph hypernetwork and
the ARC evaluation. Imports ``jaxmed.core``-free pieces only; the synthetic
atlas data live in :mod:`jaxmed.synth.atlas` and the Learn2Reg NIfTI reader
in :mod:`jaxmed.io.nifti`.
"""

from jaxmed.registration.arc import (arc_auc, arc_common_range, arc_curve, arc_points, compiled_peak_bytes,
                                     lambda_batch_for_budget, plot_arc)
from jaxmed.registration.hypernet import (HyperMorph, apply_in_dtype, HyperNetwork, head_kernel_labels, loss_weights, make_hypermorph,
                                          sample_lambdas)
from jaxmed.registration.losses import dice_loss, gradient_loss, local_ncc, mse, ncc_loss
from jaxmed.registration.metrics import (dice_per_label, displacement_gradient, folding_percent, hd95,
                                         jacobian_determinant, keypoint_tre, ndv_percent, sdlogj_l2r, sdlogj_masked)
from jaxmed.registration.networks import (ARCHITECTURES, ConvAct, LKBlock, RegistrationNet, RegUNet, count_params,
                                          registration_net)
from jaxmed.registration.surface import hd95_l2r, robust_hausdorff, surfel_area_table
from jaxmed.registration.warp import compose, identity_grid, integrate_svf, warp, warp_labels

__all__ = [
    "ConvAct", "HyperMorph", "HyperNetwork", "LKBlock", "RegUNet", "RegistrationNet", "arc_auc", "arc_common_range",
    "arc_curve", "compiled_peak_bytes", "hd95_l2r", "lambda_batch_for_budget", "ndv_percent", "robust_hausdorff",
    "surfel_area_table", "apply_in_dtype", "ARCHITECTURES", "keypoint_tre",
    "arc_points", "compose", "count_params", "dice_loss", "dice_per_label", "displacement_gradient",
    "folding_percent", "gradient_loss", "hd95", "head_kernel_labels", "identity_grid", "integrate_svf",
    "jacobian_determinant", "local_ncc", "loss_weights", "make_hypermorph", "mse", "ncc_loss", "plot_arc", "registration_net",
    "sample_lambdas", "sdlogj_l2r", "sdlogj_masked", "warp", "warp_labels",
]
