// Contract check of a Tidings server with the official JavaScript `socket.io-client` (4.x),
// used unchanged and with its DEFAULT transport start: HTTP long-polling first, then the
// upgrade to WebSocket. Run by tests/test_js_client.py; usable by hand too:
//
//   TIDINGS_TOKEN=$(tidings token --sub alice) node tests/js/contract.mjs http://127.0.0.1:3001
//   # wait for READY, then create a notification for alice over HTTP
//
// Inputs (command-line option, else environment variable):
//   --url URL (or first positional argument)  TIDINGS_URL        server base URL
//   --token JWT                               TIDINGS_TOKEN      valid token of the user
//   --user ID                                 TIDINGS_USER       that token's `sub` (alice)
//   --bad-token JWT                           TIDINGS_BAD_TOKEN  a token the server must refuse
//   --since ISO-8601                          TIDINGS_SINCE      a time before the test started
//   --timeout MS                              TIDINGS_JS_TIMEOUT_MS  global limit (15000)
//
// Protocol on stdout: the line `READY` once the script is connected (and upgraded) and waits
// for a `notification`; then exactly one JSON line with the result: `{"ok": true, ...}`, or
// `{"ok": false, "step", "error"}` with exit status 1 (the same message goes to stderr).

import { parseArgs } from "node:util";
import { io } from "socket.io-client";

const EVENT_TIMEOUT_MS = 5000;

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    url: { type: "string" },
    token: { type: "string" },
    user: { type: "string" },
    "bad-token": { type: "string" },
    since: { type: "string" },
    timeout: { type: "string" },
  },
});

const env = process.env;
const url = opts.url ?? positionals[0] ?? env.TIDINGS_URL;
const token = opts.token ?? env.TIDINGS_TOKEN;
const user = opts.user ?? env.TIDINGS_USER ?? "alice";
const badToken = opts["bad-token"] ?? env.TIDINGS_BAD_TOKEN ?? "not-a-jwt";
const since = opts.since ?? env.TIDINGS_SINCE ?? new Date(Date.now() - 60_000).toISOString();
const globalTimeoutMs = Number(opts.timeout ?? env.TIDINGS_JS_TIMEOUT_MS ?? 15_000);

let step = "start";
let finished = false;
const sockets = [];

function finish(code, line) {
  if (finished) return;
  finished = true;
  clearTimeout(globalTimer);
  for (const socket of sockets) socket.disconnect();
  process.stdout.write(`${JSON.stringify(line)}\n`, () => process.exit(code));
}

function fail(message) {
  if (finished) return;
  const text = `contract.mjs failed at step "${step}": ${message}`;
  process.stderr.write(`${text}\n`);
  finish(1, { ok: false, step, error: message });
}

const globalTimer = setTimeout(
  () => fail(`global timeout of ${globalTimeoutMs} ms exceeded`),
  globalTimeoutMs,
);

class ContractError extends Error {}

function check(condition, message) {
  if (!condition) throw new ContractError(message);
}

const show = (value) => JSON.stringify(value);

/** Queues every server event of a socket, so the script can await them in any order. */
class Recorder {
  constructor(socket) {
    this.queues = new Map();
    this.waiters = new Map();
    socket.onAny((event, ...args) => this.push(event, args[0]));
  }

  push(event, payload) {
    const waiting = this.waiters.get(event);
    if (waiting?.length) waiting.shift()(payload);
    else this.queue(event).push(payload);
  }

  queue(event) {
    if (!this.queues.has(event)) this.queues.set(event, []);
    return this.queues.get(event);
  }

  /** Everything received for `event` and not yet taken, taken now. */
  drain(event) {
    return this.queue(event).splice(0);
  }

  next(event, timeoutMs = EVENT_TIMEOUT_MS) {
    const queued = this.queue(event);
    if (queued.length) return Promise.resolve(queued.shift());
    return new Promise((resolve, reject) => {
      const waiting = this.waiters.get(event) ?? [];
      this.waiters.set(event, waiting);
      const waiter = (payload) => {
        clearTimeout(timer);
        resolve(payload);
      };
      const timer = setTimeout(() => {
        waiting.splice(waiting.indexOf(waiter), 1);
        reject(new ContractError(`no '${event}' event within ${timeoutMs} ms`));
      }, timeoutMs);
      waiting.push(waiter);
    });
  }

  /** The next `event` whose payload satisfies `accept`; others are skipped (and returned). */
  async nextMatching(event, accept, timeoutMs = EVENT_TIMEOUT_MS) {
    const deadline = Date.now() + timeoutMs;
    const skipped = [];
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new ContractError(`no matching '${event}' within ${timeoutMs} ms; got ${show(skipped)}`);
      }
      const payload = await this.next(event, left);
      if (accept(payload)) return { payload, skipped };
      skipped.push(payload);
    }
  }
}

/** Emits with an acknowledgement callback (the plain client API) and awaits the reply. */
function call(socket, event, data) {
  return new Promise((resolve, reject) => {
    socket.timeout(EVENT_TIMEOUT_MS).emit(event, data, (err, reply) => {
      if (err) reject(new ContractError(`no ack for '${event}' within ${EVENT_TIMEOUT_MS} ms`));
      else resolve(reply);
    });
  });
}

/** Resolves on `connect`, rejects on `connect_error` (with the error's message). */
function connected(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("connect_error", (err) => reject(err));
  });
}

