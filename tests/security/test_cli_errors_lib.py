"""Point 8: one error path for every command — bad input prints one ``error:`` line and
exits 2 (``--debug`` / ``GUARDIAN_DEBUG=1`` and the command groups' loading, real processes,
are in tests/test_cli.py)."""

from __future__ import annotations

from pathlib import Path

from cli_runner import run_guardian


def _in_process(*args: str, env: dict | None = None):
    return run_guardian(*args, env=env, check=False)


def _one_line_exit_2(res, *needles: str) -> None:
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout
    assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1, res.stderr
    for n in needles:
        assert n in res.stderr


def test_paths_that_printed_tracebacks_now_print_one_line(tmp_path):
    # main()'s error path in this process, warnings printed as a process would; the
    # console script's own start-up is tested below and in tests/test_cli.py.
    notrun = tmp_path / "notrun"
    notrun.mkdir()
    # simulate into an existing folder without --overwrite (FileExistsError)
    _one_line_exit_2(
        _in_process("simulate", "--scenario", "tiny", "--out", str(notrun)),
        str(notrun),
        "--overwrite",
    )
    # a scenario beyond the size guards (MemoryError before): one line naming the override
    big = Path(__file__).with_name("corpus") / "scenario" / "eight_million_onus.yaml"
    res = _in_process("simulate", "--scenario", str(big), "--out", str(tmp_path / "big"))
    _one_line_exit_2(res, "32,768,000 ONUs", "--allow-large")
    assert not (tmp_path / "big").exists()
    # backtest on a folder that is no simulated run (FileNotFoundError)
    _one_line_exit_2(_in_process("backtest", "--run", str(notrun)), "run.json")
    # a v3 key shorter than 8 characters (pysnmp's WrongValueError before)
    inv = tmp_path / "inv.yaml"
    inv.write_text(
        'olts:\n  - {olt_id: o1, host: 127.0.0.1, port: 1, version: "3", credentials: lab3}\n'
    )
    creds = {"GUARDIAN_SNMP_LAB3_USER": "ops", "GUARDIAN_SNMP_LAB3_AUTH_KEY": "short",
             "GUARDIAN_SNMP_LAB3_PRIV_KEY": "long-enough"}  # fmt: skip
    res = _in_process(
        "poll", "--inventory", str(inv), "--once", "--out", str(tmp_path / "x.parquet"), env=creds
    )
    _one_line_exit_2(res, "OLT o1", "auth key is 5 character(s)", "at least 8")
    # an audit file that cannot be opened (duckdb IOException)
    res = _in_process(
        "twin", "--scenario", "tiny", "--hours", "0.1", "--audit", str(tmp_path / "no" / "a.duckdb")
    )
    _one_line_exit_2(res, "a.duckdb")
