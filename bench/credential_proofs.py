"""Data Integrity proof benchmark: the cost of the eddsa-rdfc-2022 proof every AchievementCredential inside a
CLR carries (JSON-LD canonicalization with pyld dominates), so the time of a CLR for a technician with N held
competencies can be estimated (the CLR adds one proof per member to its own VC-JWT signature).

    .venv/bin/python bench/credential_proofs.py                # 50 proofs of a typical competency credential
    .venv/bin/python bench/credential_proofs.py --proofs 200
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import config  # noqa: E402
from lti_tool import create_app  # noqa: E402
from lti_tool.extensions import db  # noqa: E402
from lti_tool.lti import keys  # noqa: E402
from lti_tool.services import credentials, data_integrity  # noqa: E402

BASE = "https://tool.example.org"


def member(i: int) -> dict:
    """A competency credential shaped like the ones services.credentials builds (same fields and sizes)."""
    entry = {"competency_id": i, "identifier": f"00000000-0000-4000-8000-{i:012d}", "code": f"XT-CEN-{i:02d}",
             "title": "Automated dispensing cabinet restock", "description": "Restocks cabinets " * 10,
             "department_labels": ["Hospital central pharmacy"], "revalidation_months": 12,
             "framework": {"id": 1, "identifier": "9d2f3c71-4b8e-4f6a-a1c5-7e0b2d4c8f16", "name": "Pharmacy Technician",
                           "version": "2026.1", "scale": [
                               {"code": "not_yet", "label": "Not yet competent", "proficient": False},
                               {"code": "competent", "label": "Competent", "proficient": True}]}}
    rd_id = credentials.scale_url(BASE, entry["framework"])
    return {
        "@context": [credentials.VC2_CONTEXT, credentials.OB3_CONTEXT], "id": f"urn:uuid:{entry['identifier']}",
        "type": ["VerifiableCredential", "OpenBadgeCredential"], "name": f"{entry['code']} {entry['title']}",
        "issuer": {"id": credentials.issuer_id(BASE), "type": ["Profile"], "name": "Pharmacy Tech Pathways"},
        "validFrom": "2026-01-01T00:00:00Z",
        "credentialSubject": {"id": "urn:uuid:5f1a0c52-3a5b-4f0b-9a4c-2c1f0d1e2a3b", "type": ["AchievementSubject"],
                              "achievement": credentials.achievement_for(BASE, entry),
                              "result": [{"type": ["Result"], "resultDescription": rd_id,
                                          "achievedLevel": f"{rd_id}#competent", "status": "Completed"}]},
        "evidence": [{"id": f"{BASE}/verify/x#evidence-{i}", "type": ["Evidence"], "name": "Checklist",
                      "narrative": "Signed off by a manager. " * 5}],
        "credentialStatus": {"id": f"{BASE}/credentials/status/0#{i}", "type": "BitstringStatusListEntry",
                             "statusPurpose": "revocation", "statusListIndex": str(i),
                             "statusListCredential": f"{BASE}/credentials/status/0"},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--proofs", type=int, default=50)
    args = parser.parse_args()
    settings = config.load({"LTI_TOOL_ENV": "testing", "DATABASE_URL": "sqlite://"})
    settings.update(PROXY_FIX_HOPS=0)
    app = create_app(settings)
    with app.app_context():
        db.create_all()
        key = keys.signing_key()
        with app.test_request_context(base_url=BASE):
            bodies = [member(i) for i in range(args.proofs)]
        data_integrity.add_proof(bodies[0], BASE, key, "2026-01-01T00:00:00Z")  # warm-up (contexts, imports)
        times = []
        for body in bodies:
            started = time.perf_counter()
            data_integrity.add_proof(body, BASE, key, "2026-01-01T00:00:00Z")
            times.append((time.perf_counter() - started) * 1000)
    print(f"{args.proofs} eddsa-rdfc-2022 proofs: median {statistics.median(times):.1f} ms, "
          f"max {max(times):.1f} ms; a CLR with 100 members spends about "
          f"{statistics.median(times) * 100 / 1000:.1f} s on member proofs")


if __name__ == "__main__":
    main()
