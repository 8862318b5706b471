-- app_private.mail_capture: mail received by the local capture server (make run).
set local role tracker_owner;
alter table app_private.mail_capture enable row level security;
alter table app_private.mail_capture force row level security;
-- NOTE: no policy and no grant: the capture server writes as the owner; the system
--       admin reads through app.captured_mail(), which checks the role itself.
