import assert from "node:assert/strict";
import { test } from "node:test";

import { Backoff } from "../src/backoff.js";

test("delays grow exponentially up to the maximum", () => {
  const backoff = new Backoff({ initial: 0.5, maximum: 4, factor: 2, jitter: 0, random: () => 0.5 });
  assert.deepEqual(Array.from({ length: 6 }, () => backoff.next()), [0.5, 1, 2, 4, 4, 4]);
});

test("jitter only shortens a delay, by at most the jitter fraction", () => {
  const longest = new Backoff({ initial: 1, jitter: 0.5, random: () => 0 });
  const shortest = new Backoff({ initial: 1, jitter: 0.5, random: () => 0.999999 });
  assert.equal(longest.next(), 1);
  assert.ok(Math.abs(shortest.next() - 0.5) < 1e-5);
});

test("reset starts over", () => {
  const backoff = new Backoff({ initial: 1, jitter: 0 });
  backoff.next();
  backoff.next();
  backoff.reset();
  assert.equal(backoff.next(), 1);
});

test("nonsense settings are refused", () => {
  assert.throws(() => new Backoff({ initial: 0 }), RangeError);
  assert.throws(() => new Backoff({ initial: 5, maximum: 1 }), RangeError);
  assert.throws(() => new Backoff({ jitter: 2 }), RangeError);
});
