// The client's own logic against a stand-in for autobahn-js: reconnect with backoff,
// subscribe again, drop duplicates, stop on revocation, typed call errors.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Realtime } from "../src/client.js";
import { RealtimeError } from "../src/errors.js";

class FakeSession {
  constructor() {
    this.handlers = new Map();
    this.calls = [];
    this.refuse = new Set();
    // every subscription of a topic gets the event, as the router sends one EVENT per subscription
    this._MESSAGE_MAP = {
      36: (msg) => (this.handlers.get(msg[1]) || []).forEach((h) => h(msg[4] || [], msg[5] || {}, { topic: null })),
    };
  }

  subscribe(topic, handler) {
    if (this.refuse.has(topic)) return Promise.reject({ error: "wamp.error.not_authorized", args: [], kwargs: {} });
    this.handlers.set(topic, [...(this.handlers.get(topic) || []), handler]);
    return Promise.resolve({ topic });
  }

  unsubscribe() { return Promise.resolve(); }

  call(procedure, args, kwargs) {
    this.calls.push([procedure, args, kwargs]);
    if (procedure === "djwamp.history") {
      if (!this.history) return Promise.reject({ error: "djwamp.error.no_history", args: [], kwargs: {} });
      return Promise.resolve(this.history(args[0], kwargs.since));
    }
    if (procedure === "fails") {
      return Promise.reject({ error: "djwamp.error.invalid_argument", args: ["bad room"], kwargs: { messages: ["x"] } });
    }
    return Promise.resolve(args[0]);
  }

  event(topic, id, ...args) { this._MESSAGE_MAP[36]([36, topic, 1, { transaction_hash: id }, args, {}]); }

  browserEvent(topic, authid, ...args) {
    this._MESSAGE_MAP[36]([36, topic, 1, { publisher: 99, publisher_authid: authid, publisher_authrole: "user" }, args, {}]);
  }
}

function harness() {
  const timers = [];
  const connections = [];
  class Connection {
    constructor(options) { this.options = options; connections.push(this); }
    open() {}
    close() { this.onclose("closed", { reason: "wamp.close.normal" }); }
  }
  const env = {
    autobahn: { Connection, Result: class {} },
    setTimeout: (fn, ms) => { timers.push({ fn, ms }); return timers.length; },
    clearTimeout: () => {},
    fetch: async () => ({ ok: true, json: async () => ({ ticket: "T" }) }),
  };
  const rt = new Realtime({ url: "ws://x/ws", realm: "djwamp", backoff: { initial: 1, jitter: 0 } }, env);
  const states = [];
  rt.on("state", (s) => states.push(s));
  const up = async () => {
    const session = new FakeSession();
    connections.at(-1).onopen(session, { authrole: "anonymous" });
    await new Promise((r) => setImmediate(r));
    return session;
  };
  const drop = (reason = "wamp.close.transport_lost") => connections.at(-1).onclose("lost", { reason });
  return { rt, env, timers, connections, states, up, drop };
}

/** Connected, subscribed to public.feed, saw event 5-0, then lost and regained the router,
 * whose history answers with `history(topic, since)`. Returns the new session and the gaps. */
async function reconnectedWithHistory(history, handler = () => {}) {
  const h = harness();
  h.rt.open();
  const session = await h.up();
  await h.rt.subscribe("public.feed", handler);
  session.event("public.feed", "5-0", "a");
  const gaps = [];
  h.rt.on("gap", (gap) => gaps.push(gap));
  h.drop();
  h.timers.at(-1).fn();
  const next = new FakeSession();
  next.history = history;
  h.connections.at(-1).onopen(next, {});
  for (let i = 0; i < 30; i += 1) await new Promise((r) => setImmediate(r));
  return { next, gaps };
}

test("connects, subscribes, and hands the handler the data and the event id", async () => {
  const h = harness();
  h.rt.open();
  const session = await h.up();
  const got = [];
  await h.rt.subscribe("public.feed", (data, event) => got.push([data, event.id]));
  session.event("public.feed", "1-0", { text: "hi" });
  assert.deepEqual(got, [[{ text: "hi" }, "1-0"]]);
  assert.deepEqual(h.states, ["connecting", "connected"]);
  assert.deepEqual(h.connections[0].options.authmethods, ["anonymous"]);
});

