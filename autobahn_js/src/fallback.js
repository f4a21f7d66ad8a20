// The transport for browsers (or networks) without WebSocket: Server-Sent Events for events,
// POST for everything else, against the node's gateway at /rt/ (router/gateway.py). It looks
// like autobahn-js's Connection and Session to the client, for the few calls the client makes.
// On the page's own origin the gateway authenticates with the session cookie; a page on another
// origin passes `ticket` (a function returning a fresh ticket) and talks to it with CORS.

/** The gateway next to a WebSocket URL: ws(s)://host/ws -> http(s)://host/rt/ */
export function fallbackUrlFor(wsUrl) {
  return wsUrl.replace(/^ws(s?):/, "http$1:").replace(/\/ws\/?$/, "/rt/");
}

export class FallbackConnection {
  constructor({ base = "/rt/", fetch, EventSource, ticket = null } = {}) {
    this.base = base;
    this.fetch = fetch;
    this.EventSource = EventSource;
    this.ticket = ticket;
    this.source = null;
    this.done = false;
  }

  open() {
    const opening = this.ticket
      ? Promise.resolve().then(this.ticket).then((ticket) => this.post("open", { ticket }))
      : this.post("open", {});
    opening.then(({ status, body }) => {
      if (this.done) return;
      if (status !== 200 || body.error) {
        this._closed(status === 0 ? "unreachable" : "closed", { reason: body.error, message: body.message });
        return;
      }
      const session = new FallbackSession(this, body.sid);
      let opened = false;
      const source = new this.EventSource(`${this.base}events?sid=${encodeURIComponent(body.sid)}`);
      this.source = source;
      source.onopen = () => {
        if (opened) return;
        opened = true;
        this.onopen(session, { authid: body.authid, authrole: body.authrole, authextra: body.authextra });
      };
      source.onmessage = (message) => session._event(JSON.parse(message.data), message.lastEventId);
      source.addEventListener("close", (message) => this._closed("closed", JSON.parse(message.data)));
      // EventSource would reconnect by itself, to a session that may be gone: we decide instead
      source.onerror = () => this._closed(opened ? "lost" : "unreachable", { reason: "djwamp.error.unavailable" });
    }, () => this._closed("unreachable", { reason: "djwamp.error.unavailable" }));
  }

  close() {
    this._closed("closed", { reason: "wamp.close.normal" });
  }

  _closed(reason, details) {
    if (this.done) return;
    this.done = true;
    if (this.source) this.source.close();
    if (this.onclose) this.onclose(reason, details || {});
  }

  async post(path, body) {
    try {
      const response = await this.fetch(this.base + path, {
        method: "POST",
        credentials: "same-origin", // cookies only on the page's own origin, never with CORS
        headers: { "Content-Type": "application/json", "X-Requested-With": "djwamp" },
        body: JSON.stringify(body),
      });
      return { status: response.status, body: await response.json().catch(() => ({})) };
    } catch (error) {
      return { status: 0, body: { error: "djwamp.error.unavailable", message: String(error) } };
    }
  }
}

export class FallbackSession {
  constructor(connection, sid) {
    this.connection = connection;
    this.sid = sid;
    this.handlers = new Map();
    this.djwampFallback = true;
  }

  async _request(path, body) {
    const { body: reply } = await this.connection.post(path, { sid: this.sid, ...body });
    if (reply.error) {
      const message = reply.message ? [reply.message] : [];
      throw { error: reply.error, args: reply.args || message, kwargs: reply.kwargs || {} };
    }
    return reply;
  }

  async subscribe(topic, handler, options = {}) {
    await this._request("subscribe", { topic, match: options.match });
    this.handlers.set(topic, handler);
    return { topic };
  }

  async unsubscribe(subscription) {
    this.handlers.delete(subscription.topic);
    await this._request("unsubscribe", { topic: subscription.topic });
  }

  async call(procedure, args = [], kwargs = {}) {
    return (await this._request("call", { procedure, args, kwargs })).result;
  }

  _event(data, lastEventId) {
    const handler = this.handlers.get(data.subscription);
    const publisher = data.publisher || {};
    if (handler) {
      handler(data.args || [], data.kwargs || {}, { topic: data.topic, transaction_hash: lastEventId || null,
                                                    publisher_authid: publisher.authid, publisher_authrole: publisher.authrole });
    }
  }
}
