"""`/healthz` (the process is alive), `/readyz` (broker and database answer), `/metrics`."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from mailsync_platform.service import Runtime

READINESS_TIMEOUT_SECONDS = 2.0


def health_routes(runtime: Runtime) -> list[Route]:
    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "service": runtime.service})

    async def readyz(_: Request) -> Response:
        checks = {
            "database": await _database_ready(runtime),
            "broker": await _broker_ready(runtime),
        }
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(runtime.registry), media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]


async def _database_ready(runtime: Runtime) -> bool:
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            return bool(await runtime.pool.fetchval("SELECT true"))
    except Exception:
        return False


async def _broker_ready(runtime: Runtime) -> bool:
    try:
        return await runtime.broker.ping(timeout=READINESS_TIMEOUT_SECONDS)
    except Exception:
        return False
