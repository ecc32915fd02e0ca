"""Request-scoped dependencies: the application's services and the caller's principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tidings.api.bundle import ApiServices
from tidings.domain.errors import AuthenticationFailed
from tidings.domain.model import Principal
from tidings.services.tokens import TokenService

_bearer = HTTPBearer(auto_error=False, description="A JWT: `Authorization: Bearer <token>`")


# Both are `async def` on purpose: FastAPI runs plain `def` dependencies in a thread pool,
# two thread hops per request for what is a dictionary lookup and a signature check.
async def services(request: Request) -> ApiServices:
    return request.app.state.services  # type: ignore[no-any-return]


async def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise AuthenticationFailed("missing bearer token")
    tokens: TokenService = request.app.state.services.tokens
    return tokens.verify(credentials.credentials)


App = Annotated[ApiServices, Depends(services)]
Caller = Annotated[Principal, Depends(principal)]
