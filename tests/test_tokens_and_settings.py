"""Token verification options and settings parsing."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import ValidationError

from tidings.app import create_app
from tidings.config.settings import DEFAULT_SQLITE_URL, Settings, describe, load_settings
from tidings.domain.errors import AuthenticationFailed
from tidings.services.tokens import TokenService


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def claims(**extra: object) -> dict:
    return {"sub": "alice", "exp": int(time.time()) + 60, **extra}


def test_minted_token_round_trips_with_roles() -> None:
    tokens = TokenService(settings(jwt_secret="s" * 32))
    principal = tokens.verify(tokens.mint("billing", ["service"], 60))
    assert principal.user_id == "billing"
    assert principal.roles == frozenset({"service"})
    assert principal.may_create


@pytest.mark.parametrize("make_key", [
    lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    lambda: ec.generate_private_key(ec.SECP256R1()),
])
def test_public_key_tokens_verify_and_hs256_forgeries_do_not(make_key) -> None:
    private = make_key()
    algorithm = "RS256" if isinstance(private, rsa.RSAPrivateKey) else "ES256"
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    tokens = TokenService(settings(jwt_public_key=public_pem.replace("\n", "\\n")))
    good = jwt.encode(claims(roles=["admin"]), private, algorithm=algorithm)
    assert tokens.verify(good).roles == frozenset({"admin"})
    # The classic confusion attack: an HS256 token "signed" with the public key.
    with pytest.raises(AuthenticationFailed):
        tokens.verify(jwt.encode(claims(), "x" * 32, algorithm="HS256"))
    with pytest.raises(AuthenticationFailed):
        tokens.mint("alice")


def test_issuer_and_audience_are_checked_when_configured() -> None:
    tokens = TokenService(settings(jwt_secret="s" * 32, jwt_issuer="auth", jwt_audience="tid"))
    assert tokens.verify(tokens.mint("alice")).user_id == "alice"
    for bad in (claims(iss="auth"), claims(aud="tid"), claims(iss="other", aud="tid")):
        with pytest.raises(AuthenticationFailed):
            tokens.verify(jwt.encode(bad, "s" * 32, algorithm="HS256"))


@pytest.mark.parametrize("bad", [
    claims(sub=5), claims(sub=""), claims(roles=[1]), claims(roles={"a": 1}),
    {"sub": "alice"},
])
def test_tokens_with_bad_claims_fail(bad: dict) -> None:
    tokens = TokenService(settings(jwt_secret="s" * 32))
    with pytest.raises(AuthenticationFailed):
        tokens.verify(jwt.encode(bad, "s" * 32, algorithm="HS256"))


def test_a_single_role_string_is_accepted() -> None:
    tokens = TokenService(settings(jwt_secret="s" * 32))
    token = jwt.encode(claims(roles="service"), "s" * 32, algorithm="HS256")
    assert tokens.verify(token).may_create


B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def other_spellings(segment: str) -> list[str]:
    """The same bytes as `segment` spelled otherwise: padded, unused low bits set, the
    standard alphabet."""
    spare = {2: 4, 3: 2}.get(len(segment) % 4, 0)
    last = B64URL.index(segment[-1])
    variants = [segment[:-1] + B64URL[(last >> spare << spare) | low]
                for low in range(1 << spare)]
    variants += [segment + "=" * (-len(segment) % 4), segment + "=",
                 segment.replace("-", "+").replace("_", "/")]
    return [variant for variant in dict.fromkeys(variants) if variant != segment]


@pytest.mark.parametrize("algorithm", ["HS256", "RS256", "ES256"])
def test_only_the_canonical_spelling_of_a_signature_is_accepted(algorithm: str) -> None:
    if algorithm == "HS256":
        private: object = "s" * 32
        tokens = TokenService(settings(jwt_secret="s" * 32))
    else:
        key = (rsa.generate_private_key(public_exponent=65537, key_size=2048)
               if algorithm == "RS256" else ec.generate_private_key(ec.SECP256R1()))
        private = key
        public_pem = key.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        tokens = TokenService(settings(jwt_public_key=public_pem))
    good = jwt.encode(claims(), private, algorithm=algorithm)  # type: ignore[arg-type]
    assert tokens.verify(good).user_id == "alice"
    signed, signature = good.rsplit(".", 1)
    for variant in other_spellings(signature):
        with pytest.raises(AuthenticationFailed):
            tokens.verify(f"{signed}.{variant}")


def test_database_url_defaults_and_is_built_from_db_parts() -> None:
    assert settings().database_url == DEFAULT_SQLITE_URL.replace("sqlite", "sqlite", 1)
    built = settings(db_host="db.internal", db_port=6543, db_name="n", db_user="u",
                     db_password="p")
    assert built.database_url == "postgresql+asyncpg://u:p@db.internal:6543/n"
    assert not built.is_sqlite
    assert settings(database_url="postgres://x@h/d").database_url == (
        "postgresql+asyncpg://x@h/d")
    assert settings(database_url="sqlite:///./a.db").database_url == (
        "sqlite+aiosqlite:///./a.db")


def test_environment_variables_of_the_contract_are_read(monkeypatch) -> None:
    monkeypatch.setenv("WEBSOCKET_PORT", "4100")
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("WEBSOCKET_CORS_ORIGIN", "https://a.example, https://b.example")
    monkeypatch.setenv("RETRY_DELAYS", "10,20")
    monkeypatch.setenv("MAX_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("JWT_SECRET", "from-env-" + "x" * 32)
    loaded = settings()
    assert (loaded.port, loaded.host) == (4100, "0.0.0.0")
    assert loaded.cors_origins == ["https://a.example", "https://b.example"]
    assert loaded.retry_delays_ms == [10, 20]
    assert loaded.max_retry_attempts == 2
    assert loaded.jwt_secret == "from-env-" + "x" * 32


def test_without_a_secret_a_random_one_is_kept_in_the_working_directory(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JWT_SECRET", raising=False)
    monkeypatch.delenv("JWT_PUBLIC_KEY", raising=False)
    first = load_settings(_env_file=None)
    second = load_settings(_env_file=None)
    assert first.jwt_secret and first.jwt_secret == second.jwt_secret
    assert (tmp_path / ".tidings-secret").stat().st_mode & 0o777 == 0o600


def test_a_remembered_token_still_expires(monkeypatch) -> None:
    from tidings.services import tokens as module

    monkeypatch.setattr(module, "LEEWAY_S", 0)
    tokens = TokenService(settings(jwt_secret="s" * 32))
    token = tokens.mint("alice", (), ttl_s=1)
    assert tokens.verify(token).user_id == "alice"
    assert token in tokens._verified
    time.sleep(1.1)  # the expiry itself: wall-clock time has to pass
    with pytest.raises(AuthenticationFailed):
        tokens.verify(token)
    assert token not in tokens._verified


def test_the_memory_of_verified_tokens_is_bounded(monkeypatch) -> None:
    from tidings.services import tokens as module

    monkeypatch.setattr(module, "CACHE_SIZE", 3)
    tokens = TokenService(settings(jwt_secret="s" * 32))
    minted = [tokens.mint(f"user{i}") for i in range(5)]
    for token in minted:
        tokens.verify(token)
    assert len(tokens._verified) == 3
    assert all(tokens.verify(token).user_id == f"user{i}" for i, token in enumerate(minted))


def pem(private) -> str:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def rejection(**values: object) -> str:
    """The operator's message for settings that must be refused."""
    with pytest.raises(ValidationError) as refused:
        settings(**values)
    return describe(refused.value)


