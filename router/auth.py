"""The dynamic authenticator: a browser gets in only with a valid Django session.

Crossbar calls ``djwamp.authenticate(realm, authid, details)`` for every WebSocket session:

- authmethod ``anonymous`` (what a same-site browser uses): the Django session cookie from
  the upgrade request, honoured only with an ``Origin`` on the cookie allow-list (a request
  without ``Origin`` is not a browser, so its cookie is ignored);
- authmethod ``ticket``: a short-lived, single-use ticket from the Django ticket view.

No valid session means role ``anonymous`` when ``REALTIME["ALLOW_ANONYMOUS"]``, otherwise
a refusal. Every refusal is the same ``djwamp.error.not_authenticated``; the reason is
logged, the cookie and the ticket never are.

While the node starts, an authentication waits (up to ``START_WAIT`` seconds) until every
container component of the node has said it is ready (``extra["awaits"]`` in the node
config): a browser admitted that early would otherwise find no ``djwamp.history`` to resume
from and no procedures to call. Past the wait it gets ``djwamp.error.unavailable``, which
the client answers by reconnecting with backoff.

Limits per client address (``router/limits.py``; the address behind trusted proxies, so the
fallback gateway's sessions, which join from the node's own machine with the browser's
``X-Forwarded-For``, count for the browser): at most ``MAX_CONNECTIONS_PER_IP`` sessions at once,
and ``AUTH_FAILURES_PER_MINUTE`` failed authentications, after which the address is refused
before its ticket or cookie is looked at. Both refusals are ``djwamp.error.rate_limited``, which
the client answers like ``unavailable``. Clients on the node's own machine are not limited.

``Authenticator`` is that logic (tests build it with stand-ins); ``AuthenticatorComponent`` runs
it in the router worker. It also closes sessions whose Django session ended: on revocation (logout,
password change, deactivation, deletion: control entries from the bridge), at the Django
session's expiry, and on a periodic re-validation of every admitted session.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NoReturn
from urllib.parse import urlsplit

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import RegisterOptions
from twisted.internet import defer, task, threads
from twisted.logger import Logger

from realtime import errors

from . import django_access
from .backend import BackendSession, freeze_heap, ready_topic
from .limits import Attempts, Counts, TrustedProxies, client_key, forwarded_chain, is_local, peer_host
from .settings import AUTHENTICATOR_URI, BACKEND_AUTHID, BROWSER_ROLES

__all__ = ["REVOKE_URI", "Authenticator", "AuthenticatorComponent", "NodeReadiness", "origin_allowed"]

REVOKE_URI = "djwamp.control.revoke"
_DEFAULT_PORTS = {"http": 80, "https": 443}

TOO_MANY_CONNECTIONS = "too many connections from this address"
TOO_MANY_FAILURES = "too many failed sign-ins from this address, try again later"


class AuthenticationRefused(Exception):
    """Authentication refused; the message is for the log only."""


@dataclass
class Admission:
    authid: str
    role: str
    fingerprint: str | None
    session_key: str = field(repr=False)
    expiry: object = None  # the DelayedCall that re-validates at the session's expiry


def origin_allowed(origin: str, allowed: tuple[str, ...]) -> bool:
    """``origin`` (as a browser sends it, default port omitted) against ``scheme://host:port|*``."""
    try:
        parts = urlsplit(origin)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return False
    if not parts.scheme or not parts.hostname or port is None or parts.path not in ("", "/"):
        return False
    for entry in allowed:
        want = urlsplit(entry)
        if want.scheme != parts.scheme or want.hostname != parts.hostname:
            continue
        if entry.endswith(":*") or want.port == port:
            return True
    return False


