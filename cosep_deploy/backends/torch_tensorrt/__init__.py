"""Torch-TensorRT (dynamo) as a backend; the package is imported inside the runner."""
