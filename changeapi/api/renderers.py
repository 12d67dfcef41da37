"""Renderers of the dry-run endpoints: its renderings as the files they are, and a browsable API
page that shows the lock timeline, not only the report's JSON."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from django.urls import reverse
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer
from rest_framework.settings import api_settings


class FileRenderer(BaseRenderer):
    """A view that answers with a finished file (an `HttpResponse`) still goes through DRF's
    content negotiation: declaring the file's media type lets a client ask for it by name
    (`Accept: image/png`) instead of being refused as not acceptable."""

    charset = None

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None) -> Any:
        return data


class MarkdownRenderer(FileRenderer):
    media_type = "text/markdown"
    format = "md"


class SVGRenderer(FileRenderer):
    media_type = "image/svg+xml"
    format = "svg"


class PNGRenderer(FileRenderer):
    media_type = "image/png"
    format = "png"


class DryRunBrowsableAPIRenderer(BrowsableAPIRenderer):
    """DRF's browsable API, with the timeline drawn above the JSON of a dry-run that has a report,
    and links to its SVG, PNG and Markdown renderings."""

    template = "changeapi/dry_run_api.html"

    def get_context(self, data: Any, accepted_media_type: str | None, renderer_context: Mapping[str, Any]) -> dict[str, Any]:
        context: dict[str, Any] = super().get_context(data, accepted_media_type, renderer_context)
        response = renderer_context.get("response")
        has_report = isinstance(data, Mapping) and data.get("report") is not None and isinstance(data.get("id"), int)
        if response is not None and response.status_code == 200 and has_report:
            pk = data["id"]
            context["renderings"] = {
                "svg": reverse("dry-run-report-svg", kwargs={"pk": pk}),
                "png": reverse("dry-run-report-png", kwargs={"pk": pk}),
                "markdown": reverse("dry-run-report-md", kwargs={"pk": pk}),
            }
        return context


def dry_run_renderers() -> list[type[BaseRenderer]]:
    """The project's renderers, with the browsable API's page replaced by the dry-run's own."""
    # api_settings imports the dotted paths of the setting; the stubs type them as the strings.
    renderers = cast(Sequence[type[BaseRenderer]], api_settings.DEFAULT_RENDERER_CLASSES)
    return [DryRunBrowsableAPIRenderer if issubclass(r, BrowsableAPIRenderer) else r for r in renderers]
