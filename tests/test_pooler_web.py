"""A slice of the web tests through PgBouncer in transaction pooling mode (issue 18, item
2): every test of test_web.py (sign-in and throttling, every role's dashboard, exports
that must not carry hidden costs, actions refused and allowed, search that must not leak,
staff admin, deactivation) against an app whose pool connects through the run's pooler
(prepare_threshold=None) while its realtime relay connects directly."""
import pytest

from conftest import cloned_web_app
from test_web import *  # noqa: F401,F403 - the same tests, collected again here


@pytest.fixture(scope="module")
def app(template, pooler):
    with cloned_web_app(template, "tracker_test_web_pooled", pooler) as app:
        assert app.config["APP_DATABASE_POOLED"]
        yield app
