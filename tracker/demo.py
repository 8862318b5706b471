"""Deterministic demo data: three teams, one login per role, ~300 samples walked
through their lifecycle by the real PL/pgSQL functions (so events, audit rows and
errors are genuine), back-dated with the demo clock.

Idempotent: a database that already has demo staff is left alone."""
import os
import random
from datetime import date, datetime, time, timedelta, timezone

import psycopg
from argon2 import PasswordHasher

from .roles import ROLES

TEAMS = [("WW", "Womenswear"), ("MW", "Menswear"), ("AC", "Accessories")]
FIRST = ["Amara", "Ben", "Chloe", "Dev", "Elif", "Finn", "Grace", "Hugo", "Isla", "Jonah", "Kemi",
         "Leo", "Maya", "Nico", "Orla", "Priya", "Quinn", "Rosa", "Sami", "Tess", "Umar", "Vera",
         "Wes", "Yara", "Zane", "Ada", "Bea", "Cal", "Dina", "Eli"]
LAST = ["Okafor", "Hughes", "Patel", "Nowak", "Silva", "Brennan", "Khan", "Larsen", "Moreau",
        "Chen", "Adeyemi", "Rossi", "Walsh", "Kowalski", "Haddad", "Fischer", "Murphy", "Sato"]
CATEGORIES = [("Dresses", "Womenswear"), ("Knitwear", "Womenswear"), ("Tailoring", "Menswear"),
              ("Shirts", "Menswear"), ("Denim", "Menswear"), ("Outerwear", "Womenswear"),
              ("Bags", "Accessories"), ("Footwear", "Accessories"), ("Jewellery", "Accessories"),
              ("Fabric swatches", "Materials")]
CURRENCIES = [("GBP", "Pound sterling", 1), ("EUR", "Euro", 0.85), ("USD", "US dollar", 0.79),
              ("CNY", "Renminbi", 0.11), ("TRY", "Turkish lira", 0.024), ("INR", "Indian rupee", 0.0095)]
SUPPLIER_WORDS = ["Atelier", "Textiles", "Mills", "Studio", "Leather", "Knit", "Denim", "Works",
                  "Fabrics", "Collective"]
PLACES = [("Porto", "PT", "EUR"), ("Istanbul", "TR", "TRY"), ("Prato", "IT", "EUR"),
          ("Ningbo", "CN", "CNY"), ("Leicester", "GB", "GBP"), ("Jaipur", "IN", "INR"),
          ("Los Angeles", "US", "USD"), ("Guimaraes", "PT", "EUR")]
GARMENTS = {"Dresses": ["slip dress", "wrap dress", "smock dress", "shirt dress"],
            "Knitwear": ["cable jumper", "cardigan", "knitted vest", "roll-neck"],
            "Tailoring": ["double-breasted blazer", "pleated trouser", "waistcoat"],
            "Shirts": ["oxford shirt", "camp-collar shirt", "grandad shirt"],
            "Denim": ["straight jean", "denim jacket", "carpenter jean"],
            "Outerwear": ["trench coat", "quilted jacket", "wool overcoat"],
            "Bags": ["tote bag", "crossbody bag", "weekender"],
            "Footwear": ["loafer", "chelsea boot", "trainer"],
            "Jewellery": ["hoop earrings", "chain necklace", "signet ring"],
            "Fabric swatches": ["linen swatch", "jacquard swatch", "tencel swatch"]}
ADJECTIVES = ["ecru", "washed black", "sage", "indigo", "butter yellow", "chocolate", "striped",
              "floral", "check", "oversized", "cropped", "recycled", "organic cotton", "merino"]


def demo_password() -> str:
    return os.environ.get("DEMO_PASSWORD", "demo")


def role_email(role: str) -> str:
    return f"{role}@example.com"


