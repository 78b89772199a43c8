"""Run notebooks in order through papermill: a generic runner, no experiment semantics.

Each notebook gets the parameters it declares (its cell tagged ``parameters``) out of
one shared mapping, runs in an explicit working directory with the ``python3`` kernel,
and is saved executed (outputs included) to an output folder. The first failing notebook
stops the run: :class:`NotebookError` names the notebook, the cell, the exception and the
cell's source, and the failing notebook is kept with its error output.

``guardian run`` (:mod:`simulator.experiment`) builds on it.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from guardian_lib.errors import ConfigError, GuardianError

__all__ = [
    "KERNEL",
    "NotebookError",
    "NotebookRun",
    "declared_parameters",
    "notebook_html",
    "run_notebook",
    "run_notebooks",
]

#: The Jupyter kernel every notebook runs with.
KERNEL = "python3"

#: Longest Jupyter runtime folder whose kernel sockets fit a Unix socket path (108 bytes
#: on Linux, 104 on macOS) with the kernel's ``kernel-<uuid>-ipc-<n>`` names. [chars]
_MAX_IPC_DIR = 48


def _kernel_manager_class() -> type | None:
    """The kernel manager of the notebooks' kernels: Unix sockets in the user's Jupyter
    runtime folder instead of TCP ports on 127.0.0.1, where sockets can be used.

    Why: a TCP kernel listens on ports any local user can reach (its messages are signed,
    not encrypted), and ipykernel says so with a warning on every run's terminal. Where
    Unix sockets cannot be used (Windows, or a runtime folder too long for a socket's
    path, ``JUPYTER_RUNTIME_DIR``), None: Jupyter's default, TCP on loopback.
    """
    import os

    from jupyter_core.paths import jupyter_runtime_dir

    if os.name != "posix" or len(jupyter_runtime_dir()) > _MAX_IPC_DIR:
        return None
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class IpcKernelManager(AsyncKernelManager):
        """A kernel over Unix sockets (``transport = "ipc"``)."""

        @default("transport")
        def _default_transport(self) -> str:
            return "ipc"

    return IpcKernelManager


@dataclass
class NotebookRun:
    """One executed notebook: its parameters, outcome, duration [s] and CPU time [s].

    ``cpu_s`` is the user + system CPU time [s] the notebook cost: its kernel and every
    process the kernel started (a backtest's workers), plus this process's own share
    (papermill). With parallel workers it exceeds ``duration_s`` (wall clock); on a
    machine shared with other jobs it is the figure that carries from one run to another.
    """

    notebook: str
    parameters: dict[str, Any]
    status: str = "running"
    duration_s: float = 0.0
    cpu_s: float = 0.0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The record without empty fields (as written to a manifest)."""
        return {k: v for k, v in asdict(self).items() if v is not None}


class NotebookError(GuardianError):
    """A notebook failed; the message names the notebook, the cell and the error.

    Attributes
    ----------
    notebook : str
    cell_index : int or None
    executed : Path
        The failing notebook as executed, kept with its error output.
    runs : list of NotebookRun
        Every notebook run so far, the failing one last.
    """

    def __init__(
        self,
        message: str,
        notebook: str,
        cell_index: int | None,
        executed: Path,
        runs: list[NotebookRun] | None = None,
    ) -> None:
        super().__init__(message)
        self.notebook = notebook
        self.cell_index = cell_index
        self.executed = executed
        self.runs = runs or []


def declared_parameters(path: Path | str) -> set[str]:
    """Names a notebook declares in its ``parameters`` cell."""
    import papermill as pm

    return set(pm.inspect_notebook(str(path)))


def _failure_message(exc: Any, name: str, executed: Path) -> str:
    """Notebook, cell, exception and the cell's source of a papermill failure."""
    source = (getattr(exc, "source", "") or "").strip()
    return (
        f"notebook {name} failed in cell {exc.cell_index} (execution count "
        f"{exc.exec_count}): {exc.ename}: {exc.evalue}\n--- cell source ---\n{source}\n"
        f"--- executed notebook (with the error) kept at {executed}"
    )


def _cpu_s() -> float:
    """User + system CPU time [s] of this process and of its children reaped so far."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _run_one(
    src: Path, dst: Path, parameters: dict[str, Any], cwd: Path | str, runs: list[NotebookRun]
) -> NotebookRun:
    """Execute one notebook with the parameters it declares; record it in ``runs``."""
    import papermill as pm

    record = NotebookRun(
        src.name, {k: v for k, v in parameters.items() if k in declared_parameters(src)}
    )
    runs.append(record)
    t0, c0 = time.perf_counter(), _cpu_s()
    try:
        manager = _kernel_manager_class()
        pm.execute_notebook(
            str(src), str(dst), parameters=record.parameters, kernel_name=KERNEL,
            cwd=str(cwd), progress_bar=False, log_output=False,
            **({"kernel_manager_class": manager} if manager is not None else {}),
        )  # fmt: skip
    except pm.PapermillExecutionError as exc:
        record.duration_s = round(time.perf_counter() - t0, 2)
        record.cpu_s = round(_cpu_s() - c0, 2)
        record.status, record.error = "failed", _failure_message(exc, src.name, dst)
        raise NotebookError(record.error, src.name, exc.cell_index, dst, runs) from None
    record.duration_s = round(time.perf_counter() - t0, 2)
    record.cpu_s = round(_cpu_s() - c0, 2)
    record.status = "succeeded"
    return record


def run_notebooks(
    names: Sequence[str],
    source_dir: Path | str,
    output_dir: Path | str,
    parameters: dict[str, Any],
    cwd: Path | str,
    log: Callable[[str], None] | None = None,
) -> list[NotebookRun]:
    """Execute ``names`` from ``source_dir`` in order, writing them to ``output_dir``.

    Parameters
    ----------
    names : sequence of str
        Notebook file names, run in this order.
    source_dir : path
        Folder holding the notebooks.
    output_dir : path
        Where the executed notebooks are written (created if missing).
    parameters : dict
        Papermill parameters; each notebook receives those it declares.
    cwd : path
        Working directory of the kernels (relative paths in the notebooks start here).
    log : callable, optional
        ``log(message)`` for progress lines.

    Returns
    -------
    list of NotebookRun
        One record per notebook, all ``succeeded``.

    Raises
    ------
    ConfigError
        A notebook is missing (checked before anything runs).
    NotebookError
        A notebook failed; ``runs`` holds the records up to and including it.
    """
    src_dir, out_dir = Path(source_dir).resolve(), Path(output_dir)
    missing = [n for n in names if not (src_dir / n).is_file()]
    if missing:
        raise ConfigError(f"{src_dir}: notebook(s) not found: {missing}")
    out_dir.mkdir(parents=True, exist_ok=True)
    say = log or (lambda _msg: None)
    runs: list[NotebookRun] = []
    for name in names:
        say(f"running {name} …")
        record = _run_one(src_dir / name, out_dir / name, parameters, cwd, runs)
        say(f"  {name} done in {record.duration_s:.1f} s ({record.cpu_s:.0f} CPU-s)")
    return runs


def run_notebook(
    src: Path | str, dst: Path | str, parameters: dict[str, Any], cwd: Path | str
) -> NotebookRun:
    """Execute one notebook with the parameters it declares (out of ``parameters``).

    Parameters
    ----------
    src, dst : path
        The notebook and where its executed copy (outputs included) is written.
    parameters : dict
        Papermill parameters; the notebook receives those it declares.
    cwd : path
        Working directory of the kernel.

    Raises
    ------
    NotebookError
        The notebook failed (the message names the cell); ``dst`` keeps the error output.
    """
    return _run_one(Path(src), Path(dst), parameters, cwd, [])


def notebook_html(executed: Path | str, out: Path | str) -> Path:
    """Write an executed notebook as one HTML page (nbconvert, code and outputs) to ``out``."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(str(executed), as_version=4))
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(out)
    return out
