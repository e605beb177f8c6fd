"""Backups, restores and clones of a stack's data: PostgreSQL databases, volumes and the secrets they need.

Split like the rest of AddonStack: ``manifest`` and ``jobs`` are pure (what a backup holds; the Job and
CronJob objects that make one), ``agent`` is the program those Jobs run (``python -m addonstack.backup.agent``:
pg_dump/pg_restore, tar, S3 through ``store``), and ``crypto`` seals the secret values a restore needs. The
operator's handlers (``addonstack.controller.backup_handlers``) only apply the planned objects and report.
"""
