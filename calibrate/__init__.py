"""gedge.calibrate: wood-patch calibration sets, INT8 Q/DQ graphs, TensorRT calibration caches."""