async function main() {
  check(url, "no server URL (pass it as the first argument, --url or TIDINGS_URL)");
  check(token, "no token (pass --token or TIDINGS_TOKEN)");
  const result = { ok: false, user };

  // 1. Connect with the default options: no `transports`, so polling, then upgrade.
  step = "connect";
  const socket = io(url, { auth: { token } });
  sockets.push(socket);
  const events = new Recorder(socket);
  const engine = socket.io.engine;
  let upgradeError = null;
  const upgraded = new Promise((resolve) => {
    engine.once("upgrade", (transport) => resolve(transport.name));
    engine.once("upgradeError", (err) => {
      upgradeError = String(err?.message ?? err);
      resolve(null);
    });
  });
  socket.io.once("open", () => {
    result.firstTransport = socket.io.engine.transport.name;
  });
  socket.on("disconnect", (reason) => {
    if (step !== "done") fail(`the server ended alice's connection: ${reason}`);
  });
  try {
    await connected(socket);
  } catch (err) {
    throw new ContractError(`alice could not connect: connect_error ${show(err.message)}`);
  }
  result.connectedVia = socket.io.engine.transport.name;

  step = "connectionStatus";
  const status = await events.next("connectionStatus");
  result.connectionStatus = status;
  check(status?.status === "connected" && status?.user_id === user,
    `connectionStatus was ${show(status)}`);

  step = "upgrade";
  const upgradedTo = await Promise.race([
    upgraded,
    new Promise((resolve) => setTimeout(() => resolve(undefined), EVENT_TIMEOUT_MS)),
  ]);
  check(upgradedTo !== undefined || engine.transport.name === "websocket",
    `no 'upgrade' event within ${EVENT_TIMEOUT_MS} ms (transport: ${engine.transport.name})`);
  check(upgradedTo !== null, `upgrade to websocket failed: ${upgradeError}`);
  result.upgradedTo = upgradedTo;
  result.transport = socket.io.engine.transport.name;
  check(result.transport === "websocket", `transport after upgrade is ${result.transport}`);

  // 2. A refused token: connect_error with the contract's message.
  step = "bad token";
  const refused = io(url, { auth: { token: badToken }, forceNew: true, reconnection: false });
  sockets.push(refused);
  try {
    await connected(refused);
    throw new ContractError("a connection with a bad token was accepted");
  } catch (err) {
    if (err instanceof ContractError) throw err;
    result.badToken = { message: err.message, data: err.data ?? null };
  }
  refused.disconnect();
  check(result.badToken.message === "Authentication failed",
    `connect_error message was ${show(result.badToken.message)}`);

  // 3. A live notification (the test creates it over HTTP after READY), ack, read.
  step = "live notification";
  process.stdout.write("READY\n");
  const notification = await events.next("notification", Math.max(EVENT_TIMEOUT_MS, 8000));
  result.notification = notification;
  check(typeof notification?.id === "string", `notification without an id: ${show(notification)}`);
  const { id } = notification;

  step = "ack";
  result.ackReply = await call(socket, "ack", { id });
  check(result.ackReply?.ok === true, `ack answered ${show(result.ackReply)}`);
  step = "notificationStatus delivered";
  result.statusAfterAck = (await events.nextMatching("notificationStatus",
    (s) => s?.id === id && s?.status === "delivered")).payload;

  step = "markAsRead";
  result.markAsReadReply = await call(socket, "markAsRead", { id });
  check(result.markAsReadReply?.ok === true, `markAsRead answered ${show(result.markAsReadReply)}`);
  step = "notificationStatus read";
  result.statusAfterRead = (await events.nextMatching("notificationStatus",
    (s) => s?.id === id && s?.status === "read")).payload;

  // 4. Channel subscription: a topic is allowed, another user's room is not.
  step = "subscribe";
  result.subscribeReply = await call(socket, "subscribe", { channels: ["orders", "user:bob"] });
  const sub = result.subscribeReply;
  check(sub?.ok === true && show(sub.subscribed) === show(["orders"])
    && show(sub.denied) === show(["user:bob"]), `subscribe answered ${show(sub)}`);

  // 5. A malformed event: an `error` event, a failing ack, and the connection stays up.
  step = "malformed event";
  events.drain("error");
  result.malformedReply = await call(socket, "ack", "nope");
  result.errorEvent = await events.next("error");
  const error = result.errorEvent;
  check(typeof error?.code === "string" && typeof error?.message === "string",
    `error event was ${show(error)}`);
  check(result.malformedReply?.ok === false, `malformed ack answered ${show(result.malformedReply)}`);
  check(socket.connected, "the connection dropped after a malformed event");

  // 6. Missed-notification replay on the same connection: events first, then the ack.
  step = "requestMissedNotifications";
  events.drain("notification");
  const missed = await call(socket, "requestMissedNotifications", { since });
  const replayed = events.drain("notification"); // what had arrived when the ack did
  result.missed = { reply: missed, since, replayedBeforeAck: replayed };
  check(missed?.ok === true && Number.isInteger(missed.count) && missed.count >= 1,
    `requestMissedNotifications answered ${show(missed)}`);
  check(replayed.length === missed.count,
    `ack said count ${missed.count} but ${replayed.length} notification events came before it`);
  check(replayed.some((n) => n?.id === id), `the replay lacks notification ${id}`);

  result.transportAtEnd = socket.io.engine.transport.name;
  result.ok = true;
  step = "done";
  return result;
}

main().then(
  (result) => finish(0, result),
  (err) => fail(err instanceof ContractError ? err.message : (err?.stack ?? String(err))),
);
