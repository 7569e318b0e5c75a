"""The bottom layer: artifact facts and their verification (see /work/shared/design.md, Layers)."""
