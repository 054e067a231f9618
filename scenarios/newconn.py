"""A new connection for every request: the TCP handshake's cost on each stack, keep-alive's worth.

Clients that do not reuse connections (scripts, some proxies, HTTP/1.0) make the server accept,
set up and tear down a connection per request. Every request here asks the server to close the
connection after its answer (``Connection: close``), so the next request connects again: the
generator counts about one connection per request (``connections_per_request`` 1.0). Compare
with ``health``, the same route over kept-alive connections. ``newconn_tls`` adds a TLS
handshake to every request.
"""

from locust import FastHttpUser, constant, task

settings = {
    "users": [10, 64],
    "connection": "close",
}


class NewConnectionUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def health(self) -> None:
        self.client.get("/health", name="/health")
