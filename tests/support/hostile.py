"""The attacker's side for tenant-boundary tests: their own LMS (own signing key, own OpenID configuration,
registration and token endpoints) and a canary that records whether the tool ever called it.

Both are real werkzeug servers started by the test. `HostilePlatform` is the test platform with everything it is
asked recorded, its configuration open to lies (`config`) and extra routes (`routes`, path -> handler)."""
import threading

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.support.platform import TestPlatform


class HostilePlatform(TestPlatform):
    __test__ = False

    def __init__(self, host="127.0.0.1"):
        self.hits = []
        self.routes = {}
        self.config = {}
        super().__init__(issuer_path="/hostile", host=host)

    @Request.application
    def _wsgi(self, request: Request):
        self.hits.append({"path": request.path, "method": request.method,
                          "authorization": request.headers.get("Authorization"), "form": request.form.to_dict()})
        if request.path in self.routes:
            return self.routes[request.path](request)
        return TestPlatform._wsgi.__wrapped__(self, request)

    def openid_configuration(self):
        return {**super().openid_configuration(), **self.config}

    def paths(self):
        return [h["path"] for h in self.hits]


class Canary:
    """An address the tool must never call (127.0.0.2: loopback, outside the testing allow list)."""

    def __init__(self, host="127.0.0.2"):
        self.hits = []
        self._server = make_server(host, 0, self._wsgi, threaded=True)
        self.base = f"http://{host}:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @Request.application
    def _wsgi(self, request: Request):
        self.hits.append({"path": request.path, "authorization": request.headers.get("Authorization")})
        return Response('{"issuer": "canary", "secret": "CANARY-INTERNAL-DATA"}', mimetype="application/json")

    def close(self):
        self._server.shutdown()


def redirect_to(url, status=302):
    return lambda request: Response("", status, {"Location": url})
