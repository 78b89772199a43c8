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


def _inventories(tmp_path: Path, secrets: str | None):
    """An SNMP inventory and an OLT CLI inventory naming the same secret file."""
    from guardian_lib.olt.inventory import load_cli_inventory
    from guardian_lib.snmp.inventory import load_inventory

    if secrets is not None:
        (tmp_path / "s.yaml").write_text(secrets)
        (tmp_path / "s.yaml").chmod(0o600)
    (tmp_path / "snmp.yaml").write_text(
        "secrets_file: s.yaml\nolts:\n  - {olt_id: A, host: 10.0.0.1, credentials: noc}\n"
    )
    (tmp_path / "cli.yaml").write_text(
        "secrets_file: s.yaml\nolts:\n"
        "  - {olt_id: A, host: 10.0.0.1, profile: zte_c300, credentials: noc}\n"
    )
    return load_inventory(tmp_path / "snmp.yaml"), load_cli_inventory(tmp_path / "cli.yaml")


def test_snmp_and_olt_cli_credentials_share_one_lookup_and_its_messages(tmp_path):
    from guardian_lib.snmp.errors import SnmpCredentialsError
    from guardian_lib.snmp.inventory import resolve_credentials

    snmp, cli = _inventories(tmp_path, "noc: {community: c-file, username: u-file}\n")
    entry = snmp.olts[0]
    # the file fills in what the environment lacks; the environment wins where it has a value
    assert resolve_credentials(entry, snmp.secrets_path(), environ={}).community == "c-file"
    env = {"GUARDIAN_SNMP_NOC_COMMUNITY": "c-env", "GUARDIAN_OLT_NOC_PASSWORD": "p-env"}
    assert resolve_credentials(entry, snmp.secrets_path(), environ=env).community == "c-env"
    t = cli.target("A", environ=env)
    assert (t.username, t.password) == ("u-file", "p-env")
    # a key found nowhere: the same sentence, naming the variable, the file key and the file
    with pytest.raises(ConfigError) as err:
        cli.target("A", environ={})
    sec = tmp_path / "s.yaml"
    assert str(err.value) == (
        "OLT A: CLI credentials 'noc' incomplete: missing ['password']; expected environment "
        f"variable(s) GUARDIAN_OLT_NOC_PASSWORD or key noc.{{password}} in {sec}"
    )
    _inventories(tmp_path, "other: {community: x}\n")
    with pytest.raises(SnmpCredentialsError) as err:
        resolve_credentials(entry, snmp.secrets_path(), environ={})
    assert str(err.value) == (
        "OLT A: SNMPv2c credentials 'noc' incomplete: missing ['community']; expected "
        f"environment variable(s) GUARDIAN_SNMP_NOC_COMMUNITY or key noc.{{community}} in {sec}"
    )
    # a secret file named but absent is named by both (the CLI login used to say "incomplete")
    sec.unlink()
    with pytest.raises(SnmpCredentialsError, match=r"^OLT A: SNMPv2c credentials 'noc': secret"):
        resolve_credentials(entry, snmp.secrets_path(), environ={})
    with pytest.raises(
        ConfigError, match=rf"^OLT A: CLI credentials 'noc': secret file {sec} does"
    ):
        cli.target("A", environ={})
    # the environment alone never opens the file, and no value ever reaches a message
    both = {"GUARDIAN_OLT_NOC_USERNAME": "u", "GUARDIAN_OLT_NOC_PASSWORD": "p-secret"}
    assert cli.target("A", environ=both).password == "p-secret"
    sec.write_text("noc: {username: u, password: p-secret}\n")
    sec.chmod(0o644)
    with pytest.raises(ConfigError, match=r"^OLT A: CLI credentials 'noc': .*mode 0644") as err:
        cli.target("A", environ={})
    assert "p-secret" not in str(err.value)


def test_resolve_credential_without_a_secret_file_names_only_the_variables():
    from guardian_lib.secrets import resolve_credential

    with pytest.raises(ConfigError) as err:
        resolve_credential(
            "core-1", {"user": "USER", "auth_key": "AUTH_KEY"}, prefix="GUARDIAN_SNMP_",
            secrets_path=None, what="OLT B: SNMPv3 credentials",
            environ={"GUARDIAN_SNMP_CORE_1_USER": "u", "GUARDIAN_SNMP_CORE_1_AUTH_KEY": ""},
        )  # fmt: skip
    assert str(err.value) == (
        "OLT B: SNMPv3 credentials 'core-1' incomplete: missing ['auth_key']; expected "
        "environment variable(s) GUARDIAN_SNMP_CORE_1_AUTH_KEY"
    )


def test_both_inventories_load_through_the_one_config_loader(tmp_path):
    from guardian_lib.olt.inventory import load_cli_inventory
    from guardian_lib.snmp.inventory import load_inventory

    bad = tmp_path / "bad.yaml"
    bad.write_text("- just a list\n")
    for load, what in ((load_inventory, "an OLT inventory"), (load_cli_inventory, "an OLT CLI")):
        with pytest.raises(ConfigError, match=rf"bad\.yaml: expected {what}.*got list"):
            load(bad)
    dup = tmp_path / "dup.yaml"
    dup.write_text(
        "olts:\n  - {olt_id: A, host: h, profile: zte_c300, credentials: n}\n"
        "  - {olt_id: A, host: h2, profile: zte_c300, credentials: n}\n"
    )
    with pytest.raises(ConfigError, match=r"dup\.yaml: olts: duplicate olt_id \['A'\]"):
        load_cli_inventory(dup)
    dup.write_text("olts:\n  - {olt_id: A, host: h, port: 0, profile: p, credentials: n}\n")
    with pytest.raises(ConfigError, match=r"dup\.yaml: invalid OLT CLI inventory: olts\[0\]\.port"):
        load_cli_inventory(dup)
