"""Layers, ring bases and functional ops of sreconv (depend only on torch and numpy)."""

from .conv import (
    SRE_LAYERS,
    SREConv1d,
    SREConv2d,
    SREConv3d,
    SREConvTranspose1d,
    SREConvTranspose2d,
    SREConvTranspose3d,
    export_to_conv,
)
from .functional import expand_kernel, sre_conv, sre_conv_transpose
from .pooling import (
    CenteredSubsample,
    SymmetricAvgPool1d,
    SymmetricAvgPool2d,
    SymmetricAvgPool3d,
    SymmetricMaxPool1d,
    SymmetricMaxPool2d,
    SymmetricMaxPool3d,
    SymmetricPool,
    centered_pool_geometry,
)
from .ring_basis import (
    RING_BASES,
    default_num_rings,
    gaussian_ring_basis,
    hard_ring_basis,
    make_ring_basis,
    num_distinct_radii,
)

__all__ = [
    "CenteredSubsample",
    "RING_BASES",
    "SRE_LAYERS",
    "SREConv1d",
    "SREConv2d",
    "SREConv3d",
    "SREConvTranspose1d",
    "SREConvTranspose2d",
    "SREConvTranspose3d",
    "SymmetricAvgPool1d",
    "SymmetricAvgPool2d",
    "SymmetricAvgPool3d",
    "SymmetricMaxPool1d",
    "SymmetricMaxPool2d",
    "SymmetricMaxPool3d",
    "SymmetricPool",
    "centered_pool_geometry",
    "default_num_rings",
    "expand_kernel",
    "export_to_conv",
    "gaussian_ring_basis",
    "hard_ring_basis",
    "make_ring_basis",
    "num_distinct_radii",
    "sre_conv",
    "sre_conv_transpose",
]
