"""Forms of the account pages; services re-check everything they need."""

import datetime as dt
from collections.abc import Iterable

from django import forms
from django.conf import settings
from django.utils import timezone

from opsplatform.exports import ExportType, registered_export_types
from opsplatform.models import Account
from userflows.billing.local_provider import TEST_CARD_LABELS
from userflows.models import ExportRequest, Subscription
from userflows.services.billing import CUSTOMER_REASONS


class ExportForm(forms.Form):
    format = forms.ChoiceField(
        choices=ExportRequest.Format.choices,
        initial="csv",
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": "Choose one of the formats listed."},
    )
    data_types = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        label="Data to include",
        error_messages={
            "invalid_choice": "Choose from the kinds of data listed.",
            "required": "Choose at least one kind of data.",
        },
    )
    date_from = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, export_types: Iterable[ExportType] | None = None, **kwargs):
        """`export_types`: the registry's by default (every installed app's, with its label)."""
        super().__init__(*args, **kwargs)
        if export_types is None:
            export_types = registered_export_types().values()
        self.fields["data_types"].choices = [(t.name, t.label) for t in export_types]
        today = timezone.localdate()
        self.fields["data_types"].initial = [name for name, _ in self.fields["data_types"].choices]
        self.fields["date_from"].initial = today - dt.timedelta(days=365)
        self.fields["date_to"].initial = today


class PaymentMethodForm(forms.Form):
    payment_method_id = forms.CharField(label="Card", max_length=255)

    def __init__(self, *args, provider: str, **kwargs):
        super().__init__(*args, **kwargs)
        if provider == Subscription.Provider.LOCAL:
            self.fields["payment_method_id"] = forms.ChoiceField(
                label="Card",
                choices=list(TEST_CARD_LABELS.items()),
                widget=forms.RadioSelect,
                error_messages={"invalid_choice": "Choose one of the cards listed."},
                help_text="The built-in billing uses test cards; no real card is charged.",
            )
        else:
            self.fields["payment_method_id"].label = "Stripe payment method id"
            self.fields[
                "payment_method_id"
            ].help_text = (
                "The pm_… id your card form at Stripe returned. We never see card numbers."
            )


class CancelForm(forms.Form):
    reason = forms.ChoiceField(
        label="Why are you canceling?",
        choices=[("", "Choose a reason")] + [(r.value, r.label) for r in CUSTOMER_REASONS],
        error_messages={
            "invalid_choice": "Choose one of the reasons listed.",
            "required": "Choose a reason.",
        },
    )
    comment = forms.CharField(
        label="Anything else we should know? (optional)",
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    when = forms.ChoiceField(
        label="When",
        initial="period_end",
        widget=forms.RadioSelect,
        choices=[
            ("period_end", "At the end of the current billing period"),
            ("now", "Now (you lose access to paid features immediately)"),
        ],
        error_messages={"invalid_choice": "Choose when the subscription should end."},
    )
    confirm = forms.BooleanField(label="Yes, cancel my subscription")


class PlanForm(forms.Form):
    plan = forms.ChoiceField(
        label="Plan",
        choices=Account.Plan.choices,
        error_messages={"invalid_choice": "Choose one of the plans shown."},
    )
    # The amount the customer saw and agreed to pay now; a change costing more is shown again.
    confirm_cents = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=10**11,
        widget=forms.HiddenInput,
        error_messages=dict.fromkeys(
            ("invalid", "min_value", "max_value"),
            "The confirmed amount was not understood; choose the plan again.",
        ),
    )


class DeleteForm(forms.Form):
    reason = forms.CharField(
        label="Why are you leaving? (optional)",
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    confirm = forms.CharField(label="Type DELETE to confirm", max_length=20)
    immediate = forms.BooleanField(
        label="Delete immediately instead of after the grace period", required=False
    )
    password = forms.CharField(
        label="Your password (needed to delete immediately)",
        required=False,
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["immediate"].help_text = (
            f"Otherwise your account is deleted after {settings.DELETION_GRACE_DAYS} days, and "
            "you can cancel until then."
        )

    def clean_confirm(self):
        value = self.cleaned_data["confirm"].strip()
        if value != "DELETE":
            raise forms.ValidationError("Type the word DELETE in capital letters to confirm.")
        return value
