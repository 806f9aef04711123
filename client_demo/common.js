// What every giftstream page shares: URL parameters, the HTTP API, demo
// tokens, and a room socket that reconnects by itself.
//
// The room protocol (docs/protocol.md, version 1) is giftstream.js's to
// speak; the pages reach it through `RoomSocket` below. Words go through
// i18n.js, in the page's language.

import { connect } from "./giftstream.js";
import { formatNumber, t } from "./i18n.js";

export { plural } from "./i18n.js";

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
 * A page's room socket: a room of giftstream.js, which keeps it connected
 * (a capped, jittered backoff after any close, at once when the browser
 * comes back online), resumes from the last room event after a reconnect,
 * delivers each event once and in order, and sends gifts with request ids
 * that are safe to send again. This adds what the pages share on top: the
 * connection's state and close reasons in the page's words, how much a
 * reconnect missed, and one callback per kind of message.
 *
 * The pages speak JSON: the demo is where people watch the protocol at
 * work, and JSON frames can be read as they go by.
 *
 * Callbacks: onState(state, detail) with state "connecting" | "live" |
 * "offline" and detail {reason, retryInMs, failures}; onWelcome(welcome,
 * {reconnect, missed, resume, reason, replayed}) where `missed` counts the
 * room events that went by and will not come; onEvent(event) for each room
 * event (`gift`, `combo_end`, `stream_started`, `stream_ended`,
 * `goal_reached`); onTestAlert(event) for a creator's `test_alert` (seq 0,
 * outside the room's sequence); onWithdrawal(message) for a `withdrawal`
 * message (the creator's own sockets only, seq 0); onViewers(count);
 * onLeaderboard(message) for a `leaderboard` message and onGoal(message)
 * for a `goal` message (both outside the sequence: never replayed);
 * onPosition({seq, epoch}) after each welcome and event, for a page that
 * keeps its place across reloads. `position` may carry the place a previous
 * page load reached. `tokens` (a TokenSource) or `key` (an overlay key) say
 * who connects; neither: watch-only.
 */
export class RoomSocket {
  constructor({ room, tokens = null, key = null, position = null, ...callbacks }) {
    this.roomId = room;
    this.tokens = tokens;
    this.key = key;
    this.resumeFrom = position;
    this.callbacks = callbacks;
    /** @type {import("./giftstream.js").GiftstreamRoom | null} */
    this.room = null;
    this.state = "connecting";
    // The last room event handed to the page: what a resync is counted from.
    this.lastSeq = position && Number.isInteger(position.seq) ? position.seq : 0;
    // Why the last token could not be had, said when the connection fails for it.
    this.tokenProblem = null;
  }

  /** Connects; from then on the room stays connected. */
  start() {
    if (this.room) return;
    try {
      this.room = connect({
        room: this.roomId,
        codec: "json",
        key: this.key,
        token: this.key || !this.tokens ? null : () => this.token(),
        resumeFrom: this.resumeFrom || undefined,
      });
    } catch (error) {
      // A room id or key the server would refuse: trying again changes nothing.
      this.setState("offline", { reason: error.message });
      return;
    }
    this.listen();
  }

  /** Whether any connection has been welcomed yet (who the page is, is known). */
  get everWelcomed() {
    return Boolean(this.room && this.room.welcome);
  }

  /**
   * Sends `count` of `gift` (giftstream.js: it waits for the connection, and
   * goes again with the same request id after a drop or a `temporary`
   * refusal). A promise of the ack, rejected with a GiftstreamError, with
   * the send's `requestId` on it at once.
   */
  sendGift(gift, count, options = {}) {
    if (!this.room) throw new Error("the room socket has not started");
    return this.room.sendGift(gift, count, options);
  }

  async token() {
    this.tokenProblem = null;
    try {
      return await this.tokens.get();
    } catch (error) {
      this.tokenProblem = error.message || t("close.noToken");
      throw error;
    }
  }

  listen() {
    const room = this.room;
    const call = (name, ...args) => this.call(name, ...args);
    room.on("state", (state, detail) => this.changed(state, detail));
    room.on("welcome", (welcome, info) => this.welcome(welcome, info));
    for (const type of ROOM_EVENTS) {
      room.on(type, (event) => {
        // Only events with a place in the sequence: that place is kept.
        if (!Number.isInteger(event.seq) || event.seq <= 0) return;
        this.lastSeq = event.seq;
        call("onEvent", event);
        call("onPosition", room.position);
      });
    }
    // Outside the room's sequence: seq 0, never replayed.
    room.on("test_alert", (event) => event.seq === 0 && call("onTestAlert", event));
    room.on("withdrawal", (message) => message.seq === 0 && call("onWithdrawal", message));
    room.on("goal", (message) => !message.seq && call("onGoal", message));
    room.on("viewers", ({ count }) => Number.isInteger(count) && call("onViewers", count));
    room.on("leaderboard", (message) => Array.isArray(message.entries) && call("onLeaderboard", message));
  }

  changed(state, detail) {
    // "live" is said by the welcome, which comes right after "open".
    if (state === "open") return;
    const { closeCode, retryInMs, failures } = detail;
    const reason = closeCode !== undefined ? closeReason(closeCode) : this.tokenProblem || t("close.lost");
    this.setState("offline", { reason, retryInMs, failures });
  }

  welcome(welcome, { reconnected, missed }) {
    const resume = welcome.resume && typeof welcome.resume === "object" ? welcome.resume : null;
    const status = resume ? (resume.status === "ok" ? "ok" : "resync") : null;
    // A first welcome that answers a place kept from an earlier load is a reconnect too.
    const reconnect = reconnected || resume !== null;
    let lost = 0;
    if (missed) {
      // A new run of the sequence: all of its events are news to the page.
      const from = resume && resume.reason === "epoch_changed" ? 0 : this.lastSeq;
      lost = Math.max(0, welcome.last_seq - from);
    }
    if (status !== "ok") this.lastSeq = this.room.position.seq;
    this.setState("live");
    this.call("onPosition", this.room.position);
    this.call("onWelcome", welcome, {
      reconnect,
      missed: lost,
      resume: status,
      reason: resume && resume.reason,
      replayed: status === "ok" ? Number(resume.replayed) || 0 : 0,
    });
  }

  setState(state, detail = {}) {
    this.state = state;
    this.call("onState", state, detail);
  }

  /** The page's callback `name`, if it gave one. */
  call(name, ...args) {
    const callback = this.callbacks[name];
    if (callback) callback(...args);
  }
}

/** Why a room socket closed, by its close code (docs/protocol.md), for people. */
function closeReason(code) {
  switch (code) {
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
      return t("close.other", { code });
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
