"""Background work: the client gets 202 at once, the server does 50 ms of work afterwards.

What "respond now, finish later" costs a client on each stack. FastAPI runs the work as a
background task on its event loop; Flask's closest equivalent (a call-on-close hook) keeps
the worker busy after the response is sent, so a sync worker still serves one request per
50 ms even though each client waits only for the 202.
"""

from locust import FastHttpUser, constant, task

settings = {
    "users": [10, 100],
    "slot_time_ms": 50,  # a WSGI worker stays busy for the work after the 202: its slot is held
}


class BackgroundUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def background(self) -> None:
        self.client.post("/background?ms=50", name="/background?ms=50")
