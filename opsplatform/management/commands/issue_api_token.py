from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from opsplatform import services


class Command(BaseCommand):
    help = "Create an API token for a user (username or email); prints the token last."

    def add_arguments(self, parser):
        parser.add_argument("user", help="username or email")
        parser.add_argument("--label", default="CLI token")

    def handle(self, *args, user, label, **options):
        User = get_user_model()
        matches = list(User.objects.filter(Q(username__iexact=user) | Q(email__iexact=user))[:2])
        if not matches:
            raise CommandError(f"No user with username or email {user!r}.")
        if len(matches) > 1:
            raise CommandError(f"{user!r} matches several users; give the username.")
        if not matches[0].is_active:
            raise CommandError(f"User {user!r} is inactive.")
        token, raw = services.issue_api_token(user=matches[0], label=label)
        self.stderr.write(
            f"Token {token.token_prefix}… for {matches[0].get_username()}; "
            "it is shown once, store it now."
        )
        self.stdout.write(raw)
