"""gedge.compare: reference against candidate (parity, gates), limits and verdicts."""
