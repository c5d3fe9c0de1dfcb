"""Database constraints that protect records whatever the code above them does."""
import pytest
from sqlalchemy.exc import IntegrityError

from lti_tool.extensions import db
from lti_tool.models import Framework


def test_a_shipped_framework_cannot_be_installed_twice(make):
    db.session.add(Framework(code="PT", name="Pharmacy Technician", version="2026.1", scale=[]))
    db.session.flush()
    db.session.add(Framework(code="PT", name="Pharmacy Technician", version="2026.1", scale=[]))
    with pytest.raises(IntegrityError):
        db.session.flush()


def test_tenants_may_each_hold_the_same_framework_code(make):
    a, b = make.registration(), make.registration()
    db.session.add_all([Framework(registration_id=a.id, code="PT", name="A", version="1", scale=[]),
                        Framework(registration_id=b.id, code="PT", name="B", version="1", scale=[]),
                        Framework(code="PT", name="Shipped", version="1", scale=[])])
    db.session.flush()
    assert Framework.query.filter_by(code="PT").count() == 3
