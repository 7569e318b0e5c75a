"""`gedge serve` (a real Triton server from PyTriton, run from .venv-serve) against local scoring: parity, the
same decisions through `gedge inspect --server`, a bounded loopback load test, malformed requests, a client
killed mid-request, an accepted request whose answer never reaches its client (counted as lost), a client started
before the models are ready, and SIGTERM under load. The tests skip, with the reason, only where a prerequisite
is missing (tritonclient here, the system Python 3.11 that .venv-serve is made from); a server that does not start
fails them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from gedge.bench.load import LoadOptions, run_load, settle
from gedge.core.optional import available
from gedge.runtime.registry import open_backend
from gedge.runtime.served import LEDGER, served_reference

REPO = Path(__file__).resolve().parents[1]
SERVE_BIN = REPO / ".venv-serve" / "bin" / "gedge"
SERVE_PYTHON = Path("/usr/bin/python3.11")  # what `make serve-venv` makes .venv-serve from (the Makefile's)
GEDGE = [sys.executable, "-m", "gedge.cli"]
pytestmark = pytest.mark.skipif(not available("tritonclient.http"), reason="tritonclient is not installed")


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def need_serve_venv() -> None:
    """Skip where the serving environment cannot exist here (no system Python 3.11); fail where it could and was
    not built (`make test` builds it; a failed build is a failure, not a skip)."""
    if SERVE_BIN.exists():
        return
    if not SERVE_PYTHON.exists():
        pytest.skip(f"no system Python 3.11 at {SERVE_PYTHON}: .venv-serve (PyTriton's environment) cannot be made")
    pytest.fail(f"{SERVE_BIN} does not exist although {SERVE_PYTHON} does: run `make serve-venv` (make test does)")


class Server:
    """`gedge serve` in a subprocess on loopback ports; its JSON events read from stdout. ``launcher`` runs it
    (default: .venv-serve's gedge)."""

    def __init__(self, model: Path, log: Path, *extra: str, launcher: tuple[str, ...] = (),
                 wait_ready: bool = True) -> None:
        need_serve_venv()
        self.http, self.grpc, self.metrics = free_ports(3)
        command = [*(launcher or (str(SERVE_BIN),)), "serve", str(model), "--address", "127.0.0.1", "--http",
                   str(self.http), "--grpc", str(self.grpc), "--metrics", str(self.metrics), "--json", "--log-file",
                   str(log), *extra]
        self.stderr = log.with_suffix(".stderr")
        with open(self.stderr, "w") as err:  # a file, not a pipe: a full pipe would block the server
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True,
                                            start_new_session=True)  # signals to the tests' group stay here
        self.events: list[dict] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.ready = self._wait("ready", 90) if wait_ready else None
        if wait_ready and self.ready is None:
            self.stop()
            pytest.fail(f"gedge serve did not start: {self.stderr.read_text()[-1500:]}")

    def _read(self) -> None:
        for line in self.process.stdout:  # type: ignore[union-attr]
            if line.startswith("{"):
                self.events.append(json.loads(line))

    def _wait(self, event: str, seconds: float) -> dict | None:
        deadline = time.time() + seconds
        while time.time() < deadline:
            exited = self.process.poll() is not None
            if exited:
                self.reader.join(5)  # every line it printed has been read
            found = [e for e in self.events if e.get("event") == event]
            if found or exited:
                return found[0] if found else None
            time.sleep(0.1)
        return None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http}"

    def stopped(self, timeout: float = 60) -> dict | None:
        """After a signal sent elsewhere: wait for the "stopped" event and the exit, sending nothing more."""
        event = self._wait("stopped", timeout)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.reader.join(5)
        return event

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> dict | None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.reader.join(5)
        return next((e for e in self.events if e.get("event") == "stopped"), None)


def faulty(fault: str, seconds: float) -> tuple[str, ...]:
    """The launcher of `gedge serve` with a planted fault (tests/serve_faulty.py)."""
    return str(SERVE_BIN.with_name("python")), str(REPO / "tests" / "serve_faulty.py"), fault, str(seconds)


