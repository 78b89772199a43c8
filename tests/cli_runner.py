"""Run the ``guardian`` command line inside the test process.

A child ``guardian`` process pays a few seconds of imports (MLflow, scikit-learn, pandas)
before it does anything; :func:`run_guardian` calls :func:`guardian_lib.cli.main` instead,
with the same arguments, the given environment and the same error path (exit code from
``SystemExit``, ``error: …`` on stderr). Use it where the child process is not what is
tested; keep real processes for signals, pipes, entry-point loading, ``--debug``
tracebacks and parallel workers.

Warnings are shown on the captured stderr under Python's default filters, as a
``guardian`` process would print them (not collected by pytest). Everything the call
changes in this process is put back afterwards: ``os.environ``
(MLflow writes ``MLFLOW_TRACKING_URI`` and ``MLFLOW_EXPERIMENT_ID`` into it), MLflow's
tracking URI, active experiment and any run left open, and the ``--debug`` flag.

Test modules import it as ``cli_runner`` (``pythonpath = ["tests"]`` in pyproject.toml).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

__all__ = ["CliResult", "run_guardian"]


@dataclass(frozen=True)
class CliResult:
    """What one ``guardian`` call gave, shaped like :class:`subprocess.CompletedProcess`."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def _exit_code(exc: SystemExit) -> int:
    """The status a process would exit with for ``exc`` (``sys.exit`` semantics)."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    sys.stderr.write(f"{exc.code}\n")  # sys.exit("message"): printed, status 1
    return 1


@contextlib.contextmanager
def _restored_globals() -> Iterator[None]:
    env = dict(os.environ)
    mlflow_before = None
    if "mlflow" in sys.modules:
        from mlflow.tracking import fluent
        from mlflow.tracking._tracking_service import utils

        mlflow_before = (utils._tracking_uri, fluent._active_experiment_id)
    try:
        yield
    finally:
        from guardian_lib import cli

        cli._state["debug"] = False
        if "mlflow" in sys.modules:
            import mlflow
            from mlflow.tracking import fluent

            while mlflow.active_run() is not None:
                mlflow.end_run()
            uri, experiment = mlflow_before or (None, None)
            mlflow.set_tracking_uri(uri)
            fluent._active_experiment_id = experiment
        os.environ.clear()
        os.environ.update(env)


@contextlib.contextmanager
def _process_warnings() -> Iterator[None]:
    """Warnings filtered and printed (to ``sys.stderr``) as in a fresh ``python`` process."""
    with warnings.catch_warnings():
        warnings.resetwarnings()
        for category in (ResourceWarning, ImportWarning, PendingDeprecationWarning):
            warnings.simplefilter("ignore", category)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")
        warnings.showwarning = _print_warning  # pytest records them otherwise
        yield


def _print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def run_guardian(
    *args: str,
    env: Mapping[str, str | None] | None = None,
    check: bool = True,
) -> CliResult:
    """``guardian ARGS`` in this process; its exit code and what it printed.

    Parameters
    ----------
    *args : str
        The command line after ``guardian``.
    env : mapping, optional
        Environment changes for the call: a value sets the variable, ``None`` removes it.
        The rest of ``os.environ`` is kept; all of it is restored afterwards.
    check : bool
        Raise ``AssertionError`` (with the end of stderr) when the exit code is not 0.

    Returns
    -------
    CliResult
        ``returncode`` (0 when the command returns, else the ``SystemExit`` status),
        ``stdout`` and ``stderr`` as text.
    """
    from guardian_lib.cli import main

    out, err = io.StringIO(), io.StringIO()
    with _restored_globals():
        for key, value in (env or {}).items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        with (
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            _process_warnings(),
        ):
            try:
                main(list(args))
                code = 0
            except SystemExit as exc:
                code = _exit_code(exc)
    res = CliResult(list(args), code, out.getvalue(), err.getvalue())
    if check and res.returncode:
        raise AssertionError(f"guardian {' '.join(args)} → {res.returncode}\n{res.stderr[-3000:]}")
    return res
