"""OpenAPI description of our authentication, so /api/docs/ offers "Authorize" with a key."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "access.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key: `Authorization: Bearer <key>`, scoped per resource "
            "(`profiles:read`, `profiles:write`, ...).",
        }
