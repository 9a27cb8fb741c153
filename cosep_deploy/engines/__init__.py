"""Built engines as artifacts: the manifest beside every engine file (what built it, for which device and
runtime, from which ONNX) and the engine cache keyed by those facts."""
