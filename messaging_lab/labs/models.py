"""What a lab is in the database: its identity, owner and seed, and the log of every command.

The engine state itself is not stored here: it is rebuilt by replaying the
command log on the same seed (the engine is deterministic) up to the simulated
time last shown to anyone (``Lab.sim_time_ms``, saved before each frame).
"""

from __future__ import annotations

import secrets

from django.db import models

MAX_LABS_PER_VISITOR = 5
LAB_ID_BYTES = 16  # 22 URL-safe characters: unguessable


def new_token() -> str:
    return secrets.token_urlsafe(LAB_ID_BYTES)


class Lab(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=new_token, editable=False)
    share_token = models.CharField(max_length=32, unique=True, default=new_token, editable=False)
    owner_session = models.CharField(max_length=64, db_index=True, blank=True)
    owner = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.CASCADE)
    name = models.CharField(max_length=80)
    template = models.CharField(max_length=40, default="sandbox")
    exercise = models.CharField(max_length=64, blank=True, default="")  # a guided lab's fixture id, else ""
    brokers = models.PositiveSmallIntegerField(default=3)
    seed = models.BigIntegerField()
    sim_time_ms = models.BigIntegerField(default=0)
    speed = models.FloatField(default=1.0)
    paused = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)
    # A fork's source and the simulated moment it was forked at (what /labs/<fork>/compare compares).
    # Kept in the database, not the session, so the comparison works from any browser that owns the fork.
    forked_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="forks")
    forked_at_ms = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.template}, seed {self.seed})"


class LabCommand(models.Model):
    """One command a learner gave, at the simulated time it was applied (replayed in ``seq`` order)."""

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="commands")
    seq = models.PositiveIntegerField()
    sim_time_ms = models.BigIntegerField()
    kind = models.CharField(max_length=40)
    args = models.JSONField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["seq"]
        constraints = [models.UniqueConstraint(fields=["lab", "seq"], name="one_command_per_seq")]
