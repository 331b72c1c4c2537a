"""The `burnban` command line, run in-process against a database of the test's own.

The commands run their own event loop (asyncio.run), so these tests are synchronous and check
the outcome over HTTP through an app of their own.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import func, select
from typer.testing import CliRunner, Result

from app.agencies.models import Agency
from app.auth.models import ApiKey, User
from app.cli import cli
from app.config import Settings
from app.db import Database, create_engine
from app.grid.models import Cell
from app.migrate import head_revision
from tests.conftest import TEST_SECRET, app_client
from tests.factories import DISTRICT, WEST, WEST_SOUTH, small_grid

PASSWORD = "a long enough password"
DEMO_ROLES = {
    "worker": "grid_worker",
    "officer": "officer",
    "inspector": "officer",
    "supervisor": "supervisor",
    "admin": "admin",
}


class Cli:
    """`burnban …` against one database, and what that database then holds."""

    def __init__(self, url: str, tmp_path: Path) -> None:
        self.url = url
        self.tmp_path = tmp_path
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None) -> Result:
        return self.runner.invoke(cli, list(args), input=input)

    def count(self, model: Any) -> int:
        async def run() -> int:
            settings = Settings(database_url=self.url, secret_key=TEST_SECRET)
            db = Database(create_engine(settings.url, settings))
            try:
                async with db.read() as session:
                    return int((await session.exec(select(func.count()).select_from(model))).one())
            finally:
                await db.dispose()

        return asyncio.run(run())

    def http(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def run() -> httpx.Response:
            async with app_client(self.url, self.tmp_path) as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(run())

    def login(self, username: str, password: str) -> httpx.Response:
        return self.http(
            "POST", "/api/v1/auth/token", data={"username": username, "password": password}
        )

    def grid_file(self, grid: dict[str, Any] | None = None, name: str = "grid.geojson") -> str:
        path = self.tmp_path / name
        path.write_text(json.dumps(grid or small_grid(), ensure_ascii=False), encoding="utf-8")
        return str(path)


def _environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env is read, none is written elsewhere
    monkeypatch.setenv("BURNBAN_DATABASE_URL", url)
    monkeypatch.setenv("BURNBAN_SECRET_KEY", TEST_SECRET)
    monkeypatch.delenv("BURNBAN_ENVIRONMENT", raising=False)


@pytest.fixture
def burnban(
    fresh_database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Cli]:
    _environment(monkeypatch, tmp_path, fresh_database_url)
    yield Cli(fresh_database_url, tmp_path)


def _refused(result: Result, code: int = 1) -> None:
    """The command stopped with `code` and a message of its own, not a traceback."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output


