"""Shared fixtures: a seeded rng, the tiny scenario, a simulated + ingested tiny run."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest
from local_servers import free_port

from simulator.faults import DRAWN_KINDS
from simulator.scenario import Scenario, load_scenario

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_FIXTURES = REPO_ROOT.parent / "shared" / "fixtures"


#: Test modules whose tests run longest (the notebooks pipeline, a minute and a half; the
#: JupyterLab server): collected first, so that pytest-xdist's workers (``--dist
#: worksteal``) do not end the run with one of them alone on one worker.
SLOW_FIRST = ("test_notebooks.py", "test_lab.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Move the tests of :data:`SLOW_FIRST` to the front (a stable sort: each module's
    tests stay together and in order)."""
    items.sort(key=lambda item: item.path.name not in SLOW_FIRST)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def tiny_scenario() -> Scenario:
    return load_scenario("tiny")


def only_fault(kind: str, rate_per_year: float, base: str = "tiny", **overrides) -> Scenario:
    """The ``base`` scenario with every fault kind off except ``kind``.

    Storms, background calls and unexplained symptoms are off too, so that whatever
    happens in the run is the signature of that one kind.
    """
    sc = load_scenario(base)
    faults = sc.faults.model_dump()
    for k in DRAWN_KINDS:
        faults[k]["rate_per_year"] = 0.0
    faults[kind]["rate_per_year"] = rate_per_year
    faults.update(overrides.pop("fault_params", {}))
    data_quality = sc.data_quality.model_dump() | {"unexplained_symptoms_per_year": 0.0}
    weather = sc.weather.model_dump() | {"storms_per_year_per_region": 0.0}
    customers = sc.customers.model_dump() | {"background_calls_per_year": 0.0}
    return sc.with_overrides(
        faults=faults, data_quality=data_quality, weather=weather, customers=customers, **overrides
    )


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The tiny scenario simulated and ingested once per test session."""
    from guardian_lib.ingest import ingest_run
    from simulator.output import simulate_to_dir

    out = tmp_path_factory.mktemp("runs") / "tiny"
    simulate_to_dir(load_scenario("tiny", days=2), out)
    ingest_run(out)
    return out


@pytest.fixture(scope="session")
def cube(tiny_run):
    """The tiny run's whole SILVER history as a feature Cube (tests copy before changing it)."""
    from guardian_lib.features import load_cube
    from guardian_lib.warehouse import connect

    con = connect(tiny_run)
    lo, hi = con.execute("SELECT epoch_us(min(ts)), epoch_us(max(ts)) FROM telemetry").fetchone()
    c = load_cube(con, lo, hi)
    con.close()
    return c


@pytest.fixture(name="only_fault")
def _only_fault_fixture():
    """:func:`only_fault`, for tests (test modules cannot import conftest)."""
    return only_fault


#: Fault rates that give a three-day tiny run tickets of every kind. [1/year per unit]
_BUSY_OPERATOR_RATES = {
    "feeder_cut": 300.0, "box_fault": 150.0, "olt_board_failure": 30.0,
    "upstream_failure": 150.0, "cpe_hang": 60.0, "wifi_interference": 40.0,
    "customer_power_off": 20.0, "hardware_failure": 40.0, "fibre_degradation": 60.0,
}  # fmt: skip


def busy_operator(days: float = 3) -> Scenario:
    """Tiny, with many faults, calls that become service orders and crews to visit them.

    A few days of it give an operator export (``guardian simulate --export operator``)
    with tickets of every kind, for the label-map and own-data tests.
    """
    sc = load_scenario("tiny", days=days)
    faults = sc.faults.model_dump()
    for kind, rate in _BUSY_OPERATOR_RATES.items():
        faults[kind]["rate_per_year"] = rate
    ops = sc.operations.model_dump() | {
        "visit_prob_without_fault": 0.3, "visit_prob_with_fault": 1.0,
        "confirm_before_visit_prob": 0.3, "phone_reboot_fix_prob": 0.1,
        "technicians_per_region": 8,
    }  # fmt: skip
    customers = sc.customers.model_dump() | {
        "call_rate_per_hour_offline": 0.6, "call_rate_per_hour_no_pppoe": 0.6,
        "call_rate_per_hour_degraded": 0.4,
    }  # fmt: skip
    return sc.with_overrides(faults=faults, operations=ops, customers=customers)


