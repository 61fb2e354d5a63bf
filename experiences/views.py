"""Pages: placements and experiences (lists, edit forms), a preview of what a chosen profile
would see, and an experience's results."""

from __future__ import annotations

import json
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from access.roles import ADMIN, COMPLIANCE, MARKETER, has_role, roles_required
from campaigns import stats
from campaigns.views import arm_words, percent
from experiences import selectors, services
from experiences.definition import InvalidExperience
from experiences.forms import ExperienceForm, PlacementForm, PreviewForm, errors_apply
from experiences.models import Experience, Placement
from profiles.selectors import profile_get

READ = (MARKETER, COMPLIANCE, ADMIN)
WRITE = (MARKETER, ADMIN)


def _placement_or_404(placement_id: int) -> Placement:
    placement = selectors.placement_get_by_id(placement_id=placement_id)
    if placement is None:
        raise Http404("No such placement.")
    return placement


def _experience_or_404(experience_id: int) -> Experience:
    experience = selectors.experience_get(experience_id=experience_id)
    if experience is None:
        raise Http404("No such experience.")
    return experience


@roles_required(*READ)
def placement_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "experiences/placements.html",
        {"placements": selectors.placement_list(), "can_write": has_role(request.user, *WRITE)},
    )


def _snippet_lines(schema: Any) -> list[str]:
    """The markup a page puts inside the placement's element for each content field of the
    schema, as static/js/personalize.js fills it: links and images by attribute, text as HTML."""
    properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
    lines = []
    for name in properties if isinstance(properties, dict) else ():
        lowered = name.lower()
        if any(word in lowered for word in ("link", "url", "href")):
            lines.append(f'<a data-cdp-href="{name}" href="/">…</a>')
        elif any(word in lowered for word in ("image", "img", "src")):
            lines.append(f'<img data-cdp-src="{name}" alt="">')
        else:
            lines.append(f'<div data-cdp-field="{name}">…</div>')
    return lines or ['<h2 data-cdp-field="title">…</h2>']


def _placement_form(request: HttpRequest, placement: Placement | None) -> HttpResponse:
    form = PlacementForm(request.POST) if request.method == "POST" else None
    if form is not None and form.is_valid():
        try:
            if placement is None:
                services.placement_create(fields=form.cleaned_data, actor=request.user)
            else:
                services.placement_update(
                    placement=placement, fields=form.cleaned_data, actor=request.user
                )
        except InvalidExperience as invalid:
            errors_apply(form, invalid)
        else:
            return redirect("experiences:placements")
    if form is None:
        form = PlacementForm.of(placement) if placement else PlacementForm()
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "experiences/placement_edit.html",
        {
            "form": form,
            "placement": placement,
            "host": request.build_absolute_uri("/").rstrip("/"),
            "snippet_lines": _snippet_lines(placement.content_schema if placement else None),
        },
        status=status,
    )


@roles_required(*WRITE)
def placement_new(request: HttpRequest) -> HttpResponse:
    return _placement_form(request, None)


@roles_required(*WRITE)
def placement_edit(request: HttpRequest, placement_id: int) -> HttpResponse:
    return _placement_form(request, _placement_or_404(placement_id))


@roles_required(*READ)
def experience_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "experiences/list.html",
        {"experiences": selectors.experience_list(), "can_write": has_role(request.user, *WRITE)},
    )


def _experience_form(request: HttpRequest, experience: Experience | None) -> HttpResponse:
    form = ExperienceForm(request.POST) if request.method == "POST" else None
    if form is not None and form.is_valid():
        try:
            if experience is None:
                experience = services.experience_create(
                    fields=form.cleaned_data, actor=request.user
                )
            else:
                services.experience_update(
                    experience=experience, fields=form.cleaned_data, actor=request.user
                )
        except InvalidExperience as invalid:
            errors_apply(form, invalid)
        else:
            return redirect("experiences:edit", experience.pk)
    if form is None:
        form = ExperienceForm.of(experience) if experience else ExperienceForm()
    return render(
        request,
        "experiences/edit.html",
        {"form": form, "experience": experience, "can_write": has_role(request.user, *WRITE)},
        status=400 if request.method == "POST" else 200,
    )


