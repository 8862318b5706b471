"""The whole permission matrix again, through PgBouncer in transaction pooling mode (issue
18, item 2): every test of test_permission_matrix.py, with the `conn` fixture's
connection going through the run's pooler (conftest `pooler`). Each test is one
transaction that acts like the web app (session authorization authenticator, role and
session token set transaction-locally) and is rolled back, so under transaction pooling
it may land on any server connection: a result that depended on session state would
differ here."""
import pytest

from conftest import connect_shared
from test_permission_matrix import *  # noqa: F401,F403 - the same tests, collected again here


@pytest.fixture(scope="module")
def shared_conn(shared_db, pooler):
    with connect_shared(shared_db, pooler) as c:
        assert c.execute("show port").fetchone()[0] != str(pooler)  # the server behind the pooler answers
        yield c
