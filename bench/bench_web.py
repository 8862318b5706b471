"""Server time of the web pages at scale: every role's dashboard (first tab), the
sample page, and search by number and by word, p50/p95 over repeated requests made
in-process through Flask (database + rendering, no network). The baseline is the
target from the web UI issue (p95 < 100 ms for pages, < 150 ms for search)."""
import random
import time

from tracker.roles import ROLES

from .common import Result, percentile, summary



def client(app, ctx, role):
    c = app.test_client()
    with c.session_transaction() as s:
        s["token"] = ctx.session(f"{role}@example.com")
    return c


def timed(fn, n, warmup=5):
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def run(ctx):
    from tracker.web import create_app
    app = create_app({"TESTING": True, "SECRET_KEY": "bench", "APP_DATABASE_URL": ctx.app_url})
    n = 30 if ctx.quick else 200
    rng = random.Random(4421)
    results = []
    try:
        for role in ROLES:
            c = client(app, ctx, role)

            def get(c=c):
                r = c.get("/")
                assert r.status_code == 200, r.status_code
            ms = timed(get, n)
            s = summary(ms)
            results.append(Result(f"dashboard {role}, p95", s["p95_ms"], "ms", 100.0, "target p95",
                                  extra={"ours": s}))
        c = client(app, ctx, "md")
        ids = [1000 + rng.randint(1, ctx.samples) for _ in range(n + 5)]
        it = iter(ids)

        def sample_page():
            r = c.get(f"/samples/{next(it)}")
            assert r.status_code == 200, r.status_code
        s = summary(timed(sample_page, n))
        results.append(Result("sample page (md, random sample), p95", s["p95_ms"], "ms", 100.0, "target p95",
                              extra={"ours": s}))
        it2 = iter([1000 + rng.randint(1, ctx.samples) for _ in range(n + 5)])

        def by_number():
            r = c.get("/search", query_string={"q": f"#{next(it2)}"}, follow_redirects=True)
            assert r.status_code == 200
        s = summary(timed(by_number, n))
        results.append(Result("search by number (jump to sample), p95", s["p95_ms"], "ms", 150.0, "target p95",
                              extra={"ours": s}))
        b = client(app, ctx, "buyer")
        words = ["wrap dress", "trench", "oxford shirt", "linen swatch", "loafer", "blazer"]

        def by_word():
            r = b.get("/search", query_string={"q": rng.choice(words)})
            assert r.status_code == 200
        s = summary(timed(by_word, n))
        results.append(Result("search by words (buyer), p95", s["p95_ms"], "ms", 150.0, "target p95",
                              extra={"ours": s}))
    finally:
        app.extensions["pool"].close()
    return results
