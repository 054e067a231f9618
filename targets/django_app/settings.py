"""Settings of the Django targets: the least Django needs to serve the shared routes.

No database, no installed apps, no middleware: nothing may add headers or change a
response (no CommonMiddleware, so no APPEND_SLASH redirects; no CSRF, so POST /echo works;
no SecurityMiddleware headers). What is left is Django's URL routing, request and response
objects and handler chain, which is what the benchmark measures.
"""

from __future__ import annotations

# A benchmark app: no sessions, cookies or signing use the key, so a fixed dummy is fine.
SECRET_KEY = "gatebench-dummy-secret-key-not-for-production"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
TEMPLATES: list[dict[str, object]] = []

# The WSGI entry point's URL conf (sync views); the ASGI entry point's requests name
# ``targets.django_app.urls_async`` instead (see asgi.py).
ROOT_URLCONF = "targets.django_app.urls"
WSGI_APPLICATION = "targets.django_app.wsgi.application"

APPEND_SLASH = False
USE_I18N = False
USE_TZ = True
# The other apps accept any number of query parameters; Django refuses over 1000 (a 400).
DATA_UPLOAD_MAX_NUMBER_FIELDS = None

# Unhandled exceptions go to stderr, as Flask and uvicorn log them. Django logs every 4xx
# as a warning on the same logger; at ERROR those are dropped.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django.request": {"handlers": ["stderr"], "level": "ERROR", "propagate": False}},
}
