"""Real servers on 127.0.0.1 for the tests: one way to take a free port, start a server
process on it and wait (bounded) until it answers.

Test modules import it as ``local_servers`` (``pythonpath = ["tests"]`` in
pyproject.toml; pytest's importlib mode does not let a test module import a sibling).
"""

from __future__ import annotations

import contextlib
import select
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Answer",
    "ServerProcess",
    "TcpForwarder",
    "UdpForwarder",
    "free_port",
    "serve",
    "stop_process",
    "wait_until_answers",
]


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on (now). [-]"""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(proc: subprocess.Popen | None, log: Path | None) -> str:
    if log is not None and log.exists():
        return log.read_text(errors="replace")[-3000:]
    if proc is not None and proc.stderr is not None and proc.poll() is not None:
        err = proc.stderr.read()
        return (err.decode(errors="replace") if isinstance(err, bytes) else err)[-3000:]
    return ""


@dataclass(frozen=True)
class Answer:
    """The first accepted answer of a server."""

    status: int
    body: bytes


def _two_hundreds(status: int) -> bool:
    return 200 <= status < 300


def wait_until_answers(
    url: str,
    *,
    proc: subprocess.Popen | None = None,
    log: Path | None = None,
    headers: Mapping[str, str] | None = None,
    accept: Callable[[int], bool] = _two_hundreds,
    timeout_s: float = 120.0,
    every_s: float = 0.1,
) -> Answer:
    """GET ``url`` until it answers with a status ``accept`` takes (default 2xx).

    Fails (``AssertionError`` naming the URL and the end of the server's output) when
    ``proc`` exits or ``timeout_s`` passes first. The first start of a CLI imports every
    plugin: slow on a loaded machine, hence the generous default. [s]
    """
    deadline = time.monotonic() + timeout_s
    while True:
        req = urllib.request.Request(url, headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                answer = Answer(r.status, r.read())
        except urllib.error.HTTPError as exc:  # an answer, maybe "not ready yet"
            answer = Answer(exc.code, exc.read())
        except OSError:  # refused, reset, timed out: not listening yet
            answer = None
        if answer is not None and accept(answer.status):
            return answer
        if proc is not None and proc.poll() is not None:
            raise AssertionError(
                f"{url}: the server exited ({proc.returncode}) before answering:\n"
                f"{_tail(proc, log)}"
            )
        if time.monotonic() > deadline:
            got = f"last status {answer.status}" if answer is not None else "no answer"
            raise AssertionError(f"{url}: {got} within {timeout_s:g} s\n{_tail(proc, log)}")
        time.sleep(every_s)


@dataclass
class ServerProcess:
    """A server process listening on ``port`` of 127.0.0.1, its output in ``log``."""

    proc: subprocess.Popen
    port: int
    log: Path

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def wait_until_answers(self, path: str = "/", **kw) -> Answer:
        """:func:`wait_until_answers` on ``path`` of this server."""
        return wait_until_answers(self.url + path, proc=self.proc, log=self.log, **kw)


@contextlib.contextmanager
def serve(
    argv: Callable[[int], Sequence[str]],
    log: Path,
    env: Mapping[str, str] | None = None,
) -> Iterator[ServerProcess]:
    """Start ``argv(port)`` on a free port, output to ``log``; terminate it on exit.

    The caller waits with :meth:`ServerProcess.wait_until_answers` when it needs the
    server (it may do other work while the server loads).
    """
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            list(argv(port)), stdout=out, stderr=subprocess.STDOUT,
            env=None if env is None else dict(env),
        )  # fmt: skip
        try:
            yield ServerProcess(proc, port, log)
        finally:
            stop_process(proc, 15)


class UdpForwarder:
    """An SNMP path on loopback that can break: relays datagrams to ``target_port`` (one
    upstream socket per client address) while on; once off, drops everything."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))  # the kernel picks a free UDP port
        self.port = self.sock.getsockname()[1]
        self.on = True
        self._stop = False
        self._up: dict[tuple, socket.socket] = {}
        self._client_of: dict[socket.socket, tuple] = {}
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        while not self._stop:
            ready, _, _ = select.select([self.sock, *self._client_of], [], [], 0.05)
            for s in ready:
                try:
                    data, addr = s.recvfrom(65535)
                except OSError:
                    continue
                if not self.on:
                    continue
                if s is self.sock:
                    up = self._up.get(addr)
                    if up is None:
                        up = self._up[addr] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        up.bind(("127.0.0.1", 0))
                        self._client_of[up] = addr
                    up.sendto(data, self.target)
                else:
                    self.sock.sendto(data, self._client_of[s])

    def close(self) -> None:
        self._stop = True
        self.thread.join(5)
        for s in (self.sock, *self._up.values()):
            s.close()


def stop_process(proc: subprocess.Popen, timeout_s: float = 30) -> None:
    """Terminate ``proc`` and wait for it; killed when it has not exited within
    ``timeout_s``. [s]"""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout_s)


class TcpForwarder:
    """A TCP forwarder on loopback that can be down (nothing listens) or up."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target = target_port
        self.sock: socket.socket | None = None

    def up(self) -> None:
        import threading

        self.sock = socket.create_server(("127.0.0.1", self.port))

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        def accept() -> None:
            while True:
                try:
                    client, _ = self.sock.accept()
                except OSError:
                    return
                upstream = socket.create_connection(("127.0.0.1", self.target))
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=pump, args=(a, b), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
