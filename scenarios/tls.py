"""TLS: the cheapest request over HTTPS with keep-alive, on every target (the run's certificate).

What encryption costs each stack per request once the handshake is done: compare each target's
cells with the same target's ``health`` (the same route over plain TCP). Every user opens one
connection and keeps it, so the TLS handshake is paid once per user, not per request;
``newconn_tls`` pays it on every request. The users verify the server's certificate against
the run's own CA (made per run, ``harness.run.tls``). Like ``health``, the generator is often
the limit here: compare the server's CPU per request (server CPU / rps), which the report
prints.
"""

from locust import FastHttpUser, constant, task

settings = {
    "users": [10, 64],
    "tls": True,
}


class TlsUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def health(self) -> None:
        self.client.get("/health", name="/health")
