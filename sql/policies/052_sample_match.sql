-- app_private.sample_match: what the near-duplicate check matches a sample on (V0023), one row
-- per sample, kept by the triggers after_insert_keep_match / after_update_keep_match (app.samples).
set local role tracker_owner;
alter table app_private.sample_match enable row level security;
alter table app_private.sample_match force row level security;
-- NOTE: no policy and no grant: it is read only by app.similar_samples and app.duplicate_pairs
--       (SECURITY DEFINER), which join it to app.samples and return only the samples the caller
--       can see (app_private.can_see_sample), and only columns every role that sees a sample may
--       read.
