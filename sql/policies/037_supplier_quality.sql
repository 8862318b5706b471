-- app.supplier_quality: each supplier's QC record. Everyone reads; only the lifecycle writes.
set local role tracker_owner;
alter table app.supplier_quality enable row level security;
alter table app.supplier_quality force row level security;

create policy select_everyone on app.supplier_quality for select
  to buyer, senior_buyer, designer, sales_lead, sales_executive, qc, factory_liaison, logistics, finance,
     ops_director, md, system_admin
  using (true);
comment on policy select_everyone on app.supplier_quality is 'Every staff role sees every supplier''s QC record (counts only, across all teams).';
-- NOTE: insert/update/delete are not granted: app.record_inspection() keeps the counts, and they only grow.

grant select on app.supplier_quality to buyer, senior_buyer, designer, sales_lead, sales_executive, qc,
  factory_liaison, logistics, finance, ops_director, md, system_admin;
