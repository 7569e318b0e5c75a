"""A warm interpreter that forks `gedge` runs for tests/test_faults.py (run as a script, not collected by pytest).

Every run of the fault-injection test is a real `gedge` process that the test can SIGKILL or start under a
file-size limit; starting each one cold costs seconds of imports (torch, onnx, openvino) and of torch's exporter
setting itself up. This process pays that once: it imports the command modules, exports a tiny model once (with
one torch thread, so that no thread pool exists to be broken by ``fork``), then forks one child per request.

Protocol, one JSON object per line: the test writes ``{"argv": [...], "cwd": ..., "stdout": ..., "stderr": ...,
"fsize": bytes or null}``; this process forks a child that runs ``gedge ARGV`` (``gedge.cli.app.main``) with its
output in the two files and ``RLIMIT_FSIZE`` set, and answers ``{"pid": N}``. The test may SIGKILL the pid, then
writes ``{"wait": N}``; the answer is ``{"pid": N, "code": exit code}`` or ``{"pid": N, "signal": number}``.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import traceback
from pathlib import Path

import gedge.cli.build  # noqa: F401  (imported here once, so that every child starts warm)
import gedge.cli.calibrate  # noqa: F401
import gedge.cli.export  # noqa: F401
import gedge.cli.train  # noqa: F401
import torch
from gedge.cli.app import main
from gedge.core import artifacts
from gedge.core.decision import DecisionRule
from gedge.core.preprocess import Preprocess
from gedge.export.onnx_export import export_checkpoint
from gedge.reference.checkpoint import Checkpoint, save_checkpoint
from gedge.reference.model import ModelConfig, build_networks


def warm_up() -> None:
    """One export of a tiny model, so that each child's export does not set torch's exporter up again."""
    config = ModelConfig(isize=16, nz=8, ngf=8, ndf=8)
    netg, netd = build_networks(config, seed=0)
    checkpoint = Checkpoint(config, Preprocess(mode="patch", isize=16), DecisionRule(), netg.state_dict(),
                            netd.state_dict(), facts={"data": "", "steps": 0})
    with tempfile.TemporaryDirectory(prefix="gedge-zygote-") as folder:
        path = save_checkpoint(checkpoint, Path(folder) / "warm.pt")
        export_checkpoint(artifacts.open(path), Path(folder) / "warm.onnx")


def child(request: dict) -> None:
    """In the forked child: the run's files, limit and arguments, then `gedge`; never returns."""
    code = 1
    try:
        os.chdir(request["cwd"])
        for fd, name in ((1, request["stdout"]), (2, request["stderr"])):
            target = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(target, fd)
            os.close(target)
        if request.get("fsize") is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (int(request["fsize"]), resource.RLIM_INFINITY))
        sys.argv = ["gedge", *request["argv"]]
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # an escaped exception is a traceback, the thing the test counts
        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def serve() -> None:
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    warm_up()
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in iter(sys.stdin.readline, ""):
        request = json.loads(line)
        if "wait" in request:
            pid, status = os.waitpid(int(request["wait"]), 0)
            answer = {"pid": pid, "code": os.waitstatus_to_exitcode(status)}
            if os.WIFSIGNALED(status):
                answer = {"pid": pid, "signal": os.WTERMSIG(status)}
            print(json.dumps(answer), flush=True)
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            child(request)
        print(json.dumps({"pid": pid}), flush=True)


if __name__ == "__main__":
    serve()
