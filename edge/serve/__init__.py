"""Serving a gedge scorer to many cameras: a Triton Inference Server (PyTriton) in front of any gedge backend."""
