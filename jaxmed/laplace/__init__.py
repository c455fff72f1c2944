"""Laplace approximations and Laplace Sample Information (LSI; Kaiser et al., ICLR 2025).

Work in progress: GGN curvature (matrix-free products, exact diagonal, full)
and Gaussian KL divergences with their pieces. Posteriors, KFAC, leave-one-out
retraining and the LSI experiment follow.
"""

from jaxmed.laplace.curvature import (LIKELIHOODS, ggn_diagonal, ggn_matrix, ggn_vector_product, output_hessian,
                                      per_sample_jacobians)
from jaxmed.laplace.kl import kl_diagonal, kl_full

__all__ = ["LIKELIHOODS", "ggn_diagonal", "ggn_matrix", "ggn_vector_product", "kl_diagonal", "kl_full",
           "output_hessian", "per_sample_jacobians"]
