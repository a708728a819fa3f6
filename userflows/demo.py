"""Demo billing data: a subscription per account on its plan (active, trialing, past due or
canceled with a reason, following the account's health), a test card for paid plans, the
last three months of invoices, and one scheduled deletion. Bulk-written and deterministic
for a seed, like the core's demo data (so without history rows, except the accounts a
canceled subscription moved to the free plan). Every seeded account gets exactly one
subscription."""

import datetime as dt

from opsplatform import services as core_services
from opsplatform.demo import DemoContext
from opsplatform.models import Account
from userflows.billing.local_provider import TEST_CARDS
from userflows.models import DeletionRequest, Invoice, PaymentMethod, Plan, Subscription
from userflows.services.billing import add_months

INVOICE_MONTHS = 3
REASON_WEIGHTS = {
    "too_expensive": 30,
    "not_using": 25,
    "missing_features": 15,
    "switched_service": 12,
    "closing_business": 10,
    "technical_issues": 5,
    "other": 3,
}
COMMENTS = [
    "",
    "",
    "",
    "Season is over",
    "Budget moved to video",
    "Need multi-show reports",
    "Will be back next quarter",
]
CHURN_FATES = ["canceled", "past_due", "ending", "canceled", "active"]
BATCH = 2000


def _current_period(created: dt.datetime, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The monthly period (anchored on the sign-up date) that contains `now`."""
    months = (now.year - created.year) * 12 + now.month - created.month
    start = add_months(created, max(months, 0))
    if start > now:
        start = add_months(created, max(months - 1, 0))
    return start, add_months(start, 1)


def seed_demo(ctx: DemoContext) -> None:
    if not ctx.accounts:
        return
    rng = ctx.rng("userflows")
    plans = {p.code: p for p in Plan.objects.all()}
    first, last = ctx.accounts[0].id, ctx.accounts[-1].id
    details = {
        a[0]: a[1:]
        for a in Account.objects.filter(id__gte=first, id__lte=last).values_list(
            "id", "name", "country"
        )
    }
    now = ctx.now
    subscriptions, methods, facts = [], [], []
    cards = [c for c in TEST_CARDS if c != "pm_card_chargeDeclined"]
    churned = 0
    for seeded in ctx.accounts:
        name, country = details[seeded.id]
        plan = plans[seeded.plan]
        start, end = _current_period(seeded.created_at, now)
        status, reason, comment, at_end, canceled_at = (
            Subscription.Status.ACTIVE,
            "",
            "",
            False,
            None,
        )
        if seeded.health == "new" and rng.random() < 0.5 and not plan.is_free:
            # Only paid plans have trials (as start_subscription does).
            status = Subscription.Status.TRIALING
        elif seeded.health == "churning" and not plan.is_free:
            # Churning accounts take turns, so even a small demo shows every state.
            fate = CHURN_FATES[churned % len(CHURN_FATES)]
            churned += 1
            if fate == "canceled":
                status = Subscription.Status.CANCELED
                canceled_at = start - dt.timedelta(days=rng.randint(1, 60))
            elif fate == "past_due":
                status = Subscription.Status.PAST_DUE
            elif fate == "ending":
                at_end = True
            if fate in ("canceled", "ending"):
                reason = rng.choices(list(REASON_WEIGHTS), weights=REASON_WEIGHTS.values())[0]
                comment = rng.choice(COMMENTS)
        subscriptions.append(
            Subscription(
                account_id=seeded.id,
                plan=plan,
                status=status,
                provider="local",
                current_period_start=start,
                current_period_end=end,
                cancel_at_period_end=at_end,
                canceled_at=canceled_at,
                cancellation_reason=reason,
                cancellation_comment=comment,
                past_due_since=start if status == Subscription.Status.PAST_DUE else None,
                created_at=seeded.created_at,
            )
        )
        if not plan.is_free:
            token = (
                "pm_card_chargeDeclined"
                if status == Subscription.Status.PAST_DUE
                else rng.choice(cards)
            )
            brand, last4 = TEST_CARDS[token]
            methods.append(
                PaymentMethod(
                    account_id=seeded.id,
                    provider="local",
                    provider_reference=token,
                    brand=brand,
                    last4=last4,
                    exp_month=rng.randint(1, 12),
                    exp_year=now.year + rng.randint(1, 4),
                    created_at=seeded.created_at,
                    updated_at=seeded.created_at,
                )
            )
        facts.append((seeded, plan, name, country))
    subscriptions = Subscription.objects.bulk_create(subscriptions, batch_size=BATCH)
    # A canceled subscription leaves its account on the free plan, as it does in the product.
    core_services.set_account_plans(
        plans={s.account_id: Account.Plan.FREE for s in subscriptions if s.status == "canceled"},
        reason="demo: subscription canceled",
    )
    PaymentMethod.objects.bulk_create(methods, batch_size=BATCH)
    invoices = _invoices(subscriptions, facts, now)
    Invoice.objects.bulk_create(invoices, batch_size=BATCH)
    deletions = _scheduled_deletion(ctx, rng)
    ctx.counts["subscriptions"] = len(subscriptions)
    ctx.counts["payment_methods"] = len(methods)
    ctx.counts["invoices"] = len(invoices)
    ctx.counts["deletion_requests"] = deletions


def _invoices(subscriptions, facts, now) -> list[Invoice]:
    invoices = []
    for sub, (seeded, plan, name, country) in zip(subscriptions, facts, strict=True):
        if plan.is_free or sub.status == Subscription.Status.TRIALING:
            continue
        last_start = (
            sub.canceled_at
            if sub.status == Subscription.Status.CANCELED
            else sub.current_period_start
        )
        periods = []
        start = last_start
        while len(periods) < INVOICE_MONTHS and start >= seeded.created_at:
            periods.append(start)
            start = add_months(start, -1)
        for sequence, period_start in enumerate(reversed(periods), start=1):
            is_latest = sequence == len(periods)
            unpaid = is_latest and sub.status == Subscription.Status.PAST_DUE
            invoices.append(
                Invoice(
                    account_id=seeded.id,
                    subscription=sub,
                    number=f"INV-{sub.pk:07d}-{sequence:04d}",
                    provider="local",
                    plan_code=plan.code,
                    description=f"{plan.name} plan, {period_start:%b %-d, %Y} to "
                    f"{add_months(period_start, 1):%b %-d, %Y}",
                    currency=plan.currency,
                    amount_due_cents=plan.price_cents,
                    amount_paid_cents=0 if unpaid else plan.price_cents,
                    period_start=period_start,
                    period_end=add_months(period_start, 1),
                    status=Invoice.Status.OPEN if unpaid else Invoice.Status.PAID,
                    issued_at=period_start,
                    due_at=period_start,
                    paid_at=None if unpaid else period_start,
                    attempt_count=2 if unpaid else 1,
                    next_attempt_at=now + dt.timedelta(days=2) if unpaid else None,
                    last_failure="The card was declined." if unpaid else "",
                    bill_to_name=name,
                    bill_to_email=seeded.email,
                    bill_to_country=country,
                )
            )
    return invoices


def _scheduled_deletion(ctx: DemoContext, rng) -> int:
    """One account (never a demo login) has asked to be deleted and is in its grace period."""
    logins = {c.id for c in ctx.customers.values()}
    candidates = [a for a in ctx.accounts if a.id not in logins and a.health == "churning"]
    if not candidates:
        return 0
    chosen = candidates[rng.randrange(len(candidates))]
    requested = ctx.now - dt.timedelta(days=18)
    DeletionRequest.objects.create(
        account_id=chosen.id,
        requested_by_id=chosen.user_id,
        requested_at=requested,
        scheduled_for=requested + dt.timedelta(days=30),
        reason="Closing the show at the end of the season.",
    )
    return 1
