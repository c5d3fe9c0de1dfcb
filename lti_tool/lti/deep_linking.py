"""Deep-linking responses: the signed LtiDeepLinkingResponse a manager's choices go back to the LMS in."""
from pylti1p3.deep_link import DeepLink
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.lineitem import LineItem

from .tool_conf import ToolRegistration

DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"


class ToolDeepLink(DeepLink):
    def get_message_jwt(self, resources):
        message = super().get_message_jwt(resources)
        # `data` must be echoed when the platform sent it, and left out otherwise.
        if message.get(DL + "data") is None:
            message.pop(DL + "data", None)
        return message


def response_jwt(registration_row, deployment_id: str, settings: dict, items: list[dict]) -> str:
    """items: [{"title", "url", "target", "lineitem": {"label", "scoreMaximum", "resourceId", "tag"} | None}]"""
    resources = []
    for item in items:
        resource = (DeepLinkResource().set_type("ltiResourceLink").set_title(item["title"]).set_url(item["url"])
                    .set_custom_params({"target": item["target"]}))
        if item.get("lineitem"):
            li = item["lineitem"]
            resource.set_lineitem(LineItem().set_label(li["label"]).set_score_maximum(li["scoreMaximum"])
                                  .set_resource_id(li["resourceId"]).set_tag(li.get("tag", "competency")))
        resources.append(resource)
    return ToolDeepLink(ToolRegistration(registration_row), deployment_id, settings).get_response_jwt(resources)
