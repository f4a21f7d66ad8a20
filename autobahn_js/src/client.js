// The djwamp browser client: a small API over autobahn-js.
//
//   const rt = djwamp.connect();                  // config from {% realtime_client %}
//   rt.on("state", (state) => ...);               // connecting | connected | reconnecting | offline
//   rt.subscribe("public.feed", (data, event) => ...);   // event.id is the djwamp event id
//   const me = await rt.call("demo.whoami");
//
// It reconnects with backoff and jitter, subscribes again, drops duplicates by event id,
// and stops (state "offline", event "revoked") when the server revoked the session.

import autobahn from "autobahn-browser";

import { Backoff } from "./backoff.js";
import { Deduplicator } from "./dedupe.js";
import { RealtimeError, REVOCATION_REASONS, toRealtimeError } from "./errors.js";
import { Emitter } from "./events.js";
import { FallbackConnection, fallbackUrlFor } from "./fallback.js";

const WAMP_EVENT = 36;
const HISTORY = "djwamp.history";
const STATES = new Set(["idle", "connecting", "connected", "reconnecting", "offline"]);

/** Where the page's WebSocket goes by default: same origin, path /ws. */
export function defaultUrl(location, path = "/ws") {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

export class Realtime extends Emitter {
  /**
   * @param {object} config  url, realm, auth ("cookie" | "ticket"), ticketUrl, csrfToken,
   *                         backoff ({initial, maximum, factor, jitter}), callTimeout (s)
   * @param {object} env     injection points for tests: autobahn, fetch, setTimeout, clearTimeout
   */
  constructor(config = {}, env = {}) {
    super();
    if (!config.url || !config.realm) throw new TypeError("djwamp: config needs url and realm");
    if (config.auth && !["cookie", "ticket"].includes(config.auth)) {
      throw new TypeError(`djwamp: auth must be "cookie" or "ticket", not ${JSON.stringify(config.auth)}`);
    }
    if (config.transport && !["auto", "websocket", "fallback"].includes(config.transport)) {
      throw new TypeError(`djwamp: transport must be "auto", "websocket" or "fallback"`);
    }
    this.config = { auth: "cookie", transport: "auto", fallbackUrl: fallbackUrlFor(config.url), callTimeout: 10,
                    ...config };
    this.EventSource = env.EventSource || globalThis.EventSource;
    this.WebSocket = "WebSocket" in env ? env.WebSocket : globalThis.WebSocket;
    this.autobahn = env.autobahn || autobahn;
    this.fetch = env.fetch || ((...args) => globalThis.fetch(...args));
    this.setTimeout = env.setTimeout || ((fn, ms) => globalThis.setTimeout(fn, ms));
    this.clearTimeout = env.clearTimeout || ((id) => globalThis.clearTimeout(id));
    this.backoff = new Backoff(config.backoff);
    this.dedupe = new Deduplicator();
    this.state = "idle";
    this.session = null;
    this.details = null;
    this.subscriptions = new Set();
    this._current = { details: null };
    this._retryTimer = null;
    this._closing = false;
    this._connectedOnce = false;
    this._waiters = [];
    this._unreachable = 0;
    this.transport = null; // "websocket" or "fallback", once chosen
  }

  // -- connection --------------------------------------------------------------------------

  open() {
    if (this.state === "connecting" || this.state === "connected" || this.state === "reconnecting") return this;
    this._closing = false;
    this._attempt();
    return this;
  }

  close() {
    this._closing = true;
    if (this._retryTimer !== null) this.clearTimeout(this._retryTimer);
    this._retryTimer = null;
    if (this.connection) this.connection.close();
    this._setState("offline");
  }

  /**
   * WebSocket unless the browser has none, or it never got through twice in a row (a proxy
   * that drops upgrades); then the SSE/POST fallback (cookie or ticket, as configured).
   */
  _useFallback() {
    const { transport } = this.config;
    if (transport !== "auto") return transport === "fallback";
    if (this.transport) return this.transport === "fallback";
    const noWebSocket = typeof this.WebSocket !== "function";
    return typeof this.EventSource === "function" && (noWebSocket || this._unreachable >= 2);
  }

  _attempt() {
    this._retryTimer = null;
    this._setState(this._connectedOnce ? "reconnecting" : "connecting");
    if (this._useFallback()) return this._attemptFallback();
    const ticket = this.config.auth === "ticket";
    const connection = new this.autobahn.Connection({
      url: this.config.url,
      realm: this.config.realm,
      authmethods: [ticket ? "ticket" : "anonymous"],
      onchallenge: (session, method) => {
        if (method === "ticket" && ticket) return this._fetchTicket();
        throw new RealtimeError("djwamp.error.client", `unexpected challenge ${method}`);
      },
      max_retries: 0, // we reconnect ourselves, with our backoff and a fresh ticket each time
      retry_if_unreachable: false,
      use_es6_promises: true,
    });
    connection.onclose = (reason, details) => {
      if (connection === this.connection) {
        if (reason === "unreachable" && !this.transport) this._unreachable += 1;
        this._closed(reason, details || {});
      }
      return true; // never let autobahn retry on its own
    };
    this._watch(connection, "websocket");
    connection.open();
  }

  _attemptFallback() {
    const connection = new FallbackConnection({
      base: this.config.fallbackUrl, fetch: this.fetch, EventSource: this.EventSource,
      ticket: this.config.auth === "ticket" ? () => this._fetchTicket() : null,
    });
    connection.onclose = (reason, details) => {
      if (connection === this.connection) this._closed(reason, details || {});
    };
    this._watch(connection, "fallback");
    connection.open();
  }

  _watch(connection, transport) {
    this.connection = connection;
    connection.onopen = (session, details) => {
      if (connection !== this.connection) return;
      this.transport = transport;
      this._opened(session, details);
    };
  }

  async _fetchTicket() {
    const { ticketUrl, csrfToken } = this.config;
    if (!ticketUrl) throw new RealtimeError("djwamp.error.client", "auth is \"ticket\" but no ticketUrl is set");
    const response = await this.fetch(ticketUrl, {
      method: "POST",
      credentials: "include",
      headers: csrfToken ? { "X-CSRFToken": csrfToken } : {},
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok || typeof body.ticket !== "string") {
      throw new RealtimeError(body.error || "djwamp.error.not_authenticated", body.message || "no ticket");
    }
    return body.ticket;
  }

  _opened(session, details) {
    this.session = session;
    this.details = details;
    if (!session.djwampFallback) hookEventDetails(session, this._current);
    const reconnected = this._connectedOnce;
    this._connectedOnce = true;
    this.backoff.reset();
    const renewals = [...this.subscriptions].map((sub) => this._subscribeOnSession(sub));
    Promise.allSettled(renewals).then(() => {
      if (this.session !== session) return;
      this._setState("connected");
      if (reconnected) {
        for (const sub of this.subscriptions) this._resume(session, sub);
      }
    });
  }

  _closed(reason, details) {
    this.session = null;
    this.connection = null;
    for (const sub of this.subscriptions) sub.wamp = null;
    if (this._closing) return this._setState("offline");
    if (REVOCATION_REASONS.has(details.reason)) {
      this.emit("revoked", { reason: details.reason, message: details.message || "" });
      return this._setState("offline");
    }
    const delay = this.backoff.next();
    this.emit("disconnected", { reason: details.reason || reason, message: details.message || "", retryIn: delay });
    this._setState("reconnecting");
    this._retryTimer = this.setTimeout(() => this._attempt(), delay * 1000);
  }

  _setState(state) {
    if (!STATES.has(state) || state === this.state) return;
    this.state = state;
    if (state === "connected" || state === "offline") {
      const waiters = this._waiters;
      this._waiters = [];
      for (const waiter of waiters) waiter(state);
    }
    this.emit("state", state);
  }

  /** Resolves with the session once connected; rejects when offline or after `seconds`. */
  whenConnected(seconds = this.config.callTimeout) {
    if (this.state === "connected") return Promise.resolve(this.session);
    if (this.state === "offline" || this.state === "idle") {
      return Promise.reject(new RealtimeError("djwamp.error.offline", "not connected"));
    }
    return new Promise((resolve, reject) => {
      const timer = this.setTimeout(() => {
        this._waiters = this._waiters.filter((w) => w !== waiter);
        reject(new RealtimeError("djwamp.error.offline", `not connected within ${seconds} s`));
      }, seconds * 1000);
      const waiter = (state) => {
        this.clearTimeout(timer);
        if (state === "connected") resolve(this.session);
        else reject(new RealtimeError("djwamp.error.offline", "not connected"));
      };
      this._waiters.push(waiter);
    });
  }

  // -- pub/sub ----------------------------------------------------------------------------

  /**
   * Call `handler(data, event)` for every event on `topic`; `data` is the event's first
   * positional argument (what `publish(topic, data)` sent), `event` is
   * {id, topic, args, kwargs}. Survives reconnects. Resolves once the router accepted the
   * subscription (or right away while offline); rejects with a RealtimeError if refused.
   */
  async subscribe(topic, handler, { match } = {}) {
    if (typeof topic !== "string" || !topic) throw new TypeError("subscribe(topic, handler): topic must be a string");
    if (typeof handler !== "function") throw new TypeError("subscribe(topic, handler): handler must be a function");
    // each subscription de-duplicates on its own: two handlers on one topic both get every event
    const sub = { topic, handler, match, wamp: null, key: `${topic}#${(this._subscriptionCount = (this._subscriptionCount || 0) + 1)}` };
    this.subscriptions.add(sub);
    const handle = { topic, unsubscribe: () => this._unsubscribe(sub) };
    if (this.session) { // connected, or opened and still renewing the other subscriptions
      try {
        await this._subscribeOnSession(sub);
      } catch (error) {
        this.subscriptions.delete(sub);
        throw error;
      }
    }
    return handle;
  }

  async _subscribeOnSession(sub) {
    const session = this.session;
    const options = sub.match ? { match: sub.match } : {};
    const onEvent = (args, kwargs, details) => this._deliver(sub, args, kwargs, details);
    try {
      sub.wamp = await session.subscribe(sub.topic, onEvent, options);
    } catch (error) {
      const failure = toRealtimeError(error);
      this.emit("error", failure);
      throw failure;
    }
  }

  _deliver(sub, args, kwargs, details) {
    // the fallback passes the id in the details; over a WebSocket the hook kept it
    const wire = (details && details.transaction_hash !== undefined ? details : this._current.details) || {};
    const id = typeof wire.transaction_hash === "string" && wire.transaction_hash ? wire.transaction_hash : null;
    // the router names the publisher of a browser's publication; Django's events have none
    const publisher = typeof wire.publisher_authid === "string"
      ? { authid: wire.publisher_authid, authrole: wire.publisher_authrole || null } : null;
    this._hand(sub, { id, topic: (details && details.topic) || sub.topic, args, kwargs, publisher });
  }

  _hand(sub, event) {
    if (!this.dedupe.accept(sub.key, event.id)) return;
    try {
      sub.handler(event.args[0], event);
    } catch (error) {
      this.emit("error", error);
    }
  }

  /**
   * After a reconnect: ask djwamp.history for what this topic missed since the last event id
   * we saw, hand it over (duplicates dropped), and emit "gap" when that cannot be complete
   * (the topic keeps no history, too much was missed, or we may not ask).
   */
  async _resume(session, sub) {
    const since = this.dedupe.lastId(sub.key);
    if (since === null) return; // nothing seen yet, nothing to resume from
    let complete = !sub.match; // a pattern subscription has no single history
    let cursor = since;
    try {
      let more = complete;
      for (let page = 0; complete && more && page < 20; page += 1) {
        const result = await session.call(HISTORY, [sub.topic], { since: cursor, limit: 100 });
        for (const event of result.events) {
          this._hand(sub, { id: event.id, topic: sub.topic, args: event.args, kwargs: event.kwargs, publisher: null,
                            replayed: true });
          cursor = event.id;
        }
        complete = complete && result.complete;
        more = result.more && result.events.length > 0;
      }
      if (more) complete = false; // more than 2,000 missed: the page should reload instead
    } catch (error) {
      complete = false;
    }
    if (!complete && this.session === session) this.emit("gap", { topic: sub.topic, since });
  }

  async _unsubscribe(sub) {
    this.subscriptions.delete(sub);
    if (sub.wamp && this.session) {
      const wamp = sub.wamp;
      sub.wamp = null;
      await this.session.unsubscribe(wamp).catch(() => undefined);
    }
  }

  /**
   * The latest events of a topic that keeps a history (REALTIME["HISTORY"]), oldest first, as
   * {id, topic, args, kwargs} -- e.g. to fill a page when it loads. `since` (an event id) asks
   * only for newer ones. The same permission as subscribing applies.
   */
  async history(topic, { since = null, limit = 50 } = {}) {
    const result = await this.callKw(HISTORY, [topic], { since, limit });
    return result.events.map((event) => ({ ...event, topic }));
  }

  // -- RPC ----------------------------------------------------------------------------------

  /** Call a Python procedure: resolves with its result, rejects with a RealtimeError. */
  call(procedure, ...args) {
    return this.callKw(procedure, args, {});
  }

  async callKw(procedure, args = [], kwargs = {}) {
    const session = await this.whenConnected();
    try {
      const result = await session.call(procedure, args, kwargs);
      if (result instanceof this.autobahn.Result) {
        return Object.keys(result.kwargs).length ? { args: result.args, kwargs: result.kwargs } : result.args;
      }
      return result;
    } catch (error) {
      throw toRealtimeError(error);
    }
  }
}

/**
 * autobahn-js builds its event details without WAMP's `transaction_hash`, where the router
 * puts the djwamp event id. Wrap the session's EVENT handler to keep the raw details while
 * the subscription handlers run. A test (test/hook.test.js) fails if autobahn-js changes.
 */
export function hookEventDetails(session, current) {
  const map = session._MESSAGE_MAP;
  const original = map && map[WAMP_EVENT];
  if (typeof original !== "function") {
    throw new Error("djwamp: this autobahn-js has no EVENT handler to hook; event ids are unavailable");
  }
  if (original.djwampHooked) return;
  const hooked = function (msg) {
    current.details = (msg && msg[3]) || {};
    try {
      return original.call(this, msg);
    } finally {
      current.details = null;
    }
  };
  hooked.djwampHooked = true;
  map[WAMP_EVENT] = hooked;
}
