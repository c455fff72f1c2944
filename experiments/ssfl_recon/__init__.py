"""Self-supervised feature learning assisted cine MRI reconstruction, with its baselines."""

TITLE = "SSFL-Recon (Xu, Kuestner et al., IEEE TMI 2025)"
HEADLINE = ("psnr/R8/ssfl", "psnr/R8/parallel_nofeat", "psnr/R8/zero_filled")
