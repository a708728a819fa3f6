"""Forms of the customer support pages (Django forms reject NUL characters themselves)."""

from django import forms

from support.models import Priority


class TicketForm(forms.Form):
    subject = forms.CharField(max_length=200)
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}), max_length=50_000, label="How can we help?"
    )
    priority = forms.ChoiceField(choices=Priority.choices, initial=Priority.NORMAL)


class ReplyForm(forms.Form):
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}), max_length=50_000, label="Your reply"
    )


class RatingForm(forms.Form):
    rating = forms.TypedChoiceField(
        choices=[
            (i, f"{i} - {label}")
            for i, label in [(5, "Great"), (4, "Good"), (3, "Okay"), (2, "Poor"), (1, "Bad")]
        ],
        coerce=int,
        widget=forms.RadioSelect,
        label="How did we do?",
    )
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        required=False,
        label="Anything to add? (optional)",
    )
