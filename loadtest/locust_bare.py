"""The baseline phase of `make load`: the same users, no waiting, the bare view (bare.py)."""

from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser


class BareUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def bare(self):
        self.client.get("/bare")
