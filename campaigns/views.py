"""Pages: campaigns list, campaign page (the journey drawn as a vertical flow, counts, the
deliveries log, a message preview for a chosen profile), the editor; and the public links in
sent messages (open pixel, click redirect, unsubscribe).

The public views need no login: a signed token (campaigns.tracking) says which delivery they
are about, so they can neither be forged nor turned into an open redirect.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from access.auth import client_ip
from access.roles import ADMIN, COMPLIANCE, MARKETER, has_role, roles_required
from campaigns import definition as steps_language
from campaigns import results, selectors, services, stats
from campaigns.definition import InvalidCampaign
from campaigns.forms import (
    JSON_VIEW,
    VISUAL,
    CampaignForm,
    ChannelForm,
    editor_message,
    editor_message_errors,
    journey_mode,
    journey_nodes,
    journey_read,
)
from campaigns.forms import step_new as editor_step_new
from campaigns.messages import RenderError
from campaigns.models import Campaign, Channel
from campaigns.tracking import click_token_read, open_token_read, unsubscribe_token_read
from profiles.services import profile_access_record
from segments import selectors as segment_selectors
from segments.conditions import ConditionError, describe_node

# The smallest transparent GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


@require_GET
@never_cache
def tracking_open(request: HttpRequest, token: str) -> HttpResponse:
    delivery_id = open_token_read(token)
    if delivery_id is not None:
        services.delivery_open_record(
            delivery_id=delivery_id, user_agent=request.headers.get("User-Agent", "")
        )
    # The pixel answers the same whatever the token: a probe learns nothing.
    return HttpResponse(PIXEL, content_type="image/gif")


@require_GET
@never_cache
def tracking_click(request: HttpRequest, token: str) -> HttpResponse:
    found = click_token_read(token)
    if found is None:
        raise Http404("Unknown link.")
    delivery_id, url, slot = found
    services.delivery_click_record(
        delivery_id=delivery_id,
        url=url,
        slot=slot,
        user_agent=request.headers.get("User-Agent", ""),
    )
    return HttpResponseRedirect(url)


# RFC 8058: mail providers POST "List-Unsubscribe=One-Click" to the link with no cookie and no
# CSRF token; the signed token is what authorises the request.
@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """The public preference centre behind every message's unsubscribe link. A GET only shows
    it (link scanners and previews follow every link); the one-click POST withdraws the
    channel's purpose; the page's form sets each purpose campaigns send under."""
    delivery_id = unsubscribe_token_read(token)
    if delivery_id is None:
        raise Http404("Unknown link.")
    ip = client_ip(request)
    if request.method == "POST" and request.POST.get("List-Unsubscribe") == "One-Click":
        services.delivery_unsubscribe(delivery_id=delivery_id, ip=ip)
        return HttpResponse("Unsubscribed.\n", content_type="text/plain")
    saved = False
    if request.method == "POST":
        purposes = services.delivery_preferences(delivery_id=delivery_id) or []
        chosen = set(request.POST.getlist("purpose"))
        services.delivery_preferences_set(
            delivery_id=delivery_id,
            granted={row["purpose"]: row["purpose"] in chosen for row in purposes},
            ip=ip,
        )
        saved = True
    rows = services.delivery_preferences(delivery_id=delivery_id)
    return render(
        request, "campaigns/unsubscribe.html", {"rows": rows, "gone": rows is None, "saved": saved}
    )


# --- staff pages -----------------------------------------------------------------------------

READ = (MARKETER, COMPLIANCE, ADMIN)
BUILD = (MARKETER, ADMIN)
STARTER: dict[str, Any] = {
    "trigger": {"event": "Product Added"},
    "entry": "once",
    "goal": {"event": "Order Completed", "within": {"days": 3}},
    "steps": [{"wait": {"hours": 1}}],
}


def _duration_words(spec: dict[str, Any]) -> str:
    if "until_hour" in spec:
        return f"until {spec['until_hour']:02d}:00 in the person's time zone"
    ((unit, amount),) = spec.items()
    return f"{amount} {unit[:-1] if amount == 1 else unit}"


def _trigger_words(trigger: dict[str, Any]) -> str:
    if "event" in trigger:
        where = f" ({len(trigger['where'])} property filters)" if trigger.get("where") else ""
        return f"When someone does “{trigger['event']}”{where}"
    if "segment" in trigger:
        verb = "enters" if trigger.get("on", "enter") == "enter" else "leaves"
        return f"When someone {verb} segment #{trigger['segment']}"
    return (
        f"Broadcast to segment #{trigger['broadcast']['segment']} at {trigger['broadcast']['at']}"
    )


def _headline(message: Any) -> str:
    """An email's subject or a push's title, to name a message in the flow drawing."""
    return str(message.get("subject") or message.get("title") or "")


def _outline(
    steps: list[dict[str, Any]], channels: dict[int, Channel], prefix: tuple[Any, ...] = ()
) -> list[dict[str, Any]]:
    """The steps as nested rows for the vertical flow drawing."""
    rows = []
    for index, step in enumerate(steps):
        path = [*prefix, index]
        if "wait" in step:
            rows.append({"kind": "wait", "text": "Wait " + _duration_words(step["wait"])})
        elif "branch" in step:
            branch = step["branch"]
            rows.append(
                {
                    "kind": "branch",
                    "text": "If " + describe_node(branch["if"]),
                    "then": _outline(branch.get("then", []), channels, (*path, "then")),
                    "else": _outline(branch.get("else", []), channels, (*path, "else")),
                }
            )
        else:
            send = step["send"]
            channel = channels.get(send["channel"])
            name = channel.name if channel else f"#{send['channel']}"
            variants = [
                {"name": v["name"], "subject": _headline(v["message"])}
                for v in send.get("variants", [])
            ]
            rows.append(
                {
                    "kind": "send",
                    "text": f"Send through {name}",
                    "subject": _headline(steps_language.send_message(send, "")),
                    "variants": variants,
                    "allocation": send.get("allocation", "split") if variants else "",
                    "pointer": steps_language.step_pointer(path),
                }
            )
    return rows


def _send_pointers(rows: list[dict[str, Any]]) -> list[str]:
    found = []
    for row in rows:
        if row["kind"] == "send":
            found.append(row["pointer"])
        elif row["kind"] == "branch":
            found += _send_pointers(row["then"]) + _send_pointers(row["else"])
    return found


@roles_required(*READ)
def campaign_list(request: HttpRequest) -> HttpResponse:
    campaigns = list(selectors.campaign_list(include_archived=request.GET.get("archived") == "1"))
    counts = selectors.campaigns_counts(campaign_ids=[c.pk for c in campaigns])
    rows = [{"campaign": c, "counts": counts[c.pk]} for c in campaigns]
    return render(
        request,
        "campaigns/list.html",
        {"rows": rows, "can_build": has_role(request.user, *BUILD)},
    )


def _campaign_or_404(campaign_id: int) -> Campaign:
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    if campaign is None:
        raise Http404("No such campaign.")
    return campaign


@roles_required(*READ)
def campaign_detail(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign_or_404(campaign_id)
    version = selectors.campaign_version_current(campaign=campaign)
    definition = version.definition
    channels = {c.pk: c for c in selectors.channel_list()}
    outline = _outline(definition["steps"], channels)
    experiment = steps_language.experiment_step(definition["steps"])
    deliveries = selectors.campaign_deliveries(campaign=campaign).order_by("-created_at", "-id")
    return render(
        request,
        "campaigns/detail.html",
        {
            "campaign": campaign,
            "version": version,
            "trigger": _trigger_words(definition["trigger"]),
            "goal": definition.get("goal"),
            "goal_within": _duration_words(definition["goal"]["within"])
            if definition.get("goal")
            else "",
            "entry": definition.get("entry", "once"),
            "outline": outline,
            "send_steps": _send_pointers(outline),
            "variant_names": [v["name"] for v in (experiment[1]["variants"] if experiment else [])],
            "stats": selectors.campaign_stats(campaign=campaign),
            "deliveries": deliveries[:50],
            "can_build": has_role(request.user, *BUILD),
        },
    )


# What the compose view's `op` does to the steps: `at` names a step, `into` a list of steps.
SHAPE_CHANGES = ("add", "remove", "move", "split", "unsplit", "add_variant", "remove_variant")


ADD_STEPS = (
    ("wait", "Wait"),
    ("until", "Wait until an hour"),
    ("branch", "Branch"),
    ("send", "Send"),
)


def _journey_context(
    request: HttpRequest,
    *,
    campaign: Campaign | None,
    definition: dict[str, Any],
    errors: list[Any],
    mode: str,
    definition_text: str | None = None,
) -> dict[str, Any]:
    """What the editor's journey part draws, in the visual or the JSON view."""
    channels = list(selectors.channel_list())
    context: dict[str, Any] = {
        "campaign": campaign,
        "mode": mode,
        "can_build": has_role(request.user, *BUILD),
        "channels": channels,
        "errors": [e.as_dict() for e in errors],
        "preview_profile": request.POST.get("preview_profile", "") if request.POST else "",
    }
    if mode == JSON_VIEW:
        context["definition_text"] = (
            definition_text
            if definition_text is not None
            else json.dumps(definition, indent=2, ensure_ascii=False)
        )
        return context
    context.update(
        journey=journey_nodes(definition, errors=errors, channels=channels),
        segments=list(segment_selectors.segment_list()),
        add_steps=ADD_STEPS,
    )
    return context


