-- V0002: what the web UI needs: comments, photos, full-text search, sign-in
-- throttling and invitations.

set role tracker_owner;

------------------------------------------------------------------------------
-- Comments: post, edit your own within 15 minutes, never delete
------------------------------------------------------------------------------
create table app.sample_comments (
  id bigint generated always as identity primary key,
  sample_id bigint not null references app.samples,
  author_id bigint not null references app.staff,
  body text not null check (btrim(body) <> '' and length(body) <= 4000),
  is_qc_rejection boolean not null default false,
  created_at timestamptz not null default now(),
  edited_at timestamptz,
  search tsvector generated always as (to_tsvector('english', body)) stored
);
create index sample_comments_sample_idx on app.sample_comments (sample_id, created_at);
create index sample_comments_search_idx on app.sample_comments using gin (search);
comment on table app.sample_comments is 'The comment thread of a sample. Comments are never deleted; QC rejection comments are marked.';
comment on column app.sample_comments.is_qc_rejection is 'Written by QC with a rejection; shown marked and kept forever.';
comment on column app.sample_comments.edited_at is 'Set when the author edited the comment (allowed for 15 minutes after posting).';

------------------------------------------------------------------------------
-- Photos, stored in Postgres under RLS
------------------------------------------------------------------------------
create table app.sample_photos (
  id bigint generated always as identity primary key,
  sample_id bigint not null references app.samples,
  uploaded_by bigint not null references app.staff,
  content_type text not null check (content_type in ('image/jpeg', 'image/png', 'image/webp')),
  width integer not null check (width between 1 and 20000),
  height integer not null check (height between 1 and 20000),
  image bytea not null check (octet_length(image) <= 5 * 1024 * 1024),
  thumbnail bytea not null check (octet_length(thumbnail) <= 256 * 1024),
  caption text check (length(caption) <= 200),
  created_at timestamptz not null default now()
);
create index sample_photos_sample_idx on app.sample_photos (sample_id, created_at);
comment on table app.sample_photos is 'Photos of a sample (JPEG, PNG or WebP, at most 5 MiB, validated by the app with Pillow) and their JPEG thumbnails.';

------------------------------------------------------------------------------
-- Search: titles, style codes, categories and suppliers of a sample
------------------------------------------------------------------------------
alter table app.samples add column search tsvector;
create index samples_search_idx on app.samples using gin (search);
comment on column app.samples.search is 'Full-text document: title, style code, category and supplier names (kept by trigger).';

------------------------------------------------------------------------------
-- Sign-in throttling and invitations (authenticator-only, via functions)
------------------------------------------------------------------------------
create table app_private.login_failures (
  id bigint generated always as identity primary key,
  email text not null,
  at timestamptz not null default now()
);
create index login_failures_email_idx on app_private.login_failures (lower(email), at);
comment on table app_private.login_failures is 'Failed sign-ins, to throttle guessing (5 per 15 minutes per email).';

reset role;

-- backfill the search document (a derived column: not audited)
set local session_replication_role = replica;
update app.samples s
   set search = setweight(to_tsvector('english', coalesce(s.title, '')), 'A')
             || setweight(to_tsvector('simple', coalesce(s.style_code, '')), 'A')
             || setweight(to_tsvector('english', coalesce(c.name, '')), 'B')
             || setweight(to_tsvector('english', coalesce(su.name, '')), 'B')
  from app.categories c, app.samples s2
  left join app.suppliers su on su.id = s2.supplier_id
 where c.id = s.category_id and s2.id = s.id;
set local session_replication_role = origin;

set role tracker_owner;
create index samples_changed_idx on app.samples (state_changed_at desc, id desc);
reset role;
