"""Training and evaluation engine: ``run_train``/``run_eval`` (what the commands do), ``fit`` /
``train_one_epoch`` with callbacks, ``evaluate``, ``evaluate_rotations``, ``evaluate_flips``.

Not imported by ``import sreconv``: it pulls optional dependencies (tqdm, pyyaml) that the layers do not need.
"""

from .config import TrainConfig
from .evaluate import evaluate, evaluate_flips, evaluate_rotations, predict_views
from .metrics import compute_metrics, scores_from_logits
from .runner import run_eval, run_train
from .train import Callback, fit, train_one_epoch

__all__ = ["Callback", "fit", "train_one_epoch", "run_train", "run_eval", "TrainConfig", "evaluate", "evaluate_flips",
           "evaluate_rotations", "predict_views", "compute_metrics", "scores_from_logits"]
