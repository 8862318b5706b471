"""Flask entry point: `python app.py` serves the tracker (see `make run`)."""
import os

import sys

from tracker.web import create_app
from tracker.web.health import StartupError

try:
    app = create_app()
except StartupError as exc:  # one sentence, no traceback (also logged as a startup_refused line)
    print(f"tracker: cannot start: {exc}", file=sys.stderr)
    sys.exit(2)

if __name__ == "__main__":
    from tracker.demo import print_logins
    port = int(os.environ.get("PORT", "5000"))
    print_logins()
    print(f"serving on http://127.0.0.1:{port}/")
    app.run(host="127.0.0.1", port=port, threaded=True)
