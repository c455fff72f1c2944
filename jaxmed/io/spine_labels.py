"""Spine label conventions of SPINEPS/TPTBox, which stump-rib CT work uses.

Instance masks label vertebrae by index: C1-C7 = 1-7, T1-T12 = 8-19, L1-L6 =
20-25 (T13 = 28). A rib takes its vertebra's index + :data:`RIB_OFFSET`
(the T12 rib is 19 + 32 = 51). Semantic (subregion) masks use
:data:`SUBREGIONS`; ribs are :data:`RIB_LEFT` / :data:`RIB_RIGHT` there.

Arrays in :mod:`jaxmed.ribs` are in the canonical orientation
:data:`CANONICAL` = ``("P", "I", "R")`` (TPTBox's default): index 0 grows
towards posterior, index 1 towards inferior, index 2 towards the patient's
right. :func:`jaxmed.io.nifti.reorient` brings any NIfTI there and back.
"""

ARCUS, SPINOSUS = 41, 42
COSTAL_LEFT, COSTAL_RIGHT = 43, 44
SUP_ARTICULAR_LEFT, SUP_ARTICULAR_RIGHT = 45, 46
INF_ARTICULAR_LEFT, INF_ARTICULAR_RIGHT = 47, 48
CORPUS_BORDER, CORPUS = 49, 50
RIB_LEFT, RIB_RIGHT = 63, 64
SUBREGIONS = {ARCUS: "arcus", SPINOSUS: "spinosus", COSTAL_LEFT: "costal_left", COSTAL_RIGHT: "costal_right",
              SUP_ARTICULAR_LEFT: "sup_articular_left", SUP_ARTICULAR_RIGHT: "sup_articular_right",
              INF_ARTICULAR_LEFT: "inf_articular_left", INF_ARTICULAR_RIGHT: "inf_articular_right",
              CORPUS_BORDER: "corpus_border", CORPUS: "corpus"}
RIB_OFFSET = 32
CANONICAL = ("P", "I", "R")
# the rib-bearing range the assignment scans (C7 .. L1, as the official algorithm: 7 <= v < 21)
RIB_VERTEBRAE = range(7, 21)
VERTEBRA_NAMES = {**{i: f"C{i}" for i in range(1, 8)}, **{i + 7: f"T{i}" for i in range(1, 13)},
                  **{i + 19: f"L{i}" for i in range(1, 7)}, 28: "T13"}


def rib_label(vertebra: int) -> int:
  """The instance label of the rib articulating with ``vertebra`` (index + 32)."""
  return int(vertebra) + RIB_OFFSET


def side_labels(left: bool) -> dict[str, int]:
  """The subregion labels of one side: ``costal``, ``sup_articular``, ``inf_articular``, ``rib``."""
  if left:
    return {"costal": COSTAL_LEFT, "sup_articular": SUP_ARTICULAR_LEFT, "inf_articular": INF_ARTICULAR_LEFT,
            "rib": RIB_LEFT}
  return {"costal": COSTAL_RIGHT, "sup_articular": SUP_ARTICULAR_RIGHT, "inf_articular": INF_ARTICULAR_RIGHT,
          "rib": RIB_RIGHT}
