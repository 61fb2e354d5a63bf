"""Pages: the catalog (search, item page with similar items and what is bought together),
catalog uploads with a progress bar, the models page (runs, champion and challengers, train,
promote and roll back), and the recommendation blocks of the profile page (an htmx fragment,
so the profiles app does not import this one).

Everyone with a role reads them, as the API's read scope; marketers and admins change them.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from access.roles import ADMIN, COMPLIANCE, MARKETER, has_role, roles_required
from profiles.selectors import profile_get
from recommendations import selectors, services, serving
from recommendations.forms import CatalogSearchForm, ItemImportForm, ModelTrainForm
from recommendations.models import Item, ItemImport, ModelRun
from recommendations.selectors import ItemFilters
from recommendations.tasks import item_import_task, model_train_task

READ = (MARKETER, COMPLIANCE, ADMIN)
WRITE = (MARKETER, ADMIN)
PAGE_SIZE = 50
BLOCK_K = 8
# The slots the models page shows for a chosen profile, and the profile page's blocks.
EXAMPLE_SLOTS = ("home", "buy_again", "cart", "trending")
PROFILE_SLOTS = ("home", "buy_again")
SLOT_TITLES = {
    "home": "Recommended for you",
    "buy_again": "Buy again",
    "cart": "Goes with the cart",
    "trending": "Trending",
}


@require_GET
@roles_required(*READ)
def catalog(request: HttpRequest) -> HttpResponse:
    form = CatalogSearchForm(request.GET)
    filters = ItemFilters()
    if form.is_valid():
        filters = ItemFilters(
            q=form.cleaned_data["q"],
            category=form.cleaned_data["category"],
            availability=form.cleaned_data["availability"],
        )
    pages = Paginator(selectors.item_list(filters=filters), PAGE_SIZE)
    page = pages.get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "recommendations/catalog.html",
        {
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "imports": selectors.item_imports()[:5],
            "can_write": has_role(request.user, *WRITE),
        },
    )


@require_GET
@roles_required(*READ)
def item_detail(request: HttpRequest, item_id: int) -> HttpResponse:
    item = Item.objects.filter(pk=item_id).first()
    if item is None:
        raise Http404("No such item.")
    similar = serving.recommendations_anonymous(
        request=serving.Request(slot="similar", page_item=item.external_id, k=BLOCK_K)
    )
    return render(
        request,
        "recommendations/item.html",
        {
            "item": item,
            "similar": similar,
            "attributes": [
                (name, ", ".join(map(str, value)) if isinstance(value, list) else str(value))
                for name, value in (item.attributes or {}).items()
            ],
            "together": selectors.items_bought_together(item=item, limit=BLOCK_K),
            "items_by_key": _items_by_key(similar.items),
        },
    )


def _items_by_key(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Catalog ids of the listed items, for links to their pages."""
    keys = [row["external_id"] for row in rows]
    return dict(Item.objects.filter(external_id__in=keys).values_list("external_id", "pk"))


@roles_required(*WRITE)
def import_new(request: HttpRequest) -> HttpResponse:
    # Bound on every POST, an empty one included: a post without a file is a form error.
    form = ItemImportForm(
        request.POST if request.method == "POST" else None,
        request.FILES if request.method == "POST" else None,
    )
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        job = services.item_import_create(upload=upload, file_name=upload.name, actor=request.user)
        transaction.on_commit(lambda: item_import_task.delay(job.pk))
        return redirect("recommendations:import", job.pk)
    return render(
        request,
        "recommendations/import_new.html",
        {"form": form, "imports": selectors.item_imports()[:10]},
        status=400 if form.errors else 200,
    )


def _import_or_404(job_id: int) -> ItemImport:
    job = selectors.item_import_get(job_id=job_id)
    if job is None:
        raise Http404("No such import.")
    return job


@require_GET
@roles_required(*READ)
def import_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    return render(request, "recommendations/import.html", {"job": _import_or_404(job_id)})


@require_GET
@roles_required(*READ)
def import_progress(request: HttpRequest, job_id: int) -> HttpResponse:
    """htmx: the progress fragment, polled while the import runs."""
    return render(request, "recommendations/_import_progress.html", {"job": _import_or_404(job_id)})


@require_GET
@roles_required(*READ)
def models(request: HttpRequest) -> HttpResponse:
    context = _models_context(request)
    context["chart"] = selectors.model_runs_chart()
    context["drift"] = selectors.recommender_drift()
    context["train_form"] = ModelTrainForm()
    wanted = request.GET.get("profile", "").strip()
    context["example_profile"] = int(wanted) if wanted.isdigit() and len(wanted) < 12 else None
    return render(request, "recommendations/models.html", context)


@require_GET
@roles_required(*READ)
def model_progress(request: HttpRequest) -> HttpResponse:
    """htmx: the runs table, polled while a run is queued or running."""
    return render(request, "recommendations/_runs.html", _models_context(request))


def _models_context(request: HttpRequest) -> dict[str, Any]:
    runs = list(selectors.model_runs()[:50])
    serving_run = next((run for run in runs if run.is_serving), None) or selectors.serving_run()
    return {
        "runs": runs,
        "serving_run": serving_run,
        "busy": any(
            run.status in (ModelRun.Status.QUEUED, ModelRun.Status.RUNNING) for run in runs
        ),
        "can_write": has_role(request.user, *WRITE),
    }


@require_POST
@roles_required(*WRITE)
def model_train(request: HttpRequest) -> HttpResponse:
    form = ModelTrainForm(request.POST)
    if not form.is_valid():
        return HttpResponse("Unknown recommender kind.", status=400)
    run = services.model_train_request(kind=form.cleaned_data["kind"], actor=request.user)
    transaction.on_commit(lambda: model_train_task.delay(run.pk))
    messages.success(request, f"Run #{run.pk} ({run.kind}) queued.")
    return redirect("recommendations:models")


@require_POST
@roles_required(*WRITE)
def model_serve(request: HttpRequest, run_id: int) -> HttpResponse:
    """Promote a challenger or roll back to an earlier run: either way this run serves."""
    run = selectors.model_run_get(run_id=run_id)
    if run is None:
        raise Http404("No such run.")
    try:
        services.model_rollback(run=run, actor=request.user)
    except services.RollbackRefused as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Run #{run.pk} ({run.kind}) now serves.")
    return redirect("recommendations:models")


@require_GET
@roles_required(*READ)
def profile_block(request: HttpRequest, profile_id: int) -> HttpResponse:
    """htmx: a person's lists for the profile page (`?slots=examples`: every personal slot,
    for the models page)."""
    profile = profile_get(profile_id=profile_id)
    if profile is None:
        raise Http404("No such profile.")
    slots = EXAMPLE_SLOTS if request.GET.get("slots") == "examples" else PROFILE_SLOTS
    blocks = []
    for slot in slots:
        answer = serving.recommendations_for_profile(
            profile=profile, request=serving.Request(slot=slot, k=BLOCK_K)
        )
        blocks.append({"title": SLOT_TITLES[slot], "answer": answer})
    rows = [row for block in blocks for row in block["answer"].items]
    return render(
        request,
        "recommendations/_profile_block.html",
        {"profile": profile, "blocks": blocks, "items_by_key": _items_by_key(rows)},
    )
