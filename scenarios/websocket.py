"""WebSockets: every user holds one socket, the server pushes a message every 100 ms.

Each user connects to ``/ws?ticker_ms=100`` and keeps the socket open; the figures are the
handshake time, the time to the first message and, per message, the delivery latency
(client receive time minus the server's send time). Flask (flask-sock) holds a worker
thread per socket; FastAPI holds a coroutine.
"""

from locust import task

from harness.loadgen.users import WebSocketUser

settings = {
    "users": [10, 100],
}


class WebSocketTickerUser(WebSocketUser):
    mode = "ticker"
    interval_ms = 100

    @task
    def hold(self) -> None:
        self.hold_socket()
