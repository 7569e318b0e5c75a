"""Atomic artifact writes: a temporary file in the target folder, then ``os.replace``.

An interrupted run leaves at most a hidden ``.tmp`` file behind, never a half-written file under the real name.
The temporary file is created with mode 0666 less the umask (not ``mkstemp``'s 0600), so an artifact can be
read by whoever the umask lets read it: another user, or the container UID that serves it.

A write that fails because the disk is full or the process's file-size limit (``ulimit -f``) was reached
raises :class:`WriteFailed` (an ``OSError`` with ``errno`` ENOSPC or EFBIG that names the target), also where
the writing library reports it as something else (``torch.save`` raises ``RuntimeError``); the CLI maps it to
exit code 3.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from gedge.core.errors import CheckFailed, GedgeError, RuntimeFailure

# errno values of a machine that cannot store what it is asked to: the CLI's exit code 3, not bad input
OUT_OF_SPACE = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO})
LOW_SPACE_BYTES = 1 << 20  # a failed write with less free space than this is put down to a full disk


class WriteFailed(OSError):
    """An artifact could not be written (``filename`` is the target, ``errno`` says why)."""

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def _limit_reached(folder: Path) -> int | None:
    """EFBIG when the process has a file-size limit, ENOSPC when the folder's file system is (nearly) full,
    else None: what a writer's failure that is not an ``OSError`` is put down to."""
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if soft != resource.RLIM_INFINITY:
        return errno.EFBIG
    try:
        stats = os.statvfs(folder)
    except OSError:
        return None
    return errno.ENOSPC if stats.f_bavail * stats.f_frsize < LOW_SPACE_BYTES else None


def _failed(target: Path, exc: BaseException) -> BaseException:
    """The error to raise for a write of ``target`` that raised ``exc``: a :class:`WriteFailed` naming the target
    when the file system refused the bytes, else ``exc`` itself (a bug in the writer keeps its traceback)."""
    if isinstance(exc, (WriteFailed, GedgeError, CheckFailed, RuntimeFailure)) or not isinstance(exc, Exception):
        return exc  # gedge's own verdicts, KeyboardInterrupt and friends
    if isinstance(exc, OSError):
        named = None if exc.filename is None else Path(exc.filename)  # the temporary file, or a folder of target
        ours = named is None or named.parent == target.parent or target.is_relative_to(named)
        code = exc.errno if exc.errno in OUT_OF_SPACE or (ours and exc.errno is not None) else None
    else:
        code = _limit_reached(target.parent)
    if code is None:
        return exc
    reason = os.strerror(code)
    if code == errno.EFBIG:
        soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
        if soft != resource.RLIM_INFINITY:
            reason += f" (the file-size limit, ulimit -f, is {soft} bytes)"
    return WriteFailed(code, f"cannot write: {reason}", str(target))


def _create_temporary(target: Path) -> Path:
    """A new empty hidden file next to ``target``, created with mode 0666 so that the umask applies."""
    for _ in range(100):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(target))


@contextmanager
def write_errors(target: str | Path) -> Iterator[None]:
    """Turn a failure to write ``target`` (a full disk, a file-size limit) into :class:`WriteFailed`, also where
    the writing library reports it as something else; for writers that manage their own temporary files (an
    OpenVINO IR's .xml and .bin)."""
    try:
        yield
    except BaseException as exc:
        failure = _failed(Path(target), exc)
        if failure is exc:
            raise
        raise failure from exc


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it is renamed to ``target``."""
    target = Path(target)
    tmp: Path | None = None
    try:
        with write_errors(target):
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = _create_temporary(target)
            yield tmp
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, target)
    finally:
        if tmp is not None and tmp.exists():
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