def _editor(request: HttpRequest, campaign: Campaign | None) -> HttpResponse:
    """The journey editor: the visual editor (or the JSON view), saved through the service the
    API uses. "Save and activate" saves then activates; an active campaign's edit becomes a
    new version. Compliance sees it read-only."""
    can_build = has_role(request.user, *BUILD)
    errors: list[Any] = []
    if request.method == "POST":
        if not can_build:
            raise PermissionDenied
        form = CampaignForm(request.POST)
        valid = form.is_valid()
        definition, errors = form.journey, list(form.problems)
        status = request.POST.get("status") or None
        if valid:
            data = form.cleaned_data
            try:
                if campaign is None:
                    campaign = services.campaign_create(
                        name=data["name"],
                        kind=data["kind"],
                        definition=data["definition"],
                        status=status or Campaign.Status.DRAFT,
                        actor=request.user,
                    )
                else:
                    services.campaign_update(
                        campaign=campaign,
                        actor=request.user,
                        name=data["name"],
                        kind=data["kind"],
                        definition=data["definition"],
                        status=status,
                    )
            except InvalidCampaign as error:
                errors = error.errors
            except services.CampaignStateError as error:
                messages.error(request, str(error))
                return redirect(request.path)
            else:
                saved = f"Campaign “{campaign.name}” saved"
                messages.success(request, saved + (f" and {status}." if status else "."))
                return redirect("campaigns:detail", campaign.pk)
        mode = journey_mode(request.POST)
        definition_text = request.POST.get("definition") if mode == JSON_VIEW else None
    else:
        if campaign is not None:
            definition = selectors.campaign_version_current(campaign=campaign).definition
            form = CampaignForm(initial={"name": campaign.name, "kind": campaign.kind})
        else:
            definition = json.loads(json.dumps(STARTER))
            form = CampaignForm(initial={"kind": "marketing"})
        mode, definition_text = VISUAL, None
    context = _journey_context(
        request,
        campaign=campaign,
        definition=definition,
        errors=errors,
        mode=mode,
        definition_text=definition_text,
    )
    context.update(
        form=form,
        version=selectors.campaign_version_current(campaign=campaign) if campaign else None,
        vocabulary=segment_selectors.builder_vocabulary(),
    )
    return render(request, "campaigns/editor.html", context)


