"""Pharmacy Tech Pathways: an LTI 1.3 tool for pharmacy technicians' competency evidence and sign-off."""
from pathlib import Path

from flask import Flask, g
from flask.sessions import SessionInterface
from sqlalchemy.engine import make_url
from werkzeug.middleware.proxy_fix import ProxyFix

import config as settings_module

from .extensions import db, migrate
from .ids import IdConverter
from .models.base import json_loads


def create_app(config: dict | None = None) -> Flask:
    """Wire the app. `config` overrides the environment's settings (tests pass one in)."""
    app = Flask(__name__, instance_relative_config=True)
    # No Flask cookie session: the tool's session is its signed token (tool_session.py), and third-party cookies
    # are unreliable in the LMS frame anyway. Reading an absent cookie on every request was pure cost.
    app.session_interface = _NoCookieSession()
    settings = settings_module.load()
    if config:
        settings.update(config)
    app.config.update(settings_module.check(settings))
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        # PostgreSQL's JIT compiles a query whose estimated cost is high: ~7 ms per statement, longer than the
        # team matrix's filters take to run (its "not started" filter: 83 -> 69 ms at 2,000 technicians without
        # it); the reports ran as fast or faster without it (bench/reports.py). An operator's own setting wins.
        options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        connect_args = dict(options.get("connect_args") or {})
        # Added to the URL's own `options` (a search_path, say), which connect_args would otherwise replace.
        given = connect_args.get("options") or make_url(app.config["SQLALCHEMY_DATABASE_URI"]).query.get("options")
        given = given if isinstance(given, str) else ""
        if "jit" not in given:
            connect_args["options"] = f"{given} -c jit=off".strip()
        # psycopg prepares a statement on the server once it has run it 5 times, and after 5 more runs PostgreSQL
        # may plan it once for any parameters (a generic plan): the team matrix's "not started" filter went from
        # 77 to 255 ms at 2,000 technicians from its 11th request in a worker on. Every statement is planned for
        # its own parameters instead (psycopg2's behavior); the launch's one statement, whose generic plan is as
        # good, is prepared explicitly (models/driver.py).
        connect_args.setdefault("prepare_threshold", None)
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {**options, "connect_args": connect_args}

    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"json_deserializer": json_loads,
                                              **(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})}

    if app.config.get("PROXY_FIX_HOPS"):
        hops = app.config["PROXY_FIX_HOPS"]
        # Behind a TLS-terminating proxy request.is_secure must be true, or cookies lose SameSite=None; Secure.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)

    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///"):
        # The development default lives under instance/ (the flaskr pattern).
        Path(app.config["SQLALCHEMY_DATABASE_URI"][len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    # Every <int:...> route: ASCII digits within the database's integer range (see ids.py).
    app.url_map.converters["int"] = IdConverter
    db.init_app(app)
    migrate.init_app(app, db, directory=str(_migrations_dir()))
    from . import models  # noqa: F401  (register every table)
    from .blueprints import deep_linking, home, lti, technician
    from .services import status_store  # noqa: F401  (keeps the stored status in every transaction)

    app.register_blueprint(lti.bp)
    app.register_blueprint(home.bp)
    app.register_blueprint(deep_linking.bp)
    from .blueprints.transcripts import bp as transcripts_bp

    app.register_blueprint(transcripts_bp)
    from .blueprints.case_api import bp as case_api_bp
    from .blueprints.credential_documents import bp as credential_documents_bp

    app.register_blueprint(case_api_bp)
    app.register_blueprint(credential_documents_bp)
    app.register_blueprint(technician.bp)
    from .blueprints.manager import bp as manager_bp

    app.register_blueprint(manager_bp)
    from .blueprints.requirements import bp as requirements_bp

    app.register_blueprint(requirements_bp)
    from .blueprints.calendar import bp as calendar_bp

    app.register_blueprint(calendar_bp)
    from .blueprints.admin import bp as admin_bp

    app.register_blueprint(admin_bp)
    from .blueprints.reports import bp as reports_bp

    app.register_blueprint(reports_bp)
    from .blueprints.imports import bp as imports_bp

    app.register_blueprint(imports_bp)
    from .blueprints.notifications import bp as notifications_bp

    app.register_blueprint(notifications_bp)
    if app.config["DEV_LMS_ENABLED"]:
        if app.config.get("NAME") == "production":
            raise settings_module.ConfigError("The development LMS cannot be switched on in production.")
        from .blueprints import dev

        app.register_blueprint(dev.bp)

    from . import cli, errors, guards, i18n, submissions, tasks, web

    i18n.init_app(app)
    errors.register(app)
    web.register(app)
    guards.register(app)
    submissions.register(app)
    cli.register(app)
    tasks.init_app(app)

    @app.after_request
    def commit_or_rollback(response):
        # One commit per request: services only flush, so a refused request writes nothing.
        if not db.session.registry.has():
            return response  # nothing used the database session (a login, a returning launch on PostgreSQL)
        session = db.session()
        if _nothing_to_commit(session):
            return response  # the teardown closes the session
        if response.status_code < 400 and not getattr(g, "rollback_only", False):
            session.commit()
        else:
            session.rollback()
        return response

    return app


def _nothing_to_commit(session) -> bool:
    """No ORM change waits for a flush, and: no transaction was begun (a login within its registry window), or
    the request ran without one (lti/storage.autocommit: each statement committed itself) and left no after-commit
    work in session.info (the stored status's pending pairs, files to delete, a registry change to announce).
    Pending ORM changes are checked first: whether an unflushed change has begun a transaction depends on how it
    was made, and it must be committed either way."""
    if session.new or session.dirty or session.deleted:
        return False
    if not session.in_transaction():
        return True
    return (bool(session.info.get("autocommit"))
            and not any(value for key, value in session.info.items() if key != "autocommit"))


class _NoCookieSession(SessionInterface):
    def open_session(self, app, request):
        return None  # Flask then hands out a NullSession, which refuses writes

    def save_session(self, app, session, response):
        pass


def _migrations_dir():
    return Path(__file__).resolve().parent.parent / "migrations"
