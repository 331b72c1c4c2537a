"""The repository as a newcomer meets it: ./dev's help, and a licence that matches pyproject."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _dev(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(ROOT / "dev"), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_dev_prints_clean_help() -> None:
    for args in ((), ("help",), ("--help",), ("-h",)):
        result = _dev(*args)
        assert result.returncode == 0, (args, result.stderr)
        lines = result.stdout.splitlines()
        assert lines[0].startswith("The two commands of the README")
        assert not any(line.startswith("#") for line in lines), args
        assert any(line.strip().startswith("./dev demo") for line in lines)
        assert "set -eu" not in result.stdout


def test_dev_demo_help_changes_nothing() -> None:
    made = ("burnban.db", ".env", "media")
    before = {name: (ROOT / name).exists() for name in made}
    result = _dev("demo", "--help")
    assert result.returncode == 0
    assert "--reset" in result.stdout
    assert {name: (ROOT / name).exists() for name in made} == before  # no database, no .env


def test_an_unknown_command_is_refused_with_the_help() -> None:
    result = _dev("nonsense")
    assert result.returncode == 2
    assert "unknown command" in result.stderr and "./dev test" in result.stderr


def test_the_licence_is_the_one_pyproject_names() -> None:
    licence = (ROOT / "LICENSE").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "Apache-2.0"}
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
