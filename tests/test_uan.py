"""ACPE Universal Activity Number parsing: accepted spellings, the parsed parts, and the part each bad one names."""
from datetime import date

import pytest

from lti_tool.services import uan

TODAY = date(2025, 6, 30)


@pytest.mark.parametrize("text, canonical, parts", [
    ("0197-0000-17-001-L05-T", "0197-0000-17-001-L05-T",
     dict(provider="0197", joint_provider=False, year=2017, sequence="001", format="L", topic="05", audience="T")),
    ("0798-9999-18-246-H04-P", "0798-9999-18-246-H04-P",
     dict(provider="0798", joint_provider=True, year=2018, sequence="246", format="H", topic="04", audience="P")),
    ("0430-0000-17-017-h03-p", "0430-0000-17-017-H03-P",
     dict(provider="0430", joint_provider=False, year=2017, sequence="017", format="H", topic="03", audience="P")),
    ("  0204 - 0000 - 24 - 123 - L01 - t  ", "0204-0000-24-123-L01-T",
     dict(provider="0204", joint_provider=False, year=2024, sequence="123", format="L", topic="01", audience="T")),
    ("0204\u20130000\u201424-123-L02-T", "0204-0000-24-123-L02-T",
     dict(provider="0204", joint_provider=False, year=2024, sequence="123", format="L", topic="02", audience="T")),
    ("019700002500 9H06T".replace(" ", ""), "0197-0000-25-009-H06-T",
     dict(provider="0197", joint_provider=False, year=2025, sequence="009", format="H", topic="06", audience="T")),
    ("0197-9999-09-999-L07-T", "0197-9999-09-999-L07-T",
     dict(provider="0197", joint_provider=True, year=2009, sequence="999", format="L", topic="07", audience="T")),
    # A real UAN of a home-study activity on pain management and opioids (topic 08).
    ("0204-0000-20-755-H08-P", "0204-0000-20-755-H08-P",
     dict(provider="0204", joint_provider=False, year=2020, sequence="755", format="H", topic="08", audience="P")),
])
def test_good_uans_parse_to_their_parts_and_canonical_form(text, canonical, parts):
    parsed = uan.parse(text, TODAY)
    assert parsed.canonical == canonical
    assert str(parsed) == canonical
    for name, value in parts.items():
        assert getattr(parsed, name) == value, name


def test_labels_and_stored_dict():
    parsed = uan.parse("0197-9999-17-001-L05-T", TODAY)
    assert (parsed.format_label, parsed.topic_label, parsed.audience_label) == (
        "live", "patient safety", "pharmacy technician")
    assert parsed.as_dict() == {
        "provider": "0197", "joint_provider": True, "year": 2017, "sequence": "001", "format": "L",
        "topic": "05", "audience": "T", "format_label": "live", "topic_label": "patient safety",
        "audience_label": "pharmacy technician",
    }
    assert uan.parse("0197-0000-17-001-H03-P", TODAY).as_dict()["topic_label"] == "pharmacy law"
    assert uan.parse("0204-0000-20-755-H08-P", TODAY).topic_label == "pain management / opioids"


@pytest.mark.parametrize("text, part, message", [
    ("", "format", "Enter the activity's UAN, like 0197-0000-17-001-L05-T."),
    (None, "format", "Enter the activity's UAN, like 0197-0000-17-001-L05-T."),
    ("0197-0000-17-001-L05", "format",
     "A UAN has six parts separated by dashes, like 0197-0000-17-001-L05-T; this one has 5."),
    ("0197-0000-17-001-L05-T-X", "format",
     "A UAN has six parts separated by dashes, like 0197-0000-17-001-L05-T; this one has 7."),
    ("197-0000-17-001-L05-T", "provider", "The provider number (first part) must be 4 digits, not '197'."),
    ("01A7-0000-17-001-L05-T", "provider", "The provider number (first part) must be 4 digits, not '01A7'."),
    ("0197-1234-17-001-L05-T", "joint_provider",
     "The second part must be 0000 (one provider) or 9999 (joint providers), not '1234'."),
    ("0197-0000-2017-001-L05-T", "year", "The year (third part) must be 2 digits, not '2017'."),
    ("0197-0000-27-001-L05-T", "year", "The year (third part) '27' means 2027, which has not come yet."),
    ("0197-0000-17-01-L05-T", "sequence", "The sequence number (fourth part) must be 3 digits, not '01'."),
    ("0197-0000-17-000-L05-T", "sequence", "The sequence number (fourth part) starts at 001; 000 is not used."),
    ("0197-0000-17-001-05-T", "format_topic",
     "The fifth part must be a format letter (L live, H home study) and a 2-digit topic, like L05, not '05'."),
    ("0197-0000-17-001-X05-T", "format_topic",
     "The format letter (fifth part) must be L (live) or H (home study), not 'X'."),
    ("0197-0000-17-001-B05-T", "format_topic",
     "The format letter (fifth part) must be L (live) or H (home study), not 'B'. An activity offered both live "
     "and as home study has two UANs, one with L and one with H."),
    ("0197-0000-17-001-L09-T", "format_topic",
     "The topic '09' (fifth part) is not an ACPE topic designator (01 disease state management / drug therapy, "
     "02 HIV/AIDS therapy, 03 pharmacy law, 04 general pharmacy, 05 patient safety, 06 immunizations, "
     "07 compounding, 08 pain management / opioids)."),
    ("0197-0000-17-001-L00-T", "format_topic",
     "The topic '00' (fifth part) is not an ACPE topic designator (01 disease state management / drug therapy, "
     "02 HIV/AIDS therapy, 03 pharmacy law, 04 general pharmacy, 05 patient safety, 06 immunizations, "
     "07 compounding, 08 pain management / opioids)."),
    ("0197-0000-17-001-L05-X", "audience",
     "The last part must be P (pharmacists) or T (pharmacy technicians), not 'X'."),
    ("0197-0000-17-001-L05-", "audience",
     "The last part must be P (pharmacists) or T (pharmacy technicians), not ''."),
])
def test_bad_uans_name_the_wrong_part(text, part, message):
    with pytest.raises(uan.UANError) as caught:
        uan.parse(text, TODAY)
    assert caught.value.part == part
    assert caught.value.message == message
    assert not uan.is_valid(text, TODAY)


def test_year_check_follows_today():
    assert uan.parse("0197-0000-25-001-L05-T", date(2025, 1, 1)).year == 2025
    with pytest.raises(uan.UANError):
        uan.parse("0197-0000-26-001-L05-T", date(2025, 12, 31))
    assert uan.is_valid("0197-0000-26-001-L05-T", date(2026, 1, 1))
