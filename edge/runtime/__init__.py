"""gedge.runtime: backends behind one interface and the inference loop."""
