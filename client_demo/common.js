// What every giftstream page shares: URL parameters, the HTTP API, demo
// tokens, and a room socket that reconnects by itself.
//
// It speaks docs/protocol.md, version 1, over the JSON subprotocol, so no
// MessagePack library is needed in the browser. Words go through i18n.js,
// in the page's language.

import { formatNumber, t } from "./i18n.js";

export { plural } from "./i18n.js";

export const SUBPROTOCOL = "giftstream.v1.json";
export const TIERS = ["small", "medium", "large", "fullscreen"];
// The events in a room's sequence (each with a `seq`), handed to `onEvent`.
export const ROOM_EVENTS = new Set(["gift", "combo_end", "stream_started", "stream_ended", "goal_reached"]);
// Room and user ids (protocol: conventions).
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

// ------------------------------------------------------------------ small helpers

/** A URL query parameter, or `fallback` when it is absent or empty. */
export function param(name, fallback = null) {
  const value = new URLSearchParams(location.search).get(name);
  return value === null || value === "" ? fallback : value;
}

/** A numeric URL parameter, or `fallback` when absent or not a number. */
export function numberParam(name, fallback) {
  const value = Number(param(name, ""));
  return param(name) !== null && Number.isFinite(value) ? value : fallback;
}

/** 12345 -> "12,345": a whole number, grouped as the page's language does. */
export function formatCoins(amount) {
  return formatNumber(amount);
}

/** Creates an element: el("li", {class: "x", dataset: {seq: 3}}, "text", child). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Request ids unique per sender: a random prefix per page load plus a counter. */
export function requestIds(prefix = "w") {
  const random = crypto.getRandomValues(new Uint32Array(2));
  const stem = `${prefix}-${random[0].toString(36)}${random[1].toString(36)}`;
  let counter = 0;
  return () => `${stem}-${(++counter).toString().padStart(4, "0")}`;
}

// ------------------------------------------------------------------ HTTP API

/** An HTTP problem document (`code`, `detail`, `temporary`) as an exception. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || "http_error";
    this.temporary = Boolean(problem.temporary);
  }
}

/** Calls the HTTP API; the JSON answer, or throws an `ApiError`. */
export async function api(path, { method = "GET", token = null, body = undefined } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new ApiError(0, { code: "unavailable", detail: t("api.unreachable"), temporary: true });
  }
  const text = await response.text();
  let document = {};
  try {
    document = text ? JSON.parse(text) : {};
  } catch {
    document = { detail: text.slice(0, 200) };
  }
  if (!response.ok) throw new ApiError(response.status, document);
  return document;
}

/** The `exp` claim (Unix seconds) of a giftstream token, or null if unreadable. */
export function tokenExpiry(token) {
  try {
    const first = token.split(".")[0].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(first.padEnd(Math.ceil(first.length / 4) * 4, "=")));
    return Number.isInteger(claims.exp) ? claims.exp : null;
  } catch {
    return null;
  }
}

/**
 * Where a page's token comes from: a `token` given in the URL (a platform's
 * login), or, in demo mode, `POST /api/dev/token` for `user`. A demo token is
 * fetched again when it is about to expire, so that a reconnect never
 * presents a stale one.
 */
export class TokenSource {
  constructor({ user, role = "viewer", token = null }) {
    this.user = user;
    this.role = role;
    this.fixed = token;
    this.token = null;
  }

  get signedIn() {
    return Boolean(this.fixed || this.user);
  }

  async get() {
    if (this.fixed) return this.fixed;
    if (!this.user) return null;
    const exp = this.token ? tokenExpiry(this.token) : null;
    if (!this.token || exp === null || exp - Date.now() / 1000 < 60) {
      const issued = await api("/api/dev/token", {
        method: "POST",
        body: { user: this.user, role: this.role },
      });
      this.token = issued.token;
    }
    return this.token;
  }
}

// ------------------------------------------------------------------ the room socket

