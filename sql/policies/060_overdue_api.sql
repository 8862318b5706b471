-- The overdue monitoring entry points (issue 12). Each definer finds the caller from
-- the session; app.overdue_hits is an invoker over scalars that the dashboards' view
-- (security_invoker) calls under the caller's role.
set local role tracker_owner;
grant execute on function
    app.overdue_hits(bigint, app.sample_state, timestamptz, date, date, boolean, date, timestamptz),
    app.my_overdue(date, bigint),
    app.extend_due_date(bigint, text, date, text),
    app.mark_chased(bigint, text, text),
    app.queue_my_overdue_pdf(),
    app.overdue_responsible_roles()
  to staff;
grant execute on function app.captured_mail(integer, integer) to system_admin;
-- NOTE: app_private.overdue_for, queue_overdue_mail, queue_digests and queue_welcome_mail
--       are the owner's (pg_cron's jobs, the mailer); no staff role executes them.
