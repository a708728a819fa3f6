"""Forms of the customer support pages (Django forms reject NUL characters themselves)."""

from django import forms

from support import attachments as rules
from support.attachments import IncomingFile
from support.models import Priority


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class AttachmentsField(forms.FileField):
    """Optional files (several at once), checked against the attachment limits before being
    read, and returned as IncomingFiles for the services (which check their content)."""

    widget = MultipleFileInput

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("label", "Attach files (optional)")
        super().__init__(**kwargs)

    def clean(self, data, initial=None):
        uploads = data if isinstance(data, list | tuple) else ([data] if data else [])
        if len(uploads) > rules.max_count():
            raise forms.ValidationError(f"At most {rules.max_count()} files.")
        files = []
        for upload in uploads:
            if upload.size > rules.max_bytes():
                raise forms.ValidationError(
                    f"{upload.name} is larger than {rules.max_bytes() // (1024 * 1024)} MB."
                )
            files.append(
                IncomingFile(
                    filename=upload.name or "",
                    content_type=upload.content_type or "",
                    data=upload.read(),
                )
            )
        return files


class TicketForm(forms.Form):
    subject = forms.CharField(max_length=200)
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}), max_length=50_000, label="How can we help?"
    )
    priority = forms.ChoiceField(choices=Priority.choices, initial=Priority.NORMAL)
    attachments = AttachmentsField()


class ReplyForm(forms.Form):
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}), max_length=50_000, label="Your reply"
    )
    attachments = AttachmentsField()


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
