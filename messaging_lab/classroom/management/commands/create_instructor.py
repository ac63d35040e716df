"""``manage.py create_instructor USERNAME [--password P] [--email E]``: an instructor account for classrooms."""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from messaging_lab.classroom import services


class Command(BaseCommand):
    help = ("Create an instructor: a Django user in the 'instructors' group who can log in at /classroom/login "
            "and run classes. Without --password the password is asked for twice (in a terminal).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--password", help="the password (else prompted; visible in shell history if given)")
        parser.add_argument("--email", default="", help="an email address (optional)")

    def handle(self, *args: Any, **options: Any) -> None:
        password = options["password"]
        if password is None:
            if not sys.stdin.isatty():
                raise CommandError("no terminal to ask for a password in; give --password")
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                raise CommandError("the two passwords differ")
        try:
            user = services.create_instructor(options["username"], password, options["email"])
        except services.ClassroomError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(
            f"Instructor {user.username!r} created; log in at /classroom/login to create a class."))