class Loader:
    def __init__(self, conn: psycopg.Connection, today: date):
        self.conn = conn
        self.rng = random.Random(4421)
        self.today = today
        self.now = datetime.combine(today, time(9, 0), tzinfo=timezone.utc)

    def q(self, sql, params=None):
        return self.conn.execute(sql, params)

    # ---------------------------------------------------------------- reference
    def reference_data(self):
        q = self.q
        for code, name in TEAMS:
            q("insert into app.teams (code, name) values (%s, %s)", (code, name))
        self.teams = dict(q("select code, id from app.teams").fetchall())
        for code, name, rate in CURRENCIES:
            q("insert into app.currencies (code, name, gbp_rate) values (%s, %s, %s)", (code, name, rate))
        for name, dept in CATEGORIES:
            q("insert into app.categories (name, department) values (%s, %s)", (name, dept))
        self.categories = q("select id, name from app.categories order by id").fetchall()
        y = self.today.year
        for yr in (y - 1, y):
            q("insert into app.seasons (code, name, starts_on, ends_on) values (%s, %s, %s, %s), (%s, %s, %s, %s)",
              (f"SS{yr % 100:02d}", f"Spring/Summer {yr}", date(yr - 1, 7, 1), date(yr, 6, 30),
               f"AW{yr % 100:02d}", f"Autumn/Winter {yr}", date(yr, 1, 1), date(yr, 12, 31)))
        self.seasons = q("select id, starts_on, ends_on from app.seasons order by starts_on").fetchall()
        for i, (kind, prefix, n) in enumerate([("shelf", "SR-A", 6), ("shelf", "SR-B", 4),
                                                ("studio", "STUDIO", 1), ("showroom", "SHOWROOM", 1),
                                                ("dispatch", "DISPATCH", 1)]):
            for k in range(1, n + 1):
                code = f"{prefix}-{k:02d}" if n > 1 else prefix
                q("insert into app.locations (code, name, kind) values (%s, %s, %s)",
                  (code, f"{prefix.title()} {k}" if n > 1 else prefix.title(), kind))
        self.locations = [r[0] for r in q("select id from app.locations order by id").fetchall()]
        for city, country, _ in PLACES[:5]:
            q("insert into app.factories (name, country, city) values (%s, %s, %s)",
              (f"{city} Garment Co", country, city))
        self.factories = [r[0] for r in q("select id from app.factories order by id").fetchall()]
        self.suppliers = []
        for i in range(24):
            city, country, currency = PLACES[i % len(PLACES)]
            name = f"{city} {SUPPLIER_WORDS[i % len(SUPPLIER_WORDS)]}" + ("" if i < 10 else f" {i}")
            sid = q("insert into app.suppliers (name, country) values (%s, %s) returning id",
                    (name, country)).fetchone()[0]
            first, last = FIRST[i % len(FIRST)], LAST[(i * 7) % len(LAST)]
            q("insert into app.supplier_contacts (supplier_id, name, email, phone, position) values "
              "(%s, %s, %s, %s, 'Sales manager')",
              (sid, f"{first} {last}", f"{first.lower()}@{name.split()[0].lower()}-supplier.example.com",
               f"+44 20 7946 {1000 + i:04d}"))
            self.suppliers.append((sid, currency))
        # a few suppliers with a poor quality record
        self.bad_suppliers = {self.suppliers[3][0], self.suppliers[11][0]}

    def staff(self):
        ph = PasswordHasher()
        pw_hash = ph.hash(demo_password())
        names = iter((FIRST[i % len(FIRST)], LAST[(i * 7 + i // len(FIRST)) % len(LAST)]) for i in range(10_000))
        rows = []
        # one login per role: <role>@example.com (buyers in Womenswear)
        for role in ROLES:
            team = self.teams["WW"] if role in ("buyer", "senior_buyer") else None
            rows.append((role_email(role), next(names), role, team))
        # more people so work is spread realistically; their e-mails are their names
        extra = [("buyer", "WW"), ("buyer", "MW"), ("buyer", "MW"), ("senior_buyer", "MW"),
                 ("buyer", "AC"), ("buyer", "AC"), ("senior_buyer", "AC"), ("designer", None),
                 ("designer", None), ("sales_executive", None), ("sales_executive", None),
                 ("logistics", None), ("factory_liaison", None), ("qc", None)]
        for role, team in extra:
            f, l = next(names)
            rows.append((f"{f.lower()}.{l.lower()}@example.com", (f, l), role, self.teams[team] if team else None))
        for email, (f, l), role, team in rows:
            sid = self.q("insert into app.staff (email, full_name, role, team_id) values (%s, %s, %s, %s) "
                         "returning id", (email, f"{f} {l}", role, team)).fetchone()[0]
            self.q("insert into app_private.staff_credentials (staff_id, password_hash, password_set_at) "
                   "values (%s, %s, now())", (sid, pw_hash))
        # one inactive person, to show that deactivation works
        f, l = next(names)
        self.q("insert into app.staff (email, full_name, role, team_id, active) values (%s, %s, 'buyer', %s, false)",
               (f"{f.lower()}.{l.lower()}@example.com", f"{f} {l}", self.teams["WW"]))
        self.people = {}
        for sid, role, team in self.q("select id, role::text, team_id from app.staff where active order by id"):
            self.people.setdefault(role, []).append((sid, team))
        # the loader acts like the web app: through a session of each person (ended when it is done)
        self.sessions = dict(self.q("select id, app_private.start_session(id, interval '1 hour') "
                                    "from app.staff where active").fetchall())

    # ---------------------------------------------------------------- lifecycle
    def act(self, role, staff_id, at: datetime):
        self.q("select set_config('role', %s, true), set_config('tracker.session', %s, true), "
               "set_config('tracker.demo_now', %s, true)", (role, self.sessions[staff_id], at.isoformat()))

    def pick(self, role, team=None):
        choices = [p for p in self.people[role] if team is None or p[1] == team]
        return self.rng.choice(choices)[0]

    def walk(self, start: datetime):
        """One sample's life, step by step, stopping at the present."""
        rng = self.rng
        team_code = rng.choice(list(self.teams))
        team = self.teams[team_code]
        buyer_role = "senior_buyer" if rng.random() < 0.2 else "buyer"
        buyer = self.pick(buyer_role, team)
        senior = self.pick("senior_buyer", team)
        cat_id, cat = rng.choice(self.categories)
        season = min(self.seasons, key=lambda s: abs((s[1] - start.date()).days - 60))[0]
        supplier, currency = rng.choice(self.suppliers)
        title = f"{rng.choice(ADJECTIVES).capitalize()} {rng.choice(GARMENTS[cat])}"
        on_loan = rng.random() < 0.3
        t = start

        def step(days_lo, days_hi):
            nonlocal t
            t = t + timedelta(days=rng.uniform(days_lo, days_hi), hours=rng.uniform(0, 6))
            return t <= self.now

        self.act(buyer_role, buyer, t)
        sid = self.q("select app.request_sample(%s::text, %s::int, %s::int, %s::int, %s::text, %s::boolean)",
                     (title, cat_id, season, supplier if rng.random() < 0.6 else None,
                      f"{team_code}-{rng.randint(1000, 9999)}", on_loan)).fetchone()[0]
        if not (step(0.5, 6) if rng.random() < 0.8 else step(8, 40)):
            return
        if rng.random() < 0.04:
            self.act(buyer_role, buyer, t)
            self.q("select app.withdraw_request(%s::bigint, %s::text)", (sid, "Duplicate of another team's request"))
            return
        self.act(buyer_role, buyer, t)
        lead = rng.randint(5, 20)
        unit = round(rng.uniform(40, 450) / dict((c, r) for c, _, r in CURRENCIES)[currency] * 0.79, 2)
        # the demo's buyers read the supplier's QC record and order anyway (the acknowledgement is recorded)
        self.q("select app.order_sample(%s::bigint, %s::int, %s::numeric, %s::text, %s::date, %s::int, null, %s::text, "
               "p_accept_supplier_risk => true)",
               (sid, supplier, unit, currency, (t + timedelta(days=lead)).date(), rng.choice([1, 1, 1, 2, 3]),
                f"PO-{rng.randint(100000, 999999)}"))
        late = rng.random() < 0.15
        if not step(lead - 2 + (rng.uniform(5, 12) if late else 0), lead + 1 + (12 if late else 0)):
            return
        logistics = self.pick("logistics")
        self.act("logistics", logistics, t)
        self.q("select app.receive_sample(%s::bigint, %s::int)", (sid, rng.choice(self.locations)))
        bad = supplier in self.bad_suppliers
        if rng.random() < (0.55 if bad else 0.35):
            if not step(0.2, 3):
                return
            self.act("qc", self.pick("qc"), t)
            if rng.random() < (0.5 if bad else 0.08):
                self.q("select app.record_inspection(%s::bigint, 'reject', %s::text, %s::text)",
                       (sid, rng.choice(["Seams open at the hem", "Colour not to standard",
                                         "Wrong composition label", "Fabric pilling after one wash"]),
                        "Photographed defects; supplier informed by buyer"))
                if step(1, 6):
                    self.act("logistics", logistics, t)
                    self.q("select app.return_to_supplier(%s::bigint, %s::text)", (sid, f"DHL{rng.randint(10**9, 10**10 - 1)}"))
                return
            self.q("select app.record_inspection(%s::bigint, 'pass', null, %s::text)", (sid, "Measurements within tolerance"))
        # route through design and sales
        for _ in range(rng.choice([1, 1, 2, 3])):
            if not step(1, 8):
                return
            state = self.q("select state::text from app.samples where id = %s", (sid,)).fetchone()[0]
            to_design = state == "with-sales" or (state == "received" and rng.random() < 0.6)
            if to_design:
                designer = self.pick("designer")
                self.act("designer" if state == "received" else "sales_lead",
                         designer if state == "received" else self.pick("sales_lead"), t)
                self.q("select app.hand_to_design(%s::bigint, %s::bigint)", (sid, designer))
            else:
                holder = self.pick(rng.choice(["sales_lead", "sales_executive"]))
                actor_role = "logistics" if state == "received" else "designer"
                self.act(actor_role, self.pick(actor_role), t)
                self.q("select app.hand_to_sales(%s::bigint, %s::bigint)", (sid, holder))
        if rng.random() < 0.35:
            if not step(1, 10):
                return
            liaison = self.pick("factory_liaison")
            self.act("factory_liaison", liaison, t)
            self.q("select app.send_to_factory(%s::bigint, %s::int)", (sid, rng.choice(self.factories)))
            if rng.random() < 0.45:
                if not step(1, 5):
                    return
                self.act("senior_buyer", senior, t)
                self.q("select app.approve_for_production(%s::bigint, 'Approved at range review')", (sid,))
                if not step(3, 20):
                    return
                if on_loan:  # a loaned sample is bought from the supplier before it is cut
                    self.act(buyer_role, buyer, t)
                    self.q("select app.buy_out(%s::bigint, 'Bought for own-label production')", (sid,))
                self.act("factory_liaison", liaison, t)
                self.q("select app.cut_for_production(%s::bigint)", (sid,))
                return
            if not step(5, 40):
                return
            self.act("factory_liaison", liaison, t)
            self.q("select app.return_from_factory(%s::bigint, %s::int)", (sid, rng.choice(self.locations)))
        if rng.random() < 0.7:
            if not step(3, 30 if not on_loan else 25):
                return
            self.act("logistics", self.pick("logistics"), t)
            self.q("select app.return_to_supplier(%s::bigint, %s::text)", (sid, f"UPS1Z{rng.randint(10**8, 10**9 - 1)}"))

    def samples(self, n=300):
        span = 700  # days: two years of history
        starts = sorted(self.now - timedelta(days=self.rng.uniform(0, span) ** 1.0) for _ in range(n))
        # weight the recent past so every non-terminal state is well represented
        starts = starts[: n - 90] + sorted(self.now - timedelta(days=self.rng.uniform(0, 60)) for _ in range(90))
        for start in starts:
            self.walk(start)
        # photos on a few samples in the building, and a comment thread
        from .images import process, swatch
        rows = self.q("select id from app.samples where state in ('received', 'with-design', 'with-sales') "
                      "order by id limit 12").fetchall()
        palette = [(196, 164, 132), (40, 60, 110), (150, 170, 140), (230, 210, 120), (90, 60, 40), (200, 200, 190)]
        for n, (sid,) in enumerate(rows):
            photo = process(swatch(palette[n % len(palette)]))
            self.act("logistics", self.pick("logistics"), self.now - timedelta(hours=3))
            self.q("insert into app.sample_photos (sample_id, uploaded_by, content_type, width, height, image, "
                   "thumbnail, caption) values (%s, app.current_staff_id(), %s, %s, %s, %s, %s, %s)",
                   (sid, photo["content_type"], photo["width"], photo["height"], photo["image"],
                    photo["thumbnail"], "Front, on the sample-room table"))
            self.act("designer", self.pick("designer"), self.now - timedelta(hours=2))
            self.q("insert into app.sample_comments (sample_id, author_id, body) "
                   "values (%s, app.current_staff_id(), %s)",
                   (sid, self.rng.choice(["Lovely hand-feel; can we get it in a heavier weight?",
                                          "Fit is boxy through the shoulder, see photo.",
                                          "Colour is close to our SS palette, sharing with sales."])))
        # one director override, so the timeline shows what that looks like
        sid = self.q("select id from app.samples where state = 'returned' and withdrawn_at is null "
                     "order by id desc limit 1").fetchone()[0]
        self.act("ops_director", self.pick("ops_director"), self.now - timedelta(hours=2))
        self.q("select app.override_state(%s::bigint, 'received', %s::text, %s::int)",
               (sid, "Courier failed to collect; sample is back on the shelf", self.locations[0]))
        # overdue monitoring (issue 12): logistics extends one late sample's due date and
        # marks another chased, through the same entry points as the sample page
        late = [r[0] for r in self.q(
            "select s.id from app.samples s, app.overdue_hits(s.id, s.state, s.state_changed_at, s.expected_on, "
            "s.return_due_on, s.on_loan, app.clock()::date, s.transit_since) h "
            "where s.state = 'received' and h.rule_code = 'received-not-routed' order by s.id").fetchall()]
        if len(late) >= 2:
            self.act("logistics", self.pick("logistics"), self.now - timedelta(hours=1))
            self.q("select app.extend_due_date(%s::bigint, 'received-not-routed', %s::date, %s::text)",
                   (late[0], self.now.date() + timedelta(days=7), "Rail waiting for the new sample-room shelving"))
            self.q("select app.mark_chased(%s::bigint, 'received-not-routed', %s::text)",
                   (late[1], "Asked the studio to collect it"))
        self.confirm_handovers()
        self.repeat_mistakes()

    def confirm_handovers(self):
        """Most receivers confirm a handover within hours; the last few of the past day stay in
        transit, so the demo shows what waiting for a confirmation looks like."""
        waiting = self.q("select id, state::text, holder_id, transit_since from app.samples "
                         "where transit_from is not null order by transit_since").fetchall()
        for sid, state, holder, since in waiting[:-4]:
            who = ("factory_liaison", self.pick("factory_liaison")) if state == "at-factory" else (
                next(r for r, people in self.people.items() if any(p[0] == holder for p in people)), holder)
            self.act(who[0], who[1], min(since + timedelta(hours=self.rng.uniform(0.5, 6)), self.now))
            self.q("select app.confirm_handover(%s)", (sid,))

    def repeat_mistakes(self):
        """Issue 15 in the demo: an earlier supplier hold, lifted; a current one; a pair of
        look-alikes dismissed as not duplicates; and a first watch for every demo login."""
        persona = {role: people[0][0] for role, people in self.people.items()}
        lifted, held = sorted(self.bad_suppliers)
        self.act("ops_director", persona["ops_director"], self.now - timedelta(days=40))
        self.q("select app.hold_supplier(%s, %s)", (lifted, "Late on three orders in a row"))
        self.act("senior_buyer", persona["senior_buyer"], self.now - timedelta(days=12))
        self.q("select app.lift_supplier_hold(%s, %s)", (lifted, "New production manager; deliveries back on time"))
        self.act("senior_buyer", persona["senior_buyer"], self.now - timedelta(days=1))
        self.q("select app.hold_supplier(%s, %s)", (held, "QC rejected most recent samples; quality review booked"))
        pair = self.q("select a_id, b_id from app.duplicate_pairs((select season_id from app.samples "
                      "where state not in ('returned', 'cut-for-production') group by 1 order by count(*) desc "
                      "limit 1)) limit 1").fetchone()
        if pair:
            self.q("select app.dismiss_duplicate(%s, %s, %s)", (*pair, "Different fabrics and price points"))
        for role, sid in persona.items():
            self.act(role, sid, self.now - timedelta(hours=1))
            self.q("insert into app.watches (staff_id, sample_id) select app.current_staff_id(), max(id) "
                   "from app.samples where state not in ('returned', 'cut-for-production')")
        self.act("designer", persona["designer"], self.now - timedelta(hours=1))
        self.q("insert into app.watches (staff_id, supplier_id) values (app.current_staff_id(), %s)", (held,))
        self.stocktake(persona["logistics"])
        self.old_spreadsheet(persona)

    def old_spreadsheet(self, persona):
        """Issue 14 in the demo: the old tracking sheet uploaded by each person who imports,
        mapped but not yet imported (the dry run is one click away)."""
        from psycopg.types.json import Jsonb
        from .imports import guess_mapping, layout_key
        headers = ["Sample No", "Description", "Category", "Season", "Team", "Supplier", "Status"]
        season = self.q("select code from app.seasons order by starts_on desc limit 1").fetchone()[0]
        supplier = self.q("select name from app.suppliers where on_hold_at is null order by id limit 1").fetchone()[0]
        rows = [{"_row": n + 2, "Sample No": f"SHEET-{n + 1}", "Description": title, "Category": cat,
                 "Season": season, "Team": "WW", "Supplier": supplier, "Status": "requested"}
                for n, (title, cat) in enumerate([("Broderie anglaise blouse", "Shirts"),
                                                  ("Raffia tote", "Bags"), ("Suede chelsea boot", "Footwear")])]
        for role in ("logistics", "senior_buyer", "system_admin"):
            self.act(role, persona[role], self.now - timedelta(hours=5))
            self.q("insert into app.import_batches (staff_id, filename, headers, rows, mapping) "
                   "values (app.current_staff_id(), 'old-tracker.xlsx', %s, %s, %s)",
                   (headers, Jsonb(rows), Jsonb(guess_mapping(headers))))
        self.q("insert into app.import_layouts (header_key, mapping) values (%s, %s)",
               (layout_key(headers), Jsonb(guess_mapping(headers))))

    def stocktake(self, counter):
        """Issue 14 in the demo: yesterday's count of the busiest shelf, one sample missing and one
        found that the records put elsewhere."""
        self.act("logistics", counter, self.now - timedelta(days=1))
        shelf = self.q("select location_id from app.samples where state = 'received' and location_id is not null "
                       "group by 1 order by count(*) desc limit 1").fetchone()
        if not shelf:
            return
        take = self.q("select app.start_stocktake(%s)", shelf).fetchone()[0]
        expected = [r[0] for r in self.q("select unnest(expected) from app.stocktakes where id = %s", (take,))]
        stray = self.q("select id from app.samples where state = 'received' and location_id <> %s order by id limit 1",
                       shelf).fetchone()
        for sid in expected[1:] + ([stray[0]] if stray else []):
            self.q("select app.count_sample(%s, %s)", (take, sid))
        self.q("select app.close_stocktake(%s)", (take,))


# budgets for every team x season x category with spend: 80% to 150% of what was
# spent (deterministic), so the analytics pages show categories over and under budget
BUDGETS_SQL = """
insert into app.budgets (team_id, season_id, category_id, amount_gbp)
select s.team_id, s.season_id, s.category_id,
       round(sum(k.total_gbp) * (0.8 + (abs(hashtext(s.team_id || '-' || s.season_id || '-' || s.category_id)) % 71)
                                 / 100.0) / 50) * 50
  from app.samples s join app.sample_costs k on k.sample_id = s.id
 where s.state <> 'requested'
 group by 1, 2, 3
"""


def load_demo(url: str, quiet: bool = False, today: date | None = None, samples: int = 300) -> bool:
    """Load the demo data unless already present. Returns True when it loaded."""
    with psycopg.connect(url) as conn:
        if conn.execute("select exists (select 1 from app.staff where email = 'buyer@example.com')").fetchone()[0]:
            if not quiet:
                print("demo data already present")
            return False
        loader = Loader(conn, today or date.today())
        conn.execute("select pg_advisory_xact_lock(hashtext('tracker.demo'))")
        loader.reference_data()
        loader.staff()
        conn.execute("insert into app_private.demo_clock default values")
        conn.execute("set local session authorization authenticator")
        loader.samples(samples)
        conn.execute("reset session authorization")
        conn.execute("delete from app_private.demo_clock")
        conn.execute(BUDGETS_SQL)
        conn.execute("select app_private.refresh_analytics('demo')")
        conn.execute("delete from app_private.web_sessions where token_hash = any(select sha256(convert_to(t, 'UTF8')) "
                     "from unnest(%s::text[]) t)", (list(loader.sessions.values()),))
    with psycopg.connect(url) as conn:  # after the commit: the sealers see committed rows only
        while conn.execute("select sealed from audit.seal()").fetchone()[0]:
            conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:  # the realtime outbox: a transaction per batch
        while conn.execute("select app_private.sequence_realtime()").fetchone()[0]:
            pass
    if not quiet:
        print_logins()
    return True


def print_logins() -> None:
    print(f"demo logins (password: {demo_password()!r}, set DEMO_PASSWORD to change):")
    for role in ROLES:
        print(f"  {role:<16} {role_email(role)}")
