"""Forms of the customer's own sign-in details: profile and email change (the password forms
are Django's). Services re-check everything they need."""

from django import forms
from django.contrib.auth import forms as auth_forms

from opsplatform import timezones


class ProfileForm(forms.Form):
    first_name = forms.CharField(label="First name", max_length=150, required=False)
    last_name = forms.CharField(label="Last name", max_length=150, required=False)
    time_zone = forms.ChoiceField(
        label="Time zone",
        choices=timezones.choices,
        required=False,  # left out: the zone stays as it is
        help_text="Dates and times on your pages and in our emails are shown in it.",
        error_messages={"invalid_choice": timezones.MESSAGE},
    )


class EmailChangeForm(forms.Form):
    email = forms.EmailField(label="New email address", max_length=254)
    password = forms.CharField(
        label="Your current password",
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Django's form; the mail is rendered in the user's time zone like every other mail."""

    def send_mail(self, subject_template_name, email_template_name, context, *args, **kwargs):
        with timezones.for_user(context.get("user")):
            super().send_mail(subject_template_name, email_template_name, context, *args, **kwargs)
