"""The permission matrix (sql/permission_matrix.yml), cell by cell, against the live
database: every role x table x operation x column, run as a demo staff member of
that role, exactly as the web app acts. The SQL meaning of each row scope is written
here, independently of the policies. Every "cannot" is paired with a positive
control: the hidden rows exist (seen as the owner), the allowed rows exist too."""
from pathlib import Path

import psycopg
import pytest
import yaml

from conftest import act_as

MATRIX = yaml.safe_load((Path(__file__).resolve().parent.parent / "sql" / "permission_matrix.yml").read_text())
ROLES = MATRIX["roles"]
TABLES = MATRIX["tables"]

PK = {"app.sample_costs": "sample_id", "app.qc_inspection_notes": "inspection_id",
      "app_private.staff_credentials": "staff_id", "app_private.demo_clock": "singleton",
      "audit.chain_head": "singleton", "app.currencies": "code", "app.supplier_quality": "supplier_id",
      "app.duplicate_dismissals": "sample_a", "app.import_layouts": "header_key",
      "app_private.sample_match": "sample_id", "audit.seals": "seq"}

# what each scope means for samples, as SQL over app.samples (alias s); %(team)s is the persona's team
SAMPLE_SCOPES = {
    "all": "true",
    "own_team_or_in_flight": "s.team_id = %(team)s or s.state not in ('returned', 'cut-for-production')",
    "ordered_onward": "s.state <> 'requested'",
    "received_onward": "s.received_on is not null",
    "factory_bound": "s.factory_id is not null or s.state in ('received', 'with-design', 'with-sales')",
    "own_team_before_receipt": "s.team_id = %(team)s and s.state in ('requested', 'ordered')",
    "in_building": "s.state in ('received', 'with-design', 'with-sales')",
    "own_team": "s.team_id = %(team)s",
}


def scope_sql(table: str, scope: str, role: str) -> str:
    """A WHERE clause, over the table aliased t, selecting the rows `scope` covers."""
    if scope == "all":
        return "true"
    if scope == "none":
        return "false"
    if table == "app.samples":
        return f"t.id in (select s.id from app.samples s where {SAMPLE_SCOPES[scope]})"
    if table == "app.budgets" and scope == "own_team":
        return "t.team_id = %(team)s"
    if table == "app.sample_costs" and scope == "own_team":
        return f"t.sample_id in (select s.id from app.samples s where {SAMPLE_SCOPES['own_team']})"
    if table == "app.qc_inspection_notes" and scope == "own_team":
        return ("t.inspection_id in (select i.id from app.qc_inspections i join app.samples s on s.id = i.sample_id "
                f"where {SAMPLE_SCOPES['own_team']})")
    if scope == "visible_sample":
        sample_scope = expand(TABLES["app.samples"]["select"])[role]
        return f"t.sample_id in (select s.id from app.samples s where {SAMPLE_SCOPES[sample_scope]})"
    if table == "app.realtime_events" and scope == "visible_signal":
        sample_scope = expand(TABLES["app.samples"]["select"])[role]
        costs = expand(TABLES["app.sample_costs"]["select"]).get(role)
        cost_sql = {"all": "true", "own_team": SAMPLE_SCOPES["own_team"]}.get(costs, "false")
        # a supplier's signal (no sample) goes to everyone: every role reads every supplier
        return (f"t.kind = 'supplier' or t.sample_id in (select s.id from app.samples s "
                f"where ({SAMPLE_SCOPES[sample_scope]}) and (t.kind <> 'cost' or {cost_sql}))")
    if table == "app.sample_comments" and scope == "own_recent":
        return ("t.author_id = (select id from app.staff where email = '" + role + "@example.com') "
                "and not t.is_qc_rejection and t.created_at > now() - interval '15 minutes'")
    if scope == "own_rows":
        return f"t.staff_id = (select id from app.staff where email = '{role}@example.com')"
    if scope == "visible_pair":
        sample_scope = SAMPLE_SCOPES[expand(TABLES["app.samples"]["select"])[role]]
        return (f"t.sample_a in (select s.id from app.samples s where {sample_scope}) "
                f"and t.sample_b in (select s.id from app.samples s where {sample_scope})")
    if table == "audit.log" and scope == "not_sensitive":
        # the tables whose rows the role may not read in full, by this same matrix
        hidden = sorted(t for t, ops in TABLES.items() if t.startswith("app.")
                        and expand((ops or {}).get("select")).get(role, "denied") in ("none", "denied", "own_rows"))
        assert "app.sample_costs" in hidden and "app.budgets" in hidden
        return "t.table_name not in (%s)" % ", ".join(f"'{t}'" for t in hidden)
    raise AssertionError(f"no SQL for scope {scope} on {table}")


