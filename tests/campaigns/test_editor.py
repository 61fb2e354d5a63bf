"""The visual journey editor, server side: the page's own fields (read back from its HTML, as a
browser would submit them) describe the saved definition exactly; edits of the shape (add,
move, remove a step; the JSON view and back) keep everything else; problems land on the node
the validator points at; previews and test sends of the message being edited; who may do what.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Any

import pytest

from access.models import AuditLog
from campaigns import definition as steps_language
from campaigns.forms import journey_from_fields, journey_nodes
from campaigns.models import Campaign, Channel, Delivery
from campaigns.services import channel_create
from segments.conditions import ConditionError
from segments.models import Segment
from tests.campaigns.conftest import CART, ORDER, cart_reminder, person

pytestmark = pytest.mark.django_db


class FormFields(HTMLParser):
    """The fields a browser would submit from the form with id `form_id` (or from a partial:
    every field), and whether they are inside a disabled fieldset."""

    def __init__(self, form_id: str | None) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id, self.inside = form_id, form_id is None
        self.fields: list[tuple[str, str]] = []
        self.disabled = False
        self._textarea: str | None = None
        self._text = ""
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id") == self.form_id:
            self.inside = True
        if not self.inside:
            return
        if tag == "fieldset" and "disabled" in a:
            self.disabled = True
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("submit", "button") or (kind == "checkbox" and "checked" not in a):
                return
            self.fields.append((a["name"], a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "textarea" and a.get("name"):
            self._textarea, self._text = a["name"], ""
        elif tag == "select" and a.get("name"):
            self._select, self._options = a["name"], []
        elif tag == "option" and self._select is not None:
            self._options.append((a.get("value", ""), "selected" in a))

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = self.form_id is None
        elif tag == "textarea" and self._textarea is not None:
            # A browser drops the one line break that follows <textarea>.
            text = self._text[1:] if self._text.startswith("\n") else self._text
            self.fields.append((self._textarea, text))
            self._textarea = None
        elif tag == "select" and self._select is not None:
            chosen = [v for v, selected in self._options if selected] or [
                v for v, _ in self._options[:1]
            ]
            self.fields += [(self._select, v) for v in chosen]
            self._select = None


def fields_of(html: str, form_id: str | None = "campaign-form") -> dict[str, str]:
    parser = FormFields(form_id)
    parser.feed(html)
    return dict(parser.fields)


def editor_fields(client, campaign: Campaign) -> dict[str, str]:
    page = client.get(f"/campaigns/{campaign.pk}/edit/")
    assert page.status_code == 200
    return fields_of(page.content.decode())


@pytest.fixture
def segment(db) -> Segment:
    return Segment.objects.create(
        name="Germans", definition={"trait": "country", "op": "eq", "value": "DE"}
    )


@pytest.fixture
def webhook_channel(admin_user, settings) -> Channel:
    settings.OUTBOUND_ALLOWED_HOSTS = []
    channel, _ = channel_create(
        kind="webhook",
        name="CRM",
        config={"url": "https://crm.example.com/hook"},
        actor=admin_user,
    )
    return channel


@pytest.fixture
def push_channel(admin_user, settings) -> Channel:
    settings.OUTBOUND_ALLOWED_HOSTS = []
    channel, _ = channel_create(
        kind="push", name="App", config={"url": "https://push.example.com/"}, actor=admin_user
    )
    return channel


def rich_journey(email: Channel, webhook: Channel, push: Channel) -> dict[str, Any]:
    """Every kind of node the editor draws, nested."""
    return {
        "trigger": {
            "event": CART,
            "where": [{"property": "price", "op": "gt", "value": 20}],
        },
        "entry": {"once_per": {"days": 7}},
        "goal": {
            "event": ORDER,
            "where": [{"property": "total", "op": "gte", "value": 1}],
            "within": {"hours": 36},
        },
        "frequency_cap": {"messages": 2, "days": 7},
        "control": {"percent": 12.5},
        "steps": [
            {"wait": {"minutes": 90}},
            {
                "branch": {
                    "if": {"all": [{"trait": "vip", "op": "eq", "value": True}]},
                    "then": [
                        {"wait": {"until_hour": 9}},
                        {
                            "send": {
                                "channel": email.pk,
                                "message": {
                                    "subject": "Hi {{ profile.traits.first_name }} & <co>",
                                    "html": "\n<h1>Your cart</h1>\n<p>“Quoted” &amp; more</p>",
                                    "text": "Line one\nLine two",
                                },
                            }
                        },
                    ],
                    "else": [
                        {
                            "branch": {
                                "if": {"any": [{"has_identifier": "email"}]},
                                "then": [
                                    {
                                        "send": {
                                            "channel": webhook.pk,
                                            "message": {"text": "{{ profile.id }}", "n": [1]},
                                        }
                                    }
                                ],
                            }
                        }
                    ],
                }
            },
            {
                "send": {
                    "channel": push.pk,
                    "message": {
                        "title": "Back?",
                        "body": "Your cart waits",
                        "url": "https://shop.example.com/cart",
                        "data": {"screen": "cart"},
                    },
                }
            },
            {
                "send": {
                    "channel": email.pk,
                    "allocation": "split",
                    "variants": [
                        {"name": "A", "weight": 50, "message": {"subject": "A", "text": "a"}},
                        {"name": "B", "weight": 50, "message": {"subject": "B", "text": "b"}},
                    ],
                }
            },
        ],
    }


def test_the_editor_fields_describe_the_saved_journey_exactly(
    staff_client, marketer, make_campaign, email_channel, webhook_channel, push_channel
):
    """What the page draws, submitted as it is, reads back as the same definition: opening an
    active campaign and saving it makes no new version."""
    journey = rich_journey(email_channel, webhook_channel, push_channel)
    campaign = make_campaign({"name": "Rich", **journey})
    client = staff_client(marketer)
    fields = editor_fields(client, campaign)
    assert fields["mode"] == "visual"
    definition, problems = journey_from_fields(fields)
    assert problems == [] and definition == journey

    saved = client.post(f"/campaigns/{campaign.pk}/edit/", fields)
    assert saved.status_code == 302
    assert campaign.versions.count() == 1


@pytest.mark.parametrize(
    "trigger",
    [
        {"on": "exit"},
        {"on": "enter"},
        {"broadcast": True},
    ],
)
def test_segment_and_broadcast_triggers_read_back_unchanged(
    staff_client, marketer, make_campaign, email_channel, segment, trigger
):
    if "broadcast" in trigger:
        shown = {"broadcast": {"segment": segment.pk, "at": "2026-12-24T09:00:00+01:00"}}
    else:
        shown = {"segment": segment.pk, "on": trigger["on"]}
    campaign = make_campaign({"name": "Seg", "trigger": shown, "entry": "every_time", "steps": []})
    fields = editor_fields(staff_client(marketer), campaign)
    assert journey_from_fields(fields) == (
        {"trigger": shown, "entry": "every_time", "steps": []},
        [],
    )


def test_a_broadcast_time_is_typed_in_the_workspace_zone(settings):
    settings.CAMPAIGN_TIMEZONE = "Europe/Berlin"
    fields = {
        "/trigger:kind": "broadcast",
        "/trigger:segment": "4",
        "/trigger:at": "2026-07-01T09:30",
        "/trigger:at_saved": "",
        "/entry:policy": "once",
    }
    definition, _ = journey_from_fields(fields)
    assert definition["trigger"] == {"broadcast": {"segment": 4, "at": "2026-07-01T09:30:00+02:00"}}


def test_editing_a_field_of_an_active_campaign_makes_a_new_version(
    staff_client, marketer, make_campaign, email_channel
):
    campaign = make_campaign(cart_reminder(email_channel))
    client = staff_client(marketer)
    fields = editor_fields(client, campaign)
    fields["/steps/1:subject"] = "Your cart misses you"
    fields["/steps/0:amount"] = "2"
    fields["/steps/0:unit"] = "hours"
    assert client.post(f"/campaigns/{campaign.pk}/edit/", fields).status_code == 302
    first, second = campaign.versions.order_by("number")
    assert first.definition["steps"][1]["send"]["message"]["subject"].startswith("You left")
    assert second.definition["steps"][0] == {"wait": {"hours": 2}}
    assert second.definition["steps"][1]["send"]["message"]["subject"] == "Your cart misses you"
    # The parts the edit did not touch are as they were, line breaks included.
    assert (
        second.definition["steps"][1]["send"]["message"]["html"]
        == (first.definition["steps"][1]["send"]["message"]["html"])
    )


def test_a_problem_is_shown_at_the_step_it_belongs_to_and_nothing_is_saved(
    staff_client, marketer, make_campaign, email_channel
):
    campaign = make_campaign(cart_reminder(email_channel, status="draft"))
    client = staff_client(marketer)
    fields = editor_fields(client, campaign)
    fields["/steps/0:amount"] = "soon"
    page = client.post(f"/campaigns/{campaign.pk}/edit/", fields).content.decode()
    assert "Not saved: 1 problem," in page
    wait = page.split('id="node-steps-0"', 1)[1].split("</li>", 1)[0]
    assert "wait/minutes" in wait and "how many minutes: a whole number" in wait
    assert 'class="flow-step flow-wait invalid" id="node-steps-0"' in page
    # The page keeps what was typed.
    assert fields_of(page)["/steps/0:amount"] == "soon"

    fields.update({"/steps/0:amount": "60", "/steps/1:subject": "", "/steps/1:html": ""})
    fields["/steps/1:text"] = "{% if %}"
    page = client.post(f"/campaigns/{campaign.pk}/edit/", fields).content.decode()
    send = page.split('id="node-steps-1"', 1)[1].split("</li>", 1)[0]
    assert "send/message/subject" in send and "should be non-empty" in send
    assert 'class="flow-step flow-send invalid" id="node-steps-1"' in page
    assert campaign.versions.get().definition["steps"][0] == {"wait": {"minutes": 60}}


def test_a_broken_branch_condition_marks_its_rows_in_the_builder(
    staff_client, marketer, make_campaign, email_channel
):
    body = cart_reminder(email_channel, status="draft")
    body["steps"].append({"branch": {"if": {"all": [{"has_identifier": "email"}]}}})
    campaign = make_campaign(body)
    client = staff_client(marketer)
    fields = editor_fields(client, campaign)
    fields["/steps/2:if"] = json.dumps({"all": [{"trait": "x", "op": "between", "value": 3}]})
    page = client.post(f"/campaigns/{campaign.pk}/edit/", fields).content.decode()
    branch = page.split('id="node-steps-2"', 1)[1]
    assert "branch/if/all/0" in branch
    assert 'data-errors="[&quot;/all/0' in branch


def _compose(client, fields: dict[str, str], **op: str) -> str:
    response = client.post("/campaigns/editor/compose/", {**fields, **op})
    assert response.status_code == 200
    return response.content.decode()


def test_steps_are_added_moved_and_removed_without_losing_edits(
    staff_client, marketer, make_campaign, email_channel
):
    body = cart_reminder(email_channel, status="draft")
    body["steps"].append({"branch": {"if": {"all": [{"has_identifier": "email"}]}}})
    campaign = make_campaign(body)
    client = staff_client(marketer)
    fields = editor_fields(client, campaign)
    fields["/steps/1:subject"] = "Edited, not saved"

    page = _compose(client, fields, op="add", into="/steps/2/branch/else", index="0", step="send")
    # Drawn again, the steps of a saved campaign still offer their test sends.
    assert 'hx-post="/campaigns/editor/test-send/"' in page
    added = fields_of(page, None)
    assert added["/steps/2/branch/else/0:kind"] == "send"
    assert added["/steps/2/branch/else/0:channel"] == str(email_channel.pk)
    assert added["/steps/1:subject"] == "Edited, not saved"

    moved = fields_of(_compose(client, added, op="move", at="/steps/1", by="-1"), None)
    assert moved["/steps/0:subject"] == "Edited, not saved" and moved["/steps/1:kind"] == "wait"

    removed = fields_of(_compose(client, moved, op="remove", at="/steps/2/branch/else/0"), None)
    definition, problems = journey_from_fields(removed)
    assert problems == []
    assert [next(iter(step)) for step in definition["steps"]] == ["send", "wait", "branch"]
    assert definition["steps"][2] == {"branch": {"if": {"all": [{"has_identifier": "email"}]}}}
    assert campaign.versions.get().definition == _saved(body)


def _saved(body: dict[str, Any]) -> dict[str, Any]:
    return {key: body[key] for key in ("trigger", "entry", "goal", "steps") if key in body}


def test_the_json_view_and_the_visual_editor_show_the_same_definition(
    staff_client, marketer, make_campaign, email_channel, webhook_channel, push_channel
):
    journey = rich_journey(email_channel, webhook_channel, push_channel)
    campaign = make_campaign({"name": "Rich", **journey})
    client = staff_client(marketer)
    fields = editor_fields(client, campaign)
    as_json = fields_of(_compose(client, fields, op="json"), None)
    assert as_json["mode"] == "json" and json.loads(as_json["definition"]) == journey

    edited = json.loads(as_json["definition"])
    edited["steps"].insert(0, {"wait": {"days": 1}})
    as_json["definition"] = json.dumps(edited)
    back = fields_of(_compose(client, {**fields, **as_json}, op="visual"), None)
    assert back["mode"] == "visual"
    assert journey_from_fields(back) == (edited, [])


def test_json_that_does_not_parse_stays_in_the_json_view_with_its_text(
    staff_client, marketer, make_campaign, email_channel
):
    campaign = make_campaign(cart_reminder(email_channel))
    client = staff_client(marketer)
    fields = {**editor_fields(client, campaign), "mode": "json", "definition": '{"steps": [}'}
    page = _compose(client, fields, op="visual")
    assert "not valid JSON" in page
    assert fields_of(page, None) == {"mode": "json", "definition": '{"steps": [}'}


def test_a_new_journey_built_field_by_field_saves_and_activates(
    staff_client, marketer, email_channel
):
    client = staff_client(marketer)
    fields = fields_of(client.get("/campaigns/new/").content.decode())
    fields.update(name="Cart reminder", kind="marketing")
    fields = fields_of(
        _compose(client, fields, op="add", into="/steps", index="1", step="send"), None
    ) | {"name": "Cart reminder", "kind": "marketing"}
    fields["/steps/1:subject"] = "You left {{ event.properties.name | default: 'something' }}"
    fields["/steps/1:text"] = "Come back"
    saved = client.post("/campaigns/new/", {**fields, "status": "active"})
    campaign = Campaign.objects.get()
    assert saved.status_code == 302 and campaign.status == "active"
    assert campaign.versions.get().definition["steps"][1] == {
        "send": {
            "channel": email_channel.pk,
            "message": {
                "subject": "You left {{ event.properties.name | default: 'something' }}",
                "text": "Come back",
            },
        }
    }


def _preview(client, fields: dict[str, str], step: str, profile: Any) -> str:
    response = client.post(
        "/campaigns/editor/preview/", {**fields, "step": step, "preview_profile": profile}
    )
    assert response.status_code == 200
    return response.content.decode()


def test_the_message_being_edited_previews_for_a_profile(
    staff_client, admin_user, make_campaign, email_channel
):
    campaign = make_campaign(cart_reminder(email_channel))
    ann = person(traits={"plan": "<b>pro</b>"})
    client = staff_client(admin_user)
    fields = editor_fields(client, campaign)
    fields["/steps/1:subject"] = "Your {{ profile.traits.plan }} cart"
    fields["/steps/1:html"] = "<p>{{ profile.traits.plan }}</p>"
    body = _preview(client, fields, "/steps/1", ann.pk)
    assert "Your &lt;b&gt;pro&lt;/b&gt; cart" in body
    assert "sandbox" in body and "&amp;lt;b&amp;gt;pro" in body
    assert AuditLog.objects.filter(profile_id=ann.pk, action="view").count() == 1

    assert "Choose a profile" in _preview(client, fields, "/steps/1", "")
    assert "No profile with id 999999" in _preview(client, fields, "/steps/1", 999999)
    fields["/steps/1:subject"] = "{% if %}"
    assert "does not render" in _preview(client, fields, "/steps/1", ann.pk)


def test_a_webhook_body_previews_as_json(
    staff_client, marketer, make_campaign, email_channel, webhook_channel
):
    campaign = make_campaign(cart_reminder(email_channel))
    ann = person(traits={"plan": "pro"})
    client = staff_client(marketer)
    fields = editor_fields(client, campaign)
    fields["/steps/1:channel"] = str(webhook_channel.pk)
    redrawn = fields_of(_compose(client, fields, op="refresh"), None)
    assert "/steps/1:subject" not in redrawn and "/steps/1:message" in redrawn
    redrawn["/steps/1:message"] = '{"plan": "{{ profile.traits.plan }}", "id": 1}'
    body = _preview(client, redrawn, "/steps/1", ann.pk)
    assert "&quot;plan&quot;: &quot;pro&quot;" in body


def _test_send(client, fields: dict[str, str], **extra: str) -> str:
    response = client.post("/campaigns/editor/test-send/", {**fields, **extra})
    assert response.status_code == 200
    return response.content.decode()


def test_a_test_send_sends_the_fields_as_they_are_not_the_saved_message(
    staff_client, marketer, make_campaign, email_channel, smtp
):
    campaign = make_campaign(cart_reminder(email_channel))
    ann = person(traits={"plan": "pro"})
    client = staff_client(marketer)
    fields = {**editor_fields(client, campaign), "preview_profile": str(ann.pk)}
    fields["/steps/1:subject"] = "Edited for {{ profile.traits.plan }}"
    fields["/steps/1:html"] = "<p>New body</p>"
    fields["/steps/1:to"] = marketer.email
    sent = _test_send(client, fields, step="/steps/1")
    assert f"Test sent to {marketer.email}" in sent
    (mail,) = smtp.messages
    assert mail["To"] == marketer.email and mail["Subject"] == "[Test] Edited for pro"
    assert "New body" in mail.get_body(("html",)).get_content()
    # Rendered for the profile, sent, audited: neither saved nor recorded as a delivery.
    assert campaign.versions.get().definition["steps"][1]["send"]["message"]["subject"] == (
        "You left {{ event.properties.name | default: 'something' }}"
    )
    assert not Delivery.objects.exists()
    audit = AuditLog.objects.get(action="campaign.test_send")
    assert audit.profile_id == ann.pk and audit.details["message"] == "/steps/1/send/message"

    outsider = _test_send(
        client, {**fields, "/steps/1:to": "someone@elsewhere.example"}, step="/steps/1"
    )
    assert "staff account" in outsider and len(smtp.messages) == 1


def test_a_campaign_never_saved_is_test_sent_as_typed(
    staff_client, marketer, make_campaign, email_channel, smtp
):
    # A new campaign's editor posts what a saved one's does, without the campaign's id.
    saved = make_campaign(cart_reminder(email_channel))
    client = staff_client(marketer)
    fields = {k: v for k, v in editor_fields(client, saved).items() if k != "campaign"}
    assert 'hx-post="/campaigns/editor/test-send/"' in _compose(client, fields, op="refresh")
    ann = person()
    fields.update(
        {
            "name": "Typed, never saved",
            "preview_profile": str(ann.pk),
            "/steps/1:subject": "From {{ campaign.name }}",
            "/steps/1:to": marketer.email,
        }
    )
    assert f"Test sent to {marketer.email}" in _test_send(client, fields, step="/steps/1")
    assert [m["Subject"] for m in smtp.messages] == ["[Test] From Typed, never saved"]
    assert AuditLog.objects.get(action="campaign.test_send").resource_id == ""


def test_a_template_that_cannot_be_used_is_an_error_at_its_field_and_nothing_is_sent(
    staff_client, marketer, make_campaign, email_channel, smtp
):
    campaign = make_campaign(cart_reminder(email_channel))
    ann = person()
    client = staff_client(marketer)
    fields = {**editor_fields(client, campaign), "preview_profile": str(ann.pk)}
    fields.update({"/steps/1:to": marketer.email, "/steps/1:subject": "Hi {% if %}"})
    fields["/steps/1:html"] = "<p>{{ profile.traits.name | no_such_filter }}</p>"
    refused = _test_send(client, fields, step="/steps/1")
    assert "Not sent: the message has 2 problems." in refused
    assert 'data-field="/steps/1:subject"><code>send/message/subject</code>' in refused
    assert 'data-field="/steps/1:html"><code>send/message/html</code>' in refused
    fields.update({"/steps/1:subject": "", "/steps/1:html": "<p>ok</p>"})
    empty = _test_send(client, fields, step="/steps/1")
    assert 'data-field="/steps/1:subject"' in empty and "should be non-empty" in empty
    assert smtp.messages == [] and not AuditLog.objects.filter(action="campaign.test_send")


def test_a_test_send_of_a_variant_sends_that_variant_as_edited(
    staff_client, marketer, make_campaign, email_channel, smtp
):
    campaign = make_campaign(cart_reminder(email_channel, steps=[split_send(email_channel)]))
    ann = person()
    client = staff_client(marketer)
    fields = {**editor_fields(client, campaign), "preview_profile": str(ann.pk)}
    variant = "/steps/0/send/variants/1"
    fields.update({f"{variant}:subject": "B, edited", f"{variant}:to": marketer.email})
    # Another variant half written does not hold up testing this one.
    fields["/steps/0/send/variants/0:subject"] = ""
    sent = _test_send(client, fields, step="/steps/0", variant="1")
    assert f"Test sent to {marketer.email}" in sent
    assert [m["Subject"] for m in smtp.messages] == ["[Test] B, edited"]
    audit = AuditLog.objects.get(action="campaign.test_send")
    assert audit.details["message"] == f"{variant}/message"

    fields[f"{variant}:text"] = "{{ unclosed"
    refused = _test_send(client, fields, step="/steps/0", variant="1")
    assert f'data-field="{variant}:text"><code>message/text</code>' in refused
    for elsewhere in ({"variant": "7"}, {"variant": ""}, {"step": "/steps/3"}):
        gone = _test_send(client, fields, **{"step": "/steps/0", **elsewhere})
        assert "no such message on this page" in gone
    assert len(smtp.messages) == 1


# --- A/B variants, each with its own fields -------------------------------------------------


def split_send(channel: Channel, **send: Any) -> dict[str, Any]:
    """A send step testing two variants; B has no weight (it weighs 1)."""
    return {
        "send": {
            "channel": channel.pk,
            "allocation": "split",
            "variants": [
                {
                    "name": "A",
                    "weight": 70,
                    "message": {"subject": "A for {{ profile.id }}", "html": "<p>a</p>"},
                },
                {"name": "B", "message": {"subject": "B", "text": "b\nsecond line"}},
            ],
            **send,
        }
    }


@pytest.mark.parametrize("kind", ["email", "push", "webhook"])
def test_a_variants_step_reads_back_from_its_own_fields_and_through_the_json_view(
    staff_client, marketer, make_campaign, email_channel, push_channel, webhook_channel, kind
):
    channel = {"email": email_channel, "push": push_channel, "webhook": webhook_channel}[kind]
    step = split_send(channel, allocation="bandit")
    if kind != "email":
        messages = {
            "push": [
                {"title": "A", "body": "a", "data": {"screen": "cart"}},
                {"title": "B", "body": "b", "url": "https://shop.example.com/"},
            ],
            "webhook": [{"text": "{{ profile.id }}", "n": [1]}, {"text": "b"}],
        }[kind]
        for variant, message in zip(step["send"]["variants"], messages, strict=True):
            variant["message"] = message
    journey = {"trigger": {"event": CART}, "entry": "once", "steps": [{"wait": {"hours": 2}}, step]}
    campaign = make_campaign({"name": "Split", **journey})
    client = staff_client(marketer)
    fields = editor_fields(client, campaign)
    # Each variant has its own name, weight and message fields, named by its pointer.
    variant = "/steps/1/send/variants/1"
    assert fields["/steps/1:allocation"] == "bandit" and "/steps/1:variants" not in fields
    assert fields[f"{variant}:name"] == "B" and fields[f"{variant}:weight"] == ""
    assert fields["/steps/1/send/variants/0:weight"] == "70"
    shown = {"email": "subject", "push": "title", "webhook": "message"}[kind]
    assert f"/steps/1/send/variants/0:{shown}" in fields and f"/steps/1:{shown}" not in fields
    assert journey_from_fields(fields) == (journey, [])

    as_json = fields_of(_compose(client, fields, op="json"), None)
    assert json.loads(as_json["definition"]) == journey
    back = fields_of(_compose(client, {**fields, **as_json}, op="visual"), None)
    assert {k: v for k, v in back.items() if k != "mode"} == {
        k: v for k, v in fields.items() if k.startswith("/")
    }
    assert client.post(f"/campaigns/{campaign.pk}/edit/", fields).status_code == 302
    assert campaign.versions.count() == 1


def test_a_send_step_splits_into_variants_edited_added_removed_and_back(
    staff_client, marketer, make_campaign, email_channel
):
    campaign = make_campaign(cart_reminder(email_channel))
    client = staff_client(marketer)
    fields = editor_fields(client, campaign)
    fields["/steps/1:subject"] = "Edited, not saved"
    split = fields_of(_compose(client, fields, op="split", at="/steps/1"), None)
    assert "/steps/1:subject" not in split and split["/steps/1:allocation"] == "split"
    for index, name in enumerate("AB"):
        at = f"/steps/1/send/variants/{index}"
        assert split[f"{at}:name"] == name and split[f"{at}:weight"] == "50"
        assert split[f"{at}:subject"] == "Edited, not saved"
        assert split[f"{at}:html"] == fields["/steps/1:html"]

    split["/steps/1/send/variants/1:subject"] = "B subject"
    added = fields_of(_compose(client, split, op="add_variant", at="/steps/1"), None)
    assert added["/steps/1/send/variants/2:name"] == "C"
    assert added["/steps/1/send/variants/2:subject"] == "B subject"  # a copy of the last
    page = _compose(client, added, op="remove_variant", at="/steps/1", index="0")
    removed = fields_of(page, None)
    assert [removed[f"/steps/1/send/variants/{i}:name"] for i in (0, 1)] == ["B", "C"]
    assert "/steps/1/send/variants/2:name" not in removed
    # Two left: neither can go (a test needs two; "Back to one message" ends it).
    assert page.count('aria-label="Remove variant') == 2
    assert (
        page.count('"op": "remove_variant"') == 2
        and page.count("disabled>\N{MULTIPLICATION SIGN}") == 2
    )

    removed["/steps/1/send/variants/1:weight"] = "25"
    saved = client.post(
        f"/campaigns/{campaign.pk}/edit/", {**removed, "name": "Cart reminder", "kind": "marketing"}
    )
    assert saved.status_code == 302
    send = campaign.versions.order_by("number").last().definition["steps"][1]["send"]
    assert send["allocation"] == "split"
    assert [(v["name"], v["weight"], v["message"]["subject"]) for v in send["variants"]] == [
        ("B", 50, "B subject"),
        ("C", 25, "B subject"),
    ]

    saved_fields = editor_fields(client, campaign)
    one = fields_of(_compose(client, saved_fields, op="unsplit", at="/steps/1"), None)
    definition, problems = journey_from_fields(one)
    assert problems == []
    assert definition["steps"][1] == {
        "send": {"channel": email_channel.pk, "message": send["variants"][0]["message"]}
    }


def test_a_problem_in_a_variant_is_shown_in_that_variant_at_its_field(
    staff_client, marketer, make_campaign, email_channel
):
    campaign = make_campaign(
        cart_reminder(email_channel, steps=[split_send(email_channel)], status="draft")
    )
    client = staff_client(marketer)
    fields = editor_fields(client, campaign)
    fields["/steps/0/send/variants/1:name"] = "A"
    fields["/steps/0/send/variants/0:subject"] = ""
    page = client.post(f"/campaigns/{campaign.pk}/edit/", fields).content.decode()
    assert "Not saved: 2 problems," in page
    assert 'class="flow-step flow-send invalid" id="node-steps-0"' in page
    variants = page.split('id="node-steps-0-send-variants-0"', 1)[1].split("add-variant", 1)[0]
    first, second = variants.split('id="node-steps-0-send-variants-1"', 1)
    assert "message/subject" in first and "should be non-empty" in first
    assert "another variant is named A" not in first
    assert 'name="/steps/0/send/variants/0:subject" id="node-steps-0-send-variants-0-subject"' in (
        first
    )
    assert 'aria-invalid="true"' in first.split(":subject", 1)[1].split(">", 1)[0]
    assert "another variant is named A" in second
    assert 'aria-invalid="true"' in second.split(":name", 1)[1].split(">", 1)[0]
    assert 'aria-invalid="true"' not in second.split(":subject", 1)[1].split(">", 1)[0]
    assert fields_of(page)["/steps/0/send/variants/1:name"] == "A"  # kept as typed

    fields.update(
        {
            "/steps/0/send/variants/1:name": "B",
            "/steps/0/send/variants/0:subject": "A",
            "/steps/0/send/variants/0:weight": "0",
            "/steps/0/send/variants/1:weight": "0",
        }
    )
    page = client.post(f"/campaigns/{campaign.pk}/edit/", fields).content.decode()
    head = page.split('id="node-steps-0"', 1)[1].split('<ol class="variants">', 1)[0]
    assert "send/variants" in head and "a split needs a weight above 0" in head
    assert campaign.versions.get().definition["steps"] == [split_send(email_channel)]


def test_errors_at_a_variant_or_inside_it_go_to_that_variant_and_the_rest_to_its_step(
    email_channel,
):
    definition = {"trigger": {"event": CART}, "steps": [split_send(email_channel)]}
    errors = [
        ConditionError("/steps/0/send/variants/1", "'message' is a required property"),
        ConditionError("/steps/0/send/variants/1/weight", "-1 is less than the minimum of 0"),
        ConditionError("/steps/0/send/variants/0/message/html", "unexpected tag"),
        ConditionError("/steps/0/send/variants", "a split needs a weight above 0"),
    ]
    (node,) = journey_nodes(definition, errors=errors, channels=[email_channel])["steps"]
    first, second = node["variants"]
    assert node["marked"] and node["errors"] == [
        {"at": "send/variants", "message": "a split needs a weight above 0"}
    ]
    assert first["errors"] == [{"at": "message/html", "message": "unexpected tag"}]
    assert first["invalid"] == ["html"]
    assert [e["at"] for e in second["errors"]] == ["", "weight"]
    assert second["invalid"] == ["weight"]


def test_variants_of_a_shape_the_editor_cannot_draw_travel_as_json(
    staff_client, marketer, make_campaign, email_channel
):
    campaign = make_campaign(cart_reminder(email_channel))
    client = staff_client(marketer)
    odd = {"send": {"channel": email_channel.pk, "variants": ["A", "B"]}}
    edited = {"trigger": {"event": CART}, "entry": "once", "steps": [odd]}
    fields = {**editor_fields(client, campaign), "mode": "json", "definition": json.dumps(edited)}
    page = _compose(client, fields, op="visual")
    back = fields_of(page, None)
    assert back["/steps/0:kind"] == "raw" and journey_from_fields(back) == (edited, [])


def test_each_variant_previews_its_own_fields(staff_client, marketer, make_campaign, email_channel):
    campaign = make_campaign(cart_reminder(email_channel, steps=[split_send(email_channel)]))
    ann = person()
    client = staff_client(marketer)
    fields = editor_fields(client, campaign)
    page = client.get(f"/campaigns/{campaign.pk}/edit/").content.decode()
    assert page.count('"step": "/steps/0", "variant": "') == 4  # a preview, a test each
    fields["/steps/0/send/variants/1:subject"] = "B for {{ profile.id }}"
    post = {**fields, "step": "/steps/0", "preview_profile": ann.pk}
    first = client.post("/campaigns/editor/preview/", {**post, "variant": "0"}).content.decode()
    second = client.post("/campaigns/editor/preview/", {**post, "variant": "1"}).content.decode()
    assert f"A for {ann.pk}" in first and f"B for {ann.pk}" in second


def test_pause_from_the_editor_redraws_only_the_status(
    staff_client, marketer, make_campaign, email_channel
):
    campaign = make_campaign(cart_reminder(email_channel))
    client = staff_client(marketer)
    page = client.get(f"/campaigns/{campaign.pk}/edit/").content.decode()
    assert f'hx-post="/campaigns/{campaign.pk}/paused/"' in page
    part = client.post(f"/campaigns/{campaign.pk}/paused/", HTTP_HX_REQUEST="true")
    campaign.refresh_from_db()
    assert campaign.status == "paused"
    assert "Now paused." in part.content.decode() and "<html" not in part.content.decode()
    assert 'value="active"' in part.content.decode()  # "Save and activate" comes back


def test_admins_and_marketers_edit(
    staff_client, admin_user, marketer, make_campaign, email_channel
):
    campaign = make_campaign(cart_reminder(email_channel))
    for user in (admin_user, marketer):
        client = staff_client(user)
        page = client.get(f"/campaigns/{campaign.pk}/edit/").content.decode()
        assert "Read only" not in page and 'type="submit" class="primary">Save' in page
        assert client.get("/campaigns/new/").status_code == 200
        fields = editor_fields(client, campaign)
        assert client.post("/campaigns/editor/compose/", fields).status_code == 200


def test_compliance_reads_the_editor_but_changes_nothing(
    staff_client, compliance, make_campaign, email_channel, smtp
):
    campaign = make_campaign(cart_reminder(email_channel))
    client = staff_client(compliance)
    page = client.get(f"/campaigns/{campaign.pk}/edit/").content.decode()
    parser = FormFields("campaign-form")
    parser.feed(page)
    assert parser.disabled and "Read only" in page
    assert 'class="primary">Save' not in page and "Pause</button>" not in page
    assert "You left" in page  # the messages themselves are there to read
    fields = editor_fields(client, campaign)
    fields["/steps/1:subject"] = "Changed"
    assert client.post(f"/campaigns/{campaign.pk}/edit/", fields).status_code == 403
    assert client.get("/campaigns/new/").status_code == 403
    assert client.post("/campaigns/editor/compose/", fields).status_code == 403
    assert client.post("/campaigns/editor/preview/", fields).status_code == 403
    test_send = {**fields, "step": "/steps/1", "/steps/1:to": compliance.email}
    assert client.post("/campaigns/editor/test-send/", test_send).status_code == 403
    assert (
        client.post(f"/campaigns/{campaign.pk}/paused/", HTTP_HX_REQUEST="true").status_code == 403
    )
    campaign.refresh_from_db()
    assert campaign.status == "active" and campaign.versions.count() == 1 and not smtp.messages


def test_staff_without_a_role_reach_no_part_of_the_editor(
    staff_client, no_role_user, make_campaign, email_channel
):
    campaign = make_campaign(cart_reminder(email_channel))
    client = staff_client(no_role_user)
    assert client.get(f"/campaigns/{campaign.pk}/edit/").status_code == 403
    assert client.get("/campaigns/new/").status_code == 403
    for url in ("/campaigns/editor/compose/", "/campaigns/editor/preview/"):
        assert client.post(url, {"op": "json"}).status_code == 403
    assert client.post("/campaigns/editor/test-send/", {}).status_code == 403


# --- the definition helpers behind add / move / remove ----------------------------------------


def test_steps_are_inserted_moved_and_removed_by_pointer():
    steps: list[Any] = [{"wait": {"days": 1}}, {"branch": {"if": {}}}]
    steps_language.step_insert(steps, into="/steps/1/branch/then", index=0, step={"a": 1})
    steps_language.step_insert(steps, into="/steps/1/branch/then", index=9, step={"b": 2})
    steps_language.step_insert(steps, into="/steps", index=0, step={"c": 3})
    assert steps[2]["branch"]["then"] == [{"a": 1}, {"b": 2}]
    steps_language.step_move(steps, at="/steps/2/branch/then/1", by=-1)
    assert steps[2]["branch"]["then"] == [{"b": 2}, {"a": 1}]
    steps_language.step_move(steps, at="/steps/0", by=-1)  # already first: stays
    assert steps[0] == {"c": 3}
    steps_language.step_remove(steps, at="/steps/2/branch/then/0")
    steps_language.step_remove(steps, at="/steps/0")
    assert steps == [{"wait": {"days": 1}}, {"branch": {"if": {}, "then": [{"a": 1}]}}]


@pytest.mark.parametrize(
    "call",
    [
        lambda s: steps_language.step_insert(s, into="/steps/0", index=0, step={}),
        lambda s: steps_language.step_remove(s, at="/steps"),
        lambda s: steps_language.step_remove(s, at="/trigger"),
        lambda s: steps_language.step_move(s, at="/steps/0/branch", by=1),
    ],
)
def test_a_pointer_that_names_the_wrong_thing_is_refused(call):
    with pytest.raises(ValueError):
        call([{"wait": {"days": 1}}])
