"""The client's address, trusting `X-Forwarded-For` only through the configured proxies.

Behind `TRUSTED_PROXY_COUNT` proxies (load balancers that each append the address they
received the request from), the client is the entry that many places from the right of
`X-Forwarded-For`; anything to its left was written by the client and can be forged. With
0 proxies (the default) the header is ignored and `REMOTE_ADDR` is the client. Every place
that keys on a client (the login lockout, the API throttles, the failed-credential throttle)
asks this one function.
"""

import ipaddress

from django.conf import settings


def _valid(address: str) -> str | None:
    address = address.strip()
    if address.startswith("[") and "]" in address:  # "[::1]:443"
        address = address[1 : address.index("]")]
    elif address.count(":") == 1:  # "203.0.113.9:5123"
        address = address.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def client_ip(request) -> str | None:
    """None only where no address is known at all (a request built in code, not by a server)."""
    remote = _valid(request.META.get("REMOTE_ADDR", "") or "")
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    hops = [hop for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if len(hops) < proxies:
        # Fewer hops than trusted proxies: the request did not come through all of them
        # (or came around them); the nearest address is the only one we can vouch for.
        return remote
    return _valid(hops[-proxies]) or remote