@roles_required(*BUILD)
def campaign_new(request: HttpRequest) -> HttpResponse:
    return _editor(request, None)


@roles_required(*READ)
def campaign_edit(request: HttpRequest, campaign_id: int) -> HttpResponse:
    return _editor(request, _campaign_or_404(campaign_id))


@require_POST
@roles_required(*BUILD)
def campaign_compose(request: HttpRequest) -> HttpResponse:
    """htmx partial: the journey drawn again after a change of its shape (add, move or remove
    a step; another trigger, entry policy or channel; the visual or the JSON view), from the
    posted fields. Nothing is saved."""
    definition, problems = journey_read(request.POST)
    mode = journey_mode(request.POST)
    op = request.POST.get("op", "")
    text = request.POST.get("definition") if mode == JSON_VIEW else None
    if op == "json":
        mode, text = JSON_VIEW, None if not problems else text
    elif op == "visual" and not problems:
        mode = VISUAL
    elif op in SHAPE_CHANGES and not problems:
        problems = _shape_change(request, definition, op)
    if mode == VISUAL and not isinstance(definition, dict):
        definition = {}
    # An existing campaign's steps offer test sends (of what it has saved).
    campaign = selectors.campaign_get(campaign_id=_int(request.POST.get("campaign")))
    context = _journey_context(
        request,
        campaign=campaign,
        definition=definition,
        errors=problems,
        mode=mode,
        definition_text=text,
    )
    # The view toggle sits outside the swapped part: it comes along, out of band.
    context["oob"] = True
    return render(request, "campaigns/_journey.html", context)


