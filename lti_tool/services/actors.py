"""Who is acting, in which tenant and course: the first argument of every service."""
from dataclasses import dataclass

from ..lti.roles import ADMIN, MANAGER_SIDE
from ..models import Course, Membership, Person


@dataclass(frozen=True)
class Actor:
    person: Person
    course: Course | None = None
    membership: Membership | None = None

    @property
    def registration_id(self) -> int:
        return self.person.registration_id

    @property
    def role(self) -> str | None:
        if self.membership is not None and self.membership.active:
            return self.membership.role
        return ADMIN if self.person.is_admin else None

    @property
    def is_manager_side(self) -> bool:
        return self.role in MANAGER_SIDE

    @property
    def is_admin(self) -> bool:
        return bool(self.person.is_admin)

    @classmethod
    def from_session(cls, session) -> "Actor":
        return session.actor
