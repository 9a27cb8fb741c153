"""TensorRT through its Python API: ``build`` (engine from ONNX, capability checks, engine cache), ``runner``
(deserialize, allocate, execute, time with CUDA events) and ``cuda`` (the CUDA bindings it runs on).
TensorRT and the CUDA bindings are imported inside the functions that use them."""
