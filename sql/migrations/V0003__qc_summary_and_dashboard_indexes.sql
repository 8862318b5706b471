-- V0003: QC summaries kept by the lifecycle functions, so dashboards and the sample
-- page need no per-row subqueries at a million samples; an index for team-season
-- headlines.
set role tracker_owner;

alter table app.samples add column last_qc_result app.qc_result;
comment on column app.samples.last_qc_result is 'Result of the latest QC inspection (null: never inspected); kept by app.record_inspection().';
create index samples_awaiting_qc_idx on app.samples (state_changed_at) where state = 'received' and last_qc_result is null;
create index samples_team_season_idx on app.samples (team_id, season_id);

create table app.supplier_quality (
  supplier_id integer primary key references app.suppliers,
  inspections integer not null default 0 check (inspections >= 0),
  rejects integer not null default 0 check (rejects between 0 and inspections),
  updated_at timestamptz not null default now()
);
comment on table app.supplier_quality is 'A supplier''s QC record: inspections and rejections, counted forever; kept by app.record_inspection().';

reset role;

set local session_replication_role = replica;  -- derived data: not audited
update app.samples s set last_qc_result = i.result
  from (select distinct on (sample_id) sample_id, result from app.qc_inspections
         order by sample_id, inspected_at desc, id desc) i
 where i.sample_id = s.id;
insert into app.supplier_quality (supplier_id, inspections, rejects)
select s.supplier_id, count(*), count(*) filter (where i.result = 'reject')
  from app.qc_inspections i join app.samples s on s.id = i.sample_id
 where s.supplier_id is not null
 group by s.supplier_id;
set local session_replication_role = origin;
