"""Atomic artifact writes: a temporary file in the target folder, then ``os.replace``.

An interrupted run leaves at most a ``.tmp`` file behind, never a half-written file under the real name.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it is renamed to ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_with(target: str | Path, writer: Callable[[Path], None]) -> Path:
    """Let ``writer`` fill a temporary path, then move it to ``target``."""
    with atomic_path(target) as tmp:
        writer(tmp)
    return Path(target)


def write_bytes(target: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically."""
    return write_with(target, lambda tmp: tmp.write_bytes(data))


def write_json(target: str | Path, payload: object) -> Path:
    """Write ``payload`` as indented JSON (unknown types as strings) to ``target`` atomically."""
    text = json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n"
    return write_with(target, lambda tmp: tmp.write_text(text))
