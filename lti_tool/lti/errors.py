"""Launch failures that people see inside the LMS frame."""


class LaunchError(Exception):
    """A refused LTI message: a plain-words title, what happened and what an administrator should do."""

    status = 400

    def __init__(self, title: str, detail: str, advice: str | None = None, status: int | None = None, code=None):
        super().__init__(detail)
        self.title = title
        self.detail = detail
        self.advice = advice or (
            "Try opening the tool again from your course. If this keeps happening, "
            "ask your LMS administrator to check the tool's registration."
        )
        if status:
            self.status = status
        self.code = code or "launch_refused"


ADMIN_REGISTRATION_ADVICE = (
    "An LMS administrator needs to register this platform with the tool: run "
    "`flask --app lti_tool lti add-platform ...` on the tool's server, or use LTI Dynamic Registration."
)