@roles_required(*WRITE)
def experience_new(request: HttpRequest) -> HttpResponse:
    return _experience_form(request, None)


@roles_required(*READ)
def experience_edit(request: HttpRequest, experience_id: int) -> HttpResponse:
    experience = _experience_or_404(experience_id)
    if request.method == "POST" and not has_role(request.user, *WRITE):
        return HttpResponse("Your role does not allow this.", status=403)
    return _experience_form(request, experience)


@roles_required(*READ)
def experience_preview(request: HttpRequest, experience_id: int) -> HttpResponse:
    """What a chosen profile would see (htmx swaps the answer in; no decision recorded)."""
    experience = _experience_or_404(experience_id)
    form = PreviewForm(request.GET or None)
    found: dict[str, Any] | None = None
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        profile = profile_get(profile_id=data.pop("profile"))
        if profile is None:
            form.add_error("profile", "No profile has this id.")
        else:
            page = {name: value for name, value in data.items() if value}
            found = selectors.experience_preview(
                experience=experience, profile=profile, page=page, viewer=request.user
            )
    template = (
        "experiences/preview.html#answer"
        if request.headers.get("HX-Request")
        else "experiences/preview.html"
    )
    return render(
        request,
        template,
        {
            "experience": experience,
            "form": form,
            "found": found,
            "content_json": json.dumps(found["content"], indent=2, ensure_ascii=False)
            if found
            else "",
        },
        status=400 if form.is_bound and not form.is_valid() else 200,
    )


def _results_charts(found: dict[str, Any]) -> dict[str, Any]:
    """What the results page draws (Chart.js data, passed with json_script; static/js/results.js
    draws it): every arm in the table's order, so that each keeps its colour in every chart."""
    arms = found["arms"]
    decided = [arm for arm in arms if arm["assigned"]]
    intervals = {
        "labels": [arm["name"] for arm in decided],
        "rate": [percent(arm["conversion_rate"]) for arm in decided],
        "low": [percent(arm["ci95"][0]) for arm in decided],
        "high": [percent(arm["ci95"][1]) for arm in decided],
    }

    def band(series: dict[str, Any], side: str) -> list[float | None]:
        # None before the arm's first person: (0, 1) says nothing worth drawing.
        rates = series["rate"]
        return [
            None if rate is None else percent(bound)
            for rate, bound in zip(rates, series[side], strict=True)
        ]

    rates = {
        "labels": found["days"],
        "arms": [
            {
                "label": arm["name"],
                "rate": [percent(rate) for rate in arm["series"]["rate"]],
                "low": band(arm["series"], "low"),
                "high": band(arm["series"], "high"),
            }
            for arm in arms
        ],
    }

    def per_day(figure: str) -> dict[str, Any]:
        return {
            "labels": found["days"],
            "datasets": [{"label": arm["name"], "data": arm["series"][figure]} for arm in arms],
        }

    return {
        "intervals": intervals,
        "rates": rates,
        "impressions": per_day("impressions"),
        "clicks": per_day("clicks"),
    }


@roles_required(*READ)
def experience_results(request: HttpRequest, experience_id: int) -> HttpResponse:
    """The arms' figures and tests, and charts of rates with their intervals and of
    impressions and clicks over time."""
    experience = _experience_or_404(experience_id)
    found = selectors.experience_results(experience=experience)
    arms = [{**arm, "shown": arm_words(arm, lift="lift")} for arm in found["arms"]]
    return render(
        request,
        "experiences/results.html",
        {
            "experience": experience,
            "found": found,
            "arms": arms,
            "charts": _results_charts(found),
            "alpha": stats.ALPHA,
        },
    )
