"""Access management pages, mounted at /settings/ (admins only)."""

from django.urls import path

from cdp import access_views

app_name = "access"

urlpatterns = [
    path("", access_views.settings_home, name="home"),
    path("api-keys/", access_views.api_keys, name="api-keys"),
    path("api-keys/new/", access_views.api_key_create, name="api-key-create"),
    path("api-keys/<int:key_id>/revoke/", access_views.api_key_revoke, name="api-key-revoke"),
    path("users/", access_views.staff_users, name="users"),
    path("users/new/", access_views.staff_user_create, name="user-create"),
    path("users/<int:user_id>/", access_views.staff_user_roles, name="user"),
]
