"""How many OIDC logins one client may start. An anonymous GET /lti/login writes nothing (its state is signed,
login_state.py) but costs a database read and a signature; this bounds what one client can make the tool do.

The count is kept in the memory of each server process (nothing to write per request, no race between
workers): with N gunicorn workers one client gets up to N times the limit. A client is its address as the proxy
reports it (PROXY_FIX_HOPS); a hospital behind one NAT address shares the limit, so it is set well above what a
shift change of launches needs.
"""
import threading
import time
from collections import OrderedDict, deque

_lock = threading.Lock()
_seen: "OrderedDict[str, deque]" = OrderedDict()
# Clients remembered at once; the least recently seen are forgotten first (memory stays bounded).
MAX_CLIENTS = 10_000


def allow(client: str, limit: int, window: float, now: float | None = None) -> bool:
    """Count one login for `client`; False when it already started `limit` within the last `window` seconds."""
    now = time.monotonic() if now is None else now
    with _lock:
        times = _seen.pop(client, None) or deque()
        while times and now - times[0] >= window:
            times.popleft()
        allowed = len(times) < limit
        if allowed:
            times.append(now)
        _seen[client] = times
        while len(_seen) > MAX_CLIENTS:
            _seen.popitem(last=False)
        return allowed


def reset() -> None:
    with _lock:
        _seen.clear()
