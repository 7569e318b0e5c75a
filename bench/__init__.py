"""gedge.bench: speed. The ``gedge bench`` suite, ``gedge bench-cpu``, ``gedge gpu-check`` and their one report
(no rendering here: :mod:`gedge.cli.render_bench` draws the tables)."""