@pytest.fixture(scope="module")
def server(scorer_graphs, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "tritonserver.log"
    running = Server(scorer_graphs["fp32"], log, "--max-batch", "32", "--instances", "2", "--drain", "5")
    yield running
    running.stop()


def tiles(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)


def test_served_scores_equal_local_scores(server, scorer_graphs):
    local = open_backend(scorer_graphs["fp32"], "onnxruntime")
    for protocol, port in (("http", server.http), ("grpc", server.grpc)):
        remote = open_backend(served_reference(f"{protocol}://127.0.0.1:{port}"), with_amap=True)
        assert remote.info.max_batch == 32 and remote.input_spec == local.input_spec
        batch = tiles(70)  # over the server's max batch: three requests
        mine, theirs = local.score(batch), remote.score(batch)
        for name in ("d1", "d2", "d3", "latent", "d1_local", "d3_local", "score"):
            np.testing.assert_allclose(theirs.named(name), mine.named(name), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(theirs.amap, mine.amap, rtol=1e-5, atol=1e-6)
        threshold = remote.served.facts.threshold
        assert np.array_equal(theirs.score >= threshold, mine.score >= threshold)  # 100 % decision agreement
        remote.close()
    assert server.ready["facts"]["sha256"] == json.loads(Path(f"{scorer_graphs['fp32']}.json").read_text())[
        "graph_sha256"]


def test_served_decision_output_and_health(server):
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(f"127.0.0.1:{server.http}")
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("scorer")
    pixels = httpclient.InferInput("pixels", [4, 16, 16, 3], "UINT8")
    pixels.set_data_from_numpy(tiles(4, 5))
    result = client.infer("scorer", [pixels])
    threshold = server.ready["facts"]["threshold"]
    assert result.as_numpy("decision").dtype == bool
    assert np.array_equal(result.as_numpy("decision"), result.as_numpy("score") >= threshold)
    client.close()


def test_inspect_through_the_server_decides_as_local_inspection(server, scorer_graphs):
    images = sorted(str(p) for p in (scorer_graphs["data"] / "test").rglob("*.png"))
    local = subprocess.run([*GEDGE, "inspect", str(scorer_graphs["fp32"]), *images, "--json", "--all-tiles"],
                           capture_output=True, text=True)
    served = subprocess.run([*GEDGE, "inspect", "--server", server.url, *images, "--json", "--all-tiles"],
                            capture_output=True, text=True)
    assert local.returncode == 0 and served.returncode == 0, served.stderr[-2000:]
    mine = [json.loads(line) for line in local.stdout.splitlines()]
    theirs = [json.loads(line) for line in served.stdout.splitlines()]
    assert theirs[-1]["served"]["failed_requests"] == 0 and theirs[-1]["served"]["requests"] >= 1
    theirs = theirs[:-1]
    assert len(mine) == len(theirs) == len(images) + 1
    for a, b in zip(mine[:-1], theirs[:-1]):
        assert (a["path"], a["anomalous"], a["tiles"]) == (b["path"], b["anomalous"], b["tiles"])
        assert [(x["x"], x["y"]) for x in a["tiles_over"]] == [(x["x"], x["y"]) for x in b["tiles_over"]]
        assert [(x["x0"], x["y0"], x["x1"], x["y1"]) for x in a["boxes"]] == \
            [(x["x0"], x["y0"], x["x1"], x["y1"]) for x in b["boxes"]]
        np.testing.assert_allclose(b["tile_scores"], a["tile_scores"], atol=2e-4)
    summary_keys = ("images", "rejected", "accepted", "tiles", "boxes", "threshold")
    assert {k: mine[-1]["summary"][k] for k in summary_keys} == {k: theirs[-1]["summary"][k] for k in summary_keys}
    assert 0 < mine[-1]["summary"]["rejected"] < len(images)  # the decisions split: agreement is not vacuous


def test_load_on_loopback_loses_nothing(server):
    report = run_load(served_reference(server.url), LoadOptions(clients=16, requests=2000, seconds=90,
                                                                metrics_url=f"http://127.0.0.1:{server.metrics}/"
                                                                            "metrics"), (16, 16, 3))
    print("\nload:", json.dumps(report.to_dict()))
    assert report.sent == 2000 and report.answered == 2000 and report.errors == 0 and report.wrong == 0
    # the server's own counts of this run's requests: every one accepted and answered, none lost on the way
    assert report.server == {"accepted": 2000, "answered": 2000, "failed": 0, "refused": 0} and report.lost == 0
    assert report.inferences == 2000 and 0 < report.executions <= 2000
    formed = {int(k): v for k, v in report.batch_sizes.items()}
    assert sum(size * n for size, n in formed.items()) == 2000 and sum(formed.values()) == report.executions
    assert max(formed) > 1 and max(formed) <= 32  # the dynamic batcher merged requests, never past max batch


def test_malformed_requests_get_clear_errors_and_the_server_keeps_serving(server):
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    client = httpclient.InferenceServerClient(f"127.0.0.1:{server.http}")

    def send(name: str, array: np.ndarray, dtype: str) -> None:
        tensor = httpclient.InferInput(name, list(array.shape), dtype)
        tensor.set_data_from_numpy(array)
        client.infer("scorer", [tensor])

    cases = {"dtype": ("pixels", tiles(2).astype(np.float32), "FP32"),
             "shape": ("pixels", np.zeros((2, 17, 16, 3), np.uint8), "UINT8"),
             "missing input": ("image", tiles(2), "UINT8"),
             "batch over max": ("pixels", tiles(33), "UINT8")}
    messages = {}
    for case, (name, array, dtype) in cases.items():
        with pytest.raises(InferenceServerException) as caught:
            send(name, array, dtype)
        messages[case] = str(caught.value)
    assert "FP32" in messages["dtype"] and "UINT8" in messages["dtype"]
    assert "shape" in messages["shape"] and "[-1,16,16,3]" in messages["shape"]
    assert "'image'" in messages["missing input"]
    assert "batch-size must be <= 32" in messages["batch over max"]
    send("pixels", tiles(2), "UINT8")  # still serving
    client.close()


KILLED_CLIENT = """
import sys, numpy as np, tritonclient.http as h
c = h.InferenceServerClient(sys.argv[1], network_timeout=60)
x = np.random.default_rng(1).integers(0, 256, (32, 16, 16, 3), dtype=np.uint8)
print("started", flush=True)
while True:
    i = h.InferInput("pixels", list(x.shape), "UINT8"); i.set_data_from_numpy(x); c.infer("scorer", [i])
"""


def test_a_client_killed_mid_request_does_not_disturb_the_others(server):
    killed = subprocess.Popen([sys.executable, "-c", KILLED_CLIENT, f"127.0.0.1:{server.http}"],
                              stdout=subprocess.PIPE, text=True)
    assert killed.stdout.readline().strip() == "started"  # type: ignore[union-attr]
    results = {}

    def others() -> None:
        results["load"] = run_load(served_reference(server.url), LoadOptions(
            clients=8, requests=400, seconds=60, metrics_url=f"http://127.0.0.1:{server.metrics}/metrics"),
            (16, 16, 3))

    thread = threading.Thread(target=others)
    thread.start()
    time.sleep(0.3)
    killed.kill()  # mid-request: it sends requests back to back
    killed.wait(10)
    thread.join(90)
    report = results["load"]
    assert report.answered == 400 and report.errors == report.lost == report.wrong == 0
    assert report.server["accepted"] == 400  # the killed client's requests are not this run's
    assert server.process.poll() is None


def test_sigterm_under_load_loses_no_accepted_request(scorer_graphs, tmp_path):
    """One SIGTERM once the load is running (its first answer, past the warm-up requests): every request the
    server accepted reaches its client as an answer (lost 0, from the server's own counts in its "stopped" event),
    the later ones are refused explicitly, and nothing is sent to the server but that one signal."""
    stopping = Server(scorer_graphs["fp32"], tmp_path / "log", "--max-batch", "32", "--drain", "10")
    results, running = {}, threading.Event()

    def load() -> None:
        results["load"] = run_load(served_reference(stopping.url), LoadOptions(
            clients=8, requests=6000, seconds=30, timeout_s=20,
            metrics_url=f"http://127.0.0.1:{stopping.metrics}/metrics"), (16, 16, 3), running)

    thread = threading.Thread(target=load)
    thread.start()
    assert running.wait(60), "the load never got an answer"
    time.sleep(0.5)  # well inside the load: several hundred requests answered, the clients busy
    os.kill(stopping.process.pid, signal.SIGTERM)
    stopped = stopping.stopped(timeout=60)
    thread.join(60)
    assert stopped is not None, stopping.stderr.read_text()[-2000:]
    report = settle(results["load"], stopped, "the stopped event")
    print("\nsigterm:", json.dumps(report.to_dict()), json.dumps({k: v for k, v in stopped.items() if k != "clients"}))
    assert stopped["signal"] == "SIGTERM" and stopped["failed_requests"] == 0
    assert report.wrong == 0 and report.answered > 0 and report.server["failed"] == 0
    assert report.server["accepted"] == report.server["answered"] == report.answered and report.lost == 0
    # every request the server answered reached its client: this run's, and the pool's 16 first, single requests
    assert stopped["requests_answered"] == report.answered + 16
    # the rest were refused explicitly (after the signal, on connections kept alive) or found the server gone; a
    # refusal can itself be cut off when tritonserver closes its connections (never an accepted request)
    assert 0 < report.refused <= report.server["refused"]
    assert report.errors == report.sent - report.answered


def test_an_accepted_request_whose_answer_never_arrives_is_lost(scorer_graphs, tmp_path):
    """The server accepts and answers one request but holds its answer past the client's timeout: the client
    counts an error, the server an answer, and the load report counts it lost (lost is not true by construction).
    Two instances: the other one serves the next requests while the first holds its answer."""
    dropping = Server(scorer_graphs["fp32"], tmp_path / "log", "--max-batch", "32", "--instances", "2",
                      launcher=faulty("hold", 4))
    try:
        report = run_load(served_reference(dropping.url), LoadOptions(
            clients=1, requests=12, seconds=60, timeout_s=1.5,
            metrics_url=f"http://127.0.0.1:{dropping.metrics}/metrics"), (16, 16, 3))
    finally:
        dropping.stop()
    print("\ndropped:", json.dumps(report.to_dict()))
    assert report.sent == 12 and report.answered == 11 and report.errors == 1 and report.refused == 0
    assert report.server == {"accepted": 12, "answered": 12, "failed": 0, "refused": 0}
    assert report.lost == 1 and report.wrong == 0


def test_a_client_started_while_the_models_load_waits_for_them(scorer_graphs, tmp_path):
    """`gedge inspect --server` started as soon as the scorer is ready but before its facts model is (loaded 6 s
    later): it says that it waits, waits, and inspects; it does not fail with "not a gedge scorer". The server's own
    "ready" comes only once every model is."""
    loading = Server(scorer_graphs["fp32"], tmp_path / "log", launcher=faulty("slow-facts", 6), wait_ready=False)
    try:
        deadline = time.time() + 90
        while time.time() < deadline and loading.process.poll() is None:
            try:
                if urllib.request.urlopen(f"{loading.url}/v2/models/scorer/ready", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.05)
        assert not any(e.get("event") == "ready" for e in loading.events)  # the server does not claim it yet
        image = str(next((scorer_graphs["data"] / "test").rglob("*.png")))
        result = subprocess.run([*GEDGE, "inspect", "--server", loading.url, image, "--json"], capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "the model is not ready yet" in result.stderr and "not a gedge scorer" not in result.stderr
        assert loading._wait("ready", 30) is not None
    finally:
        loading.stop()


def test_bench_through_the_server_and_failed_requests_fail_the_command(server, scorer_graphs):
    result = subprocess.run([*GEDGE, "bench", str(scorer_graphs["fp32"]), "--server", server.url, "--batch", "4",
                             "--iters", "5", "--no-pipeline", "--json"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    rows = lines[0]["results"]
    assert {r["kind"] for r in rows} == {"onnxruntime", "triton"}
    assert lines[-1]["served"]["failed_requests"] == 0
    gone = f"http://127.0.0.1:{free_ports(1)[0]}"
    refused = subprocess.run([*GEDGE, "inspect", "--server", gone, str(next((scorer_graphs["data"] / "test")
                                                                              .rglob("*.png")))],
                             capture_output=True, text=True)
    assert refused.returncode != 0 and gone.split("//")[1] in refused.stderr and "scorer" in refused.stderr
    assert "Traceback" not in refused.stderr
    LEDGER.clear()


def test_a_refused_artifact_is_never_served(scorer_graphs, tmp_path):
    need_serve_venv()
    graph = tmp_path / "scorer.onnx"
    graph.write_bytes(scorer_graphs["fp32"].read_bytes())
    sidecar = json.loads(Path(f"{scorer_graphs['fp32']}.json").read_text())
    sidecar["graph_sha256"] = "0" * 64
    Path(f"{graph}.json").write_text(json.dumps(sidecar))
    http, grpc, metrics = free_ports(3)
    result = subprocess.run([str(SERVE_BIN), "serve", str(graph), "--address", "127.0.0.1", "--http", str(http),
                             "--grpc", str(grpc), "--metrics", str(metrics)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and "sidecar" in result.stderr and "scorer.onnx" in result.stderr
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{http}/v2/health/live", timeout=2)
