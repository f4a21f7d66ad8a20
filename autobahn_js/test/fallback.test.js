// The SSE/POST fallback, against stand-ins for fetch and EventSource.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Realtime } from "../src/client.js";

function gateway() {
  const posts = [];
  const sources = [];
  class FakeEventSource {
    constructor(url) { this.url = url; this.listeners = {}; sources.push(this); }
    addEventListener(name, fn) { this.listeners[name] = fn; }
    close() { this.closed = true; }
  }
  const replies = {
    open: { sid: "S1", authid: "7", authrole: "user", authextra: {} },
    subscribe: {},
    call: { result: 42 },
  };
  const fetch = async (url, init) => {
    const path = url.split("/").pop();
    posts.push([path, JSON.parse(init.body), init.headers["X-Requested-With"]]);
    const body = typeof replies[path] === "function" ? replies[path]() : replies[path];
    return { status: body.error ? 403 : 200, json: async () => body };
  };
  const timers = [];
  const env = { fetch, EventSource: FakeEventSource, WebSocket: undefined,
                setTimeout: (fn, ms) => { timers.push({ fn, ms }); return timers.length; }, clearTimeout: () => {} };
  return { env, posts, sources, replies, timers };
}

const tick = () => new Promise((r) => setImmediate(r));

test("without WebSocket the client uses the gateway: events carry their ids, calls work", async () => {
  const g = gateway();
  const rt = new Realtime({ url: "ws://x/ws", realm: "djwamp" }, g.env);
  rt.open();
  await tick();
  assert.equal(g.sources[0].url, "http://x/rt/events?sid=S1");
  g.sources[0].onopen();
  await tick();
  assert.equal(rt.state, "connected");
  assert.equal(rt.transport, "fallback");
  assert.equal(rt.details.authid, "7");

  const got = [];
  await rt.subscribe("user.7.inbox", (data, event) => got.push([data, event.id]));
  g.sources[0].onmessage({ data: JSON.stringify({ subscription: "user.7.inbox", topic: "user.7.inbox",
                                                  args: [{ text: "hi" }], kwargs: {} }), lastEventId: "9-0" });
  assert.deepEqual(got, [[{ text: "hi" }, "9-0"]]);
  const from = [];
  await rt.subscribe("public.chat.lobby", (data, event) => from.push([data, event.publisher]));
  for (const publisher of [null, { authid: "8", authrole: "user" }]) {
    g.sources[0].onmessage({ data: JSON.stringify({ subscription: "public.chat.lobby", topic: "public.chat.lobby",
                                                    args: ["x"], kwargs: {}, publisher }), lastEventId: "" });
  }
  assert.deepEqual(from, [["x", null], ["x", { authid: "8", authrole: "user" }]]);
  assert.equal(await rt.call("demo.add", 40, 2), 42);
  assert.ok(g.posts.every(([, body, header]) => header === "djwamp" && (body.sid === "S1" || !body.sid)));
});

test("a refused subscription over the fallback rejects with the router's URI", async () => {
  const g = gateway();
  g.replies.subscribe = { error: "wamp.error.not_authorized", message: "not authorized" };
  const rt = new Realtime({ url: "ws://x/ws", realm: "djwamp", transport: "fallback" }, g.env);
  rt.open();
  await tick();
  g.sources[0].onopen();
  await tick();
  await assert.rejects(rt.subscribe("user.8.inbox", () => {}), (e) => e.uri === "wamp.error.not_authorized");
});

test("a revocation arriving on the event stream takes the client offline", async () => {
  const g = gateway();
  const rt = new Realtime({ url: "ws://x/ws", realm: "djwamp" }, g.env);
  const revoked = [];
  rt.on("revoked", (r) => revoked.push(r.reason));
  rt.open();
  await tick();
  g.sources[0].onopen();
  await tick();
  g.sources[0].listeners.close({ data: JSON.stringify({ reason: "djwamp.close.logged_out", message: "" }) });
  assert.equal(rt.state, "offline");
  assert.deepEqual(revoked, ["djwamp.close.logged_out"]);
  assert.ok(g.sources[0].closed);
});

test("a lost stream reconnects with a new gateway session", async () => {
  const g = gateway();
  const rt = new Realtime({ url: "ws://x/ws", realm: "djwamp", backoff: { initial: 1, jitter: 0 } }, g.env);
  rt.open();
  await tick();
  g.sources[0].onopen();
  await tick();
  g.sources[0].onerror();
  assert.equal(rt.state, "reconnecting");
  g.timers.at(-1).fn();
  await tick();
  assert.equal(g.sources.length, 2);
});

test("a 429 from the gateway's open is tried again with backoff, not taken as signed out", async () => {
  const g = gateway();
  const answers = [
    { status: 429, body: { error: "djwamp.error.rate_limited", message: "too many sessions for this browser" } },
    { status: 429, body: null }, // a proxy's own 429, with no JSON
  ];
  const env = { ...g.env, fetch: async (url, init) => {
    const answer = url.endsWith("/open") && answers.shift();
    if (!answer) return g.env.fetch(url, init);
    return { status: answer.status, json: async () => { if (!answer.body) throw new SyntaxError("not JSON"); return answer.body; } };
  } };
  const rt = new Realtime({ url: "ws://x/ws", realm: "djwamp", backoff: { initial: 1, jitter: 0 } }, env);
  const disconnected = [];
  const revoked = [];
  rt.on("disconnected", (d) => disconnected.push(d.reason));
  rt.on("revoked", (r) => revoked.push(r.reason));
  rt.open();
  await tick();
  assert.equal(rt.state, "reconnecting");
  assert.equal(g.timers.at(-1).ms, 1000);
  g.timers.at(-1).fn();
  await tick();
  assert.equal(g.timers.at(-1).ms, 2000);
  g.timers.at(-1).fn();
  await tick();
  g.sources[0].onopen();
  await tick();
  assert.equal(rt.state, "connected");
  assert.deepEqual(disconnected, ["djwamp.error.rate_limited", "closed"]);
  assert.deepEqual(revoked, []);
});

test("after two WebSocket attempts that never got through, the client switches to the fallback", async () => {
  const g = gateway();
  const connections = [];
  class Connection {
    constructor(options) { this.options = options; connections.push(this); }
    open() {}
  }
  const env = { ...g.env, WebSocket: function WebSocket() {}, autobahn: { Connection, Result: class {} } };
  const rt = new Realtime({ url: "ws://x/ws", realm: "djwamp", backoff: { initial: 1, jitter: 0 } }, env);
  rt.open();
  connections[0].onclose("unreachable", {});
  g.timers.at(-1).fn();
  connections[1].onclose("unreachable", {});
  g.timers.at(-1).fn();
  await tick();
  assert.equal(connections.length, 2);
  assert.equal(g.sources.length, 1, "the third attempt goes through the gateway");
});


test("a ticket page opens the gateway with a fresh ticket, next to its WebSocket URL", async () => {
  const g = gateway();
  const env = { ...g.env, fetch: async (url, init) => {
    if (url.endsWith("/realtime/ticket/")) return { ok: true, json: async () => ({ ticket: "T-1" }) };
    return g.env.fetch(url, init);
  } };
  const rt = new Realtime({ url: "wss://rt.example.com/ws", realm: "djwamp", auth: "ticket",
                            ticketUrl: "https://www.example.com/realtime/ticket/" }, env);
  rt.open();
  await tick();
  await tick();
  assert.deepEqual(g.posts[0].slice(0, 2), ["open", { ticket: "T-1" }]);
  assert.equal(g.sources[0].url, "https://rt.example.com/rt/events?sid=S1");
});
