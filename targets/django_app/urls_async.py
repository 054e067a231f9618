"""URL conf of the ASGI entry point: the shared routes, served by async views."""

from __future__ import annotations

from django.urls import path

from targets.django_app import views

urlpatterns = [path(route.removeprefix("/"), view) for route, view in views.ASYNC_VIEWS.items()]

handler400 = views.bad_request
handler403 = views.forbidden
handler404 = views.not_found
handler500 = views.server_error
