"""CPU-bound: every request hashes 2,000 rounds of SHA-256 on the server.

Where async does not help: the work needs the CPU, not a wait, and the server's CPU
budget is the same for every target. Expect similar throughput, set by the CPU.
"""

from locust import FastHttpUser, constant, task

settings = {
    "users": [1, 10, 50],
}


class CpuUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def cpu(self) -> None:
        self.client.get("/cpu?work=2000", name="/cpu?work=2000")
