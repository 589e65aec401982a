"""SRE-ResNets (2D/3D), plain baselines, exact downsampling, the CNN converter and the model registry."""

from .blocks import SREBasicBlock, SREBasicBlock3d, SREBottleneck
from .downsample import (
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
from .resnet import ResNet, SRE_ResNet, SREResNet, resnet18, resnet34, sre_resnet18, sre_resnet34, sre_resnet50
from .resnet3d import R3D, SREResNet3d, VideoResNet3d, r3d_18, sre_r3d_18, sre_r3d_34
from .registry import ModelInfo, create_model, list_models, model_info, register_model
from .convert import ConversionReport, convert_to_SRE_conv, convert_to_sre
from .lifted import D4Symmetrize, LiftedSREResNet, sre_resnet18_d4stem, sre_resnet18_d4stage1