def test_db_upgrade_migrates_an_empty_database(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _environment(monkeypatch, tmp_path, empty_database_url)
    burnban = Cli(empty_database_url, tmp_path)
    assert burnban.http("GET", "/readyz").status_code == 503

    result = burnban("db", "upgrade")

    assert result.exit_code == 0, result.output
    assert "database at head" in result.output
    ready = burnban.http("GET", "/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["revision"] == head_revision()
    assert burnban("db", "upgrade").exit_code == 0  # again: nothing to do, no harm


def test_grid_import_dry_run_stores_nothing(burnban: Cli) -> None:
    result = burnban("grid", "import", burnban.grid_file(), "--dry-run")

    assert result.exit_code == 0, result.output
    assert "would import: 7 created, 0 updated, 0 unchanged" in result.stdout
    assert burnban.count(Cell) == 0
    assert burnban.count(Agency) == 1  # the seeded bureau only


def test_grid_import_imports_and_reimport_changes_nothing(burnban: Cli) -> None:
    file = burnban.grid_file()

    first = burnban("grid", "import", file)
    again = burnban("grid", "import", file)

    assert first.exit_code == 0, first.output
    assert "imported: 7 created, 0 updated, 0 unchanged" in first.stdout
    assert again.exit_code == 0, again.output
    assert "imported: 0 created, 0 updated, 7 unchanged" in again.stdout
    assert burnban.count(Cell) == 7
    assert burnban.count(Agency) == 3  # 区城市管理局 and the two township governments


def test_a_broken_grid_file_exits_1_with_the_errors_and_stores_nothing(burnban: Cli) -> None:
    grid = small_grid()
    grid["features"][3]["properties"]["parent_code"] = "330106999"  # 西南村 under no township
    grid["features"][5]["geometry"] = {"type": "Point", "coordinates": [120.07, 30.02]}

    result = burnban("grid", "import", burnban.grid_file(grid))

    _refused(result)
    assert "refused" in result.stderr
    errors = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("  {")]
    assert {e["feature"] for e in errors} >= {3, 5}
    assert burnban.count(Cell) == 0
    assert burnban.count(Agency) == 1


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'{"type": "FeatureCollection", "features": [', id="truncated"),
        pytest.param(b"\xff\xfe not text", id="not-utf8"),
        pytest.param(b'{"type": "Feature"}', id="not-a-collection"),
    ],
)
def test_a_file_that_is_no_feature_collection_is_refused(burnban: Cli, content: bytes) -> None:
    path = burnban.tmp_path / "broken.geojson"
    path.write_bytes(content)

    result = burnban("grid", "import", str(path))

    _refused(result)
    assert "refused" in result.stderr
    assert burnban.count(Cell) == 0


def test_a_missing_grid_file_is_a_usage_error(burnban: Cli) -> None:
    result = burnban("grid", "import", str(burnban.tmp_path / "nowhere.geojson"))
    assert result.exit_code == 2, result.output
    assert burnban.count(Cell) == 0


def test_users_create_makes_a_user_who_can_log_in(burnban: Cli) -> None:
    burnban("grid", "import", burnban.grid_file())

    result = burnban(
        "users", "create", "zhang.san", "--role", "grid_worker", "--cell", WEST_SOUTH,
        "--name", "张三", "--password", PASSWORD,
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "created grid_worker zhang.san" in result.stdout
    assert PASSWORD not in result.output
    token = burnban.login("zhang.san", PASSWORD)
    assert token.status_code == 200, token.text
    me = burnban.http(
        "GET",
        "/api/v1/users/me",
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
    )
    assert me.json()["name"] == "张三"
    assert me.json()["cell_code"] == WEST_SOUTH


def test_users_create_prompts_for_a_password_when_none_is_given(burnban: Cli) -> None:
    result = burnban(
        "users", "create", "root", "--role", "admin", input=f"{PASSWORD}\n{PASSWORD}\n"
    )

    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output  # typed, not echoed
    assert burnban.login("root", PASSWORD).status_code == 200


@pytest.mark.parametrize(
    ("args", "code"),
    [
        pytest.param(["--role", "grid_worker"], 1, id="grid-worker-without-cell"),
        pytest.param(["--role", "grid_worker", "--cell", WEST], 1, id="grid-worker-in-township"),
        pytest.param(["--role", "officer", "--agency", "fire-brigade"], 1, id="unknown-agency"),
        pytest.param(["--role", "supervisor", "--cell", "999"], 1, id="unknown-cell"),
        pytest.param(["--role", "mayor"], 2, id="unknown-role"),
        pytest.param(["--role", "admin", "--password", "short"], 2, id="short-password"),
    ],
)
def test_users_create_refusals_store_nothing(burnban: Cli, args: list[str], code: int) -> None:
    burnban("grid", "import", burnban.grid_file())
    password = [] if "--password" in args else ["--password", PASSWORD]

    result = burnban("users", "create", "zhang.san", *args, *password)

    _refused(result, code)
    assert "refused" in result.stderr
    assert burnban.count(User) == 0


def test_users_create_refuses_a_taken_username(burnban: Cli) -> None:
    burnban("users", "create", "root", "--role", "admin", "--password", PASSWORD)

    result = burnban("users", "create", "root", "--role", "admin", "--password", "another one!")

    _refused(result)
    assert "taken" in result.stderr
    assert burnban.count(User) == 1
    assert burnban.login("root", PASSWORD).status_code == 200


def test_apikeys_create_prints_a_key_that_authenticates(burnban: Cli) -> None:
    burnban("grid", "import", burnban.grid_file())

    result = burnban("apikeys", "create", "市监测平台", "--scope", "grid:read", "--cell", DISTRICT)

    assert result.exit_code == 0, result.output
    key = result.stdout.split()[-1]
    cells = burnban.http("GET", "/api/v1/cells", headers={"X-API-Key": key})
    assert cells.status_code == 200, cells.text
    assert len(cells.json()["items"]) == 7
    forbidden = burnban.http("GET", "/api/v1/apikeys", headers={"X-API-Key": key})
    assert forbidden.status_code == 403
    assert burnban.count(ApiKey) == 1


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--scope", "grid:write"], id="unknown-scope"),
        pytest.param(["--scope", "grid:read", "--cell", "999"], id="unknown-cell"),
    ],
)
def test_apikeys_create_refusals_store_nothing(burnban: Cli, args: list[str]) -> None:
    result = burnban("apikeys", "create", "x", *args)
    assert result.exit_code in (1, 2), result.output
    _refused(result, result.exit_code)
    assert "refused" in result.stderr
    assert burnban.count(ApiKey) == 0


