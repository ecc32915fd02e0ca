"""Property-based fuzzing of the HTTP API from the OpenAPI document it publishes.

For every documented operation, schemathesis generates requests that fit the document
(positive) and requests that break it (negative), sent by a `service` producer and by a
plain user to a real server on SQLite and on PostgreSQL. Every answer must be a documented
status code whose body and content type match the document, and none may be a 5xx
(bad input is a 4xx naming the field, DESIGN.md section 5).

Bounded and reproducible: a fixed number of examples per operation, mode and caller,
derandomized generation, no shrinking (a failure is reported whole, with a curl command
that replays it, rather than minimized at length).
"""

from __future__ import annotations

from collections.abc import Callable

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from hypothesis.strategies import SearchStrategy
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup

from tests.conftest import RunningServer
from tests.threaded_server import server_in_thread
from tidings.settings import Settings

MAX_EXAMPLES = 20
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]
FUZZ_SETTINGS = hypothesis_settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)


CALLER_SUBS = {"service": "fuzz-billing", "user": "fuzz-alice"}


def _callers(server: RunningServer) -> dict[str, dict[str, str]]:
    """Headers of a `service` producer and of a plain user."""
    return {
        "service": {"Authorization": f"Bearer {server.token(CALLER_SUBS['service'], 'service')}"},
        "user": {"Authorization": f"Bearer {server.token(CALLER_SUBS['user'])}"},
    }


def _own_notification(server: RunningServer, session: requests.Session, caller: str) -> str:
    """A new notification addressed to the `caller` of `_callers`."""
    response = session.post(
        f"{server.url}/api/notifications",
        json={"user_id": CALLER_SUBS[caller], "type": "fuzz", "title": "Fuzzed",
              "message": "A notification of the caller's own"},
        headers=_callers(server)["service"], timeout=10)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _to_one_user(case: schemathesis.Case) -> schemathesis.Case:
    """A generated create addressed to one user (201 and the notification's own body),
    which generation alone seldom reaches: `user_id` is one optional field of many."""
    if isinstance(case.body, dict):
        case.body.pop("user_ids", None)
        case.body["user_id"] = CALLER_SUBS["user"]
    return case


def _fuzz(
    cases: SearchStrategy[schemathesis.Case],
    headers: dict[str, str],
    call: Callable[[schemathesis.Case, dict[str, str]], schemathesis.Response],
    record: Callable[[FailureGroup], None],
    *,
    negative: bool = False,
) -> None:
    @FUZZ_SETTINGS
    @given(case=cases)
    def run(case: schemathesis.Case) -> None:
        response = call(case, headers)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            record(group)

    try:
        run()
    except Unsatisfiable:
        # An operation without parameters or body has nothing to break.
        if not negative:
            raise


def test_fuzzed_requests_are_answered_as_documented(settings: Settings) -> None:
    with server_in_thread(settings) as server, requests.Session() as session:
        spec = session.get(f"{server.url}/openapi.json", timeout=10).json()
        schema = schemathesis.openapi.from_dict(spec)
        # One report per (round, kind of failure): the first example of each, with a curl
        # command that replays it.
        failures: dict[tuple[str, ...], str] = {}

        def call(case: schemathesis.Case, headers: dict[str, str]) -> schemathesis.Response:
            return case.call(base_url=server.url, session=session, headers=headers,
                             timeout=10)

        def recorder(label: str) -> Callable[[FailureGroup], None]:
            def record(group: FailureGroup) -> None:
                titles = sorted({failure.title for failure in group.exceptions})
                failures.setdefault((label, *titles), f"{label}:\n{group}")

            return record

        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 8, "the OpenAPI document lost its operations"
        callers = _callers(server)
        for operation in operations:
            for caller, headers in callers.items():
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    _fuzz(operation.as_strategy(generation_mode=mode), headers, call,
                          recorder(f"{operation.label} as {caller} ({mode.value})"),
                          negative=mode is GenerationMode.NEGATIVE)
                if "{notification_id}" in operation.path:
                    # Random ids are all unknown (404): one of the caller's own notifications
                    # reaches the answers with a body (and, for DELETE, its 204 and then 404s).
                    owned = {"notification_id": _own_notification(server, session, caller)}
                    _fuzz(operation.as_strategy(path_parameters=owned), headers, call,
                          recorder(f"{operation.label} as {caller} (own notification)"))
                if operation.label == "POST /api/notifications":
                    _fuzz(operation.as_strategy().map(_to_one_user), headers, call,
                          recorder(f"{operation.label} as {caller} (to one user)"))

    assert not failures, f"{len(failures)} kinds of failure:\n\n" + "\n\n".join(
        failures.values())


async def test_body_of_undecodable_bytes_is_a_400_naming_the_body(
    server: RunningServer,
) -> None:
    """Found by the fuzzer: bytes that are not UTF-8 failed before JSON parsing and were
    answered without the error code and field that any other invalid JSON gets."""
    async with server.http("fuzz-billing", "service") as http:
        for body in (b"\xf4", b")\xee\x86\xa2{&D<\xc7\xdf3"):
            response = await http.post("/api/notifications", content=body,
                                       headers={"Content-Type": "application/json"})
            assert response.status_code == 400, response.text
            assert response.json() == {"error": {
                "code": "invalid_json", "message": "the body is not valid JSON",
                "field": "body"}}


async def test_a_405_allows_every_method_of_the_resource(server: RunningServer) -> None:
    """Found by schemathesis (`unsupported_method`, `allow_header_conformance`): FastAPI
    makes one route per method, and a 405 named only the methods of the first route of the
    path (`Allow: POST` for `/api/notifications`, which also answers GET). RFC 9110 wants
    every method the resource supports; the document lists them."""
    async with server.http("fuzz-ops", "admin") as http:
        spec = (await http.get("/openapi.json")).json()
        for template, item in spec["paths"].items():
            path = template.replace("{", "x").replace("}", "")
            documented = {method.upper() for method in item}
            for method in ("OPTIONS", "PATCH", "TRACE"):
                response = await http.request(method, path)
                assert response.status_code == 405, (method, template, response.text)
                allowed = {m.strip() for m in response.headers["Allow"].split(",")}
                assert allowed - {"HEAD"} == documented, (method, template)
                assert response.json()["error"]["code"] == "method_not_allowed"
