"""The load mix of issue 17: customers reading pages and the API, pushing 50-event batches,
opening tickets and exports; agents listing and working tickets. The baseline phase
calls the bare Django view with loadtest/locust_bare.py.

Started by loadtest/run.py (it prepares LOADTEST_CREDENTIALS); users do not wait between
requests, so throughput is what the server gives at this concurrency."""

import datetime as dt
import itertools
import json
import os
import random
import uuid

from locust import constant, tag, task
from locust.contrib.fasthttp import FastHttpUser

CREDENTIALS = (
    json.loads(open(os.environ["LOADTEST_CREDENTIALS"]).read())  # noqa: SIM115
    if os.environ.get("LOADTEST_CREDENTIALS")
    else {"customers": [], "agents": []}
)
_customers = itertools.cycle(CREDENTIALS["customers"] or [None])
_agents = itertools.cycle(CREDENTIALS["agents"] or [None])
EXPECTED_REFUSALS = {409, 429}  # one export at a time, a daily export limit: answers, not errors


class ApiUser(FastHttpUser):
    abstract = True
    wait_time = constant(0)
    who = None

    def on_start(self):
        self.me = next(self.who)
        self.api = {"Authorization": f"Bearer {self.me['token']}"}
        self.page = {"Cookie": f"sessionid={self.me['session']}"}

    def get(self, path, name=None, **kwargs):
        return self.client.get(path, headers=self.api, name=name or path, **kwargs)

    def post(self, path, body, name=None, expected=()):
        with self.client.post(
            path, json=body, headers=self.api, name=name or path, catch_response=True
        ) as response:
            if response.status_code < 400 or response.status_code in expected:
                response.success()
            else:
                response.failure(f"{response.status_code}: {response.text[:200]}")


class CustomerUser(ApiUser):
    weight = 9
    who = _customers

    @tag("api")
    @task(3)
    def me(self):
        self.get("/api/v1/me")

    @tag("api")
    @task(3)
    def campaigns(self):
        self.get("/api/v1/campaigns?limit=20")

    @tag("api")
    @task(3)
    def tickets(self):
        self.get("/api/v1/support/tickets?limit=20")

    @tag("api")
    @task(2)
    def billing(self):
        self.get("/api/v1/billing")

    @tag("api")
    @task(2)
    def events(self):
        now = dt.datetime.now(dt.UTC)
        batch = [
            {
                "type": random.choice(["episode.published", "ad.played", "report.viewed"]),
                "occurred_at": (now - dt.timedelta(seconds=i)).isoformat(),
                "idempotency_key": uuid.uuid4().hex,
                "properties": {"n": i},
            }
            for i in range(50)
        ]
        self.post("/api/v1/events", {"events": batch}, name="/api/v1/events [50]")

    @tag("pages")
    @task(1)
    def account_page(self):
        self.client.get("/account/", headers=self.page, name="/account/")

    @tag("pages")
    @task(1)
    def campaign_page(self):
        if self.me["campaigns"]:
            campaign = random.choice(self.me["campaigns"])
            self.client.get(
                f"/account/campaigns/{campaign}/", headers=self.page, name="/account/campaigns/:id/"
            )

    @tag("writes")
    @task(1)
    def open_ticket(self):
        self.post(
            "/api/v1/support/tickets",
            {"subject": "Load test: invoice question", "description": "Where is my invoice?"},
        )

    @tag("writes")
    @task(1)
    def export(self):
        today = dt.date.today()
        self.post(
            "/api/v1/exports",
            {
                "format": "csv",
                "data_types": ["campaigns"],
                "date_from": (today - dt.timedelta(days=30)).isoformat(),
                "date_to": today.isoformat(),
            },
            expected=EXPECTED_REFUSALS,
        )


class AgentUser(ApiUser):
    weight = 1
    who = _agents

    @task(3)
    def queue(self):
        response = self.get(
            "/api/v1/support/tickets?status=new&limit=20", name="/api/v1/support/tickets [agent]"
        )
        try:
            self.queue_refs = [t["reference"] for t in response.json()["items"]]
        except (ValueError, KeyError, TypeError):
            self.queue_refs = []

    @task(1)
    def work(self):
        refs = getattr(self, "queue_refs", [])
        if not refs:
            return
        reference = random.choice(refs)
        self.get(f"/api/v1/support/tickets/{reference}", name="/api/v1/support/tickets/:ref")
        self.post(
            f"/api/v1/support/tickets/{reference}/messages",
            {"body": "Looking into it.", "internal": True},
            name="/api/v1/support/tickets/:ref/messages",
        )
