"""The bottom layer of gedge: artifact facts and their verification (the design card's "artifacts" layer)."""
