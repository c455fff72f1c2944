"""ARC curves for deformable registration with a HyperMorph-style hypernetwork."""

TITLE = "ARC curves for deformable registration with a hypernetwork (Sideri-Lampretsa et al. 2025)"
HEADLINE = ("arc_auc/vxm-svf", "dedicated_gap/vxm-svf", "spearman_lambda_sdlogj/vxm-svf")
