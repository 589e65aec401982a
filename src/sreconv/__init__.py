"""sreconv: symmetric rotation-equivariant convolution for PyTorch.

Du et al., "SRE-Conv: Symmetric Rotation Equivariant Convolution for Biomedical Image Classification",
ISBI 2025, arXiv:2501.09753.
"""

from .nn import (
    SREConv1d,
    SREConv2d,
    SREConv3d,
    SREConvTranspose1d,
    SREConvTranspose2d,
    SREConvTranspose3d,
    export_to_conv,
)

__version__ = "0.1.0"

__all__ = [
    "SREConv1d",
    "SREConv2d",
    "SREConv3d",
    "SREConvTranspose1d",
    "SREConvTranspose2d",
    "SREConvTranspose3d",
    "export_to_conv",
]
