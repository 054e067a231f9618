"""The Django targets: one minimal project, two entry points.

``targets.django_app.wsgi:application`` serves sync views that wait with ``time.sleep``
(WSGI: gunicorn, granian); ``targets.django_app.asgi:application`` serves async views that
wait with ``await asyncio.sleep`` (ASGI: uvicorn, Daphne, granian). Both answer exactly as
the Flask and FastAPI apps do: everything a client sees comes from ``targets.common``.
"""
