"""Every management API route, in one file (STYLE.md rule 5)."""

urlpatterns: list = []