def expand(cells: dict | None) -> dict:
    out = {}
    for who, v in (cells or {}).items():
        for role in (ROLES if who == "everyone" else [who]):
            out[role] = v
    return out


def persona(conn, role):
    row = conn.execute("select id, team_id from app.staff where email = %s", (f"{role}@example.com",)).fetchone()
    return {"id": row[0], "role": role, "team_id": row[1]}


def fingerprint(conn, table, where="true", params=None):
    pk = PK.get(table, "id")
    return conn.execute(f"select count(*), md5(coalesce(string_agg(t.{pk}::text, ',' order by t.{pk}), '')) "
                        f"from {table} t where {where}", params).fetchone()


def as_role(conn, role, sql, params=None):
    """Run sql as the role's demo persona inside a savepoint; returns the cursor or the SQLSTATE."""
    p = persona(conn, role)
    try:
        with conn.transaction():
            act_as(conn, p)
            cur = conn.execute(sql, params)
            result = cur.fetchone() if cur.description else cur.rowcount
            act_as(conn, None)
            return result
    except psycopg.Error as exc:
        return exc.sqlstate


# ---------------------------------------------------------------------------- select
SELECT_CASES = [(t, r) for t in TABLES for r in ROLES]


@pytest.mark.parametrize("table,role", SELECT_CASES, ids=[f"{t}-{r}" for t, r in SELECT_CASES])
def test_select(conn, table, role):
    scope = expand(TABLES[table].get("select")).get(role, "denied")
    team = persona(conn, role)["team_id"]
    seen = as_role(conn, role, f"select count(*), md5(coalesce(string_agg(t.{PK.get(table, 'id')}::text, ',' "
                               f"order by t.{PK.get(table, 'id')}), '')) from {table} t")
    total = fingerprint(conn, table)
    if scope == "denied":
        assert seen == "42501"
        return
    expected = fingerprint(conn, table, scope_sql(table, scope, role), {"team": team})
    assert tuple(seen) == expected
    # positive control: something really is hidden (for visible_sample the hiding is
    # proven on app.samples itself; e.g. every inspection is of a received sample)
    if scope not in ("all", "visible_sample", "visible_pair", "visible_signal"):
        assert total[0] > expected[0], f"{table}: nothing hidden from {role}; the case proves nothing"
    if scope != "none":  # and something really is visible
        assert expected[0] > 0, f"{table}: no rows in scope {scope} for {role}"


# ---------------------------------------------------------------------------- select, per column
def all_columns(conn, table):
    schema, name = table.split(".")
    return [r[0] for r in conn.execute(
        "select column_name from information_schema.columns where table_schema = %s and table_name = %s "
        "order by ordinal_position", (schema, name)).fetchall()]


COLUMN_CASES = [(t, r) for t in TABLES if "select_columns" in TABLES[t] for r in ROLES]


@pytest.mark.parametrize("table,role", COLUMN_CASES, ids=[f"{t}-{r}" for t, r in COLUMN_CASES])
def test_select_every_column(conn, table, role):
    """Tables whose columns differ by role: every column, read alone, is allowed or 42501."""
    allowed = expand(TABLES[table]["select_columns"])[role]
    columns = all_columns(conn, table)
    allowed = columns if allowed == "all" else allowed
    assert set(allowed) <= set(columns)
    got = {c: as_role(conn, role, f"select count({c}) from {table}") for c in columns}
    denied = sorted(c for c, v in got.items() if v == "42501")
    assert denied == sorted(set(columns) - set(allowed)), f"{role} on {table}"
    # positive control: an allowed column really returns the rows the policies let through
    assert got["id"][0] > 0


# ---------------------------------------------------------------------------- update
def updatable_columns(conn, table):
    schema, name = table.split(".")
    return [r[0] for r in conn.execute(
        "select column_name from information_schema.columns where table_schema = %s and table_name = %s "
        "and is_identity = 'NO' and is_generated = 'NEVER' order by ordinal_position", (schema, name)).fetchall()]


UPDATE_CASES = [(t, r) for t in TABLES for r in ROLES]


