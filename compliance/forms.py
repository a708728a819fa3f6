"""Admin forms of the compliance app: the DPIA reviewer's note, a new DPIA, and the audit
trail's filters (dates bounded to what the databases store)."""

import datetime as dt

from django import forms
from unfold.widgets import (
    UnfoldAdminDateWidget,
    UnfoldAdminIntegerFieldWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
    UnfoldBooleanSwitchWidget,
)

MIN_DATE, MAX_DATE = dt.date(1900, 1, 1), dt.date(9998, 12, 31)


class ReviewNoteForm(forms.Form):
    note = forms.CharField(
        max_length=2000,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 4}),
        help_text="Why you approve or reject it; kept in the DPIA's history.",
    )


def _terms(text: str) -> list[str]:
    return [part.strip().lower() for part in text.split(",") if part.strip()]


class PiaForm(forms.Form):
    feature_name = forms.CharField(max_length=200, widget=UnfoldAdminTextInputWidget)
    data_types_collected = forms.CharField(
        max_length=3000,
        widget=UnfoldAdminTextInputWidget,
        help_text="Comma-separated, e.g. email, usage_data, health_records",
    )
    data_retention_period = forms.IntegerField(
        min_value=0, max_value=36_500, widget=UnfoldAdminIntegerFieldWidget, help_text="Days"
    )
    data_sharing = forms.CharField(
        required=False,
        max_length=3000,
        widget=UnfoldAdminTextInputWidget,
        help_text="Recipients, comma-separated",
    )
    user_consent_required = forms.BooleanField(required=False, widget=UnfoldBooleanSwitchWidget)
    systematic_monitoring = forms.BooleanField(required=False, widget=UnfoldBooleanSwitchWidget)
    automated_decisions = forms.BooleanField(
        required=False,
        widget=UnfoldBooleanSwitchWidget,
        help_text="Automated decisions with legal or similarly significant effect",
    )

    def clean_data_types_collected(self):
        return _terms(self.cleaned_data["data_types_collected"])

    def clean_data_sharing(self):
        return _terms(self.cleaned_data["data_sharing"])


class AuditFilterForm(forms.Form):
    model = forms.ChoiceField(required=False, widget=UnfoldAdminSelectWidget)
    user = forms.CharField(
        required=False, max_length=150, label="User (username)", widget=UnfoldAdminTextInputWidget
    )
    date_from = forms.DateField(required=False, widget=UnfoldAdminDateWidget)
    date_to = forms.DateField(required=False, widget=UnfoldAdminDateWidget)
    cursor = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)

    def __init__(self, *args, models=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [("", "All models"), *[(m, m) for m in models]]

    def clean(self):
        data = super().clean()
        for name in ("date_from", "date_to"):
            value = data.get(name)
            if value is not None and not MIN_DATE <= value <= MAX_DATE:
                self.add_error(name, "Use a date between 1900 and 9998.")
        if data.get("date_from") and data.get("date_to") and data["date_to"] < data["date_from"]:
            self.add_error("date_to", "The end is before the start.")
        return data
