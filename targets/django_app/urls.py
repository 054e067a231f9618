"""URL conf of the WSGI entry point: the shared routes, served by sync views."""

from __future__ import annotations

from django.urls import path

from targets.django_app import views

# Django matches the path without its leading "/": "health" matches "/health" only, not
# "/health/" nor "//health" (404s, as in the other apps).
urlpatterns = [path(route.removeprefix("/"), view) for route, view in views.SYNC_VIEWS.items()]

handler400 = views.bad_request
handler403 = views.forbidden
handler404 = views.not_found
handler500 = views.server_error
