// Reconnect delays: exponential with full control of jitter, so that a thousand tabs
// losing the router at the same moment do not all come back in the same second.

export class Backoff {
  constructor({ initial = 0.5, maximum = 30, factor = 2, jitter = 0.5, random = Math.random } = {}) {
    if (!(initial > 0) || !(maximum >= initial) || !(factor >= 1) || !(jitter >= 0 && jitter <= 1)) {
      throw new RangeError("backoff: need 0 < initial <= maximum, factor >= 1, 0 <= jitter <= 1");
    }
    Object.assign(this, { initial, maximum, factor, jitter, random });
    this.attempt = 0;
  }

  /** Seconds to wait before the next attempt: base * (1 - jitter .. 1), base capped at maximum. */
  next() {
    const base = Math.min(this.maximum, this.initial * this.factor ** this.attempt);
    this.attempt += 1;
    return base * (1 - this.jitter * this.random());
  }

  reset() {
    this.attempt = 0;
  }
}
