"""Models for every stage: in-package CIFAR networks, torchvision by name, user factories, checkpoints.

A :class:`ModelSpec` names the architecture; :func:`build_model` turns it into a randomly initialised
``nn.Module`` (nothing is downloaded); :func:`save_checkpoint` / :func:`load_checkpoint` store weights
as safetensors next to the spec. torchvision is imported only when a torchvision model is requested
or listed.
"""

from cosep_deploy.models.checkpoint import (
    load_checkpoint,
    load_weights,
    read_checkpoint,
    read_state_dict,
    save_checkpoint,
)
from cosep_deploy.models.cifar_resnet import CifarResNet
from cosep_deploy.models.densenet import CifarDenseNet
from cosep_deploy.models.mobilenetv2 import CifarMobileNetV2
from cosep_deploy.models.registry import (
    ModelEntry,
    build_model,
    count_params,
    describe_model,
    list_models,
    register_model,
    registered_models,
)
from cosep_deploy.models.spec import ModelSpec
from cosep_deploy.models.vgg import CifarVGG

__all__ = [
    "CifarDenseNet",
    "CifarMobileNetV2",
    "CifarResNet",
    "CifarVGG",
    "ModelEntry",
    "ModelSpec",
    "build_model",
    "count_params",
    "describe_model",
    "list_models",
    "load_checkpoint",
    "load_weights",
    "read_checkpoint",
    "read_state_dict",
    "register_model",
    "registered_models",
    "save_checkpoint",
]
