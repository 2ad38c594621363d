"""Who may use the app, and where it may listen: the rules any server of the package applies.

The app (rag/webapp/) and an HTTP API on the same server share them: loopback needs no login,
any other address needs one. A login is one `user:password` pair (RAG_AUTH or --auth); the user
name also keys the chats kept on the server (rag/chats.py). The API takes the same pair as a
bearer token (`Authorization: Bearer user:password`, what an OpenAI client sends as its key) or
as HTTP basic.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress

from rag.errors import BadInput, Unauthorized
from rag.settings import Settings


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable only from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_auth(auth: str | None) -> tuple[str, str] | None:
    """`user:password` as a pair, None when unset; BadInput when malformed."""
    if not auth:
        return None
    user, _, password = auth.partition(":")
    if not user or not password:
        raise BadInput("the login must look like user:password (RAG_AUTH or --auth)")
    return user, password


def credentials(settings: Settings) -> tuple[str, str] | None:
    """The login the app asks for; refuses a non-loopback address without one."""
    login = parse_auth(settings.auth)
    if login is None and not is_loopback(settings.host):
        raise BadInput(
            f"refusing to listen on {settings.host} without a login: anyone who can reach it could read the "
            "articles and run the model. Set RAG_AUTH=user:password or pass --auth user:password, "
            "or listen on 127.0.0.1"
        )
    return login


def authorized(authorization: str | None, login: tuple[str, str] | None) -> bool:
    """Whether an `Authorization` header carries the login: `Bearer user:password` or HTTP basic."""
    if login is None:
        return True
    scheme, _, value = (authorization or "").strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "basic":
        try:
            value = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
    elif scheme.lower() != "bearer":
        return False
    expected = f"{login[0]}:{login[1]}"
    return hmac.compare_digest(value.encode("utf-8"), expected.encode("utf-8"))


def check_request(client_host: str | None, authorization: str | None, login: tuple[str, str] | None) -> None:
    """Let a request in: any with the login when there is one, else only from this machine."""
    if login is None:
        # The server only listens on loopback without a login; a proxy could still relay others.
        if not is_loopback(client_host or ""):
            raise Unauthorized("this server answers only on this machine; set RAG_AUTH to let others in")
        return
    if not authorized(authorization, login):
        raise Unauthorized("a login is needed: send Authorization: Bearer user:password, or HTTP basic")
