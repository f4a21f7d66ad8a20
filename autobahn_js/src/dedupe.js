// Event ids are Redis stream ids ("<ms>-<seq>"): totally ordered per stream, so "seen" is
// "not newer than the newest id delivered on this topic" plus a small window for the
// out-of-order arrivals that at-least-once delivery allows.

export function compareIds(a, b) {
  const [am, as] = a.split("-").map(Number);
  const [bm, bs] = b.split("-").map(Number);
  return am - bm || as - bs;
}

export function isEventId(value) {
  return typeof value === "string" && /^\d+-\d+$/.test(value);
}

export class Deduplicator {
  constructor({ window = 1000 } = {}) {
    this.window = window;
    this.seen = new Map(); // topic -> { ids: Set, order: [] , last: id }
  }

  /** True the first time an id is offered for a topic; false for a repeat. Ids-less events pass. */
  accept(topic, id) {
    if (!isEventId(id)) return true;
    let entry = this.seen.get(topic);
    if (!entry) {
      entry = { ids: new Set(), order: [], last: null };
      this.seen.set(topic, entry);
    }
    if (entry.ids.has(id)) return false;
    entry.ids.add(id);
    entry.order.push(id);
    if (entry.order.length > this.window) entry.ids.delete(entry.order.shift());
    if (entry.last === null || compareIds(id, entry.last) > 0) entry.last = id;
    return true;
  }

  /** The newest id delivered on a topic, for asking what was missed after a reconnect. */
  lastId(topic) {
    return this.seen.get(topic)?.last ?? null;
  }
}
