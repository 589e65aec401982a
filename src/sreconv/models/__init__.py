"""SRE-ResNets (2D/3D), research variants, plain baselines, the CNN converter and the model registry."""

from .blocks import SREBasicBlock, SREBasicBlock3d, SREBottleneck
from .convert import ConversionReport, convert_to_sre, convert_to_SRE_conv
from .cube import CubeBasicBlock, CubeResNet3d, sre_cube_aligned_r3d_18, sre_cube_r3d_18
from .d4 import D4BasicBlock, D4ResNet, sre_d4_aligned_resnet18, sre_d4_resnet18
from .lifted import D4Symmetrize, LiftedSREResNet, sre_resnet18_d4stage1, sre_resnet18_d4stem
from .registry import GROUPS, ModelInfo, create_model, list_models, model_info, register_model
from .regular import RegularBasicBlock, RegularResNet
from .resnet import (
    ResNet,
    SRE_ResNet,
    SREResNet,
    plain_resnet18,
    plain_resnet34,
    sre_resnet18,
    sre_resnet34,
    sre_resnet50,
)
from .resnet3d import R3D, SREResNet3d, VideoResNet3d, plain_r3d_18, sre_r3d_18, sre_r3d_34

__all__ = [
    "GROUPS",
    "R3D",
    "RegularBasicBlock",
    "RegularResNet",
    "ConversionReport",
    "CubeBasicBlock",
    "CubeResNet3d",
    "D4BasicBlock",
    "D4ResNet",
    "D4Symmetrize",
    "LiftedSREResNet",
    "ModelInfo",
    "ResNet",
    "SREBasicBlock",
    "SREBasicBlock3d",
    "SREBottleneck",
    "SREResNet",
    "SREResNet3d",
    "SRE_ResNet",
    "VideoResNet3d",
    "convert_to_SRE_conv",
    "convert_to_sre",
    "create_model",
    "list_models",
    "model_info",
    "plain_r3d_18",
    "plain_resnet18",
    "plain_resnet34",
    "register_model",
    "sre_cube_aligned_r3d_18",
    "sre_cube_r3d_18",
    "sre_d4_aligned_resnet18",
    "sre_d4_resnet18",
    "sre_r3d_18",
    "sre_r3d_34",
    "sre_resnet18",
    "sre_resnet18_d4stage1",
    "sre_resnet18_d4stem",
    "sre_resnet34",
    "sre_resnet50",
]
