"""`scrub_admin_log`, the one helper every app's eraser uses for the admin log lines about
the objects it erases."""

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType

from opsplatform import privacy
from opsplatform.models import Account, Sponsor
from tests.factories import AccountFactory, staff_in

pytestmark = pytest.mark.django_db

ERASED = "Details erased with the account's personal data."


def log_line(staff, model, object_id, text, flag=CHANGE) -> LogEntry:
    return LogEntry.objects.create(
        user=staff,
        content_type=ContentType.objects.get_for_model(model),
        object_id=str(object_id),
        object_repr=text,
        action_flag=flag,
        change_message=f'[{{"changed": {{"fields": ["Name"]}}}}, "{text}"]',
    )


def test_scrubs_the_lines_of_those_objects_only_and_keeps_who_did_what_when():
    staff = staff_in(is_superuser=True)
    mine = AccountFactory(name="Jane Doe Podcast")
    other = AccountFactory(name="Other Show")
    added = log_line(staff, Account, mine.pk, "Jane Doe Podcast", ADDITION)
    deleted = log_line(staff, Account, mine.pk, "Jane Doe Podcast", DELETION)
    other_line = log_line(staff, Account, other.pk, "Other Show")
    # The same id under another model is another object.
    same_id = log_line(staff, Sponsor, mine.pk, "Jane Doe Bakery")
    before = {e.pk: (e.object_repr, e.change_message) for e in (other_line, same_id)}

    assert privacy.scrub_admin_log(Account, [mine.pk]) == 2

    for line, flag in ((added, ADDITION), (deleted, DELETION)):
        line.refresh_from_db()
        assert (line.object_repr, line.change_message) == ("account (erased)", ERASED)
        assert (line.user_id, line.action_flag, line.object_id) == (staff.pk, flag, str(mine.pk))
    after = {
        e.pk: (e.object_repr, e.change_message)
        for e in LogEntry.objects.filter(pk__in=[other_line.pk, same_id.pk])
    }
    assert after == before


def test_is_set_based_over_many_ids_and_safe_to_repeat(django_assert_max_num_queries):
    staff = staff_in(is_superuser=True)
    content_type = ContentType.objects.get_for_model(Account)
    ids = range(1, 1201)  # more than one chunk: 3 UPDATEs
    LogEntry.objects.bulk_create(
        LogEntry(
            user=staff,
            content_type=content_type,
            object_id=str(i),
            object_repr=f"Customer {i}",
            action_flag=CHANGE,
            change_message="renamed by jane@example.com",
        )
        for i in [*ids, 5000]
    )

    with django_assert_max_num_queries(4):  # content types (cached) + one UPDATE per 500 ids
        first = privacy.scrub_admin_log(Account, ids)
    second = privacy.scrub_admin_log(Account, list(ids))

    assert (first, second) == (1200, 0)
    assert LogEntry.objects.filter(object_repr="account (erased)").count() == 1200
    assert LogEntry.objects.get(object_id="5000").object_repr == "Customer 5000"
    assert privacy.scrub_admin_log(Account, []) == 0
