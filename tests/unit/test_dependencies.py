"""The dependencies are honest: every package the code imports is declared, every declared
package is pinned with hashes in the locks, and the `[sandbox]` extra stays optional."""

from __future__ import annotations

import ast
import configparser
import re
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "transfer_runner"
# Only `sandbox serve` (the HTTP side of the sandbox) may import the [sandbox] extra.
SANDBOX_MODULES = {"server.py", "serving.py", "problems.py"}
OURS = ("transfer_runner", "__future__")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(text: str) -> set[str]:
    return {
        _canonical(match.group(0))
        for line in text.splitlines()
        if (match := _NAME.match(line.strip()))
    }


def _setup_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return parser


def _declared(section: str, key: str) -> set[str]:
    return _requirements(_setup_cfg()[section][key])


def _locked(name: str) -> dict[str, str]:
    """Package -> its whole entry (pin, markers, hashes) in requirements/NAME.txt."""
    text = (ROOT / "requirements" / f"{name}.txt").read_text()
    entries: dict[str, str] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        if match := _NAME.match(block):
            entries[_canonical(match.group(0))] = block
    return entries


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level module -> the files that import it, for modules outside the standard library."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top not in sys.stdlib_module_names and top not in OURS:
                    found.setdefault(top, set()).add(path.name)
    return found


def test_every_imported_package_is_declared() -> None:
    runtime = _declared("options", "install_requires")
    sandbox = _declared("options.extras_require", "sandbox")
    dists = packages_distributions()
    for module, files in sorted(_third_party_imports().items()):
        declared = {_canonical(d) for d in dists.get(module, [module])}
        if files <= SANDBOX_MODULES:
            assert declared & (runtime | sandbox), f"{module} (imported by {files}) not declared"
        else:
            assert declared & runtime, f"{module} (imported by {sorted(files)}) not declared"


def test_the_sandbox_server_is_an_extra_not_a_dependency() -> None:
    runtime = _declared("options", "install_requires")
    assert {"werkzeug", "waitress"} <= _declared("options.extras_require", "sandbox")
    assert not {"werkzeug", "waitress"} & runtime
    for module in ("werkzeug", "waitress"):
        assert _third_party_imports()[module] <= SANDBOX_MODULES


def test_every_declared_package_is_pinned_with_hashes_in_the_locks() -> None:
    parser = _setup_cfg()
    runtime = _declared("options", "install_requires")
    extras = set().union(
        *(_requirements(value) for value in parser["options.extras_require"].values())
    )
    for lock, wanted in (("runtime", runtime), ("dev", runtime | extras)):
        entries = _locked(lock)
        assert wanted | {"setuptools", "wheel"} <= set(entries), (lock, wanted - set(entries))
        for name, entry in entries.items():
            assert re.match(r"^\S+==\S+", entry), f"{lock}: {name} is not pinned with =="
            assert "--hash=sha256:" in entry, f"{lock}: {name} has no hash"


def test_the_runtime_lock_holds_nothing_only_the_tests_need() -> None:
    runtime = set(_locked("runtime"))
    assert not {"pytest", "moto", "werkzeug", "waitress", "playwright", "mypy"} & runtime
    # and what it holds is the same version the tests run against
    dev = _locked("dev")
    for name, entry in _locked("runtime").items():
        pin = entry.split()[0]
        assert dev[name].split()[0] == pin, f"{name}: runtime {pin}, dev {dev[name].split()[0]}"


def test_sandbox_serve_without_the_extra_says_how_to_install_it(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "sys.modules['werkzeug'] = None  # as if the [sandbox] extra were not installed\n"
        "from transfer_runner.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, "sandbox", "serve", str(tmp_path / "s.db")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "pip install 'transfer-runner[sandbox]'" in done.stderr