/**
 * One room WebSocket that stays connected: after any close it reconnects
 * with an exponential backoff (0.5 s doubling to 15 s, with jitter), and
 * at once when the browser comes back online. A reconnect asks the server
 * to resume (`since` = the last seq handled, `epoch` from the welcome), so
 * the events missed meanwhile arrive right after the welcome.
 *
 * Callbacks: onState(state, detail) with state "connecting" | "live" |
 * "offline"; onWelcome(welcome, {reconnect, missed, resume, replayed});
 * onEvent(event) for each room event (`gift`, `combo_end`, `stream_started`,
 * `stream_ended`, `goal_reached`), `events` frames unpacked, each seq once
 * and in order; onTestAlert(event) for a creator's `test_alert` (seq 0,
 * outside the room's sequence); onWithdrawal(message) for a `withdrawal`
 * message (the creator's own sockets only, seq 0); onViewers(count);
 * onLeaderboard(message) for a `leaderboard` message and onGoal(message) for
 * a `goal` message (both outside the sequence: never replayed);
 * onPosition({seq, epoch}) after each event, for a page that keeps its place
 * across reloads; onReply(message) for `ack`, `error` and `pong`.
 * `position` may carry the place a previous page load reached.
 */
export class RoomSocket {
  constructor({
    room,
    tokens = null,
    key = null,
    position = null,
    onState,
    onWelcome,
    onEvent,
    onTestAlert,
    onWithdrawal,
    onViewers,
    onLeaderboard,
    onGoal,
    onPosition,
    onReply,
  }) {
    this.room = room;
    this.tokens = tokens;
    this.key = key;
    this.onState = onState || (() => {});
    this.onWelcome = onWelcome || (() => {});
    this.onEvent = onEvent || (() => {});
    this.onTestAlert = onTestAlert || (() => {});
    this.onWithdrawal = onWithdrawal || (() => {});
    this.onViewers = onViewers || (() => {});
    this.onLeaderboard = onLeaderboard || (() => {});
    this.onGoal = onGoal || (() => {});
    this.onPosition = onPosition || (() => {});
    this.onReply = onReply || (() => {});
    this.state = "connecting";
    this.socket = null;
    this.failures = 0;
    this.retryTimer = null;
    this.stopped = false;
    this.welcomed = false;
    this.everWelcomed = false;
    // The last room seq handled, and the epoch of the sequence it belongs to.
    this.lastSeq = position && Number.isInteger(position.seq) ? position.seq : 0;
    this.epoch = position && typeof position.epoch === "string" ? position.epoch : null;
    this.askedSince = null;
    addEventListener("online", () => this.reconnectNow());
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.socket) this.socket.close(1000);
  }

  /** Sends a message if the room is live; false when it could not be sent. */
  send(message) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN || !this.welcomed) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  reconnectNow() {
    if (this.stopped || this.state !== "offline") return;
    clearTimeout(this.retryTimer);
    this.connect();
  }

  async url() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const base = `${scheme}://${location.host}/ws/rooms/${encodeURIComponent(this.room)}`;
    const query = new URLSearchParams();
    if (this.key) query.set("key", this.key);
    else {
      const token = this.tokens ? await this.tokens.get() : null;
      if (token) query.set("token", token);
    }
    // Resume only from a place in a known sequence.
    this.askedSince = this.lastSeq > 0 && this.epoch !== null ? this.lastSeq : null;
    if (this.askedSince !== null) {
      query.set("since", String(this.askedSince));
      query.set("epoch", this.epoch);
    }
    const text = query.toString();
    return text ? `${base}?${text}` : base;
  }

  setState(state, detail = {}) {
    this.state = state;
    this.onState(state, detail);
  }

  async connect() {
    this.setState("connecting");
    let url;
    try {
      url = await this.url();
    } catch (error) {
      this.scheduleRetry(error.message || t("close.noToken"));
      return;
    }
    if (this.stopped) return;
    const socket = new WebSocket(url, [SUBPROTOCOL]);
    this.socket = socket;
    this.welcomed = false;
    socket.onmessage = (message) => this.receive(message.data);
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.welcomed = false;
      if (!this.stopped) this.scheduleRetry(closeReason(event));
    };
  }

  scheduleRetry(reason) {
    const delay = Math.min(15000, 500 * 2 ** Math.min(this.failures, 5));
    const jittered = Math.round(delay * (0.75 + Math.random() * 0.5));
    this.failures += 1;
    this.setState("offline", { reason, retryInMs: jittered, failures: this.failures });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), jittered);
  }

  receive(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return; // not ours to understand; the protocol says ignore
    }
    if (!message || typeof message !== "object") return;
    switch (message.type) {
      case "welcome":
        return this.welcome(message);
      case "events":
        for (const event of message.events || []) this.event(event);
        return;
      case "gift":
      case "combo_end":
      case "stream_started":
      case "stream_ended":
      case "goal_reached":
      case "test_alert":
      case "withdrawal":
      case "goal":
        return this.event(message);
      case "viewers":
        if (Number.isInteger(message.count)) this.onViewers(message.count);
        return;
      case "leaderboard":
        if (Array.isArray(message.entries)) this.onLeaderboard(message);
        return;
      case "ack":
      case "error":
      case "pong":
        return this.onReply(message);
      default:
        return; // unknown message types are ignored (protocol, versioning)
    }
  }

  welcome(message) {
    const reconnect = this.everWelcomed || this.askedSince !== null;
    const resume = message.resume && typeof message.resume === "object" ? message.resume : null;
    let status = null;
    let replayed = 0;
    let missed = 0;
    if (resume && resume.status === "ok") {
      // The missed events follow this welcome: carry on from where we were.
      status = "ok";
      replayed = Number(resume.replayed) || 0;
    } else {
      // No resume (a first connection, or a server that cannot) or a resync:
      // whatever went by is lost; continue from the room's present.
      status = resume ? "resync" : null;
      if (reconnect) missed = Math.max(0, message.last_seq - this.lastSeq);
      this.lastSeq = message.last_seq;
    }
    this.epoch = typeof message.epoch === "string" ? message.epoch : null;
    this.failures = 0;
    this.welcomed = true;
    this.everWelcomed = true;
    this.setState("live");
    this.onPosition({ seq: this.lastSeq, epoch: this.epoch });
    this.onWelcome(message, {
      reconnect,
      missed,
      resume: status,
      reason: resume && resume.reason,
      replayed,
    });
  }

  event(event) {
    // A goal's state is no position in the room (seq 0, or none at all).
    if (event && event.type === "goal") {
      if (!event.seq) this.onGoal(event);
      return;
    }
    if (!event || !Number.isInteger(event.seq)) return;
    if (event.type === "test_alert") {
      if (event.seq === 0) this.onTestAlert(event);
      return;
    }
    if (event.type === "withdrawal") {
      if (event.seq === 0) this.onWithdrawal(event);
      return;
    }
    if (!ROOM_EVENTS.has(event.type)) return;
    // Every event once, in order: whatever is not newer was handled already.
    if (event.seq <= this.lastSeq) return;
    this.lastSeq = event.seq;
    this.onEvent(event);
    this.onPosition({ seq: this.lastSeq, epoch: this.epoch });
  }
}