def _shape_change(request: HttpRequest, definition: dict[str, Any], op: str) -> list[Any]:
    steps = definition.setdefault("steps", [])
    at = request.POST.get("at", "")
    try:
        if op == "add":
            step = editor_step_new(request.POST.get("step", ""), list(selectors.channel_list()))
            steps_language.step_insert(
                steps,
                into=request.POST.get("into", ""),
                index=_int(request.POST.get("index")),
                step=step,
            )
        elif op == "remove":
            steps_language.step_remove(steps, at=at)
        elif op == "move":
            steps_language.step_move(steps, at=at, by=-1 if request.POST.get("by") == "-1" else 1)
        elif op == "split":
            steps_language.send_split(steps, at=at)
        elif op == "unsplit":
            steps_language.send_unsplit(steps, at=at)
        elif op == "add_variant":
            steps_language.variant_add(steps, at=at)
        else:
            steps_language.variant_remove(steps, at=at, index=_int(request.POST.get("index")))
    except (ValueError, IndexError, KeyError, TypeError, AttributeError):
        return [ConditionError(at or "/steps", "that step is not in this journey any more")]
    return []


@require_POST
@roles_required(*BUILD)
def campaign_editor_preview(request: HttpRequest) -> HttpResponse:
    """htmx partial: a message of the send step being edited (a variant's, when `variant`
    is its index), rendered for the chosen profile from the unsaved fields (as the campaign
    page's preview)."""
    context: dict[str, Any] = {}
    _channel, _owner, _at, message, problems = editor_message(
        request.POST, request.POST.get("step", ""), request.POST.get("variant", "")
    )
    profile_id = _int(request.POST.get("preview_profile"))
    profile = selectors.profile_get(profile_id=profile_id) if profile_id else None
    if problems or not isinstance(message, dict):
        context["problem"] = "The message is not complete yet."
    elif profile is None:
        context["hint"] = (
            f"No profile with id {profile_id}." if profile_id else "Choose a profile to preview."
        )
    else:
        try:
            context["preview"] = selectors.message_preview(
                campaign=Campaign(name=request.POST.get("name", "")),
                message=message,
                profile=profile,
                viewer=request.user,
            )
            profile_access_record(request=request, profile=profile, action="view")
        except RenderError as error:
            context["problem"] = f"The message does not render for this profile: {error}"
        except (KeyError, TypeError, ValueError, AttributeError):
            context["problem"] = "The message is not complete yet."
    return render(request, "campaigns/_preview.html", context)


@require_POST
@roles_required(*BUILD)
def campaign_editor_test_send(request: HttpRequest) -> HttpResponse:
    """htmx partial: a test of a message of the send step being edited (a variant's, when
    `variant` is its index), as the fields are now, saved or not (a campaign never saved
    too), to a staff address. A problem with the message comes back naming its field, for
    the page to mark."""
    saved = selectors.campaign_get(campaign_id=_int(request.POST.get("campaign")))
    # Rendered with the name as typed, as the preview renders it; a saved campaign's id goes
    # in the audit row.
    campaign = Campaign(pk=saved.pk if saved else None, name=request.POST.get("name", ""))
    step = request.POST.get("step", "")
    channel, owner, at, message, problems = editor_message(
        request.POST, step, request.POST.get("variant", "")
    )
    profile = selectors.profile_get(profile_id=_int(request.POST.get("preview_profile")))
    to = request.POST.get(f"{owner}:to", "")
    context: dict[str, Any] = {"campaign": campaign}
    if not problems and profile is None:
        context["problem"] = "Choose a profile to render the test for."
    elif not problems:
        try:
            services.campaign_test_send(
                campaign=campaign,
                channel_id=channel,
                message=message,
                at=at,
                profile=profile,
                to=to,
                actor=request.user,
            )
        except InvalidCampaign as error:
            problems = error.errors
        except services.TestSendError as error:
            context["problem"] = str(error)
        else:
            context["sent_to"] = to
    if problems:
        context["field_errors"] = editor_message_errors(request.POST, owner, at, problems)
    return render(request, "campaigns/_preview.html", context)


