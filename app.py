"""Flask entry point: `python app.py` serves the tracker (see `make run`)."""
import os

from tracker.web import create_app

app = create_app()

if __name__ == "__main__":
    from tracker.demo import print_logins
    port = int(os.environ.get("PORT", "5000"))
    print_logins()
    print(f"serving on http://127.0.0.1:{port}/")
    app.run(host="127.0.0.1", port=port, threaded=True)