test("reconnects with growing delays, subscribes again and reports the gap it cannot fill", async () => {
  const h = harness();
  h.rt.open();
  let session = await h.up();
  const got = [];
  await h.rt.subscribe("public.feed", (data) => got.push(data));
  session.event("public.feed", "5-0", "a");
  const gaps = [];
  h.rt.on("gap", (gap) => gaps.push(gap));

  h.drop();
  assert.equal(h.rt.state, "reconnecting");
  assert.equal(h.timers.at(-1).ms, 1000);
  h.timers.at(-1).fn();                   // attempt 2 fails too
  h.drop();
  assert.equal(h.timers.at(-1).ms, 2000);
  h.timers.at(-1).fn();
  session = await h.up();
  assert.equal(h.rt.state, "connected");
  assert.deepEqual(gaps, [{ topic: "public.feed", since: "5-0" }]);

  session.event("public.feed", "5-0", "a");  // redelivered: dropped
  session.event("public.feed", "6-0", "b");
  assert.deepEqual(got, ["a", "b"]);
  h.drop();
  assert.equal(h.timers.at(-1).ms, 1000, "a successful connection resets the backoff");
});

test("a node that is still starting (djwamp.error.unavailable) is tried again with backoff", async () => {
  // the authenticator answers this while the node's components start, or when it cannot check
  const h = harness();
  const disconnected = [];
  h.rt.on("disconnected", (d) => disconnected.push(d.reason));
  h.rt.open();
  h.connections.at(-1).onclose("closed", { reason: "djwamp.error.unavailable", message: "the node is starting, try again" });
  assert.equal(h.rt.state, "reconnecting");
  assert.deepEqual(disconnected, ["djwamp.error.unavailable"]);
  assert.equal(h.timers.at(-1).ms, 1000);
  h.timers.at(-1).fn();
  await h.up();
  assert.equal(h.rt.state, "connected");
});

test("a join refused for a limit (djwamp.error.rate_limited) is tried again with backoff, not signed out", async () => {
  // the authenticator answers this when the address holds too many sessions or failed too often
  const h = harness();
  const disconnected = [];
  const revoked = [];
  h.rt.on("disconnected", (d) => disconnected.push([d.reason, d.message]));
  h.rt.on("revoked", (r) => revoked.push(r.reason));
  h.rt.open();
  const message = "too many failed sign-ins from this address, try again later";
  h.connections.at(-1).onclose("closed", { reason: "djwamp.error.rate_limited", message });
  assert.equal(h.rt.state, "reconnecting");
  assert.deepEqual(disconnected, [["djwamp.error.rate_limited", message]]);
  assert.deepEqual(revoked, []);
  assert.equal(h.timers.at(-1).ms, 1000);
  h.timers.at(-1).fn();
  h.connections.at(-1).onclose("closed", { reason: "djwamp.error.rate_limited", message });
  assert.equal(h.timers.at(-1).ms, 2000, "each refusal waits longer");
  h.timers.at(-1).fn();
  await h.up();
  assert.equal(h.rt.state, "connected");
});

test("a revoked session goes offline instead of reconnecting", async () => {
  const h = harness();
  const revoked = [];
  h.rt.on("revoked", (r) => revoked.push(r.reason));
  h.rt.open();
  await h.up();
  const timersBefore = h.timers.length;
  h.drop("djwamp.close.logged_out");
  assert.equal(h.rt.state, "offline");
  assert.deepEqual(revoked, ["djwamp.close.logged_out"]);
  assert.equal(h.timers.length, timersBefore);
});

test("a refused subscription rejects with the WAMP error URI and is forgotten", async () => {
  const h = harness();
  h.rt.open();
  const session = await h.up();
  session.refuse.add("user.2.inbox");
  await assert.rejects(h.rt.subscribe("user.2.inbox", () => {}),
    (e) => e instanceof RealtimeError && e.uri === "wamp.error.not_authorized");
  assert.equal(h.rt.subscriptions.size, 0);
});

test("call resolves with the result and rejects with a typed error", async () => {
  const h = harness();
  h.rt.open();
  await h.up();
  assert.equal(await h.rt.call("echo", 42), 42);
  await assert.rejects(h.rt.call("fails"), (e) => e.uri === "djwamp.error.invalid_argument"
    && e.message === "bad room" && e.kwargs.messages[0] === "x");
});

