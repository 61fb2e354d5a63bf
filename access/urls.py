"""Access management pages, mounted at /settings/ (admins only)."""

from django.urls import path

from access import views

app_name = "access"

urlpatterns = [
    path("", views.settings_home, name="home"),
    path("api-keys/", views.api_keys, name="api-keys"),
    path("api-keys/new/", views.api_key_create, name="api-key-create"),
    path("api-keys/<int:key_id>/revoke/", views.api_key_revoke, name="api-key-revoke"),
    path("users/", views.staff_users, name="users"),
    path("users/new/", views.staff_user_create, name="user-create"),
    path("users/<int:user_id>/", views.staff_user_roles, name="user"),
]