def test_a_token_whose_algorithm_does_not_fit_the_key_fails_authentication() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    for verifier, signer, algorithm in ((rsa_key, ec_key, "ES256"),
                                        (ec_key, rsa_key, "RS256")):
        tokens = TokenService(settings(jwt_public_key=pem(verifier)))
        with pytest.raises(AuthenticationFailed):
            tokens.verify(jwt.encode(claims(), signer, algorithm=algorithm))


@pytest.mark.parametrize("key", [
    "not a key",
    "-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----",
    pem(ec.generate_private_key(ec.SECP384R1())),
    pem(__import__("cryptography.hazmat.primitives.asymmetric.ed25519",
                   fromlist=["x"]).Ed25519PrivateKey.generate()),
])
def test_an_unusable_public_key_is_refused_naming_the_variable(key: str) -> None:
    assert "JWT_PUBLIC_KEY" in rejection(jwt_public_key=key)


def test_an_unusable_public_key_stops_the_token_service_too() -> None:
    # Settings changed after validation (as code may do) still cannot start with it.
    loaded = settings(jwt_secret="s" * 32)
    loaded.jwt_public_key = "garbage"
    with pytest.raises(ValueError, match="JWT_PUBLIC_KEY"):
        TokenService(loaded)
    with pytest.raises(ValueError, match="JWT_PUBLIC_KEY"):
        create_app(loaded)


def test_a_secret_under_32_bytes_is_refused_unless_allowed() -> None:
    message = rejection(jwt_secret="short")
    assert "JWT_SECRET" in message and "32" in message
    assert "ALLOW_SHORT_JWT_SECRET" in message
    # Bytes, not characters: 11 three-byte characters are 33 bytes.
    assert settings(jwt_secret="\u20ac" * 11).jwt_secret == "\u20ac" * 11
    allowed = settings(jwt_secret="short", allow_short_jwt_secret=True)
    tokens = TokenService(allowed)
    with warnings.catch_warnings():  # PyJWT's own warning about the short key
        warnings.simplefilter("ignore")
        assert tokens.verify(tokens.mint("alice")).user_id == "alice"


def test_a_short_secret_in_the_environment_is_refused(monkeypatch) -> None:
    monkeypatch.setenv("JWT_SECRET", "x" * 31)
    with pytest.raises(ValidationError):
        settings()
    monkeypatch.setenv("ALLOW_SHORT_JWT_SECRET", "true")
    assert settings().jwt_secret == "x" * 31


def test_tls_needs_both_files_and_a_loadable_pair(tmp_path: Path) -> None:
    assert "TLS_KEY_FILE" in rejection(tls_cert_file=str(tmp_path / "cert.pem"))
    assert "TLS_CERT_FILE" in rejection(tls_key_file=str(tmp_path / "key.pem"))
    (tmp_path / "cert.pem").write_text("not a certificate")
    (tmp_path / "key.pem").write_text("not a key")
    message = rejection(tls_cert_file=str(tmp_path / "cert.pem"),
                        tls_key_file=str(tmp_path / "key.pem"))
    assert "cannot load" in message
    assert "cannot load" in rejection(tls_cert_file=str(tmp_path / "missing.pem"),
                                      tls_key_file=str(tmp_path / "missing-key.pem"))


def test_log_settings_are_checked() -> None:
    assert settings(log_level="DEBUG").log_level == "debug"
    assert "LOG_LEVEL" in rejection(log_level="loud")
    assert "LOG_FORMAT" in rejection(log_format="xml")
    assert settings(log_format="json").log_format == "json"


def test_an_expiry_too_large_for_a_float_does_not_break_verification() -> None:
    tokens = TokenService(settings(jwt_secret="s" * 32))
    token = jwt.encode({"sub": "alice", "exp": 10**400}, "s" * 32, algorithm="HS256")
    assert tokens.verify(token).user_id == "alice"
    assert tokens.verify(token).user_id == "alice"  # the remembered copy too