@require_POST
@roles_required(*BUILD)
def campaign_status(request: HttpRequest, campaign_id: int, status: str) -> HttpResponse:
    """Activate, pause or archive; from the editor (htmx), the status part drawn again."""
    campaign = _campaign_or_404(campaign_id)
    if status not in (Campaign.Status.ACTIVE, Campaign.Status.PAUSED, Campaign.Status.ARCHIVED):
        raise Http404("No such action.")
    problem = ""
    try:
        campaign = services.campaign_status_set(
            campaign=campaign, status=status, actor=request.user
        )
    except services.CampaignStateError as error:
        problem = str(error)
    if request.headers.get("HX-Request"):
        return render(
            request,
            "campaigns/_status.html",
            {
                "campaign": campaign,
                "version": selectors.campaign_version_current(campaign=campaign),
                "can_build": True,
                "problem": problem,
                "changed": not problem,
            },
        )
    if problem:
        messages.error(request, problem)
    else:
        messages.success(request, f"Campaign “{campaign.name}” is now {status}.")
    return redirect("campaigns:detail", campaign.pk)


@require_GET
@roles_required(*READ)
def campaign_preview(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """htmx partial: a send step's message rendered for a chosen profile."""
    campaign = _campaign_or_404(campaign_id)
    context: dict[str, Any] = {"campaign": campaign}
    send = selectors.campaign_send_step(campaign=campaign, step=request.GET.get("step", ""))
    profile_id = _int(request.GET.get("profile"))
    if send is None or not profile_id:
        context["problem"] = "Choose a send step and a profile id."
        return render(request, "campaigns/_preview.html", context)
    profile = selectors.profile_get(profile_id=profile_id)
    if profile is None:
        context["problem"] = f"No profile with id {profile_id}."
        return render(request, "campaigns/_preview.html", context)
    try:
        context["preview"] = selectors.message_preview(
            campaign=campaign,
            message=dict(steps_language.send_message(send, request.GET.get("variant", ""))),
            profile=profile,
            viewer=request.user,
        )
        profile_access_record(request=request, profile=profile, action="view")
    except RenderError as error:
        context["problem"] = f"The message does not render for this profile: {error}"
    return render(request, "campaigns/_preview.html", context)


@require_POST
@roles_required(*BUILD)
def campaign_test_send(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """htmx partial: send the chosen saved email step (its chosen variant's message),
    rendered for a profile, to a staff address."""
    campaign = _campaign_or_404(campaign_id)
    step = request.POST.get("step", "")
    send = selectors.campaign_send_step(campaign=campaign, step=step)
    profile = selectors.profile_get(profile_id=_int(request.POST.get("profile")))
    to = request.POST.get("to", "")
    context: dict[str, Any] = {"campaign": campaign}
    if send is None:
        context["problem"] = f"{step} is not a send step of this campaign"
    elif profile is None:
        context["problem"] = "Choose a profile to render the test for."
    else:
        inside, message = steps_language.send_message_at(send, request.POST.get("variant", ""))
        try:
            services.campaign_test_send(
                campaign=campaign,
                channel_id=send["channel"],
                message=message,
                at=f"{step}/send{inside}",
                profile=profile,
                to=to,
                actor=request.user,
            )
        except (services.TestSendError, InvalidCampaign) as error:
            context["problem"] = str(error)
        else:
            context["sent_to"] = to
    return render(request, "campaigns/_preview.html", context)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


@require_GET
@roles_required(*READ)
def profile_deliveries(request: HttpRequest, profile_id: int) -> HttpResponse:
    """htmx fragment for the profile page: the latest messages to this person."""
    profile = selectors.profile_get(profile_id=profile_id)
    if profile is None:
        raise Http404("No such profile.")
    deliveries = selectors.profile_deliveries(profile=profile).order_by("-created_at", "-id")
    return render(request, "campaigns/_profile_deliveries.html", {"deliveries": deliveries[:20]})


@roles_required(*READ)
def channel_list(request: HttpRequest) -> HttpResponse:
    """Channels, and for builders the form that adds one (a signing secret shows once)."""
    secret = None
    errors: list[dict[str, str]] = []
    can_build = has_role(request.user, *BUILD)
    form = ChannelForm(initial={"kind": "email", "config": '{"from": ""}'})
    if request.method == "POST":
        if not can_build:
            raise PermissionDenied
        form = ChannelForm(request.POST)
        if form.is_valid():
            try:
                channel, secret = services.channel_create(**form.cleaned_data, actor=request.user)
            except InvalidCampaign as error:
                errors = [problem.as_dict() for problem in error.errors]
            else:
                messages.success(request, f"Channel “{channel.name}” added.")
                if secret is None:
                    return redirect("campaigns:channels")
    return render(
        request,
        "campaigns/channels.html",
        {
            "channels": selectors.channel_list(),
            "form": form,
            "errors": errors,
            "secret": secret,
            "can_build": can_build,
        },
    )


@roles_required(*READ)
def dead_letters(request: HttpRequest) -> HttpResponse:
    """Deliveries that failed for good, with replay of one or all (builders)."""
    can_build = has_role(request.user, *BUILD)
    if request.method == "POST":
        if not can_build:
            raise PermissionDenied
        failed = selectors.deliveries_failed()
        if request.POST.get("delivery"):
            failed = failed.filter(pk=_int(request.POST["delivery"]))
        queued = services.deliveries_replay(deliveries=failed, actor=request.user)
        messages.success(request, f"{queued} deliveries queued again.")
        return redirect("campaigns:dead-letters")
    failed = selectors.deliveries_failed().select_related("campaign").order_by("-created_at", "-id")
    return render(
        request,
        "campaigns/dead_letters.html",
        {"deliveries": failed[:200], "can_build": can_build},
    )


# --- results ---------------------------------------------------------------------------------

FUNNEL = ("sent", "delivered", "opened", "clicked", "converted")
NOTHING = "\N{EN DASH}"


def percent(value: float | None) -> float | None:
    """A share as the results charts plot it (campaigns' and experiences'): in percent."""
    return None if value is None else round(100 * value, 3)


def _results_charts(found: dict[str, Any], allocations: list[Any]) -> dict[str, Any]:
    """What the results page draws (Chart.js data, passed with json_script)."""
    arms = [*found["variants"], *([found["control"]] if found["control"] else [])]
    keys = [arm["name"] if arm["name"] != results.SINGLE else "" for arm in found["variants"]]
    keys += [results.CONTROL] if found["control"] else []
    series = found["series"]
    funnel = {
        "labels": [step.capitalize() for step in FUNNEL],
        "datasets": [
            {
                "label": arm["name"],
                "data": [
                    percent(arm[step] / arm["recipients"]) if arm["recipients"] else 0
                    for step in FUNNEL
                ],
            }
            for arm in arms
        ],
    }
    rates = {
        "labels": series["days"],
        "arms": [
            {
                "label": arm["name"],
                "rate": [percent(v) for v in series["rate"].get(key, [])],
                "low": [percent(v) for v in series["low"].get(key, [])],
                "high": [percent(v) for v in series["high"].get(key, [])],
            }
            for arm, key in zip(arms, keys, strict=True)
        ],
    }
    lift = {
        "labels": [arm["name"] for arm in arms if arm["lift_vs_control"] is not None],
        "datasets": [
            {
                "label": "Lift (%)",
                "data": [
                    percent(arm["lift_vs_control"])
                    for arm in arms
                    if arm["lift_vs_control"] is not None
                ],
            }
        ],
    }
    moments = sorted({row.at for row in allocations})
    share = {(row.at, row.variant): row.share for row in allocations}
    # In the variants' order, so that each keeps its colour from the other charts.
    present = {row.variant for row in allocations}
    names = [arm["name"] for arm in found["variants"] if arm["name"] in present]
    allocation = {
        "labels": [moment.strftime("%Y-%m-%d %H:%M") for moment in moments],
        "datasets": [
            {"label": name, "data": [percent(share.get((m, name))) for m in moments]}
            for name in names
        ],
    }
    return {"funnel": funnel, "rates": rates, "lift": lift, "allocation": allocation}


def arm_words(arm: dict[str, Any], *, lift: str = "lift_vs_control") -> dict[str, str]:
    """An arm's figures as a results table shows them (campaigns' and experiences'); `lift`
    names the arm's lift figure."""
    rate, (low, high) = arm["conversion_rate"], arm["ci95"]
    return {
        "rate": NOTHING if rate is None else f"{rate:.2%}",
        "band": "" if rate is None else f"{low:.1%} to {high:.1%}",
        "lift": NOTHING if arm[lift] is None else f"{arm[lift]:+.1%}",
        "p": NOTHING if arm["p_value"] is None else f"{arm['p_value']:.3g}",
        "best": NOTHING if arm["probability_best"] is None else f"{arm['probability_best']:.0%}",
    }


@roles_required(*READ)
def campaign_results(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """An experiment's results: arms, decision, funnel, rates with bands, lift, allocation."""
    campaign = _campaign_or_404(campaign_id)
    found = results.campaign_results(campaign=campaign)
    allocations = list(selectors.bandit_allocations(campaign=campaign))
    arms = [
        {**arm, "shown": arm_words(arm)}
        for arm in [*found["variants"], *([found["control"]] if found["control"] else [])]
    ]
    return render(
        request,
        "campaigns/results.html",
        {
            "campaign": campaign,
            "found": found,
            "arms": arms,
            "charts": _results_charts(found, allocations),
            "is_bandit": bool(allocations),
            "alpha": stats.ALPHA,
        },
    )


DASHBOARD_DAYS = (7, 30, 90)


def _rate_text(value: float | None) -> str:
    return NOTHING if value is None else f"{value:.1%}"


def _holdout_row(group: dict[str, Any]) -> dict[str, Any]:
    low, high = group["ci95"]
    return {
        **group,
        "rate_text": _rate_text(group["conversion_rate"]),
        "ci_text": f"{low:.1%} to {high:.1%}",
    }


@roles_required(*READ)
def marketing_dashboard(request: HttpRequest) -> HttpResponse:
    """Every campaign's sends by day and channel: CTR, conversions, revenue, opt-outs; and
    the total lift of marketing against the workspace holdout (conversion: `event`)."""
    days = _int(request.GET.get("days")) or 30
    if days not in DASHBOARD_DAYS:
        days = 30
    today = timezone.now().date()
    start = today - dt.timedelta(days=days - 1)
    since = dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC)
    found = results.marketing_dashboard(since=since)
    event = request.GET.get("event", "").strip() or results.HOLDOUT_GOAL_EVENT
    event_error = results.holdout_event_problem(event)
    holdout = results.holdout_report(
        since=since, event=results.HOLDOUT_GOAL_EVENT if event_error else event
    )
    labels = [(start + dt.timedelta(days=d)).isoformat() for d in range(days)]
    channels = sorted({row["channel"] for row in found["rows"]})
    by_key = {(row["day"], row["channel"]): row for row in found["rows"]}

    def per_channel(field: str, scale: float = 1) -> dict[str, Any]:
        return {
            "labels": labels,
            "datasets": [
                {
                    "label": channel,
                    "data": [
                        None
                        if by_key.get((day, channel), {}).get(field) is None
                        else round(by_key[(day, channel)][field] * scale, 4)
                        for day in labels
                    ],
                }
                for channel in channels
            ],
        }

    charts = {
        "sent": per_channel("sent"),
        "ctr": per_channel("ctr", 100),
        "conversion": per_channel("conversion_rate", 100),
        "revenue": per_channel("revenue_per_recipient"),
        "optouts": {
            "labels": labels,
            "datasets": [
                {
                    "label": label,
                    "data": [
                        sum(by_key.get((day, c), {}).get(field, 0) for c in channels)
                        for day in labels
                    ],
                }
                for label, field in (("Unsubscribes", "unsubscribed"), ("Bounces", "bounced"))
            ],
        },
    }
    return render(
        request,
        "campaigns/dashboard.html",
        {
            "found": found,
            "days": days,
            "choices": DASHBOARD_DAYS,
            "charts": charts,
            "holdout": holdout,
            "holdout_rows": [
                (label, _holdout_row(holdout[key]))
                for label, key in (("Could receive marketing", "marketed"), ("Holdout", "holdout"))
                if holdout[key] is not None
            ],
            "holdout_event": event,
            "holdout_event_error": event_error,
            "rows": [
                {**row, "ctr_text": _rate_text(row["ctr"])}
                for row in sorted(
                    found["rows"], key=lambda r: (r["day"], r["channel"]), reverse=True
                )
            ],
            "shown": {
                "ctr": _rate_text(found["totals"]["ctr"]),
                "conversion": _rate_text(found["totals"]["conversion_rate"]),
            },
        },
    )
