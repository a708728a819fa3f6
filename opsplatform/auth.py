"""API authentication: bearer tokens for clients, the session (with CSRF) for the browser."""

from ninja.security import HttpBearer, SessionAuth

from opsplatform import selectors, services
from opsplatform.throttling import note_failed_credential, refuse_if_guessing


class BearerTokenAuth(HttpBearer):
    """`Authorization: Bearer <token>`; the token's user becomes `request.user`, so
    permissions and the audit trail see the person behind the token."""

    openapi_scheme = "bearer"

    def authenticate(self, request, token):
        found = selectors.api_token_authenticate(token)
        if found is None:
            refuse_if_guessing(request, "api_token")
            note_failed_credential(request, "api_token")
            return None
        # The address's failed-credential budget is checked by the rate limit, in the same
        # cache round trip (throttling.ClientRateThrottle): a correct token from an address
        # that has been guessing is refused too.
        request.credential_kind = "api_token"
        services.touch_api_token(found)
        request.user = found.user
        request.api_token = found
        return found.user


class ActiveSessionAuth(SessionAuth):
    """The logged-in browser session; ninja checks the CSRF token for unsafe methods."""

    def authenticate(self, request, key):
        user = request.user
        if user.is_authenticated and user.is_active:
            return user
        return None


api_auth = [BearerTokenAuth(), ActiveSessionAuth()]
