"""What each kind of import reads, the column names people use for it, and the downloadable templates.

A header matches a field when its normalized text (lowercase letters and digits only) equals one of the field's
names; the importer can also map any header to any field by hand ("Eval by" -> assessor name).
"""
import re
from dataclasses import dataclass

from ..csv_cells import to_csv


@dataclass(frozen=True)
class Field:
    key: str
    label: str
    names: tuple
    required: bool = False
    hint: str = ""


PERSON = (
    Field("email", "Technician email", ("technicianemail", "email", "emailaddress", "employeeemail", "workemail",
                                        "technicianemailaddress")),
    Field("lms_id", "Technician LMS id", ("technicianlmsid", "lmsid", "lmsuserid", "ltiuserid", "userid")),
    Field("name", "Technician name", ("technician", "technicianname", "name", "employee", "employeename",
                                      "fullname")),
)
FIELDS = {
    "sign_offs": PERSON + (
        Field("competency", "Competency code", ("competencycode", "competency", "code", "skillcode"), True),
        Field("assessed", "Date assessed", ("dateassessed", "assessed", "assessmentdate", "assesseddate",
                                            "datecompleted", "completed", "date"), True),
        Field("assessor_name", "Assessor name", ("assessorname", "assessor", "evaluator", "evaluatorname",
                                                 "assessedby", "signedby", "preceptor")),
        Field("assessor_role", "Assessor role", ("assessorrole", "evaluatorrole", "role", "assessortitle")),
        Field("method", "Method", ("method", "assessmentmethod", "how"),
              hint="observed, demonstrated, verified document or attested"),
        Field("rating", "Rating", ("rating", "result", "level", "score")),
        Field("expires", "Expiration date", ("expirydate", "expiry", "expires", "expirationdate", "nextdue",
                                         "duedate", "revalidationdue")),
        Field("interval", "Interval (months)", ("intervalmonths", "interval", "revalidationinterval",
                                                "frequency", "revalidationmonths", "every")),
        Field("note", "Note", ("note", "notes", "comment", "comments")),
    ),
    "certifications": PERSON + (
        Field("credential", "Credential", ("credential", "certification", "credentialtype", "license",
                                           "certificationtype"), True),
        Field("number", "Number", ("number", "certificationnumber", "credentialnumber", "licensenumber",
                                   "certnumber", "cert"), True),
        Field("issued", "Issued", ("issued", "issuedate", "dateissued", "issueddate", "certifieddate",
                                   "certified"), True),
        Field("expires", "Expires", ("expires", "expirydate", "expirationdate", "expiry", "expiration")),
        Field("issuing_body", "Issuing body", ("issuingbody", "issuer", "issuedby", "body")),
        Field("state", "State", ("state", "issuingstate")),
    ),
    "ce": PERSON + (
        Field("uan", "ACPE UAN", ("uan", "acpeuan", "universalactivitynumber", "acpeuniversalactivitynumber",
                                  "acpeuniversalactivitynumberuan", "acpe", "acpenumber", "activitynumber",
                                  "programnumber"), True),
        Field("title", "Activity title", ("activitytitle", "title", "activity", "programtitle", "coursetitle")),
        Field("hours", "Contact hours", ("contacthours", "hours", "credithours", "credits", "creditshours")),
        Field("ceus", "CEUs", ("ceus", "ceu", "ceunits", "continuingeducationunits")),
        Field("completed", "Completion date", ("dateofparticipation", "completiondate", "datecompleted",
                                               "participationdate", "activitydate", "completed", "date"), True),
        Field("provider", "Provider", ("provider", "providername", "activityprovider", "acpeprovider")),
    ),
}
KIND_LABELS = {"sign_offs": "Sign-offs (competency assessments)", "certifications": "Certifications",
               "ce": "Continuing education (incl. NABP CPE Monitor transcripts)"}
EXAMPLES = {
    "sign_offs": ["tess.nguyen@example.org", "", "Tess Nguyen", "USP797-02", "2025-01-15", "Dana Lee", "Pharmacist",
                  "observed", "competent", "", "6", "Gloved fingertip 0 CFU x3"],
    "certifications": ["tess.nguyen@example.org", "", "Tess Nguyen", "PTCB CPhT", "123456", "2023-05-01",
                       "2025-05-31", "", ""],
    "ce": ["tess.nguyen@example.org", "", "Tess Nguyen", "0204-0000-24-101-H05-T", "Look-alike, sound-alike drugs",
           "1.5", "", "2024-06-10", "Example CE Provider"],
}


def normalize(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", (text or "").lower())


def known_header_counter(kind: str, extra=()):
    """Counts the column names of `kind` in a row; `extra`: header texts the importer mapped by hand."""
    names = {n for f in FIELDS[kind] for n in f.names} | {normalize(t) for t in extra if t}

    def count(texts) -> int:
        return len({normalize(t) for t in texts if normalize(t) in names})

    return count


def auto_mapping(kind: str, header: list) -> dict:
    """{field key: column index} for the headers that name a field (the first column wins)."""
    out: dict = {}
    normalized = [normalize(h) for h in header]
    for field in FIELDS[kind]:
        for name in field.names:  # the field's most specific name first
            if name in normalized and normalized.index(name) not in out.values():
                out[field.key] = normalized.index(name)
                break
    return out


def template_csv(kind: str) -> str:
    return to_csv([f.label for f in FIELDS[kind]], [EXAMPLES[kind]])
