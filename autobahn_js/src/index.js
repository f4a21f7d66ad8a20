// djwamp's browser client. The bundle exposes these as the global `djwamp`.

import { defaultUrl, Realtime } from "./client.js";

export { Realtime, defaultUrl } from "./client.js";
export { RealtimeError } from "./errors.js";

/**
 * Connect with the page's configuration (the JSON that {% realtime_client %} renders into
 * <script id="djwamp-config">), overridden by `options`. Returns an open Realtime.
 */
export function connect(options = {}) {
  const element = typeof document !== "undefined" && document.getElementById("djwamp-config");
  const pageConfig = element ? JSON.parse(element.textContent) : {};
  const config = { ...pageConfig, ...options };
  if (!config.url && typeof location !== "undefined") config.url = defaultUrl(location, config.path);
  const realtime = new Realtime(config);
  if (typeof document !== "undefined" && config.stateAttribute !== false) {
    // <body data-realtime-state="connected"> for CSS and tests
    realtime.on("state", (state) => document.body && document.body.setAttribute("data-realtime-state", state));
  }
  return realtime.open();
}
