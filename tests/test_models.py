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


def test_remembered_frame_origins_are_origins_only_and_capped(make):
    from lti_tool.services.launches import MAX_FRAME_ORIGINS, remember_origins

    reg = make.registration()
    remember_origins(reg, {"https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings": {
        "deep_link_return_url": "https://lms.example.edu/deep_linking_response?x=1"}},
        request_origin="https://lms.example.edu")
    assert reg.settings["frame_origins"] == ["https://lms.example.edu"]
    remember_origins(reg, {}, request_origin="javascript:alert(1)")
    remember_origins(reg, {}, request_origin="https://evil.example/path")
    assert reg.settings["frame_origins"] == ["https://lms.example.edu"], "only bare http(s) origins are kept"
    for i in range(MAX_FRAME_ORIGINS + 5):
        remember_origins(reg, {}, request_origin=f"https://host{i}.example.edu")
    assert len(reg.settings["frame_origins"]) == MAX_FRAME_ORIGINS
    assert reg.settings["frame_origins"][-1] == f"https://host{MAX_FRAME_ORIGINS + 4}.example.edu"
