"""Alembic: one head, and `upgrade` from empty gives exactly the models' schema."""
import tempfile

import flask_migrate
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from lti_tool import create_app
from lti_tool.extensions import db
from tests.conftest import DATABASE_URL, IS_POSTGRES, settings_for_tests


def _empty_database_url():
    if IS_POSTGRES:
        engine = create_engine(DATABASE_URL)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS migration_check CASCADE"))
            conn.execute(text("CREATE SCHEMA migration_check"))
        engine.dispose()
        sep = "&" if "?" in DATABASE_URL else "?"
        return DATABASE_URL + sep + "options=-csearch_path%3Dmigration_check"
    return f"sqlite:///{tempfile.mkdtemp()}/migrations.sqlite3"


def test_single_head(app):
    with app.app_context():
        config = app.extensions["migrate"].migrate.get_config()
        assert len(ScriptDirectory.from_config(config).get_heads()) == 1


def test_upgrade_from_empty_matches_models():
    app = create_app(settings_for_tests(SQLALCHEMY_DATABASE_URI=_empty_database_url()))
    with app.app_context():
        flask_migrate.upgrade()
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, db.metadata)
        db.engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"