@pytest.fixture(scope="session")
def operator_export(tmp_path_factory) -> tuple[Path, Path]:
    """A busy three-day tiny run (seed 5) and its operator export, once per session."""
    from simulator.operator_export import export_operator
    from simulator.output import simulate_to_dir

    tmp = tmp_path_factory.mktemp("operator")
    run = simulate_to_dir(busy_operator(), tmp / "run", seed=5)
    export_operator(run, tmp / "operadora")
    return run, tmp / "operadora"


# --- a real PostgreSQL server for the own-data import (Debian's postgresql, `make system`) ---


def _pg_bindir() -> Path:
    import shutil

    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parts)
    if not candidates:
        raise RuntimeError(
            "PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's "
            "postgresql with `make system`"
        )
    return candidates[-1].parent


@contextlib.contextmanager
def postgres_server(user: str = "guardian", password: str = "s3cret-Pg"):
    """A throw-away PostgreSQL server on 127.0.0.1: yields its SQLAlchemy URL.

    ``initdb`` refuses to run as root, so as root (CI) the server runs as the ``postgres``
    account Debian's package creates (else ``nobody``; through ``runuser``), in a fresh folder under /tmp that it
    owns (pytest's tmp_path is not reachable by that account). Password authentication
    (scram) over TCP; the unix socket lives in the same folder. Stopped and removed at
    the end. Imported by ``benchmarks/bench_ingest_sources.py`` too.
    """
    import os
    import pwd
    import shutil
    import subprocess
    import tempfile

    bindir = _pg_bindir()
    base = Path(tempfile.mkdtemp(prefix="guardian-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")  # made by Debian's postgresql package
        except KeyError:
            account = pwd.getpwnam("nobody")
        os.chown(base, account.pw_uid, account.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    pwfile = base / "pw"
    pwfile.write_text(password + "\n")
    if prefix:
        os.chown(pwfile, account.pw_uid, account.pw_gid)
    data = base / "data"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120)

    started = False
    try:
        res = run(str(bindir / "initdb"), "-D", str(data), "-U", user, f"--pwfile={pwfile}",
                  "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")  # fmt: skip
        if res.returncode:
            raise RuntimeError(f"initdb failed: {res.stderr.strip()}")
        for _ in range(3):  # the free port may be taken before the server binds it
            port = free_port()
            opts = (f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off "
                    "-c max_connections=20 -c shared_buffers=16MB")  # fmt: skip
            res = run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"),
                      "-w", "-t", "60", "-o", opts, "start")  # fmt: skip
            if res.returncode == 0:
                started = True
                break
        if not started:
            log = (base / "log").read_text() if (base / "log").exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {res.stderr.strip()} {log[-500:]}")
        yield f"postgresql+psycopg://{user}:{password}@127.0.0.1:{port}/postgres"
    finally:
        if started:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url():
    """SQLAlchemy URL of a PostgreSQL server started for this test session."""
    with postgres_server() as url:
        yield url


# --- a real SMTP server (aiosmtpd) for the alert, notice and report e-mail tests -----------------


class SmtpInbox:
    """aiosmtpd handler keeping each received message (``email.policy.default``)."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        from email import message_from_bytes, policy

        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


class SmtpServer:
    """aiosmtpd on 127.0.0.1 that can be stopped and started again on the same ``port``
    (a mail server that is down for a while)."""

    def __init__(self) -> None:
        self.inbox, self.port, self.ctl = SmtpInbox(), free_port(), None
        self.start()

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self.ctl = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.ctl.start()

    def stop(self) -> None:
        if self.ctl is not None:
            self.ctl.stop()
            self.ctl = None


@pytest.fixture
def smtp():
    """A real SMTP server on 127.0.0.1: ``(server, inbox)``; ``server.port``,
    ``server.stop()`` / ``server.start()``; ``inbox.messages``."""
    server = SmtpServer()
    yield server, server.inbox
    server.stop()
