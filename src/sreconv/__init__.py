"""sreconv: symmetric rotation-equivariant convolution for PyTorch.

Du et al., "SRE-Conv: Symmetric Rotation Equivariant Convolution for Biomedical Image Classification",
ISBI 2025, arXiv:2501.09753.
"""

from .equivariance import check_equivariance
from .models import convert_to_sre, create_model, list_models
from .nn import (
    SREConv1d,
    SREConv2d,
    SREConv3d,
    SREConvTranspose1d,
    SREConvTranspose2d,
    SREConvTranspose3d,
    clear_tuning_cache,
    export_to_conv,
    get_tuning,
    set_tuning,
    set_workspace_limit,
    tuning_choices,
    tuning_mode,
)

__version__ = "0.2.0.dev0"  # the only place the version is written (pyproject reads it)

__all__ = [
    "SREConv1d",
    "SREConv2d",
    "SREConv3d",
    "SREConvTranspose1d",
    "SREConvTranspose2d",
    "SREConvTranspose3d",
    "check_equivariance",
    "clear_tuning_cache",
    "convert_to_sre",
    "create_model",
    "export_to_conv",
    "get_tuning",
    "list_models",
    "set_tuning",
    "set_workspace_limit",
    "tuning_choices",
    "tuning_mode",
]