class NodeReadiness:
    """Fires ``wait()``s once every awaited component has announced itself."""

    def __init__(self, awaited, clock):
        self.missing = set(awaited)
        self.clock = clock
        self._waiters: list[defer.Deferred] = []

    @property
    def ready(self) -> bool:
        return not self.missing

    def announced(self, name: str) -> bool:
        """Note ``name`` as started; True if that made the node ready."""
        if self.ready or name not in self.missing:
            return False
        self.missing.discard(name)
        if self.missing:
            return False
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.called:
                waiter.callback(None)
        return True

    def wait(self, timeout: float) -> defer.Deferred:
        """Fires when ready; fails with ``defer.TimeoutError`` after ``timeout`` seconds."""
        if self.ready:
            return defer.succeed(None)
        waiter: defer.Deferred = defer.Deferred()
        self._waiters.append(waiter)
        waiter.addTimeout(timeout, self.clock)
        waiter.addBoth(self._drop, waiter)
        return waiter

    def _drop(self, result, waiter):
        if waiter in self._waiters:
            self._waiters.remove(waiter)
        return result


class Authenticator:
    """Who a browser is, and whether its session still holds: djwamp.authenticate's logic.

    No WAMP of its own: the component gives it the Django side (``pool`` runs the
    ``django_access`` functions in threads), the node's origins, a clock, the node's readiness
    and ``meta``, a function that calls the router's meta API (``wamp.session.kill``,
    ``kill_by_authid``, ``list``) and returns a Deferred. Tests build it with stand-ins.
    """

    #: how long an authentication waits for the node's start-up before "unavailable"
    START_WAIT = 30.0
    #: a counted session still not on ``wamp.session.list`` after this long never joined (its
    #: transport dropped between authentication and WELCOME, so no on_leave will come)
    JOIN_GRACE = 60.0
    #: a limited address gets one log line per this many seconds, not one per attempt
    QUIET_FOR = 60.0
    #: how many limited addresses are remembered for that (the oldest line is forgotten first)
    QUIET_KEYS = 1000

    def __init__(self, *, conf, cookie_name: str, allowed_origins: tuple[str, ...],
                 cookie_origins: tuple[str, ...], trusted_proxies: tuple[str, ...], pool, clock,
                 readiness: NodeReadiness, meta: Callable[..., defer.Deferred], log: Logger):
        self.conf, self.cookie_name, self.pool, self.clock, self.readiness = conf, cookie_name, pool, clock, readiness
        self.allowed_origins, self.cookie_origins = allowed_origins, cookie_origins
        self.trusted = TrustedProxies.for_node(trusted_proxies)
        self.meta, self.log = meta, log
        #: the browser sessions admitted with a Django session, by WAMP session id
        self.admitted: dict[int, Admission] = {}
        self.connections = Counts(conf.MAX_CONNECTIONS_PER_IP)
        #: the sessions that hold one of ``connections``: WAMP session id -> (client key, since)
        self.held: dict[int, tuple[str, float]] = {}
        failures = conf.AUTH_FAILURES_PER_MINUTE
        self.failures = Attempts(burst=failures, per_minute=failures, clock=clock)
        # failures are spent when the pool answers: without a cap on the identifications in
        # flight, one address could start any number of guesses before its bucket empties
        self.identifying = Counts(failures)
        #: (client key, reason) -> (when its last line was logged, refusals since, not logged)
        self._quiet: dict[tuple[str, str], tuple[float, int]] = {}

    # -- authentication --------------------------------------------------------------------

    async def authenticate(self, realm: str, authid: str | None, details: dict) -> dict:
        method = details.get("authmethod")
        transport = details.get("transport") or {}
        headers = transport.get("http_headers_received") or {}
        key = client_key(forwarded_chain(headers.get("x-forwarded-for"), peer_host(transport.get("peer"))),
                         self.trusted)
        limited = not is_local(key)
        if not self.readiness.ready:
            try:
                await self.readiness.wait(self.START_WAIT)
            except defer.TimeoutError:
                self.log.warn("refused a {method} session from {peer}: the node has not finished starting "
                              "(waiting for {missing})", method=method, peer=transport.get("peer"),
                              missing=", ".join(sorted(self.readiness.missing)))
                raise ApplicationError(errors.UNAVAILABLE, "the node is starting, try again") from None
        if limited:
            # refused before the pool sees the ticket or the cookie: costs nothing and burns no ticket
            if self._full(key):
                self._rate_limited(key, TOO_MANY_CONNECTIONS)
            if not (self.failures.allowed(key) and self.identifying.take(key)):
                self._rate_limited(key, TOO_MANY_FAILURES, retry_after=self.failures.retry_after(key))
        try:
            identity = await self._identify(method, details, headers)
        except AuthenticationRefused as exc:
            if limited:
                self.failures.spend(key)
            self.log.info("refused {method} session from {client}: {reason}", method=method, client=key,
                          reason=str(exc))
            raise ApplicationError(errors.NOT_AUTHENTICATED, "authentication failed") from None
        except Exception:
            self.log.failure("authentication failed on an unexpected error")
            raise ApplicationError(errors.UNAVAILABLE, "authentication is unavailable, try again") from None
        finally:
            if limited:
                self.identifying.give_back(key)
        if identity.authid == BACKEND_AUTHID or identity.role not in BROWSER_ROLES:
            # a user whose primary key is "backend" must never share the components' authid
            self.log.error("refused a session whose authid would be {authid!r}", authid=identity.authid)
            raise ApplicationError(errors.NOT_AUTHENTICATED, "authentication failed")
        session_id = details.get("session")
        if limited and session_id is not None:
            self._hold(session_id, key)
        if identity.session_key:
            self._admit(session_id, identity)
        return {"role": identity.role, "authid": identity.authid, "extra": identity.authextra}

    async def _identify(self, method: str | None, details: dict, headers: dict):
        origin = headers.get("origin")
        if origin is not None and not origin_allowed(origin, self.allowed_origins):
            raise AuthenticationRefused(f"origin {origin[:100]!r} is not allowed")
        if method == "ticket":
            identity, reason = await self.pool.run(django_access.ticket_identity, details.get("ticket"))
            if identity is None:
                raise AuthenticationRefused(f"ticket {reason}")
            return identity
        if method != "anonymous":
            raise AuthenticationRefused(f"authmethod {str(method)[:20]!r} is not offered")
        identity = await self._from_cookie(origin, headers.get("cookie"))
        if identity is not None:
            return identity
        if not self.conf.ALLOW_ANONYMOUS:
            raise AuthenticationRefused("no valid Django session, and anonymous access is disabled")
        return django_access.anonymous_identity()

    async def _from_cookie(self, origin: str | None, cookie_header: str | None):
        if not cookie_header:
            return None
        if origin is None:
            # a browser always sends Origin on a WebSocket upgrade: without it, the cookie
            # may have been lifted from somewhere; such clients use a ticket
            self.log.info("ignored a session cookie sent without an Origin header")
            return None
        if not origin_allowed(origin, self.cookie_origins):
            self.log.info("ignored a session cookie from origin {origin}", origin=origin[:100])
            return None
        session_key = django_access.session_key_from_cookie_header(cookie_header, self.cookie_name)
        if not session_key:
            return None
        return await self.pool.run(django_access.session_identity, session_key)

    # -- limits per client address --------------------------------------------------------

    def _full(self, key: str) -> bool:
        limit = self.connections.limit
        return bool(limit) and self.connections.held(key) >= limit

    def _hold(self, session_id: int, key: str) -> None:
        """Count ``session_id`` against ``key`` until it leaves (``forget``); refuse it if ``key``
        filled up while it was being identified."""
        if not self.connections.limit:
            return  # nothing to count against: keep nothing per session
        if not self.connections.take(key):
            self._rate_limited(key, TOO_MANY_CONNECTIONS)
        self.held[session_id] = (key, self.clock.seconds())

    def _rate_limited(self, key: str, reason: str, retry_after: float | None = None) -> NoReturn:
        """Refuse with ``djwamp.error.rate_limited``; log the first refusal of ``key`` and then one
        line per ``QUIET_FOR`` seconds (a brute force must not write a line per attempt)."""
        now = self.clock.seconds()
        since, unlogged = self._quiet.get((key, reason), (None, 0))
        if since is not None and now - since < self.QUIET_FOR:
            self._quiet[key, reason] = (since, unlogged + 1)
        else:
            self._quiet.pop((key, reason), None)  # re-inserted last: the dict is oldest line first
            self._quiet[key, reason] = (now, 0)
            if len(self._quiet) > self.QUIET_KEYS:
                del self._quiet[next(iter(self._quiet))]
            retry = "" if retry_after is None else f" (may retry in {retry_after:.0f} s)"
            more = f"; {unlogged} more refused since the last such line" if unlogged else ""
            self.log.info("rate-limited {client}: {reason}{retry}{more}", client=key, reason=reason, retry=retry,
                          more=more)
        raise ApplicationError(errors.RATE_LIMITED, reason)

    # -- keeping admitted sessions honest --------------------------------------------------

    def _admit(self, session_id: int | None, identity) -> None:
        if session_id is None:
            return
        admission = Admission(identity.authid, identity.role, identity.fingerprint, identity.session_key)
        if identity.expires_at is not None:
            delay = max(0.0, identity.expires_at - time.time()) + 0.5
            admission.expiry = self.clock.callLater(delay, self._revalidate_logged, session_id)
        self._unwatch(session_id)
        self.admitted[session_id] = admission

    def _unwatch(self, session_id: int) -> None:
        admission = self.admitted.pop(session_id, None)
        if admission is not None and admission.expiry is not None and admission.expiry.active():
            admission.expiry.cancel()

    def forget(self, session_id: int) -> None:
        """The session left (or never joined): stop watching it, give back its connection.
        Harmless for sessions that were never counted (the node's own, local clients)."""
        held = self.held.pop(session_id, None)
        if held is not None:
            self.connections.give_back(held[0])
        self._unwatch(session_id)

    def forget_all(self) -> None:
        for session_id in [*self.admitted, *self.held]:
            self.forget(session_id)

    def _revalidate_logged(self, session_id: int) -> defer.Deferred:
        return defer.ensureDeferred(self.revalidate(session_id)).addErrback(
            lambda f: self.log.failure("re-validating session {id} failed; kept", failure=f, id=session_id))

    def revalidate_all_logged(self) -> defer.Deferred:
        """``revalidate_all()``; an error (database down, router busy) only skips this round."""
        return defer.ensureDeferred(self.revalidate_all()).addErrback(
            lambda f: self.log.failure("re-validation round failed; next in {s} s", failure=f,
                                       s=self.conf.REVALIDATE_INTERVAL))

    async def revalidate(self, session_id: int) -> None:
        """Close ``session_id`` if its Django session no longer gives the same user and role.

        An error reaching the session store raises (and the session stays): only a store
        that answers "no such valid session" closes it.
        """
        admission = self.admitted.get(session_id)
        if admission is None:
            return
        identity = await self.pool.run(django_access.session_identity, admission.session_key)
        if identity is None or identity.authid != admission.authid:
            await self._kill(session_id, errors.CLOSE_SESSION_ENDED, "Your session has ended.")
        elif identity.role != admission.role:
            await self._kill(session_id, errors.CLOSE_REVOKED, "Your account changed; sign in again.")

    async def revalidate_all(self) -> None:
        """Re-validate every admitted session; forget those that are gone, and give back the
        connections of sessions that authenticated but never joined (they get no on_leave)."""
        if not self.admitted and not self.held:
            return
        live = set(await self.meta("wamp.session.list", list(BROWSER_ROLES)))
        for session_id in [sid for sid in self.admitted if sid not in live]:
            self._unwatch(session_id)
        # a session authenticated a moment ago may not have joined yet: only older ones are gone
        joined_by = self.clock.seconds() - self.JOIN_GRACE
        for session_id in [sid for sid, (_key, since) in self.held.items() if since < joined_by and sid not in live]:
            self.forget(session_id)
        for session_id in list(self.admitted):
            await self.revalidate(session_id)

    async def revoke(self, action: str, authid: str, session: str | None = None) -> int:
        """Carry out one control entry (the bridge calls it); returns how many sessions closed."""
        if authid == BACKEND_AUTHID:
            raise ApplicationError(errors.WAMP_INVALID_ARGUMENT, "the node's own sessions cannot be revoked")
        if action == "kill_user":
            killed = await self.meta("wamp.session.kill_by_authid", authid, reason=errors.CLOSE_REVOKED,
                                     message="Your account changed; sign in again.")
            for session_id in [sid for sid, a in self.admitted.items() if a.authid == authid]:
                self._unwatch(session_id)
            count = len(killed or [])
        elif action == "kill_session":
            targets = [sid for sid, a in self.admitted.items() if a.authid == authid and a.fingerprint == session]
            for session_id in targets:
                await self._kill(session_id, errors.CLOSE_LOGGED_OUT, "You have signed out.")
            count = len(targets)
        else:
            raise ApplicationError(errors.WAMP_INVALID_ARGUMENT, f"unknown action {action[:20]!r}")
        self.log.info("revocation {action} for user {authid} closed {count} session(s)", action=action,
                      authid=authid, count=count)
        return count

    async def _kill(self, session_id: int, reason: str, message: str) -> None:
        self._unwatch(session_id)  # its connection is given back when it has left (on_leave)
        try:
            await self.meta("wamp.session.kill", session_id, reason=reason, message=message)
        except ApplicationError as exc:
            if exc.error != errors.NO_SUCH_SESSION:
                raise


