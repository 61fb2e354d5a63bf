"""Pages: placements and experiences (lists, edit forms), a preview of what a chosen profile
would see, and an experience's results."""

from __future__ import annotations

import json
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from access.roles import ADMIN, COMPLIANCE, MARKETER, has_role, roles_required
from campaigns import stats
from campaigns.views import arm_words
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
        {"form": form, "placement": placement},
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


@roles_required(*READ)
def experience_results(request: HttpRequest, experience_id: int) -> HttpResponse:
    experience = _experience_or_404(experience_id)
    found = selectors.experience_results(experience=experience)
    arms = [{**arm, "shown": arm_words(arm, lift="lift")} for arm in found["arms"]]
    return render(
        request,
        "experiences/results.html",
        {"experience": experience, "found": found, "arms": arms, "alpha": stats.ALPHA},
    )
