"""The admin's "run a study" form; the service checks the period and the persona again."""

from django import forms

from opsplatform.models import Persona
from studies.models import Study


class RunStudyForm(forms.Form):
    study_type = forms.ChoiceField(choices=Study.Type.choices)
    period_start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    period_end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    persona_segment = forms.ModelChoiceField(
        queryset=Persona.objects.order_by("slug"),
        required=False,
        to_field_name="slug",
        empty_label="All accounts",
    )
    background = forms.BooleanField(
        required=False, help_text="Queue it for the worker instead of waiting for the result."
    )
