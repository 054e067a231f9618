"""ASGI entry point of the Django target: async views that wait with ``await asyncio.sleep``.

Serve it with ``uvicorn targets.django_app.asgi:application`` or
``daphne targets.django_app.asgi:application``.

Settings are process-wide, but the WSGI and ASGI entry points need different views (a sync
view under ASGI would run in a thread; an async one under WSGI in a new event loop per
request). So this entry point's requests name their own URL conf: Django resolves a request
with ``request.urlconf`` when it has one, without a middleware (which under ASGI would cost
a thread hop per request unless written async).

Django refuses ASGI lifespan scopes (a ValueError): uvicorn notes it, granian logs a
warning, Starlette's TestClient fails. This handler answers them, having nothing to start.
"""

from __future__ import annotations

import os
from typing import Any

import django
from django.core.handlers.asgi import ASGIHandler, ASGIRequest

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "targets.django_app.settings")


class AsyncViewsRequest(ASGIRequest):
    urlconf = "targets.django_app.urls_async"


class AsyncViewsHandler(ASGIHandler):
    request_class = AsyncViewsRequest

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await super().__call__(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


django.setup(set_prefix=False)  # what django.core.asgi.get_asgi_application() does first
application = AsyncViewsHandler()
