// The one load generator of `make bench`: N subscribers of one kind, and a WAMP publisher.
//
// Every row of the benchmark is measured by this same process (node.js, not the code under
// test), so the rows differ only in the stack behind the socket:
//
//   redis     RESP SUBSCRIBE on a raw TCP connection        (the floor)
//   wamp      WAMP-over-WebSocket, JSON serializer          (Crossbar alone, djwamp)
//   sse       djwamp's fallback: POST /rt/open, GET /rt/events (Server-Sent Events)
//   ws-json   a WebSocket that sends one JSON text per event  (Django Channels)
//   wamp-pub  one WAMP publisher (acknowledged, a window of publications in flight)
//
// Each event's payload is an object {n, t, pad}: n numbers the events 0..expected-1 (exact
// loss and duplicate counts per subscriber), t is the publisher's wall clock in seconds.
//
//   node bench/loadgen.mjs '{"kind": "wamp", "url": "ws://127.0.0.1:8080/ws", ...}'
//
// stdout: JSON lines {"event": "ready", ...} once every subscriber is subscribed, then
// {"event": "report", ...} when each has every event, or when timeout_s has passed, or on
// "report" from stdin. Loopback only: the bench starts every server it points this at.

import http from "node:http";
import net from "node:net";
import { performance } from "node:perf_hooks";
import readline from "node:readline";
import WebSocket from "ws";

const config = JSON.parse(process.argv[2]);
// CLOCK_MONOTONIC, the clock of Python's time.monotonic(): the publishers stamp events with it,
// and unlike the wall clock it cannot be stepped (an NTP step once gave negative latencies)
const now = () => Number(process.hrtime.bigint()) / 1e9;
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

class Subscriber {
  constructor(expected) {
    this.seen = new Uint8Array(Math.max(expected, 1));
    this.unique = 0;
    this.duplicates = 0;
    this.outOfRange = 0;
  }
}

const expected = config.expected ?? 0;
// several nodes: subscriber i connects to urls[i % urls.length]
const urls = config.urls ?? [config.url];
// several topics (wamp only): subscriber i follows topics[i % T]; event n is published on
// topics[n % T], so each subscriber expects the events n with n % T equal to its slot
const topics = config.topics ?? [config.topic];
if (topics.length > 1 && config.kind !== "wamp") throw new Error("topics: wamp subscribers only");
const subscribers = [];
let latencies = new Float64Array(1 << 16);
let samples = 0;
let firstRecv = null;
let lastRecv = null;
let complete = 0;
let reported = false;

function record(sub, payload) {
  const t = now();
  if (payload === null || typeof payload !== "object" || typeof payload.n !== "number") {
    sub.outOfRange += 1;
    return;
  }
  if (payload.n % topics.length !== sub.slot) {
    sub.outOfRange += 1;
    return;
  }
  const n = Math.floor(payload.n / topics.length);
  if (n < 0 || n >= sub.seen.length) {
    sub.outOfRange += 1;
    return;
  }
  if (sub.seen[n]) {
    sub.duplicates += 1;
    return;
  }
  sub.seen[n] = 1;
  sub.unique += 1;
  if (samples === latencies.length) {
    const grown = new Float64Array(latencies.length * 2);
    grown.set(latencies);
    latencies = grown;
  }
  latencies[samples++] = t - payload.t;
  if (firstRecv === null) firstRecv = t;
  lastRecv = t;
  if (sub.unique === expected) {
    complete += 1;
    if (complete === subscribers.length) report("complete");
  }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * p) - 1))] * 1000;
}

