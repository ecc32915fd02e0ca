"""A stand-in for Twilio's Messages API, Slack's Web API and chat incoming webhooks, on
loopback, for the walk-through in docs/WALKTHROUGHS.md: it answers each request as the
real service answers a good one and prints what it received, one JSON line per request.

    .venv/bin/python scripts/provider_standin.py [--port 8090]

Point Tidings at it with TWILIO_ENDPOINT and SLACK_ENDPOINT (http://127.0.0.1:8090), and a
channel's team feed at http://127.0.0.1:8090/hooks/<anything>. It needs aiohttp, one of
the test tools (`bash scripts/bootstrap.sh --dev`).
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import sys
from typing import Any

from aiohttp import web

_serial = itertools.count(1)


def _say(kind: str, **fields: Any) -> None:
    print(json.dumps({"request": kind, **fields}, ensure_ascii=False), flush=True)


async def twilio(request: web.Request) -> web.Response:
    form = await request.post()
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    account = request.match_info["sid"]
    user = base64.b64decode(credentials).decode().partition(":")[0] if credentials else ""
    if scheme != "Basic" or user != account:
        return web.json_response({"code": 20003, "message": "Authenticate", "status": 401},
                                 status=401)
    sid = f"SM{next(_serial):032d}"
    _say("twilio", to=form.get("To"), sender=form.get("From"), body=form.get("Body"), sid=sid)
    return web.json_response({"sid": sid, "status": "queued", "to": form.get("To")},
                             status=201)


async def slack(request: web.Request) -> web.Response:
    if not request.headers.get("Authorization", "").startswith("Bearer xoxb-"):
        return web.json_response({"ok": False, "error": "not_authed"})
    body = await request.json()
    ts = f"1700000000.{next(_serial):06d}"
    _say("slack", channel=body.get("channel"), text=body.get("text"),
         blocks=[block.get("type") for block in body.get("blocks", [])], ts=ts)
    return web.json_response({"ok": True, "channel": "D0STANDIN", "ts": ts})


async def hook(request: web.Request) -> web.Response:
    _say("feed", path=request.path, body=await request.json())
    return web.Response(text="ok")


def application() -> web.Application:
    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", twilio)
    app.router.add_post("/api/chat.postMessage", slack)
    app.router.add_post("/hooks/{tail:.*}", hook)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args(argv)
    print(f"listening on http://127.0.0.1:{args.port}", file=sys.stderr, flush=True)
    web.run_app(application(), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
