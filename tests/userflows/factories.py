"""Factories for the userflows models."""

import datetime as dt

import factory
from django.utils import timezone

from tests.factories import AccountFactory
from userflows.models import (
    DeletionRequest,
    ExportRequest,
    Invoice,
    PaymentMethod,
    Plan,
    Subscription,
)


def plan(code: str) -> Plan:
    return Plan.objects.get(code=code)


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    account = factory.SubFactory(AccountFactory)
    plan = factory.LazyAttribute(lambda o: plan(o.account.plan))
    status = Subscription.Status.ACTIVE
    provider = Subscription.Provider.LOCAL
    current_period_start = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=10))
    current_period_end = factory.LazyAttribute(
        lambda o: o.current_period_start + dt.timedelta(days=30)
    )


class PaymentMethodFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PaymentMethod

    account = factory.SubFactory(AccountFactory)
    provider = Subscription.Provider.LOCAL
    provider_reference = "pm_card_visa"
    brand = "visa"
    last4 = "4242"
    exp_month = 12
    exp_year = factory.LazyFunction(lambda: timezone.now().year + 2)


class InvoiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invoice

    account = factory.SubFactory(AccountFactory)
    subscription = None
    number = factory.Sequence(lambda n: f"INV-TEST-{n:05d}")
    plan_code = "starter"
    description = "Starter plan"
    amount_due_cents = 1900
    amount_paid_cents = 1900
    period_start = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=40))
    period_end = factory.LazyAttribute(lambda o: o.period_start + dt.timedelta(days=30))
    status = Invoice.Status.PAID
    due_at = factory.LazyAttribute(lambda o: o.period_start)
    bill_to_name = factory.LazyAttribute(lambda o: o.account.name)
    bill_to_email = factory.LazyAttribute(lambda o: o.account.user.email)


class ExportRequestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExportRequest

    account = factory.SubFactory(AccountFactory)
    requested_by = factory.LazyAttribute(lambda o: o.account.user)
    format = ExportRequest.Format.CSV
    data_types = factory.LazyFunction(lambda: ["campaigns"])
    date_from = factory.LazyFunction(lambda: timezone.localdate() - dt.timedelta(days=30))
    date_to = factory.LazyFunction(timezone.localdate)
    status = ExportRequest.Status.COMPLETED


class DeletionRequestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DeletionRequest

    account = factory.SubFactory(AccountFactory)
    requested_by = factory.LazyAttribute(lambda o: o.account.user)
    scheduled_for = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=30))
