import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from opsplatform.demo import DEMO_CUSTOMERS, DEMO_PASSWORD, DEMO_STAFF, DemoContext
from opsplatform.models import Account
from opsplatform.registry import app_modules


class Command(BaseCommand):
    help = (
        "Write deterministic demo data: accounts of every persona with renewal chains, "
        "seasonal daily metrics, usage events, and every app's demo rows."
    )

    def add_arguments(self, parser):
        parser.add_argument("--accounts", type=int, default=50)
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument(
            "--as-of",
            type=dt.date.fromisoformat,
            default=None,
            help="the 'today' of the data (YYYY-MM-DD); default today",
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="do nothing (but print the logins) when accounts exist",
        )

    def handle(self, *args, accounts, seed, as_of, if_empty, **options):
        if accounts < 1:
            raise CommandError("--accounts must be at least 1.")
        if if_empty and Account.objects.exists():
            self.stdout.write("Demo data already present; nothing seeded.")
            self._print_logins()
            return
        ctx = DemoContext(
            seed=seed,
            accounts_wanted=accounts,
            as_of=as_of or timezone.localdate(),
            write=self.stdout.write,
        )
        started = time.perf_counter()
        for module in app_modules("demo"):
            step = time.perf_counter()
            module.seed_demo(ctx)
            self.stdout.write(f"  {module.__name__}: {time.perf_counter() - step:.1f}s")
        elapsed = time.perf_counter() - started
        rows = sum(ctx.counts.values())
        summary = ", ".join(f"{v:,} {k}" for k, v in ctx.counts.items())
        self.stdout.write(f"Seeded {summary} in {elapsed:.1f}s ({rows / elapsed:,.0f} rows/s).")
        self._print_logins()

    def _print_logins(self):
        self.stdout.write(f"Demo logins (password: {DEMO_PASSWORD}):")
        for username, groups, superuser in DEMO_STAFF:
            role = "superuser" if superuser else ", ".join(groups)
            self.stdout.write(f"  staff     {username:<22} {role}")
        for persona, (email, _name) in DEMO_CUSTOMERS.items():
            self.stdout.write(f"  customer  {email:<22} {persona}")
