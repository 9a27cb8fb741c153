"""PyTorch itself as a backend (CPU or CUDA, eager or CUDA graphs): the framework side of parity checks."""