function report(why) {
  if (reported) return;
  reported = true;
  const sorted = latencies.slice(0, samples).sort();
  const perSub = subscribers.map((s) => s.unique);
  const cpu = process.cpuUsage();
  emit({
    event: "report",
    why,
    subscribers: subscribers.length,
    expected_per_subscriber: expected,
    delivered: perSub.reduce((a, b) => a + b, 0),
    lost: subscribers.reduce((a, s) => a + (expected - s.unique), 0),
    duplicates: subscribers.reduce((a, s) => a + s.duplicates, 0),
    malformed: subscribers.reduce((a, s) => a + s.outOfRange, 0),
    min_per_subscriber: perSub.length ? Math.min(...perSub) : 0,
    max_per_subscriber: perSub.length ? Math.max(...perSub) : 0,
    complete_subscribers: complete,
    latency_ms: {
      p50: percentile(sorted, 0.5),
      p95: percentile(sorted, 0.95),
      p99: percentile(sorted, 0.99),
      max: percentile(sorted, 1),
    },
    first_recv: firstRecv,
    last_recv: lastRecv,
    cpu_s: (cpu.user + cpu.system) / 1e6,
  });
  setTimeout(() => process.exit(0), 50);
}

// -- one connection per kind: resolves once subscribed ------------------------------------------

function redisSubscriber(sub) {
  const url = new URL(config.url);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(url.port), url.hostname);
    let buf = Buffer.alloc(0);
    let subscribed = false;
    sock.setNoDelay(true);
    sock.on("connect", () => {
      const ch = Buffer.from(config.topic);
      sock.write(`*2\r\n$9\r\nSUBSCRIBE\r\n$${ch.length}\r\n${config.topic}\r\n`);
    });
    sock.on("error", reject);
    sock.on("data", (chunk) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      for (;;) {
        const parsed = parseResp(buf, 0);
        if (parsed === null) break;
        buf = buf.subarray(parsed.end);
        const [kind, , body] = parsed.value;
        if (kind === "subscribe" && !subscribed) {
          subscribed = true;
          resolve();
        } else if (kind === "message") {
          record(sub, JSON.parse(body));
        }
      }
    });
  });
}

// The subset of RESP that SUBSCRIBE answers with: arrays of bulk strings and integers.
function parseResp(buf, start) {
  const eol = buf.indexOf("\r\n", start);
  if (eol < 0) return null;
  const type = String.fromCharCode(buf[start]);
  const head = buf.toString("latin1", start + 1, eol);
  if (type === "*") {
    const items = [];
    let pos = eol + 2;
    for (let i = 0; i < Number(head); i++) {
      const item = parseResp(buf, pos);
      if (item === null) return null;
      items.push(item.value);
      pos = item.end;
    }
    return { value: items, end: pos };
  }
  if (type === "$") {
    const len = Number(head);
    if (buf.length < eol + 2 + len + 2) return null;
    return { value: buf.toString("utf8", eol + 2, eol + 2 + len), end: eol + 2 + len + 2 };
  }
  if (type === ":" || type === "+") return { value: head, end: eol + 2 };
  throw new Error(`redis answered ${type}${head}`);
}

function wampSession(onMessage, roles, url = config.url) {
  return new Promise((resolve, reject) => {
    const headers = config.origin ? { origin: config.origin } : {};
    const ws = new WebSocket(url, ["wamp.2.json"], { headers, perMessageDeflate: false });
    ws.on("error", reject);
    ws.on("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.on("open", () => ws.send(JSON.stringify([1, config.realm, { roles, authmethods: ["anonymous"] }])));
    ws.on("close", (code) => reject(new Error(`closed ${code}`)));
    ws.on("message", (data) => {
      const msg = JSON.parse(data);
      if (msg[0] === 2) resolve(ws);
      else if (msg[0] === 3) reject(new Error(`ABORT ${msg[2]}`));
      else onMessage(msg);
    });
  });
}

async function wampSubscriber(sub) {
  let subscribed;
  const done = new Promise((resolve, reject) => (subscribed = { resolve, reject }));
  const ws = await wampSession((msg) => {
    if (msg[0] === 36) record(sub, msg[4][0]);
    else if (msg[0] === 33) subscribed.resolve();
    else if (msg[0] === 8) subscribed.reject(new Error(`ERROR ${msg[4]}`));
  }, { subscriber: {} }, urls[sub.index % urls.length]);
  ws.send(JSON.stringify([32, 1, {}, topics[sub.slot]]));
  return done;
}

function httpJson(path, body, cookie) {
  const url = new URL(path, config.url);
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: "POST",
      agent,
      headers: { origin: config.origin, "x-requested-with": "djwamp", "content-type": "application/json" },
    }, (res) => {
      let text = "";
      res.on("data", (c) => (text += c));
      res.on("end", () => (res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`${path}: ${res.statusCode} ${text}`))));
    });
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

