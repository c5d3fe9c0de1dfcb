"""Canvas developer-key JSON (Developer Keys > + LTI Key > Paste JSON)."""
from urllib.parse import urlsplit

from flask import current_app

from .urls import SCOPES, tool_urls


def canvas_configuration() -> dict:
    urls = tool_urls()
    domain = urlsplit(urls["launch"]).netloc
    title = current_app.config["TOOL_TITLE"]
    placements = [
        {"placement": "course_navigation", "message_type": "LtiResourceLinkRequest",
         "target_link_uri": urls["launch"], "text": title, "default": "enabled", "visibility": "members"},
        {"placement": "link_selection", "message_type": "LtiDeepLinkingRequest",
         "target_link_uri": urls["deep_linking"], "text": title},
        {"placement": "assignment_selection", "message_type": "LtiDeepLinkingRequest",
         "target_link_uri": urls["deep_linking"], "text": title},
    ]
    return {
        "title": title,
        "description": "Pharmacy technicians record cross-training, responsibilities, certifications and CE; "
                       "managers review and sign off competencies; everyone exports transcripts.",
        "oidc_initiation_url": urls["login"],
        "target_link_uri": urls["launch"],
        "public_jwk_url": urls["jwks"],
        "scopes": SCOPES,
        "extensions": [{
            "domain": domain,
            "platform": "canvas.instructure.com",
            "privacy_level": "public",
            "settings": {"text": title, "placements": placements},
        }],
        "custom_fields": {"canvas_course_id": "$Canvas.course.id", "canvas_user_id": "$Canvas.user.id",
                          "timezone": "$Person.address.timezone"},
    }
