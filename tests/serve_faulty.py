"""`gedge serve` with one fault planted, for tests/test_serve.py (run with .venv-serve's Python, not collected by
pytest): ``python tests/serve_faulty.py FAULT SECONDS gedge-serve-arguments...``.

* ``hold``: the first request tagged by a load test (:data:`gedge.serve.scorer.CLIENT_PARAMETER`) is scored,
  counted as answered and then held SECONDS before its answer goes back: its client gives up on it first, so the
  server accepted and answered a request whose answer never reached the client as one (a load test must count it
  as lost);
* ``slow-facts``: the ``<name>-facts`` model is bound SECONDS after the scorer, so that the scorer is ready a while
  before a client can read its facts (a client started then must wait, not fail).
"""

from __future__ import annotations

import sys
import threading
import time

from gedge.cli.app import main
from gedge.serve import scorer, server

FAULT, SECONDS = sys.argv.pop(1), float(sys.argv.pop(1))
held = threading.Event()
score = scorer.ServedScorer.__call__
bind = server.Triton.bind


def holding(self, requests):
    answers = score(self, requests)
    if any(scorer.client_tag(r) for r in requests) and not held.is_set():
        held.set()
        time.sleep(SECONDS)
    return answers


def slow_facts(self, model_name, *args, **kwargs):
    if model_name.endswith(server.FACTS_SUFFIX):
        time.sleep(SECONDS)
    return bind(self, model_name, *args, **kwargs)


if FAULT == "hold":
    scorer.ServedScorer.__call__ = holding  # gedge.serve.server binds the instances' __call__ after this
elif FAULT == "slow-facts":
    server.Triton.bind = slow_facts
else:
    sys.exit(f"unknown fault {FAULT!r}")
sys.argv[0] = "gedge"
main()
