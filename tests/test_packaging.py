"""Project-wide contracts: packaging in step, public API, dependency direction."""

import ast
import doctest
import importlib
import pkgutil
import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("guardian_lib", "simulator", "acs_emulator")
# conda-forge names that differ from PyPI names
CONDA_ALIASES = {
    "python-duckdb": "duckdb",
    "h3-py": "h3",
    "prometheus_client": "prometheus-client",
}


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower()


def test_environment_yml_lists_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_names = {_name(r) for r in project["dependencies"]}
    pip_names |= {_name(r) for r in project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            conda |= {_name(d) for d in dep["pip"] if not d.startswith("-e")}
        else:
            conda.add(CONDA_ALIASES.get(_name(dep), _name(dep)))
    conda -= {"python", "pip"}
    assert conda == pip_names


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_lock_pins_every_dependency_of_pyproject_within_its_bounds():
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep, f"requirements.lock: {line!r} is not an exact pin (name==version)"
            pins[_canonical(name)] = version.split(";")[0].strip()
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    for text in wanted:
        req = Requirement(text)
        name = _canonical(req.name)
        assert name in pins, f"requirements.lock has no pin for {req.name} (run `make lock`)"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {req.name}=={pins[name]}, outside {text!r} (run `make lock`)"
        )


def _modules():
    for pkg_name in PACKAGES:
        pkg = importlib.import_module(pkg_name)
        yield pkg
        for info in pkgutil.walk_packages(pkg.__path__, prefix=pkg_name + "."):
            yield importlib.import_module(info.name)


def test_every_name_in___all___exists():
    for module in _modules():
        for name in getattr(module, "__all__", []):
            assert hasattr(module, name), f"{module.__name__}.__all__ lists missing {name!r}"


def test_guardian_lib_never_imports_simulator_or_acs_emulator():
    for path in (ROOT / "guardian_lib").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for n in names:
                assert n.split(".")[0] not in ("simulator", "acs_emulator"), f"{path} imports {n}"


# Inside guardian_lib: a package never imports one that builds on it. The decision engine
# is below alerting, operate, the API and the dashboards (they import it); what both sides
# need lives below both (e.g. guardian_lib.matchers for label matchers).
LOWER_PACKAGES_MUST_NOT_IMPORT = {
    "guardian_lib/decision": ("guardian_lib.alerts", "guardian_lib.operate", "guardian_lib.api",
                              "guardian_lib.dashboards"),
    "guardian_lib/loop": ("guardian_lib.alerts", "guardian_lib.operate", "guardian_lib.api",
                          "guardian_lib.dashboards"),
    # The features and models are read by operate (and by training on operate's
    # warehouse): operate's records they need are read by a module below both
    # (guardian_lib.silver_ppp).
    "guardian_lib/features": ("guardian_lib.alerts", "guardian_lib.operate", "guardian_lib.api",
                              "guardian_lib.dashboards"),
    "guardian_lib/models": ("guardian_lib.alerts", "guardian_lib.operate", "guardian_lib.api",
                            "guardian_lib.dashboards"),
}  # fmt: skip


def _imported_modules(path: Path) -> list[str]:
    """Every module ``path`` imports (top level or inside functions)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("folder", sorted(LOWER_PACKAGES_MUST_NOT_IMPORT))
def test_lower_packages_never_import_the_ones_built_on_them(folder):
    above = LOWER_PACKAGES_MUST_NOT_IMPORT[folder]
    for path in (ROOT / folder).rglob("*.py"):
        for n in _imported_modules(path):
            assert not n.startswith(above), f"{path.relative_to(ROOT)} imports {n} (upward)"


# Modules that may name faults_truth: ground truth is for evaluation and reporting only.
# The warehouse's summary reports it for simulated runs (`guardian info`); models,
# features and policies must never read it.
FAULTS_TRUTH_ALLOWED = {
    "guardian_lib/warehouse.py",
    "guardian_lib/labels.py",
    "guardian_lib/models/training.py",
}


def test_only_reporting_reads_faults_truth():
    for path in (ROOT / "guardian_lib").rglob("*.py"):
        rel = str(path.relative_to(ROOT))
        if "faults_truth" in path.read_text() and rel not in FAULTS_TRUTH_ALLOWED:
            pytest.fail(f"{rel} reads faults_truth (ground truth is evaluation-only)")


@pytest.mark.parametrize(
    "module",
    [
        "simulator",
        "simulator.optics",
        "simulator.engine",
        "guardian_lib.schema",
        "guardian_lib.loop.tick",
        "guardian_lib.matchers",
        "guardian_lib.secrets",
        "guardian_lib.loop.missed",
    ],
)
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


def test_no_global_random_state_in_library_code():
    pattern = re.compile(
        r"np\.random\.(rand|randn|randint|seed|normal|uniform|choice)\(|^import random", re.M
    )
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            assert not pattern.search(path.read_text()), f"{path} uses global random state"


def test_what_a_user_reads_never_points_outside_the_clone():
    """Docs, code, experiments and notebooks stand alone: a user's clone has no design
    notes beside it (``DESIGN.md``) and no ``../shared`` folder. Tests are left out: they
    read the captured SNMP walks from there on the developers' machines."""
    import subprocess

    files = subprocess.run(
        ["git", "ls-files", "--", ".", ":!tests"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    pattern = re.compile(r"DESIGN(\.md)?\s*§|DESIGN\.md|\.\./shared|DEVELOPERS\.md")
    found = []
    for name in files:
        path = ROOT / name
        if path.suffix not in {".py", ".md", ".yaml", ".yml", ".ipynb", ".toml", ".txt", ".cfg"}:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                found.append(f"{name}:{n}: {line.strip()[:100]}")
    assert files and not found, "\n".join(found)
