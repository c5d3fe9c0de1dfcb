"""All models, imported here so that Alembic and create_all see every table."""
from .advantage import ResourceLink, ScoreOutbox
from .audit import AuditEntry
from .evidence import Attachment, Evidence, EvidenceCompetency
from .exports import ExportJob, IssuedCredential
from .frameworks import Competency, CourseFramework, Framework
from .imports import ImportBatch, ImportedRecord
from .lti_store import LtiStoreEntry
from .notifications import NotificationPreference, SentMessage
from .people import Course, Membership, Person
from .registrations import Deployment, Registration, RegistrationLink, RegistryVersion, ToolKey
from .requirements import Requirement
from .reviews import Preceptor, ReviewRequest, SignOff, SignOffRevocation
from .status import StoredStatus
from .submissions import FormSubmission

__all__ = [
    "Attachment", "AuditEntry", "Competency", "Course", "CourseFramework", "Deployment", "Evidence",
    "EvidenceCompetency", "ExportJob", "FormSubmission", "Framework", "ImportBatch", "ImportedRecord",
    "IssuedCredential", "LtiStoreEntry", "Membership", "NotificationPreference", "Person", "Preceptor",
    "Registration", "RegistrationLink", "RegistryVersion", "Requirement", "ResourceLink", "ReviewRequest",
    "ScoreOutbox",
    "SentMessage", "SignOff", "SignOffRevocation", "StoredStatus",
    "ToolKey",
]
