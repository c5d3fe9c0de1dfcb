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
    from lti_tool.services.launches import MAX_FRAME_ORIGINS, frame_origins, remember_origins

    def presentation(url):
        return {"https://purl.imsglobal.org/spec/lti/claim/launch_presentation": {"return_url": url}}

    reg = make.registration(issuer="https://lms.example.edu", auth_login_url="https://sso.example.edu/auth")
    remember_origins(reg, {"https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings": {
        "deep_link_return_url": "https://school.example.edu/deep_linking_response?x=1"}})
    assert reg.settings["frame_origins"] == ["https://school.example.edu"]
    remember_origins(reg, presentation("javascript:alert(1)"))
    remember_origins(reg, presentation("https://school.example.edu/other/path"))
    assert reg.settings["frame_origins"] == ["https://school.example.edu"], "only new http(s) origins are kept"
    for i in range(MAX_FRAME_ORIGINS + 5):
        remember_origins(reg, presentation(f"https://host{i}.example.edu/return"))
    assert len(reg.settings["frame_origins"]) == MAX_FRAME_ORIGINS
    assert reg.settings["frame_origins"][-1] == f"https://host{MAX_FRAME_ORIGINS + 4}.example.edu"
    allowed = frame_origins(reg)
    assert {"https://lms.example.edu", "https://sso.example.edu"} <= set(allowed)
    assert len(allowed) == MAX_FRAME_ORIGINS + 2


def test_json_columns_read_back_what_python_wrote_beyond_orjson(make):
    """JSON columns are read with orjson; what it refuses (NaN, integers beyond 64 bits) but Python's json
    writes is still read back, never an error on a page (PostgreSQL itself refuses NaN in JSON)."""
    import math

    from lti_tool.models.base import json_loads

    assert db.engine.dialect._json_deserializer is json_loads
    scale = [{"n": 10**30}] + ([{"x": float("nan")}] if db.engine.dialect.name == "sqlite" else [])
    framework = Framework(code="BIG", name="Big numbers", version="1", scale=scale)
    db.session.add(framework)
    db.session.flush()
    framework_id = framework.id
    db.session.expunge_all()
    read = db.session.get(Framework, framework_id).scale
    assert read[0] == {"n": 10**30} and len(read) == len(scale)
    assert all(math.isnan(item["x"]) for item in read[1:])
    assert json_loads(b'{"a": [1, 2.5, "\\u00e9"]}') == {"a": [1, 2.5, "é"]}
    assert json_loads('[-18446744073709551617, 1e400]') == [-18446744073709551617, float("inf")]
