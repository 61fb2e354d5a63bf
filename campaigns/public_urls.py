"""Public routes that sent messages link to (no login; signed tokens)."""

from django.urls import path

from campaigns import views

app_name = "campaigns-public"

urlpatterns = [
    path("o/<str:token>.gif", views.tracking_open, name="open"),
    path("c/<str:token>/", views.tracking_click, name="click"),
    path("u/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
