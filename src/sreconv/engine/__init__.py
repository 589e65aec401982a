"""Training and evaluation engine: ``fit``, ``evaluate``, ``evaluate_rotations``, ``evaluate_flips``.

Not imported by ``import sreconv``: it pulls optional dependencies (tqdm, pyyaml) that the layers do not need.
"""

from .config import TrainConfig
from .evaluate import evaluate, evaluate_flips, evaluate_rotations, predict_views
from .metrics import compute_metrics, scores_from_logits
from .train import fit

__all__ = ["fit", "TrainConfig", "evaluate", "evaluate_flips", "evaluate_rotations", "predict_views", "compute_metrics",
           "scores_from_logits"]
