"""The `tidings` command line, run as a user runs it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import warnings
from pathlib import Path

import httpx
import jwt
import pytest

from tests.conftest import SECRET, free_port
from tidings.cli import main
from tidings.jobs.migrate import head as migrate_head

pytestmark = pytest.mark.both_databases


def run(*args: str, cwd: Path, env: dict[str, str] | None = None):
    import subprocess

    return subprocess.run([sys.executable, "-m", "tidings", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_token_prints_a_token_with_the_given_claims(tmp_path: Path) -> None:
    result = run("token", "--sub", "billing", "--roles", "service,admin", "--ttl", "120",
                 cwd=tmp_path, env={"JWT_SECRET": SECRET})
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"])
    assert claims["sub"] == "billing"
    assert claims["roles"] == ["service", "admin"]
    assert claims["exp"] - claims["iat"] == 120


def test_token_rejects_a_non_positive_ttl(capsys, monkeypatch) -> None:
    monkeypatch.setenv("JWT_SECRET", SECRET)
    assert main(["token", "--sub", "a", "--ttl", "0"]) == 2
    assert "--ttl" in capsys.readouterr().err


def test_help_and_no_command(capsys) -> None:
    assert main([]) == 2
    for command in ("serve", "worker", "migrate", "token"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
    assert "tidings serve" in capsys.readouterr().out


def test_migrate_then_serve_refuses_an_unmigrated_postgres(
    tmp_path: Path, database_url: str, monkeypatch, capsys
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("serve migrates SQLite itself")
    monkeypatch.setenv("JWT_SECRET", SECRET)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    from tidings.jobs.migrate import downgrade

    downgrade(database_url, "base")
    assert main(["serve", "--port", "0"]) == 1
    assert "tidings migrate" in capsys.readouterr().err
    assert main(["migrate"]) == 0
    head = migrate_head(database_url)
    assert f"from an empty database to {head} ({int(head)} migrations applied)" in (
        capsys.readouterr().out)


def test_migrate_says_what_it_did(tmp_path: Path, database_url: str) -> None:
    """On a new database it names the migrations it applied (not "up to date", as if it
    had done nothing); run again, it says there was nothing to apply; from an older
    revision, what it moved through."""
    env = {"JWT_SECRET": SECRET, "DATABASE_URL": database_url}
    from tidings.jobs.migrate import downgrade

    head = migrate_head(database_url)
    downgrade(database_url, "base")
    first = run("migrate", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert "Migrated " in first.stdout
    assert f"from an empty database to {head} ({int(head)} migrations applied)" in first.stdout
    again = run("migrate", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    assert f"Schema already up to date at {head} on " in again.stdout
    assert "nothing to apply" in again.stdout
    downgrade(database_url, f"{int(head) - 1:04d}")
    one = run("migrate", cwd=tmp_path, env=env)
    assert f"from {int(head) - 1:04d} to {head} (1 migration applied)" in one.stdout


async def test_serve_runs_on_the_embedded_default_from_an_empty_directory(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {**os.environ, "JWT_SECRET": SECRET}
    env.pop("DATABASE_URL", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tidings", "serve", "--host", "127.0.0.1", "--port", str(port),
        cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE)
    try:
        assert process.stderr is not None
        while True:
            line = await asyncio.wait_for(process.stderr.readline(), 30)
            assert line, "server exited before it listened"
            if b"Tidings listening" in line:
                break
        token = jwt.encode({"sub": "svc", "roles": ["service"], "exp": 2**31 - 1}, SECRET,
                           algorithm="HS256")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            created = await http.post("/api/notifications", headers={
                "Authorization": f"Bearer {token}"}, json={
                "user_id": "alice", "type": "t", "title": "t", "message": "m"})
            ready = await http.get("/ready")
        assert created.status_code == 201
        assert ready.status_code == 200
        assert (tmp_path / "tidings.db").exists()
    finally:
        process.terminate()
        rest = await asyncio.wait_for(process.stderr.read(), 20)
        await asyncio.wait_for(process.wait(), 20)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal as its exit status.
    assert b"Tidings stopped" in rest
    assert process.returncode in (0, -15)


@pytest.mark.parametrize(("env", "variable"), [
    ({"JWT_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----\\nnot base64\\n-----END PUBLIC KEY-----"},
     "JWT_PUBLIC_KEY"),
    ({"JWT_SECRET": "too-short"}, "JWT_SECRET"),
    ({"TLS_CERT_FILE": "/nonexistent/cert.pem"}, "TLS_KEY_FILE"),
    ({"LOG_FORMAT": "yaml"}, "LOG_FORMAT"),
])
def test_serve_stops_at_start_on_a_bad_setting_naming_it(
    tmp_path: Path, env: dict[str, str], variable: str
) -> None:
    result = run("serve", "--host", "127.0.0.1", "--port", "0", cwd=tmp_path,
                 env={"JWT_SECRET": SECRET, **env})
    assert result.returncode == 2
    assert "invalid configuration" in result.stderr and variable in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "tidings.db").exists()  # stopped before doing anything


def test_a_short_secret_is_allowed_for_development_with_a_loud_warning(
    tmp_path: Path,
) -> None:
    result = run("token", "--sub", "alice", cwd=tmp_path,
                 env={"JWT_SECRET": "dev", "ALLOW_SHORT_JWT_SECRET": "true"})
    assert result.returncode == 0, result.stderr
    assert "JWT_SECRET is shorter than 32 bytes" in result.stderr
    with warnings.catch_warnings():  # PyJWT warns about the short key here too
        warnings.simplefilter("ignore")
        claims = jwt.decode(result.stdout.strip(), "dev", algorithms=["HS256"])
    assert claims["sub"] == "alice"


def test_logs_are_json_lines_when_asked(tmp_path: Path) -> None:
    result = run("token", "--sub", "alice", cwd=tmp_path,
                 env={"JWT_SECRET": "dev", "ALLOW_SHORT_JWT_SECRET": "1",
                      "LOG_FORMAT": "json"})
    assert result.returncode == 0, result.stderr
    logged = [json.loads(line) for line in result.stderr.splitlines()]
    assert any(line["level"] == "warning" and "ALLOW_SHORT_JWT_SECRET" in line["message"]
               for line in logged)


def test_a_push_provider_configured_wrongly_stops_serve_and_worker(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JWT_SECRET", SECRET)
    monkeypatch.setenv("VAPID_PRIVATE_KEY", "garbage")
    monkeypatch.setenv("VAPID_SUBJECT", "mailto:ops@example.com")
    for command in ("serve", "worker"):
        assert main([command]) == 2
        assert "VAPID_PRIVATE_KEY" in capsys.readouterr().err
