"""ONNX Runtime: the embedded default backend (CPU). ``build`` writes an optimized session file and its
manifest; ``runner`` loads and times it."""
