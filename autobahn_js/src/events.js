// A minimal event emitter (the page listens to "state", "revoked", "gap", "error").

export class Emitter {
  constructor() {
    this.listeners = new Map();
  }

  on(name, fn) {
    if (typeof fn !== "function") throw new TypeError(`on("${name}", fn): fn must be a function`);
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name).add(fn);
    return () => this.listeners.get(name)?.delete(fn);
  }

  emit(name, ...args) {
    for (const fn of [...(this.listeners.get(name) || [])]) {
      try {
        fn(...args);
      } catch (error) {
        if (name !== "error") this.emit("error", error);
        else setTimeout(() => { throw error; });
      }
    }
  }
}