test("a call while offline fails at once with djwamp.error.offline", async () => {
  const h = harness();
  await assert.rejects(h.rt.call("echo", 1), (e) => e.uri === "djwamp.error.offline");
});

test("ticket auth fetches a fresh ticket for each attempt", async () => {
  const h = harness();
  const rt = new Realtime({ url: "ws://x/ws", realm: "djwamp", auth: "ticket", ticketUrl: "/realtime/ticket/" }, h.env);
  rt.open();
  const connection = h.connections.at(-1);
  assert.deepEqual(connection.options.authmethods, ["ticket"]);
  assert.equal(await connection.options.onchallenge(null, "ticket"), "T");
});

test("bad configuration is refused at once", () => {
  assert.throws(() => new Realtime({ realm: "x" }), TypeError);
  assert.throws(() => new Realtime({ url: "ws://x", realm: "x", auth: "password" }), TypeError);
});


test("after a reconnect, what was missed comes from the history, once, and no gap is reported", async () => {
  const got = [];
  const { next, gaps } = await reconnectedWithHistory((topic, since) => ({
    events: [{ id: "5-0", args: ["a"], kwargs: {} }, { id: "6-0", args: ["b"], kwargs: {} }],
    complete: since === "5-0", more: false,
  }), (data, event) => got.push([data, event.replayed || false]));
  assert.deepEqual(got, [["a", false], ["b", true]]);
  assert.deepEqual(gaps, []);
  assert.deepEqual(next.calls[0], ["djwamp.history", ["public.feed"], { since: "5-0", limit: 100 }]);
});

test("a history that cannot be complete is reported as a gap", async () => {
  const { gaps } = await reconnectedWithHistory(() => ({
    events: [{ id: "9-0", args: ["z"], kwargs: {} }], complete: false, more: false }));
  assert.deepEqual(gaps, [{ topic: "public.feed", since: "5-0" }]);
});

test("history() returns a topic's latest events for filling a page", async () => {
  const h = harness();
  h.rt.open();
  const session = await h.up();
  session.history = () => ({ events: [{ id: "1-0", args: ["a"], kwargs: {} }], complete: true, more: false });
  const events = await h.rt.history("public.chat.lobby", { limit: 10 });
  assert.deepEqual(events, [{ id: "1-0", args: ["a"], kwargs: {}, topic: "public.chat.lobby" }]);
  assert.deepEqual(session.calls.at(-1), ["djwamp.history", ["public.chat.lobby"], { since: null, limit: 10 }]);
});


test("two subscriptions to one topic both receive every event", async () => {
  const h = harness();
  h.rt.open();
  const session = await h.up();
  const first = [], second = [];
  await h.rt.subscribe("public.feed", (d) => first.push(d));
  await h.rt.subscribe("public.feed", (d) => second.push(d));
  session.event("public.feed", "1-0", "a");
  session.event("public.feed", "1-0", "a"); // a redelivery: dropped by both
  assert.deepEqual([first, second], [["a"], ["a"]]);
});

test("a subscription made while the session is opening is sent, not lost", async () => {
  const h = harness();
  h.rt.open();
  const session = new FakeSession();
  h.connections.at(-1).onopen(session, {});   // opened; renewals still running
  assert.notEqual(h.rt.state, "connected");
  await h.rt.subscribe("public.late", () => {});
  assert.ok(session.handlers.has("public.late"));
});

test("a resume that would need more than 20 pages is reported as a gap", async () => {
  let n = 10;
  const { next, gaps } = await reconnectedWithHistory(() => ({
    events: [{ id: `${(n += 1)}-0`, args: [n], kwargs: {} }], complete: true, more: true }));
  assert.equal(next.calls.filter(([p]) => p === "djwamp.history").length, 20);
  assert.deepEqual(gaps, [{ topic: "public.feed", since: "5-0" }]);
});

test("an event says who published it: null for Django's, the user for a browser's", async () => {
  const h = harness();
  h.rt.open();
  const session = await h.up();
  const got = [];
  await h.rt.subscribe("public.chat.lobby", (data, event) => got.push([data, event.publisher]));
  session.event("public.chat.lobby", "1-0", "from django");
  session.browserEvent("public.chat.lobby", "7", "from a browser");
  assert.deepEqual(got, [["from django", null], ["from a browser", { authid: "7", authrole: "user" }]]);
});
