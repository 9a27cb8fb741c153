"""Every torchvision classification model is either supported or refused up front with one line.

Which models are refused is decided by class (checked here for every name, on the meta device: instant).
The whole chain (CoSeP statistics and JM distances on every group, surgery, plan save/load, ONNX export,
ONNX Runtime parity) runs here on the models that used to crash and one model per remaining family shape;
``bench/torchvision_coverage.py`` runs it on every model (results in bench/results/torchvision_coverage.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cosep_deploy.errors import PruneError
from cosep_deploy.models.coverage import check_model, refused_by_class
from cosep_deploy.models.external import torchvision_names
from cosep_deploy.prune import PruneConfig, prune

REFUSED_PREFIXES = ("vit_", "swin_", "maxvit_", "shufflenet_")
FULL_CHAIN = ["mnasnet0_5", "convnext_tiny"]  # issue 15's two crashes


@pytest.mark.parametrize("name", torchvision_names())
def test_every_torchvision_model_is_supported_or_refused_by_class(name: str) -> None:
    reason = refused_by_class(name)
    assert (reason is not None) == name.startswith(REFUSED_PREFIXES)
    if reason is not None:
        assert "\n" not in reason and len(reason) < 200


@pytest.mark.parametrize("name", FULL_CHAIN)
def test_full_chain(tmp_path: Path, name: str) -> None:
    result = check_model(name, image_size=32, workdir=tmp_path)
    assert result.status == "pass", result.reason
    assert result.groups > 0 and result.macs_ratio is not None and result.macs_ratio > 1


def test_refusal_comes_before_any_work() -> None:
    import torchvision

    model = torchvision.models.shufflenet_v2_x0_5(num_classes=4)
    with pytest.raises(PruneError, match=r"^cannot prune: ShuffleNetV2: the channel shuffle"):
        prune(model, [], example_inputs=torch.randn(2, 3, 32, 32), config=PruneConfig(method="l1", ratio=0.5))
