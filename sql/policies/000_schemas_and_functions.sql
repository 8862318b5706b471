-- Schema usage and function execution, grouped by grantee. This list IS the public
-- API: tests/test_api_boundary.py compares what each role can execute with
-- tests/api_allowlist.yml and fails on anything new.
-- Tables get their grants in their own file (one file per table).
set local role tracker_owner;

-- PUBLIC gets nothing: functions are created with EXECUTE for PUBLIC by default
revoke execute on all functions in schema app, app_private from public;

------------------------------------------------------------------------------
-- every staff role (the web app after SET ROLE, and personal logins)
------------------------------------------------------------------------------
grant usage on schema app to staff;
-- who am I, and what time is it
grant execute on function app.current_staff_id(), app.current_staff_role(), app.current_team_id(), app.clock(),
    app.current_staff_email(), app.current_staff_is_director()
  to staff;
-- rules the pages show as well as enforce (one definition each, read by policies, functions and the web app)
grant execute on function app.comment_edit_window(), app.loan_days(), app.holder_roles(app.sample_state),
    app.link_validity(text)
  to staff;
-- the lifecycle entry points: each finds the caller from the session and checks
-- role, scope and state against app.transition_rules itself, so every role may call
-- them and gets the rule's own sentence when it may not act
grant execute on function
    app.request_sample(text, integer, integer, integer, text, boolean, text, bigint[]),
    app.order_sample(bigint, integer, numeric, text, date, integer, numeric, text, boolean, text, bigint[], boolean),
    app.withdraw_request(bigint, text),
    app.receive_sample(bigint, integer, date, text),
    app.hand_to_design(bigint, bigint, text),
    app.hand_to_sales(bigint, bigint, text),
    app.hand_back(bigint, integer, text),
    app.send_to_factory(bigint, integer, text),
    app.return_from_factory(bigint, integer, text),
    app.return_to_supplier(bigint, text, text),
    app.approve_for_production(bigint, text),
    app.buy_out(bigint, text),
    app.confirm_handover(bigint, text),
    app.cut_for_production(bigint, text),
    app.record_inspection(bigint, app.qc_result, text, text),
    app.override_state(bigint, app.sample_state, text, integer, bigint, integer, text, date),
    app.correct_sample(bigint, text, text, integer, integer, date, numeric, text, integer, text, text),
    app.cancel_order(bigint, text),
    app.remove_photo(bigint, text),
    app.removable_photos(bigint),
    app.available_actions(bigint),
    app.holder_choices(bigint, text),
    app.search_samples(text, integer, integer),
    -- repeat mistakes: similar samples, supplier records and holds (each checks the caller's role itself)
    app.similar_samples(text, integer, integer, integer, text, bigint, integer),
    app.supplier_record(integer),
    app.supplier_recent_rejects(integer, integer),
    -- the sample room: many samples at once (each checked like a single action)
    app.bulk_act(text, bigint[], jsonb, boolean, text),
    -- a form's stale-version check before its action (TR017)
    app.expect_sample_version(bigint, integer)
  to staff;
-- likely duplicate pairs, their dismissal, and supplier holds: senior buyers and directors
grant execute on function app.duplicate_pairs(integer, integer), app.dismiss_duplicate(bigint, bigint, text),
    app.hold_supplier(integer, text), app.lift_supplier_hold(integer, text)
  to senior_buyer, ops_director, md;
-- stocktakes: logistics and directors count (each function checks the role as well)
grant execute on function app.start_stocktake(integer), app.count_sample(bigint, bigint),
    app.close_stocktake(bigint), app.stocktake_report(bigint)
  to logistics, ops_director, md;
-- importing the old spreadsheet: logistics, senior buyers and the system admin (checked inside too)
grant execute on function app.import_sample(text, jsonb, boolean) to logistics, senior_buyer, system_admin;
-- NOTE: app_private is granted to no staff role, not even USAGE: its functions take
--       identities and rows as parameters and trust them, so they run only inside
--       the definer entry points above (and are SECURITY INVOKER, so calling one
--       directly would run with the caller's own rights anyway).

-- spend analytics (issue 13): "refresh now"; it lets only directors refresh (TR040)
grant execute on function app.refresh_analytics()
  to staff;

------------------------------------------------------------------------------
-- authenticator: schema usage and who-am-I; its sign-in, session and invitation
-- functions are granted in 042_web_sessions.sql (it holds no other privilege of its
-- own; everything else happens after SET LOCAL ROLE)
------------------------------------------------------------------------------
grant usage on schema app, app_private to authenticator;
grant execute on function app.current_staff_id() to authenticator;
-- NOTE: sign out, invitations and password resets (app.end_session, app.create_invite,
--       app.reset_password) are granted in 042_web_sessions.sql, beside their table.

reset role;
set local role audit_owner;
revoke execute on all functions in schema audit from public;
grant usage on schema audit to system_admin, ops_director, md;
grant execute on function audit.verify_chain() to system_admin, ops_director, md;
-- NOTE: audit.tg_any__record_change() and audit.tg_any__forbid_change() are trigger
-- functions; no role executes them directly. audit.seal() and audit.run_sealer() are run by pg_cron and the
-- seal-audit command as the database owner, never by a staff role.

reset role;
-- readiness (/readyz, tracker/web/health.py): the web app's login may read which migrations
-- are applied (version numbers and names only; pgmigrate's own table, in public)
grant select on public.schema_version to authenticator;
