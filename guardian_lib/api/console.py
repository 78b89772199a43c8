"""The operator dashboard behind a login, served by ``guardian api`` beside ``/api/v1``.

One small static page (:mod:`guardian_lib.api.console_assets`: HTML, CSS and a script
using ``fetch``; no build step) that reads the API with the user's session: the live
incidents, the risk queue, the approval queue (approve / reject with a comment, for
roles that may decide) and the timeline of a customer, refreshed every
``ApiConfig.console_refresh_s`` seconds. The API enforces roles and region scopes; the
page only hides buttons a viewer may not use.

Session: ``POST /login`` (a form) checks the password like ``POST /api/v1/auth/login``
and sets the cookie :data:`~guardian_lib.api.deps.SESSION_COOKIE` holding an 8-hour
login token (``HttpOnly``, ``SameSite=Strict``, ``Secure`` when
``ApiConfig.cookie_secure``). Every mutation made with that cookie must carry the
header ``X-CSRF-Token`` (:func:`~guardian_lib.api.deps.csrf_token`, written into the
page) and, when the browser sends ``Origin``, come from the same origin. ``POST /logout``
revokes the token. Pages are sent with a Content-Security-Policy that allows only this
origin's script and style (no inline script), ``frame-ancestors 'none'`` and
``no-store``.

No ``from __future__ import annotations``: FastAPI evaluates the route signatures.
"""

import json
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from guardian_lib.api.console_assets import (
    CONSOLE_CSS,
    CONSOLE_JS,
    LABELS,
    console_html,
    login_html,
)
from guardian_lib.api.deps import SESSION_COOKIE, check_csrf, csrf_token, get_context
from guardian_lib.api.problems import Problem
from guardian_lib.api.routes.auth import LOGIN_TOKEN_HOURS, password_login
from guardian_lib.api.users import AuthError, User

__all__ = ["SECURITY_HEADERS", "page_lang", "router", "session_user"]

#: Headers of every dashboard response.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer chromium sends "Origin: null" on form
    # posts, and the origin check needs the real one
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
#: Largest login form accepted. [bytes]
_MAX_FORM_BYTES = 4096

router = APIRouter(include_in_schema=False)


def page_lang(request: Request) -> str:
    """The page's language from ``?lang=`` (``en`` unless a known one)."""
    lang = request.query_params.get("lang", "en")
    return lang if lang in LABELS else "en"


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers=SECURITY_HEADERS)


def session_user(request: Request) -> tuple[User, str, str] | None:
    """(user, session token, token id) of a valid session cookie, else None."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    users = get_context(request).users
    users.reload_if_changed()
    try:
        user, token_id = users.authenticate(token)
    except AuthError:
        return None
    return user, token, token_id


@router.get("/")
def root(request: Request) -> Response:
    """The dashboard (or its login)."""
    return RedirectResponse(f"/console?lang={page_lang(request)}", status_code=303)


@router.get("/login")
def login_page(request: Request) -> Response:
    """The login form."""
    return _html(login_html(page_lang(request)))


@router.post("/login")
async def login_submit(request: Request) -> Response:
    """Check the form's password; set the session cookie and go to the dashboard."""
    lang = page_lang(request)
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit() or int(declared) > _MAX_FORM_BYTES:
        return _html(login_html(lang, "form_too_large"), 413)
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        return _html(login_html(lang, "form_too_large"), 413)
    form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=5)
    name = (form.get("name") or [""])[0].strip()[:64]
    password = (form.get("password") or [""])[0][:1024]
    origin = request.headers.get("origin")
    if origin is not None and origin.split("://", 1)[-1] != request.headers.get("host", ""):
        return _html(login_html(lang, "cross_origin"), 403)
    if not name or not password:
        return _html(login_html(lang, "missing_fields"), 422)
    try:
        token, _, _ = password_login(request, get_context(request), name, password)
    except Problem as exc:
        why = "rate_limited" if exc.status == 429 else "invalid_credentials"
        return _html(login_html(lang, why), exc.status)
    resp = RedirectResponse(f"/console?lang={quote(lang)}", status_code=303)
    resp.set_cookie(
        SESSION_COOKIE, token, max_age=int(LOGIN_TOKEN_HOURS * 3600), path="/", httponly=True,
        samesite="strict", secure=get_context(request).cfg.cookie_secure,
    )  # fmt: skip
    return resp


@router.get("/console")
def console(request: Request) -> Response:
    """The dashboard page (a redirect to the login without a valid session)."""
    lang = page_lang(request)
    found = session_user(request)
    if found is None:
        return RedirectResponse(f"/login?lang={quote(lang)}", status_code=303)
    user, token, _ = found
    ctx = get_context(request)
    boot: dict[str, Any] = {
        "user": user.name, "role": user.role, "regions": list(user.regions),
        "can_decide": user.can("decide"), "csrf": csrf_token(token), "lang": lang,
        "refresh_s": ctx.cfg.console_refresh_s, "site_mode": not ctx.cfg.read_only,
    }  # fmt: skip
    return _html(console_html(lang, boot))


@router.post("/logout")
def logout(request: Request) -> Response:
    """End the session: its token is revoked and the cookie cleared (needs the CSRF header)."""
    found = session_user(request)
    if found is not None:
        user, token, token_id = found
        check_csrf(request, token)
        ctx = get_context(request)
        ctx.users.revoke(token_id)
        ctx.trail.record(user=user.name, role=user.role, token_id=token_id, method="POST",
                         path=request.url.path, action="logout", target=user.name,
                         status=200, comment="",
                         client=request.client.host if request.client else None)  # fmt: skip
    resp = Response(json.dumps({"status": "logged out"}), media_type="application/json",
                    headers=SECURITY_HEADERS)  # fmt: skip
    resp.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                       secure=get_context(request).cfg.cookie_secure)  # fmt: skip
    return resp


@router.get("/console/app.js")
def console_js() -> Response:
    """The dashboard's script."""
    return Response(CONSOLE_JS, media_type="text/javascript", headers=SECURITY_HEADERS)


@router.get("/console/app.css")
def console_css() -> Response:
    """The dashboard's style sheet."""
    return Response(CONSOLE_CSS, media_type="text/css", headers=SECURITY_HEADERS)
