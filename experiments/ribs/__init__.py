"""Thoracolumbar stump ribs: segmentation, assignment, rib length, morphology, classifier (Moeller et al. 2025)."""

from jaxmed.core import result_float

TITLE = "Stump ribs: rib segmentation, iterative rib length, morphology, stump classifier (Moeller et al. 2025)"
HEADLINE = ("dice/rib", "length/success_rate", "length/mae_mm", "f1/stump/full_view", "f1/stump/partial_view")


def results_table(results: dict) -> str:
  """Markdown: the pipeline's headline numbers, then stump F1 per classifier and view (the tour writes it)."""
  def g(key, default=float("nan")):
    return result_float(results.get(key, default))
  lines = [f"Rib Dice {g('dice/rib', float('nan')):.3f} (worst CT {g('dice/rib/min', float('nan')):.3f}); "
           f"rib length success {g('length/success_rate', float('nan')):.3f} of "
           f"{g('length/num_ribs', 0):.0f} ribs, MAE {g('length/mae_mm', float('nan')):.2f} mm; "
           f"{g('assign/missed_ribs', 0):.0f} true ribs not found, {g('assign/false_positive_ribs', 0):.0f} "
           "assigned ribs where the phantom has none.", "",
           "| classifier | view | F1 | precision | recall | AUROC |", "|---|---|---|---|---|---|"]
  for kind in ("logistic", "gbm", "mlp", "length_rule"):
    for view in ("full_view", "partial_view"):
      if f"f1/stump/{view}/{kind}" in results:
        cells = [f"{g(f'{m}/stump/{view}/{kind}'):.3f}" for m in ("f1", "precision", "recall", "auroc")]
        lines.append(f"| {kind} | {view} | " + " | ".join(cells) + " |")
  lines += ["", f"Held-out lowest ribs: {g('num_ribs/full_view', 0):.0f} full view "
            f"({g('num_stumps/full_view', 0):.0f} stumps), {g('num_ribs/partial_view', 0):.0f} partial view; "
            f"the length rule calls {g('not_measurable/partial_view/length_rule', float('nan')):.0%} of the "
            "partial-view ribs not measurable (counted as full).", "",
           "| feature (training ribs) | stump | full |", "|---|---|---|"]
  for name in ("articulation/corpus/com_post", "articulation/costal/closest_dist", "thickness/area_mm2",
               "first_cm/inf", "first_cm/lat", "length_mm"):
    lines.append(f"| {name} | {g(f'features/stump/{name}', float('nan')):.2f} | "
                 f"{g(f'features/full/{name}', float('nan')):.2f} |")
  return "\n".join(lines) + "\n"
