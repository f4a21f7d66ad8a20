// The one place djwamp relies on autobahn-js internals: reading the EVENT message's details
// (transaction_hash carries the djwamp event id). This runs the real autobahn-js session
// code, so an autobahn-js upgrade that moves things fails here, not in users' browsers.

import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { test } from "node:test";

import { hookEventDetails } from "../src/client.js";

const require = createRequire(import.meta.url);
const autobahn = require("autobahn-browser");

const WELCOME = 2, SUBSCRIBE = 32, SUBSCRIBED = 33, EVENT = 36;

function fakeSocket() {
  return { info: { type: "fake", url: null, protocol: "wamp.2.json" }, sent: [], send(msg) { this.sent.push(msg); },
           close() {} };
}

test("a subscription handler can read the event id from the hooked EVENT details", async () => {
  const socket = fakeSocket();
  const session = new autobahn.Session(socket, () => {
    let resolve, reject;
    const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
    return { promise, resolve, reject };
  }, null);
  session.join("djwamp");
  socket.onmessage([WELCOME, 4242, { roles: { broker: { features: {} } }, authrole: "anonymous", authid: "a" }]);

  const current = { details: null };
  hookEventDetails(session, current);
  hookEventDetails(session, current); // idempotent

  const seen = [];
  const subscribed = session.subscribe("public.feed", (args, kwargs) => {
    seen.push({ args, kwargs, id: current.details && current.details.transaction_hash });
  });
  const request = socket.sent.find((m) => m[0] === SUBSCRIBE);
  socket.onmessage([SUBSCRIBED, request[1], 777]);
  await subscribed;

  socket.onmessage([EVENT, 777, 1, { transaction_hash: "1700000000000-0" }, [{ text: "hi" }], { n: 1 }]);
  assert.deepEqual(seen, [{ args: [{ text: "hi" }], kwargs: { n: 1 }, id: "1700000000000-0" }]);
  assert.equal(current.details, null, "details are only visible while handlers run");
});

test("an autobahn-js without the EVENT handler is reported, not silently ignored", () => {
  assert.throws(() => hookEventDetails({ _MESSAGE_MAP: {} }, {}), /no EVENT handler/);
});