def _demo_logins(result: Result) -> dict[str, tuple[str, str]]:
    """username -> (password, role) from the demo's printout."""
    lines = result.stdout.split("logins", 1)[1].splitlines()[1:]
    return {
        username: (password, role)
        for username, password, role, *_ in (line.split() for line in lines if line[:2] == "  ")
    }


def test_demo_prints_one_login_per_role_and_they_work(burnban: Cli) -> None:
    result = burnban("demo")

    assert result.exit_code == 0, result.output
    logins = _demo_logins(result)
    assert {user: role for user, (_, role) in logins.items()} == DEMO_ROLES
    for username, (password, _) in logins.items():
        r = burnban.login(username, password)
        assert r.status_code == 200, (username, r.text)
    assert burnban.count(Cell) > 0
    assert not (burnban.tmp_path / ".env").exists()  # a secret key was given: none generated

    again = burnban("demo")  # the users are kept: whoever is logged in stays logged in

    assert again.exit_code == 0, again.output
    assert {user: pw for user, (pw, _) in _demo_logins(again).items()} == dict.fromkeys(
        DEMO_ROLES, "(unchanged)"
    )
    assert "--reset" in again.stdout
    for username, (password, _) in logins.items():
        assert burnban.login(username, password).status_code == 200, username

    reset = _demo_logins(burnban("demo", "--reset"))  # new passwords; the old ones stop working

    assert reset["admin"][0] != logins["admin"][0]
    assert burnban.login("admin", logins["admin"][0]).status_code == 401
    assert burnban.login("admin", reset["admin"][0]).status_code == 200
    assert burnban.count(User) == 5


def test_demo_help_changes_nothing(burnban: Cli) -> None:
    result = burnban("demo", "--help")

    assert result.exit_code == 0, result.output
    assert "--reset" in result.stdout
    assert burnban.count(User) == 0 and burnban.count(Cell) == 0


def test_demo_generates_a_secret_key_when_none_is_set(
    burnban: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BURNBAN_SECRET_KEY")

    result = burnban("demo")

    assert result.exit_code == 0, result.output
    env = (burnban.tmp_path / ".env").read_text()
    assert env.startswith("BURNBAN_SECRET_KEY=")
    key = env.strip().split("=", 1)[1]
    assert len(key) >= 48
    production = Settings(environment="production", data_key="d" * 48)
    assert production.secret_key == key  # `serve` will use it
