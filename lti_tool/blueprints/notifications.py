"""E-mail preferences (inside the tool) and unsubscribe links (from an e-mail, without logging in)."""
from flask import Blueprint, render_template, request

from .. import tool_session
from ..models.notifications import CATEGORIES, DIGEST_CHOICES
from ..permissions import is_manager_side, login_required
from ..services import DomainError, preferences
from ..web import redirect_with_notice

bp = Blueprint("notifications", __name__, url_prefix="/notifications")

CATEGORY_LABELS = {"reminders": "reminders before a competency or certification expires",
                   "review_updates": "e-mails when evidence is returned or a sign-off is recorded",
                   "digest": "the summary of what waits for review", preferences.ALL: "every e-mail from the tool"}


@bp.route("/preferences", methods=["GET", "POST"])
@login_required
def edit():
    session = tool_session.current()
    person = session.person
    errors = {}
    if request.method == "POST":
        try:
            preferences.update(person, reminders=request.form.get("reminders") == "on",
                               review_updates=request.form.get("review_updates") == "on",
                               digest=request.form.get("digest", ""))
            return redirect_with_notice("notifications.edit", "Your e-mail preferences are saved.")
        except DomainError as exc:
            errors = exc.fields or {"digest": exc.message}
    return render_template("notifications/preferences.html", pref=preferences.get(person.id), person=person,
                           reviewer=is_manager_side(session), choices=DIGEST_CHOICES, errors=errors), \
        (400 if errors else 200)


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
def unsubscribe(token):
    """GET asks (mail scanners follow links); POST unsubscribes, also as RFC 8058 one-click from the mail app."""
    person, category = preferences.read_token(token)
    if request.method == "POST":
        chosen = request.form.get("category", category)
        if chosen not in (category, preferences.ALL):
            chosen = category
        preferences.unsubscribe(person.id, chosen)
        return render_template("notifications/unsubscribed.html", what=CATEGORY_LABELS[chosen])
    return render_template("notifications/unsubscribe.html", what=CATEGORY_LABELS[category], category=category,
                           everything=CATEGORY_LABELS[preferences.ALL], categories=CATEGORIES)
