"""Check account health from the shell: one account (--account ID) or all (--all); prints the
counts by status and the accounts per second."""

from django.core.management.base import BaseCommand, CommandError

from deployments.health import services
from opsplatform.errors import DomainError


class Command(BaseCommand):
    help = "Check one account's health (--account ID) or every account's (--all)."

    def add_arguments(self, parser):
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--all", action="store_true", help="check every account")
        target.add_argument("--account", type=int, metavar="ID", help="check one account")
        parser.add_argument("--days", type=int, default=30, help="window in days (default 30)")
        parser.add_argument(
            "--batch-size", type=int, default=500, help="accounts per batch (default 500)"
        )

    def handle(self, *args, **options):
        try:
            if options["account"] is not None:
                check = services.check_account_health(
                    user_id=options["account"], days=options["days"]
                )
                self.stdout.write(
                    f"Account {check.account_id}: {check.status}, score {check.score}"
                    + (f" ({'+' if check.delta > 0 else ''}{check.delta})" if check.delta else "")
                )
                for rec in check.recommendations:
                    self.stdout.write(f"  - {rec['text']}")
                counts, rate = {check.status: 1}, None
            else:
                result = services.check_all_accounts(
                    batch_size=options["batch_size"], days=options["days"]
                )
                counts, rate = result["counts"], result["accounts_per_second"]
                self.stdout.write(
                    f"Checked {result['checked']} accounts in {result['seconds']} s "
                    f"({result['batches']} batches); {result['changed_total']} changed status."
                )
        except DomainError as exc:
            raise CommandError(exc.detail) from None
        for status, n in counts.items():
            self.stdout.write(f"{status:>9}: {n}")
        if rate is not None:
            self.stdout.write(f"accounts per second: {rate}")