function closeReason(event) {
  switch (event.code) {
    case 1012:
      return t("close.restarting");
    case 4001:
      return t("close.behind");
    case 1011:
      return t("close.serverError");
    case 1009:
      return t("close.tooLarge");
    case 1006:
      return t("close.lost");
    default:
      return event.reason || t("close.other", { code: event.code });
  }
}

/**
 * Words for the connection state, for people. The socket's "live" is said
 * "connected": "live" is for a creator's stream.
 */
export function describeState(state, detail = {}) {
  if (state === "live") return t("state.live");
  if (state === "connecting") return t("state.connecting");
  const seconds = Math.max(1, Math.round((detail.retryInMs || 0) / 1000));
  return t("state.offline", { seconds });
}

/** A stable colour for a user name, for the feed. */
export function userColour(name) {
  let hash = 0;
  for (const char of String(name)) hash = (hash * 31 + char.codePointAt(0)) >>> 0;
  return `hsl(${hash % 360} 80% 72%)`;
}

// ------------------------------------------------------------------ test alerts

/**
 * The BroadcastChannel on which an overlay tells a creator page open in the
 * same browser how its test alerts are doing: `{type: "test_alert", key,
 * state: "queued" | "showing" | "shown", ahead}`; `{type: "ask"}` makes the
 * overlays there say it again for every test alert they remember.
 */
export function overlayChannel(room) {
  if (!("BroadcastChannel" in globalThis)) return null;
  return new BroadcastChannel(`giftstream:overlay:${room}`);
}

/** Names one test alert the same way on both pages (it has no seq). */
export function testAlertKey(event) {
  return `${event.ts}:${event.gift}`;
}
