"""The evaluation report (`gedge evaluate --report`) and refitting the decision threshold (`gedge threshold`).

A layer above comparison: it opens checkpoints and deployed artifacts through the runtime registry, scores a
labelled test set once, and turns the scores into one self-contained HTML page of charts, tables and galleries.
"""
