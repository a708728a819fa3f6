from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from opsplatform import services
from opsplatform.errors import DomainError


class Command(BaseCommand):
    help = "Create a customer (user + account); prints the account id last."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument(
            "--persona", required=True, help="solo_podcaster, podcast_network, agency or brand"
        )
        parser.add_argument("--name", default="")
        parser.add_argument("--plan", default="starter")
        parser.add_argument("--country", default="US")

    def handle(self, *args, **o):
        try:
            account = services.create_account(
                email=o["email"],
                password=o["password"],
                persona_slug=o["persona"],
                name=o["name"],
                plan=o["plan"],
                country=o["country"],
            )
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        except ValidationError as exc:
            raise CommandError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            ) from exc
        self.stderr.write(f"Created account {account.name!r} for {account.user.email}.")
        self.stdout.write(str(account.id))
