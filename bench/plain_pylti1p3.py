"""The reference for bench/compare.py: a minimal LTI 1.3 tool written the way pylti1p3's own Flask example
(github.com/dmitry-viskov/pylti1.3-flask-example, app.py) writes it: a ToolConf from a dict, FlaskOIDCLogin and
FlaskMessageLaunch with a flask-caching cache as launch data storage, and the platform's key set cached there too
(`set_public_key_caching`, as pylti1p3's README recommends for production). Two departures, both needed to serve
4 gunicorn workers and a load generator without JavaScript: the cache is Redis (the example's "simple" cache is
per process, so a login served by one worker and its launch served by another would fail with "Invalid Nonce"),
and the login redirects at once instead of the cookie-check page (`enable_check_cookies`).

Configured from the environment by bench/compare.py (PLAIN_LTI_CONFIG: the ToolConfDict JSON; PLAIN_CACHE_URL).
Run: gunicorn -w 4 --chdir bench 'plain_pylti1p3:create_app()'
"""
import json
import os

from flask import Flask, request
from flask_caching import Cache
from pylti1p3.contrib.flask import (
    FlaskCacheDataStorage,
    FlaskMessageLaunch,
    FlaskOIDCLogin,
    FlaskRequest,
)
from pylti1p3.tool_config import ToolConfDict

PAGE = """<!doctype html><title>Launched</title>
<p>Hello {{ name }} ({{ sub }}), launched in {{ course }} as {{ roles|length }} role(s).</p>"""


def create_app():
    app = Flask(__name__)
    app.config.update(SECRET_KEY="plain-pylti1p3-bench", CACHE_TYPE="RedisCache",
                      CACHE_REDIS_URL=os.environ.get("PLAIN_CACHE_URL", "redis://127.0.0.1:6379/4"),
                      CACHE_DEFAULT_TIMEOUT=600)
    cache = Cache(app)
    # Compiled once, as the example's render_template('game.html') is (Flask caches file templates):
    # render_template_string compiled it again on every launch, a quarter of this tool's CPU.
    page = app.jinja_env.from_string(PAGE)
    config = json.loads(os.environ["PLAIN_LTI_CONFIG"])
    private_key = os.environ["PLAIN_PRIVATE_KEY"]

    def tool_conf():
        conf = ToolConfDict(config)
        for iss, clients in config.items():
            for client in clients:
                conf.set_private_key(iss, private_key, client_id=client["client_id"])
        return conf

    @app.route("/")
    def index():
        return "plain pylti1p3 tool"

    @app.route("/lti/login", methods=["GET", "POST"])
    def login():
        flask_request = FlaskRequest()
        target_link_uri = flask_request.get_param("target_link_uri")
        if not target_link_uri:
            raise ValueError('Missing "target_link_uri" param')
        oidc_login = FlaskOIDCLogin(flask_request, tool_conf(), launch_data_storage=FlaskCacheDataStorage(cache))
        return oidc_login.redirect(target_link_uri)

    @app.route("/lti/launch", methods=["POST"])
    def launch():
        storage = FlaskCacheDataStorage(cache)
        message_launch = FlaskMessageLaunch(FlaskRequest(), tool_conf(), launch_data_storage=storage)
        message_launch.set_public_key_caching(storage, cache_lifetime=7200)
        data = message_launch.get_launch_data()
        context = data.get("https://purl.imsglobal.org/spec/lti/claim/context") or {}
        return page.render(name=data.get("name"), sub=data.get("sub"), course=context.get("title"),
                           roles=data.get("https://purl.imsglobal.org/spec/lti/claim/roles") or [])

    @app.errorhandler(Exception)
    def refused(exc):
        return f"launch refused: {exc}", 400

    _ = request  # the example reads the request only through FlaskRequest
    return app