async function sseSubscriber(sub) {
  const { sid } = await httpJson("open", {});
  await new Promise((resolve, reject) => {
    const req = http.get(new URL(`events?sid=${sid}`, config.url), { headers: { origin: config.origin } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`events: ${res.statusCode}`));
      res.setEncoding("utf8");
      let buf = "";
      res.on("data", (chunk) => {
        buf += chunk;
        let end;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          for (const line of block.split("\n")) {
            if (line.startsWith("data: ")) {
              const data = JSON.parse(line.slice(6));
              if (data.args) record(sub, data.args[0]);
            }
          }
        }
      });
      resolve();
    });
    req.on("error", reject);
  });
  await httpJson("subscribe", { sid, topic: config.topic });
}

function wsJsonSubscriber(sub) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(config.url, { perMessageDeflate: false });
    ws.on("error", reject);
    ws.on("message", (data) => {
      const msg = JSON.parse(data);
      if (msg.ready) resolve();
      else record(sub, msg);
    });
  });
}

// -- the WAMP publisher (the Crossbar-alone row) ------------------------------------------------

async function wampPublisher() {
  const pad = "x".repeat(config.pad ?? 150);
  let acked = 0;
  let inflight = 0;
  let wake = null;
  const ws = await wampSession((msg) => {
    if (msg[0] === 17) {
      acked += 1;
      inflight -= 1;
      if (wake) wake();
    } else if (msg[0] === 8) {
      throw new Error(`publish refused: ${msg[4]}`);
    }
  }, { publisher: {} });
  emit({ event: "ready", connected: 1, failed: 0 });
  const count = config.count;
  const rate = config.rate ?? 0; // events per second; 0: as fast as the window allows
  const window = config.window ?? 100;
  const start = now();
  for (let n = 0; n < count; n++) {
    if (rate) {
      const due = start + n / rate;
      const wait = due - now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait * 1000));
    }
    while (inflight >= window) await new Promise((r) => (wake = r));
    inflight += 1;
    ws.send(JSON.stringify([16, n + 1, { acknowledge: true }, config.topic, [{ n, t: now(), pad }]]));
  }
  while (inflight > 0) await new Promise((r) => (wake = r));
  emit({ event: "report", published: acked, seconds: now() - start, cpu_s: process.cpuUsage().user / 1e6 });
  ws.close();
  setTimeout(() => process.exit(0), 50);
}

// -- main ---------------------------------------------------------------------------------------

const CONNECT = { redis: redisSubscriber, wamp: wampSubscriber, sse: sseSubscriber, "ws-json": wsJsonSubscriber };

async function main() {
  if (config.kind === "wamp-pub") return wampPublisher();
  const connect = CONNECT[config.kind];
  if (!connect) throw new Error(`unknown kind ${config.kind}`);
  const total = config.connections;
  const concurrency = config.concurrency ?? 50;
  let next = 0;
  let failed = 0;
  const errors = [];
  async function worker() {
    while (next < total) {
      const sub = new Subscriber(expected);
      sub.index = next;
      sub.slot = next % topics.length;
      next += 1;
      try {
        await connect(sub);
        subscribers.push(sub);
      } catch (err) {
        failed += 1;
        if (errors.length < 5) errors.push(String(err.message || err));
      }
    }
  }
  const started = now();
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  emit({ event: "ready", connected: subscribers.length, failed, errors, seconds: now() - started });
  setTimeout(() => report("timeout"), (config.timeout_s ?? 60) * 1000);
  if (expected === 0) report("nothing expected");
}

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  if (line.trim() === "report") report("asked");
});

main().catch((err) => {
  emit({ event: "error", error: String(err.stack || err) });
  process.exit(1);
});
