"""python -m experiments.wsi_graph --config=experiments/wsi_graph/config.py:demo --workdir=runs/wsi_graph"""

import os

from experiments.wsi_graph import train
from jaxmed.core import run_main

if __name__ == "__main__":
  run_main(train.train_and_evaluate, os.path.join(os.path.dirname(__file__), "config.py"))
