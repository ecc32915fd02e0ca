"""The `tidings` command line, run as a user runs it."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx
import jwt
import pytest

from tests.conftest import SECRET, free_port
from tidings.cli import main


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


def test_worker_says_what_is_missing(capsys, monkeypatch) -> None:
    monkeypatch.setenv("JWT_SECRET", SECRET)
    assert main(["worker"]) == 2
    assert "email and push" in capsys.readouterr().err


def test_migrate_then_serve_refuses_an_unmigrated_postgres(
    tmp_path: Path, database_url: str, monkeypatch, capsys
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("serve migrates SQLite itself")
    monkeypatch.setenv("JWT_SECRET", SECRET)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    from tidings.migrate import downgrade

    downgrade(database_url, "base")
    assert main(["serve", "--port", "0"]) == 1
    assert "tidings migrate" in capsys.readouterr().err
    assert main(["migrate"]) == 0
    assert "Schema up to date" in capsys.readouterr().out


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
