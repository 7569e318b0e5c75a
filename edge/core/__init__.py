"""gedge.core: the bottom layer every other part may use (errors, atomic writes, the score vocabulary, the
artifact facts, machine facts, timing and the optional heavy dependencies). It imports nothing else of gedge."""
