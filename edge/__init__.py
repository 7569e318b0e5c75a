"""gedge: GANomaly from training to TensorRT on the inspection line, with parity at every step."""

__version__ = "0.1.0"
