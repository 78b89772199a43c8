"""The operator API (``guardian api``) and its users (``guardian users``).

- :mod:`~guardian_lib.api.users` — users, roles, region scopes, argon2 passwords and
  hashed, expiring, revocable API tokens in one 0600 file;
- :mod:`~guardian_lib.api.app` — builds the FastAPI application under ``/api/v1``;
- :mod:`~guardian_lib.api.routes` — its routers, one module per domain (auth and
  users, reads, inventory, decisions, webhooks);
- :mod:`~guardian_lib.api.deps` — what the routers share: token and permission
  dependencies, region checks, the audit helper, operate's state store;
- :mod:`~guardian_lib.api.config` — :class:`~guardian_lib.api.config.ApiConfig`;
- :mod:`~guardian_lib.api.data` — lock-free reads of the warehouse and its lake;
- :mod:`~guardian_lib.api.problems` — RFC 9457 problem+json errors;
- :mod:`~guardian_lib.api.trail` — the audit file of mutating calls;
- :mod:`~guardian_lib.api.cli` — ``guardian api`` and ``guardian users``.

FastAPI is imported only by :mod:`~guardian_lib.api.app` and the modules it uses, so managing
users does not load the web stack.
"""

from guardian_lib.api.users import ROLE_PERMISSIONS, ROLES, User, UsersError, UserStore

__all__ = ["ROLES", "ROLE_PERMISSIONS", "User", "UserStore", "UsersError"]
