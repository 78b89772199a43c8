"""The shared secret helpers and the import graph they untangle."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from guardian_lib.errors import ConfigError
from guardian_lib.secrets import SecretRef, check_owner_only, read_secret, read_secret_file


def _imports_after(module: str, prefix: str) -> list[str]:
    """Modules under ``prefix`` loaded by importing ``module`` in a fresh interpreter."""
    code = (
        f"import sys, {module}\n"
        f"print('\\n'.join(m for m in sys.modules if m.startswith({prefix!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return out.stdout.split()


def test_alerts_do_not_import_operate():
    # operate imports alerts (receivers for scheduled reports); alerts must not import back
    assert _imports_after("guardian_lib.alerts.receivers", "guardian_lib.operate") == []


def _static_imports(module: str) -> set[str]:
    """Modules named by ``import`` statements of ``module``'s source (TYPE_CHECKING too)."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_owndata_config_and_tables_do_not_import_each_other():
    assert "guardian_lib.owndata.tables" not in _static_imports("guardian_lib.owndata.config")
    assert "guardian_lib.owndata.catalog" in _static_imports("guardian_lib.owndata.config")
    assert "guardian_lib.owndata.config" not in _static_imports("guardian_lib.owndata.catalog")


def test_secret_helpers_import_no_configuration_package():
    mine = {m for m in _static_imports("guardian_lib.secrets") if m.startswith("guardian_lib")}
    assert mine == {"guardian_lib.errors", "guardian_lib.safe_yaml"}


def test_old_import_paths_are_the_same_objects():
    from guardian_lib.olt import inventory as olt_inventory
    from guardian_lib.operate import site

    assert site.SecretRef is SecretRef and site.read_secret is read_secret
    assert olt_inventory.read_secret_file is read_secret_file


def test_one_mode_check_for_tokens_and_yaml_files(tmp_path):
    tok, yml = tmp_path / "t.token", tmp_path / "s.yaml"
    tok.write_text("abc\n")
    yml.write_text("noc: {community: c}\n")
    for p in (tok, yml):
        p.chmod(0o660)
    with pytest.raises(ConfigError, match=r"x\.token_file: .*t\.token: secret file has mode 0660"):
        read_secret(SecretRef(token_file="t.token"), tmp_path, "x")
    with pytest.raises(ConfigError, match=r"s\.yaml: secret file has mode 0660.*chmod 600"):
        read_secret_file(yml)
    for p in (tok, yml):
        p.chmod(0o600)
        check_owner_only(p)
    assert read_secret(SecretRef(token_file="t.token"), tmp_path, "x") == "abc"
    assert read_secret_file(yml) == {"noc": {"community": "c"}}
    assert read_secret_file(tmp_path / "missing.yaml") == {}
    with pytest.raises(ConfigError, match=r"y\.token_file: cannot read .*nope"):
        read_secret(SecretRef(token_file="nope"), tmp_path, "y")