@pytest.mark.parametrize("table,role", UPDATE_CASES, ids=[f"{t}-{r}" for t, r in UPDATE_CASES])
def test_update_every_column(conn, table, role):
    rule = expand(TABLES[table].get("update")).get(role)
    team = persona(conn, role)["team_id"]
    pk = PK.get(table, "id")
    allowed_cols = set(rule["columns"]) if rule else set()
    in_scope = out_scope = None
    if rule and rule["rows"] == "own_recent":
        # the positive control needs a fresh comment of this person's
        me = persona(conn, role)["id"]
        conn.execute(f"insert into app.sample_comments (sample_id, author_id, body) values (({VISIBLE_TO_ALL}), %s, "
                     "'fresh comment')", (me,))
    if rule:
        where = scope_sql(table, rule["rows"], role)
        in_scope = conn.execute(f"select t.{pk} from {table} t where {where} order by 1 limit 1",
                                {"team": team}).fetchone()
        out_scope = conn.execute(f"select t.{pk} from {table} t where not ({where}) order by 1 limit 1",
                                 {"team": team}).fetchone()
        assert in_scope, f"positive control: no {table} row in scope {rule['rows']} for {role}"
        assert set(rule["columns"]) <= set(updatable_columns(conn, table))
    any_row = conn.execute(f"select t.{pk} from {table} t order by 1 limit 1").fetchone()
    for col in updatable_columns(conn, table):
        if col in allowed_cols:
            got = as_role(conn, role, f"update {table} set {col} = {col} where {pk} = %s", in_scope)
            assert got == 1, f"{role} should update {table}.{col} on an in-scope row, got {got}"
            if out_scope:
                got = as_role(conn, role, f"update {table} set {col} = {col} where {pk} = %s", out_scope)
                assert got == 0, f"{role} updated {table}.{col} on a row outside its scope"
        else:
            got = as_role(conn, role, f"update {table} set {col} = {col} where {pk} = %s",
                          any_row or (None,))
            assert got == "42501", f"{role} must not update {table}.{col}, got {got}"


# ---------------------------------------------------------------------------- insert
INSERT_ROWS = {
    "app.teams": {"code": "ZZ", "name": "Test team"},
    "app.categories": {"name": "Test category", "department": "Test"},
    "app.seasons": {"code": "SS99", "name": "Test season", "starts_on": "2098-07-01", "ends_on": "2099-06-30"},
    "app.locations": {"code": "TEST-01", "name": "Test shelf", "kind": "shelf"},
    "app.factories": {"name": "Test factory", "country": "GB", "city": "Testville", "active": True},
    "app.currencies": {"code": "CHF", "name": "Swiss franc", "gbp_rate": 0.9},
    "app.staff": {"email": "new.person@example.com", "full_name": "New Person", "role": "designer",
                  "team_id": None, "active": True},
    "app.suppliers": {"name": "Test supplier", "country": "GB"},
    "app.supplier_contacts": {"supplier_id": "__supplier__", "name": "Test contact", "email": "t@example.com",
                              "phone": "0", "position": "Sales"},
    "app.sample_comments": {"sample_id": "__sample__", "author_id": "__me__", "body": "Test comment"},
    "app.watches": {"staff_id": "__me__", "sample_id": "__sample__", "supplier_id": None},
    "app.import_batches": {"staff_id": "__me__", "filename": "x.csv", "headers": ["a"], "rows": "[]", "mapping": "{}"},
    "app.import_layouts": {"header_key": "test-layout", "mapping": "{}"},
    "app.budgets": {"team_id": "__my_team__", "season_id": "__season__", "category_id": "__free_category__",
                    "amount_gbp": 1000},
    "app.sample_photos": {"sample_id": "__sample__", "uploaded_by": "__me__", "content_type": "image/png",
                          "width": 1, "height": 1, "image": b"\x89PNG", "thumbnail": b"\xff\xd8", "caption": "x"},
}
# a sample every role can see: received, in the building
VISIBLE_TO_ALL = "select min(id) from app.samples where state = 'received'"
INSERT_CASES = [(t, r) for t in TABLES for r in ROLES]


@pytest.mark.parametrize("table,role", INSERT_CASES, ids=[f"{t}-{r}" for t, r in INSERT_CASES])
def test_insert(conn, table, role):
    cols = expand(TABLES[table].get("insert")).get(role)
    row = dict(INSERT_ROWS.get(table, {}))
    if row.get("supplier_id") == "__supplier__":
        row["supplier_id"] = conn.execute("select min(id) from app.suppliers").fetchone()[0]
    for key, value in row.items():
        if value == "__sample__":
            row[key] = conn.execute(VISIBLE_TO_ALL).fetchone()[0]
        elif value == "__me__":
            row[key] = persona(conn, role)["id"]
        elif value == "__my_team__":
            row[key] = persona(conn, role)["team_id"] or conn.execute("select min(id) from app.teams").fetchone()[0]
        elif value == "__season__":
            row[key] = conn.execute("select min(id) from app.seasons").fetchone()[0]
    if "category_id" in row and row["category_id"] == "__free_category__":  # a budget not set yet
        row["category_id"] = conn.execute(
            "select min(c.id) from app.categories c where not exists (select 1 from app.budgets b where "
            "b.category_id = c.id and b.team_id = %s and b.season_id = %s)", (row["team_id"], row["season_id"])
        ).fetchone()[0]
    if not row:
        assert cols is None
        assert as_role(conn, role, f"insert into {table} default values") == "42501"
        return
    names = ", ".join(row)
    marks = ", ".join(["%s"] * len(row))
    got = as_role(conn, role, f"insert into {table} ({names}) values ({marks})", list(row.values()))
    if cols is None:
        assert got == "42501", f"{role} must not insert into {table}, got {got}"
        return
    assert set(row) == set(cols), "the insert template must use exactly the granted columns"
    assert got == 1, f"{role} should insert into {table}, got {got}"


