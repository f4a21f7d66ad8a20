// Errors a page sees, each carrying the WAMP error URI (docs/ref/errors.md).

export class RealtimeError extends Error {
  constructor(uri, message, { args = [], kwargs = {} } = {}) {
    super(message || uri);
    this.name = "RealtimeError";
    this.uri = uri;
    this.args = args;
    this.kwargs = kwargs;
  }
}

/** An autobahn-js call error (autobahn.Error) or anything else, as a RealtimeError. */
export function toRealtimeError(error) {
  if (error instanceof RealtimeError) return error;
  if (error && typeof error.error === "string") {
    const message = (error.args && typeof error.args[0] === "string" && error.args[0]) || error.error;
    return new RealtimeError(error.error, message, { args: error.args || [], kwargs: error.kwargs || {} });
  }
  return new RealtimeError("djwamp.error.client", String((error && error.message) || error));
}

/** Close reasons after which reconnecting with the same credentials makes no sense. */
export const REVOCATION_REASONS = new Set([
  "djwamp.close.logged_out",
  "djwamp.close.revoked",
  "djwamp.close.session_ended",
]);
