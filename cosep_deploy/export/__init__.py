"""ONNX export with validation against PyTorch (precision variants live beside it)."""

from cosep_deploy.export.onnx import ExportConfig, OnnxArtifact, onnx_from_model, validate_onnx

__all__ = ["ExportConfig", "OnnxArtifact", "onnx_from_model", "validate_onnx"]