@pytest.mark.parametrize("role", [r for r in ROLES if r not in ("system_admin", "ops_director", "md")])
def test_nobody_but_admins_insert_staff(conn, role):
    got = as_role(conn, role, "insert into app.staff (email, full_name, role) values ('x@example.com', 'X', 'md')")
    assert got == "42501"


def test_admin_cannot_set_a_login_role(conn):
    got = as_role(conn, "system_admin", "update app.staff set login_role = 'postgres' where email = 'md@example.com'")
    assert got == "42501"
    assert as_role(conn, "system_admin", "update app.staff set full_name = full_name where email = 'designer@example.com'") == 1


# ---------------------------------------------------------------------------- delete
DELETE_CASES = [(t, r) for t in TABLES for r in ROLES]


@pytest.mark.parametrize("table,role", DELETE_CASES, ids=[f"{t}-{r}" for t, r in DELETE_CASES])
def test_delete(conn, table, role):
    scope = expand(TABLES[table].get("delete")).get(role)
    pk = PK.get(table, "id")
    if scope is None:
        assert as_role(conn, role, f"delete from {table} where false") == "42501"
        return
    target = conn.execute(f"select t.{pk} from {table} t where {scope_sql(table, scope, role)} limit 1",
                          {"team": persona(conn, role)["team_id"]}).fetchone()
    assert target, "positive control: a row to delete exists"
    assert as_role(conn, role, f"delete from {table} where {pk} = %s", target) == 1


# ---------------------------------------------------------------------------- field groups through views
GROUP_CASES = [(g, r) for g in MATRIX["field_groups"] for r in ROLES]


@pytest.mark.parametrize("group,role", GROUP_CASES, ids=[f"{g}-{r}" for g, r in GROUP_CASES])
def test_field_group_by_every_path(conn, group, role):
    spec = MATRIX["field_groups"][group]
    table = spec["table"]
    scope = spec["readers"].get(role, "none")
    team = persona(conn, role)["team_id"]
    want = conn.execute(f"select count(*) from {table} t where {scope_sql(table, scope, role)}",
                        {"team": team}).fetchone()[0]
    total = conn.execute(f"select count(*) from {table}").fetchone()[0]
    assert total > 0
    # the table itself: every field of the group, non-null only where readable
    for field in spec["fields"]:
        got = as_role(conn, role, f"select count({field}) filter (where {field} is not null) + "
                                  f"count(*) filter (where {field} is null) from {table}")
        assert got[0] == want, f"{role} reads {table}.{field} on {got[0]} rows, expected {want}"
    # every view that carries the group: the fields read as NULL outside the scope
    for view, fields in spec.get("view_fields", {}).items():
        for field in fields:
            got = as_role(conn, role, f"select count({field}) from {view}")
            expected_nonnull = conn.execute(
                f"select count(t.{field}) from {table} t where {scope_sql(table, scope, role)} and t.sample_id in "
                f"(select s.id from app.samples s where {SAMPLE_SCOPES[expand(TABLES['app.samples']['select'])[role]]})",
                {"team": team}).fetchone()[0]
            assert got[0] == expected_nonnull, f"{role} sees {view}.{field} on {got[0]} rows, expected {expected_nonnull}"


@pytest.mark.parametrize("group", list(MATRIX["field_groups"]))
def test_field_group_writers_agree_with_the_update_grants(group):
    spec = MATRIX["field_groups"][group]
    writers = {r: sorted(set(rule["columns"]) & set(spec["fields"]))
               for r, rule in expand(TABLES[spec["table"]].get("update")).items()}
    assert {r: c for r, c in writers.items() if c} == {r: sorted(c) for r, c in spec["writers"].items()}


def test_matrix_names_every_table_in_our_schemas(conn):
    tables = {r[0] for r in conn.execute(
        "select n.nspname || '.' || c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname in ('app', 'app_private', 'audit') and c.relkind in ('r', 'p')").fetchall()}
    assert tables == set(TABLES)


def test_sample_overview_select_star_works_for_every_role(conn):
    total = conn.execute("select count(*) from app.sample_overview").fetchone()[0]
    for role in ROLES:
        got = as_role(conn, role, "select count(*) from (select * from app.sample_overview) v")
        assert isinstance(got, tuple) and 0 < got[0] <= total, (role, got)
