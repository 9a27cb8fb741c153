"""Channel selection methods behind one interface (:class:`SelectionMethod`), registered by name."""

from cosep_deploy.prune.methods.base import Picked, SelectionMethod, ratio_count
from cosep_deploy.prune.methods.registry import get_method, method_names, register_method

__all__ = ["Picked", "SelectionMethod", "get_method", "method_names", "ratio_count", "register_method"]
