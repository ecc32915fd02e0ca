"""Request-scoped dependencies: the application's services and the caller's principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tidings.container import Services
from tidings.domain.errors import AuthenticationFailed
from tidings.domain.model import Principal

_bearer = HTTPBearer(auto_error=False, description="A JWT: `Authorization: Bearer <token>`")


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise AuthenticationFailed("missing bearer token")
    return services(request).tokens.verify(credentials.credentials)


App = Annotated[Services, Depends(services)]
Caller = Annotated[Principal, Depends(principal)]
