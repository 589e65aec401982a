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
    export_to_conv,
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
    "convert_to_sre",
    "create_model",
    "export_to_conv",
    "list_models",
]
