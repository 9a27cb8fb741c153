"""TensorRT through its Python API, one module per part: ``plan`` (build configuration, ONNX summary, profile,
capabilities and flags; no TensorRT needed), ``engine`` (the build itself), ``cache`` (the engine cache around
it), ``identity`` (which device an engine belongs to), ``runner`` (deserialize, allocate, execute, time with CUDA
events) and ``cuda`` (the CUDA bindings it runs on). TensorRT and the CUDA bindings are imported inside the
functions that use them."""
