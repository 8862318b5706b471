-- app_private.mail_outbox: mail the database decided to send (morning overdue lists,
-- welcome mails, digests), drained by the mailer (python -m alerts) as the owner.
set local role tracker_owner;
alter table app_private.mail_outbox enable row level security;
alter table app_private.mail_outbox force row level security;
-- NOTE: no policy and no grant: the rows hold sign-up tokens until sent and every
--       person's overdue list; only the owner (pg_cron's jobs, the mailer) reads them.
