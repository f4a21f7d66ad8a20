import assert from "node:assert/strict";
import { test } from "node:test";

import { compareIds, Deduplicator, isEventId } from "../src/dedupe.js";

test("event ids compare by milliseconds, then sequence", () => {
  assert.ok(compareIds("1700000000000-1", "1700000000000-0") > 0);
  assert.ok(compareIds("1700000000000-9", "1700000000001-0") < 0);
  assert.equal(compareIds("5-5", "5-5"), 0);
  assert.ok(compareIds("10-0", "9-0") > 0, "numeric, not string, order");
});

test("a repeated id is dropped, per topic", () => {
  const dedupe = new Deduplicator();
  assert.equal(dedupe.accept("a", "1-0"), true);
  assert.equal(dedupe.accept("a", "1-0"), false);
  assert.equal(dedupe.accept("b", "1-0"), true);
});

test("events without a djwamp id always pass", () => {
  const dedupe = new Deduplicator();
  assert.equal(dedupe.accept("a", null), true);
  assert.equal(dedupe.accept("a", null), true);
  assert.equal(dedupe.accept("a", "not-an-id"), true);
  assert.equal(isEventId("12-3"), true);
});

test("the newest id per topic is kept for resuming, whatever the arrival order", () => {
  const dedupe = new Deduplicator();
  dedupe.accept("a", "3-0");
  dedupe.accept("a", "2-0"); // a redelivery after a bridge restart can arrive late
  assert.equal(dedupe.lastId("a"), "3-0");
  assert.equal(dedupe.lastId("b"), null);
});

test("memory stays bounded by the window", () => {
  const dedupe = new Deduplicator({ window: 3 });
  for (let i = 0; i < 10; i += 1) dedupe.accept("a", `${i}-0`);
  assert.equal(dedupe.seen.get("a").ids.size, 3);
  assert.equal(dedupe.accept("a", "9-0"), false);
});
