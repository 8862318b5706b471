"""Helpers for the realtime tests and benchmark: a websocket client that signs in with
a session cookie (a web session started in the database, signed like Flask's own) and
collects the relay's messages."""
import json
import time

from simple_websocket import Client


class HostClient(Client):
    """simple-websocket's client, two fixes: it sends Host without the port (browsers send
    host:port), and a first message that arrives in the same read as the handshake's
    response stays buffered until the next frame (here: up to a heartbeat later)."""

    def handshake(self):
        if self.port not in (80, 443):
            self.host = f"{self.host}:{self.port}"
        super().handshake()
        self._handle_events()  # messages read together with the 101 response


def session_cookie(app, token: str) -> str:
    return app.session_interface.get_signing_serializer(app).dumps({"token": token})


class LiveClient:
    def __init__(self, base: str, cookie: str | None, since: int | None = None, origin: str | None = None):
        url = base.replace("http://", "ws://") + "/live" + (f"?since={since}" if since is not None else "")
        headers = {"Origin": origin or base}
        if cookie:
            headers["Cookie"] = f"session={cookie}"
        self.ws = HostClient.connect(url, headers=headers)
        self.events: list[dict] = []
        self.others: list[dict] = []
        self.cursor = None

    def pump(self, seconds: float = 0.2, until=None) -> bool:
        """Read messages for up to `seconds` (or until `until(self)` holds)."""
        deadline = time.monotonic() + seconds
        while True:
            if until is not None and until(self):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return until is None
            try:
                raw = self.ws.receive(timeout=min(left, 0.1))
            except Exception:  # closed
                return until is not None and until(self)
            if raw is None:
                continue
            msg = json.loads(raw)
            if msg["type"] == "events":
                self.events.extend(msg["events"])
            else:
                self.others.append(msg)
            if "cursor" in msg:
                self.cursor = msg["cursor"]

    def hello(self, seconds: float = 15) -> "LiveClient":
        assert self.pump(seconds, until=lambda c: any(m["type"] == "hello" for m in c.others)), self.others
        return self

    def ids(self, sample: int | None = None) -> list[int]:
        return [e["id"] for e in self.events if sample is None or e["sample"] == sample]

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass
