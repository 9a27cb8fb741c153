"""cosep-deploy: CoSeP structural pruning, ONNX export and engine benchmarking for NVIDIA edge inference.

Importing the package is cheap: stages live in subpackages (``cosep_deploy.separability``,
``cosep_deploy.prune``, ``cosep_deploy.export``, ``cosep_deploy.backends``, ``cosep_deploy.bench``) and
optional backends (TensorRT, torch-tensorrt, CUDA bindings) are imported only inside the functions that use them.
"""

from cosep_deploy._version import __version__
from cosep_deploy.errors import CosepError

__all__ = ["CosepError", "__version__"]