class AuthenticatorComponent(BackendSession):
    """Runs an ``Authenticator`` in the router worker: registers ``djwamp.authenticate`` and the
    revocation procedure, follows the node's readiness and sessions leaving, re-validates."""

    log = Logger()
    # without the authenticator nobody gets in: a failed start stops the node
    component_name = "authenticator"

    async def start(self) -> None:
        from twisted.internet import reactor

        conf = await threads.deferToThread(django_access.realtime_settings)
        readiness = NodeReadiness((self.config.extra or {}).get("awaits", ()), reactor)
        node = self._node_settings
        self.authenticator = Authenticator(
            conf=conf, cookie_name=await threads.deferToThread(django_access.session_cookie_name),
            allowed_origins=node.allowed_origins, cookie_origins=node.cookie_origins,
            trusted_proxies=node.trusted_proxies, pool=django_access.DjangoThreadPool(size=10, name="djwamp-auth"),
            clock=reactor, readiness=readiness, meta=self.call, log=self.log)
        # subscribed before the backend socket opens: no announcement can come earlier
        await self.subscribe(self._announced, ready_topic(node.node_id))
        if readiness.ready:
            self._log_ready()
        await self.register(self.authenticator.authenticate, AUTHENTICATOR_URI,
                            options=RegisterOptions(invoke="roundrobin"))
        await self.register(self.authenticator.revoke, REVOKE_URI)
        await self.subscribe(self._left, "wamp.session.on_leave")
        self._revalidating = task.LoopingCall(self.authenticator.revalidate_all_logged)
        self._revalidating.clock = reactor
        self._revalidating.start(conf.REVALIDATE_INTERVAL, now=False)
        self.log.info("djwamp authenticator ready on {uri} (anonymous {anonymous})", uri=AUTHENTICATOR_URI,
                      anonymous="allowed" if conf.ALLOW_ANONYMOUS else "refused")

    def _announced(self, name) -> None:
        if self.authenticator.readiness.announced(str(name)):
            self._log_ready()

    def _log_ready(self) -> None:
        freeze_heap()  # the router worker has all its transports now
        self.log.info("djwamp node ready: every component has started; admitting browsers")

    def _left(self, session_id, *args, **kwargs) -> None:
        self.authenticator.forget(session_id)

    def onUserError(self, fail, msg) -> None:
        # refusals are ApplicationErrors the Authenticator has logged (rate-limited ones once a
        # minute); autobahn's default would add a warning per attempt, flooding under brute force
        if isinstance(getattr(fail, "value", None), ApplicationError):
            return
        super().onUserError(fail, msg)

    def onLeave(self, details) -> None:
        if getattr(self, "_revalidating", None) is not None and self._revalidating.running:
            self._revalidating.stop()
        if getattr(self, "authenticator", None) is not None:
            self.authenticator.forget_all()
        super().onLeave(details)
