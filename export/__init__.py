"""gedge.export: PyTorch to ONNX (fused FP32 and FP16 graphs), graph checks, TensorRT engine building."""
