"""The raw limit of a case-worker write: `POST /participants/{id}/transitions` in plain
Starlette + asyncpg, served by uvicorn like casework, doing the same work and nothing else.

Per request: the bearer token verified (PyJWT, HS256, as casework in development), the body
parsed (orjson), and one transaction with casework's SQL text (copied from
`casework.store`/`asf_kit.outbox`): the participant loaded `FOR UPDATE` with its placements,
employment and follow-ups; the stage checked; the participants row updated; the stage
change, the access-log row and the outbox row inserted; the change kept and NOTIFYed for
`/stream`. The answer is the case as JSON. No validation models, no logging, no tracing, no
metrics, no relay (the outbox row stays unpublished, so it errs on the fast side).

    python -m bench.raw_http serve      # PORT, DATABASE_URL, JWT_SECRET from the environment
"""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import jwt
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.raw import OUTBOX, STREAM  # the outbox row and the stream's serial insert, as the hop

# casework.store._PARTICIPANT + _FROM + " WHERE p.id = $1 FOR UPDATE OF p", verbatim.
LOAD = """
SELECT p.id, p.municipality_code, p.referral_source, p.assigned_to, p.stage, p.exit_reason,
       p.referred_at, p.closed_at, p.erased_at, p.created_by, p.version,
       (SELECT coalesce(json_agg(x ORDER BY x.created_at, x.id), '[]') FROM (
            SELECT pl.*, c.name AS company_name FROM placements pl
            LEFT JOIN companies c ON c.id = pl.company_id
            WHERE pl.participant_id = p.id) x) AS placements,
       (SELECT to_jsonb(e) - 'employer_sealed' FROM employments e
        WHERE e.participant_id = p.id ORDER BY e.created_at DESC LIMIT 1) AS employment,
       (SELECT coalesce(json_agg(f ORDER BY f.offset_days), '[]') FROM follow_ups f
        WHERE f.employment_id = (SELECT e.id FROM employments e WHERE e.participant_id = p.id
                                 ORDER BY e.created_at DESC LIMIT 1)) AS follow_ups
 FROM participants p  WHERE p.id = $1 FOR UPDATE OF p"""
SAVE = """
        UPDATE participants SET referral_source = $2, assigned_to = $3, stage = $4,
            exit_reason = $5, closed_at = $6, erased_at = $7, version = $8, updated_at = now()
        WHERE id = $1
        """
STAGE = ("INSERT INTO stage_changes (participant_id, from_stage, to_stage, exit_reason, at, "
         "by) VALUES ($1, $2, $3, $4, $5, $6)")
ACCESS = ("INSERT INTO access_log (participant_id, actor, action) "
          "SELECT unnest($1::uuid[]), $2, $3")
MOVES = {"referred": {"assessment", "closed"}, "assessment": {"in_training", "closed"}}
CHANGED = "casework.participant.stage_changed"


def _problem(status: int, detail: str) -> Response:
    return Response(orjson.dumps({"status": status, "detail": detail}), status,
                    media_type="application/problem+json")


def create_app() -> Starlette:
    secret = os.environ["JWT_SECRET"]
    state: dict[str, asyncpg.Pool] = {}

    async def transition(request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        try:
            claims = jwt.decode(auth.removeprefix("Bearer "), secret, algorithms=["HS256"],
                                options={"require": ["exp", "iat", "sub"]})
        except jwt.PyJWTError:
            return _problem(401, "invalid or expired token")
        body = orjson.loads(await request.body())
        to = body["to"]
        pid = uuid.UUID(request.path_params["participant_id"])
        now = datetime.now(UTC)
        async with state["pool"].acquire() as conn, conn.transaction():
            p = await conn.fetchrow(LOAD, pid)
            if p is None or p["municipality_code"] != claims.get("municipality_code"):
                return _problem(404, "participant not found")
            if to not in MOVES.get(p["stage"], set()):
                return _problem(409, "not allowed")
            version = p["version"] + 1
            await conn.execute(SAVE, pid, p["referral_source"], p["assigned_to"], to, None,
                               None, None, version)
            await conn.executemany(STAGE, [(pid, p["stage"], to, None, now, claims["sub"])])
            await conn.execute(ACCESS, [pid], claims["sub"], "transition")
            event_id = uuid.uuid4()
            await conn.execute(OUTBOX, event_id, CHANGED, 1, CHANGED + ".v1", None, None,
                               orjson.dumps({
                                   "event_id": str(event_id), "event_type": CHANGED,
                                   "event_version": 1, "occurred_at": now.isoformat(),
                                   "producer": "casework", "correlation_id": None,
                                   "causation_id": None, "aggregate_id": str(pid),
                                   "aggregate_version": version,
                                   "payload": {"participant_id": str(pid),
                                               "municipality_code": p["municipality_code"],
                                               "assigned_to": p["assigned_to"],
                                               "from_stage": p["stage"], "to_stage": to,
                                               "exit_reason": None}}))
            await conn.fetchval(STREAM, "casework_changes", p["municipality_code"], pid,
                                orjson.dumps({"participant_id": str(pid),
                                              "municipality_code": p["municipality_code"],
                                              "stage": to, "version": version,
                                              "event": CHANGED}).decode())
        case: dict[str, Any] = {k: p[k] for k in ("id", "municipality_code", "referral_source",
                                                  "assigned_to", "referred_at", "created_by")}
        case.update(stage=to, version=version, placements=p["placements"],
                    employment=p["employment"], follow_ups=p["follow_ups"])
        return Response(orjson.dumps(case, default=str), media_type="application/json")

    async def ready(_: Request) -> Response:
        return Response(b"{}", media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(os.environ["DATABASE_URL"], min_size=2, max_size=10)
        assert pool is not None
        state["pool"] = pool
        try:
            yield
        finally:
            await pool.close()

    return Starlette(routes=[
        Route("/participants/{participant_id}/transitions", transition, methods=["POST"]),
        Route("/readyz", ready),
    ], lifespan=lifespan)


if __name__ == "__main__" and sys.argv[1:] == ["serve"]:
    import uvicorn

    uvicorn.run(create_app(), host=os.environ.get("HOST", "127.0.0.1"),
                port=int(os.environ["PORT"]), log_level="warning", access_log=False)
