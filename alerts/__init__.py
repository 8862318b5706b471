"""Overdue mail, welcome mail and PDF digests (issue 12). The database decides who gets
what (sql/functions/090_overdue.sql fills app_private.mail_outbox); this package only
renders and sends: `python -m alerts` drains the outbox over SMTP."""
