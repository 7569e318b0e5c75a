"""gedge.bench: parity against the PyTorch reference, latency and throughput, reports."""
