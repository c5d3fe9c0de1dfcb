"""All models, imported here so that Alembic and create_all see every table."""
from .lti_store import LtiStoreEntry
from .people import Course, Membership, Person
from .registrations import Deployment, Registration, ToolKey

__all__ = ["Course", "Deployment", "LtiStoreEntry", "Membership", "Person", "Registration", "ToolKey"]
