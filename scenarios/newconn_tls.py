"""A new TLS connection for every request: the TCP and the TLS handshake on every request.

As ``newconn``, over HTTPS with the run's certificate: every request pays a full TLS handshake
(no session resumption: a new client connection each time), the costliest way to talk to a
server. Compare with ``newconn`` (the same without TLS) and ``tls`` (TLS with keep-alive).
"""

from locust import FastHttpUser, constant, task

settings = {
    "users": [10, 64],
    "connection": "close",
    "tls": True,
}


class NewTlsConnectionUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def health(self) -> None:
        self.client.get("/health", name="/health")
