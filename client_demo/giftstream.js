// giftstream.js: a browser client for a giftstream room (docs/protocol.md,
// version 1). One ES module, no dependencies, no build step.
//
//   import { connect } from "/giftstream.js";
//   const room = connect({ room: "carol", token, codec: "msgpack" });
//   room.on("gift", (event) => show(event));
//   const ack = await room.sendGift("rose", 1);
//
// The room stays connected until `close()`: after a drop it reconnects with
// a capped, jittered exponential backoff and resumes from the last `seq` it
// delivered, so every room event reaches the page once, in order. A gift
// that got no answer is sent again, with the same request id, after the next
// welcome: the server answers a repeat with the first outcome, so nothing is
// paid twice.

/** @typedef {"msgpack" | "json"} Codec */
/** @typedef {"connecting" | "open" | "reconnecting" | "closed"} ConnectionState */

/**
 * Where a page is in a room's sequence: enough to resume after a reload.
 * @typedef {object} Position
 * @property {number} seq the last room event delivered (0: none yet)
 * @property {string | null} epoch the run of the room's sequence `seq` belongs to
 */

/**
 * A token, or a function that gives one (called before each connection, so
 * that a page can hand over a fresh token when the last one has expired).
 * No token (null, undefined or "") connects watch-only.
 * @typedef {MaybeToken | (() => MaybeToken | Promise<MaybeToken>)} TokenSource
 */
/** @typedef {string | null | undefined} MaybeToken */

/**
 * @typedef {object} Backoff
 * @property {number} initialMs the delay before the first retry
 * @property {number} maxMs no delay is longer
 */

/**
 * @typedef {object} ConnectOptions
 * @property {string} room the room id: the creator's user id
 * @property {string} [server] the server's origin, `https://…` or `wss://…`
 *   (default: the page's own origin)
 * @property {TokenSource} [token] without one the page is watch-only
 * @property {string | null} [key] the room's overlay key (from the creator's page),
 *   instead of a token (not with one): the socket is the creator's overlay,
 *   watch-only
 * @property {Codec} [codec] "msgpack" (the default) or "json"
 * @property {Position} [resumeFrom] a position kept from an earlier page load
 * @property {Partial<Backoff>} [backoff] default 500 ms doubling up to 15 s
 * @property {number} [heartbeatMs] how often to ping an open socket; a socket
 *   that has not answered by the next beat is taken for dead and replaced
 *   (default 20000; 0 switches it off)
 * @property {typeof WebSocket} [WebSocket] the WebSocket class to use
 *   (default: the browser's)
 */

/**
 * @typedef {object} GiftOptions
 * @property {boolean} [confirm] the user confirmed a send worth more than
 *   `welcome.limits.confirm_above_coins`
 * @property {string} [id] a request id; by default a new one. Pass the
 *   `requestId` of a failed send to retry it without risk of paying twice.
 */

/** @typedef {"viewer" | "creator" | "overlay" | "anonymous"} Role */

/**
 * @typedef {object} Welcome The first message of each connection.
 * @property {"welcome"} type
 * @property {number} protocol
 * @property {string} room
 * @property {{ user: string | null, role: Role, can_send: boolean }} you
 * @property {number | null} balance the user's coins; null when watch-only
 * @property {number} viewers
 * @property {number} last_seq
 * @property {string} epoch
 * @property {{ status: "ok", replayed: number }
 *   | { status: "resync", reason: string } | null} resume
 * @property {boolean} live
 * @property {string | null} stream_id
 * @property {{ max_count: number, max_frame_bytes: number, gift_rate_per_second: number,
 *   gift_rate_burst: number, confirm_above_coins: number, max_send_coins: number }} limits
 */

/**
 * What the library adds to each welcome.
 * @typedef {object} WelcomeInfo
 * @property {boolean} reconnected not the room's first welcome
 * @property {boolean} missed events went by that will not be delivered (the
 *   room's history no longer holds them, or its sequence began again): what
 *   the page shows may be stale, read it again over HTTP
 */

/**
 * @typedef {object} StateDetail
 * @property {string} [reason] why the connection ended, for people
 * @property {number} [closeCode] the WebSocket close code, when there was one
 * @property {number} [retryInMs] when the next attempt starts
 * @property {number} [failures] connections lost or refused in a row
 */

/**
 * A gift was paid for (`duplicate`: paid by an earlier attempt of the same
 * request id; this is that first outcome again).
 * @typedef {object} GiftAck
 * @property {"ack"} type
 * @property {string} id
 * @property {number} balance the sender's coins right after the debit
 * @property {number} coins
 * @property {number} seq the room event showing the gift
 * @property {boolean} duplicate
 */

/**
 * What `sendGift` returns: the answer to come, and the request id at once,
 * so that a page can show the send before it is answered.
 * @typedef {Promise<GiftAck> & { requestId: string }} SentGift
 */

/**
 * @typedef {object} GiftEvent Someone sent a gift (the sender's page included).
 * @property {"gift"} type
 * @property {number} seq
 * @property {string} room
 * @property {string} sender
 * @property {string} gift
 * @property {number} count
 * @property {number} coins
 * @property {"small" | "medium" | "large" | "fullscreen"} tier
 * @property {number} ts ms since the Unix epoch
 * @property {{ id: string, count: number } | null} combo the running streak
 * @property {string | null} stream_id
 * @property {number} fan_level
 * @property {string | null} fan_badge
 * @property {string} request_id the id of the send that paid for it
 * @property {boolean} own added by this library: the gift was sent from this
 *   page load (its request id, by the signed-in user)
 */

/**
 * @typedef {object} ComboEndEvent A streak stopped at `count`.
 * @property {"combo_end"} type
 * @property {number} seq
 * @property {string} room
 * @property {string} sender
 * @property {string} gift
 * @property {string} combo the streak id (`combo.id` of its gift events)
 * @property {number} count
 * @property {number} ts
 * @property {string | null} stream_id
 */

/**
 * @typedef {object} StreamEvent The creator went live, or the stream ended.
 * @property {"stream_started" | "stream_ended"} type
 * @property {number} seq
 * @property {string} room
 * @property {string} stream_id
 * @property {number} started
 * @property {number} [ended] stream_ended only
 * @property {"ended" | "idle"} [reason] stream_ended only
 * @property {number} ts
 */

/**
 * @typedef {object} Goal
 * @property {string} goal_id
 * @property {string} title
 * @property {"coins" | "gift"} kind
 * @property {string | null} gift_id
 * @property {number} target
 * @property {number} progress
 * @property {number} created
 * @property {number | null} reached
 */

/**
 * @typedef {object} GoalReachedEvent
 * @property {"goal_reached"} type
 * @property {number} seq
 * @property {string} room
 * @property {number} ts
 * @property {Goal} goal
 */

/**
 * @typedef {object} GoalMessage The goal was set, cleared (null) or filled further.
 * @property {"goal"} type
 * @property {string} room
 * @property {Goal | null} goal
 */

/**
 * @typedef {{ rank: number, user: string | null, name: string, coins: number,
 *   fan_level: number }} LeaderboardEntry
 */

/**
 * @typedef {object} LeaderboardMessage The stream's top gifters changed.
 * @property {"leaderboard"} type
 * @property {string} room
 * @property {string} period
 * @property {string | null} stream_id
 * @property {LeaderboardEntry[]} entries
 */

/**
 * @typedef {object} ViewersMessage
 * @property {"viewers"} type
 * @property {number} count open sockets in the room
 */

/**
 * The arguments each event's handlers get. Any other message type the server
 * sends can be listened to by its name too (`room.on("test_alert", …)`).
 * @typedef {object} RoomEvents
 * @property {[GiftEvent]} gift
 * @property {[ComboEndEvent]} combo_end
 * @property {[StreamEvent]} stream_started
 * @property {[StreamEvent]} stream_ended
 * @property {[GoalMessage]} goal
 * @property {[GoalReachedEvent]} goal_reached
 * @property {[LeaderboardMessage]} leaderboard
 * @property {[ViewersMessage]} viewers
 * @property {[Welcome, WelcomeInfo]} welcome
 * @property {[ConnectionState, StateDetail]} state
 * @property {[GiftstreamError]} error an error frame that answers no send
 *   of this page (a frame the server could not read)
 */

/** @typedef {Record<string, unknown>} Message */

/**
 * @typedef {object} PendingGift A send waiting for its answer.
 * @property {string} id
 * @property {Message} frame
 * @property {SentGift} promise
 * @property {(ack: GiftAck) => void} resolve
 * @property {(error: GiftstreamError) => void} reject
 * @property {boolean} written it went out at least once: it may have been paid
 * @property {number} retries answers of `temporary` errors so far
 * @property {ReturnType<typeof setTimeout> | undefined} timer a retry waiting
 */

export const SUBPROTOCOLS = Object.freeze({
  msgpack: "giftstream.v1.msgpack",
  json: "giftstream.v1.json",
});

const ROOM_ID = /^[A-Za-z0-9_-]{1,64}$/;
const REQUEST_ID = /^[A-Za-z0-9_.:-]{1,64}$/;
/** @type {Backoff} */
const DEFAULT_BACKOFF = { initialMs: 500, maxMs: 15000 };
const DEFAULT_HEARTBEAT_MS = 20000;
// Before the first welcome says otherwise (protocol: welcome.limits).
const DEFAULT_MAX_FRAME_BYTES = 4096;
// A send refused as `temporary` (rate_limited, unavailable, internal) goes
// again with the same id this many times, 250 ms, 500 ms, 1 s, 2 s apart.
const TEMPORARY_RETRIES = 4;
const TEMPORARY_RETRY_MS = 250;
// After these codes the server may or may not have taken the coins.
const OUTCOME_UNKNOWN = new Set(["unavailable", "internal"]);
// Types that are answers, frames or the library's own events: never handed
// to a page as room messages (even inside an `events` frame).
const NOT_ROOM_MESSAGES = new Set(["welcome", "ack", "error", "pong", "events", "state"]);

// ------------------------------------------------------------------ errors

/**
 * A refusal from the server (an `error` frame), or one of two of this
 * library's own: `closed` (the room was closed before the send was answered)
 * and `frame_too_large` (the send would be longer than the server reads).
 * `temporary`: the same request may succeed later unchanged. Extra fields of
 * the frame are copied on (`coins` and `threshold` for `confirm_required`,
 * `limit`, `remaining`, `required` and `level`…).
 */
export class GiftstreamError extends Error {
  /**
   * @param {Message & { code: string }} frame
   * @param {{ outcomeUnknown?: boolean }} [options]
   */
  constructor(frame, { outcomeUnknown = OUTCOME_UNKNOWN.has(frame.code) } = {}) {
    super(typeof frame.message === "string" && frame.message ? frame.message : frame.code);
    this.name = "GiftstreamError";
    /** A stable code from docs/protocol.md, "Error codes"; branch on it. */
    this.code = frame.code;
    /** True when the same request may succeed later, unchanged. */
    this.temporary = frame.temporary === true;
    /** The send's request id (null for a frame the server could not read). */
    this.requestId = typeof frame.id === "string" ? frame.id : null;
    /** True when the gift may have been paid for: retry with the same id to learn. */
    this.outcomeUnknown = outcomeUnknown;
    /** @type {Record<string, unknown>} */
    const fields = /** @type {any} */ (this);
    for (const [name, value] of Object.entries(frame)) {
      if (name !== "type" && name !== "id" && !(name in this)) fields[name] = value;
    }
  }
}

// ------------------------------------------------------------------ request ids

// Request ids must be unique per sender for days (protocol: idempotency):
// 64 random bits per page load, then a counter. Shared by every room of the
// page, so that a page can tell its own taps in any of them.
const PAGE_STEM = (() => {
  const words = crypto.getRandomValues(new Uint32Array(2));
  return Array.from(words, (word) => word.toString(36).padStart(7, "0")).join("");
})();
let requestsIssued = 0;
/** @type {Set<string>} */
const pageRequestIds = new Set();

function newRequestId() {
  requestsIssued += 1;
  return `gs-${PAGE_STEM}-${requestsIssued.toString(36)}`;
}

// ------------------------------------------------------------------ the room

/**
 * Connects to a room and keeps it connected until `close()`.
 * @param {ConnectOptions} options
 * @returns {GiftstreamRoom}
 */
export function connect(options) {
  return new GiftstreamRoom(options);
}

export class GiftstreamRoom {
  /** @type {ConnectionState} */
  #state = "connecting";
  /** @type {Map<string, Set<(...args: any[]) => void>>} */
  #listeners = new Map();
  #url;
  #token;
  /** @type {string | null} */
  #key;
  #codec;
  #backoff;
  #heartbeatMs;
  #WebSocket;

  /** @type {WebSocket | null} */
  #socket = null;
  // Whether the current socket has had its welcome: sends wait for it.
  #welcomed = false;
  /** @type {Welcome | null} */
  #welcome = null;
  #failures = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #retryTimer = undefined;
  /** @type {ReturnType<typeof setInterval> | undefined} */
  #heartbeatTimer = undefined;
  /** @type {string | null} */
  #unansweredPing = null;
  #pings = 0;

  #lastSeq = 0;
  /** @type {string | null} */
  #epoch = null;
  /** @type {number | null} */
  #askedSince = null;

  /** @type {Map<string, PendingGift>} */
  #pending = new Map();
  #reconnectWhenOnline = () => this.#retryNow();

  /** @param {ConnectOptions} options */
  constructor(options) {
    const { room, server, codec = "msgpack", resumeFrom, backoff = {} } = options;
    const { token = null, key = null } = options;
    if (typeof room !== "string" || !ROOM_ID.test(room)) {
      throw new TypeError("room must be 1-64 characters of A-Z a-z 0-9 _ -");
    }
    if (key !== null && (typeof key !== "string" || key === "")) {
      throw new TypeError("key must be a non-empty string");
    }
    // The server would read the key and ignore the token: one of them, then.
    if (key !== null && token) throw new TypeError("give a token or a key, not both");
    if (!(codec in SUBPROTOCOLS)) throw new TypeError('codec must be "msgpack" or "json"');
    this.room = room;
    this.#url = roomUrl(server ?? globalThis.location?.origin, room);
    this.#token = token;
    this.#key = key;
    this.#codec = codec;
    this.#backoff = { ...DEFAULT_BACKOFF, ...backoff };
    this.#heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.#WebSocket = options.WebSocket ?? globalThis.WebSocket;
    if (typeof this.#WebSocket !== "function") throw new TypeError("no WebSocket class here");
    if (resumeFrom && Number.isSafeInteger(resumeFrom.seq) && resumeFrom.seq >= 0) {
      this.#lastSeq = resumeFrom.seq;
      this.#epoch = typeof resumeFrom.epoch === "string" ? resumeFrom.epoch : null;
    }
    globalThis.addEventListener?.("online", this.#reconnectWhenOnline);
    this.#connect();
  }

  /** "connecting" (the first time), "open", "reconnecting" or "closed" (for good). */
  get state() {
    return this.#state;
  }

  /** The latest welcome: who the page is (`you`), its balance then, the room's limits. */
  get welcome() {
    return this.#welcome;
  }

  /** The last room event delivered; keep it to resume after a reload (`resumeFrom`). */
  get position() {
    return { seq: this.#lastSeq, epoch: this.#epoch };
  }

  /**
   * Calls `handler` for each event of `type`; returns a function that stops it.
   * @template {keyof RoomEvents} K
   * @param {K} type
   * @param {(...args: RoomEvents[K]) => void} handler
   * @returns {() => void}
   */
  on(type, handler) {
    let handlers = this.#listeners.get(type);
    if (!handlers) this.#listeners.set(type, (handlers = new Set()));
    handlers.add(handler);
    return () => this.off(type, handler);
  }

  /**
   * @template {keyof RoomEvents} K
   * @param {K} type
   * @param {(...args: RoomEvents[K]) => void} handler
   */
  off(type, handler) {
    this.#listeners.get(type)?.delete(handler);
  }

  /**
   * Sends `count` of `gift`. Resolves with the server's ack once it is paid;
   * rejects with a `GiftstreamError` when refused. While the room is not
   * open the send waits, and one whose answer was lost in a drop goes again
   * with the same request id after the reconnect.
   * @param {string} gift a gift id from `GET /api/catalog`
   * @param {number} [count]
   * @param {GiftOptions} [options]
   * @returns {SentGift}
   */
  sendGift(gift, count = 1, { confirm = false, id = newRequestId() } = {}) {
    if (!REQUEST_ID.test(id)) {
      return refusedSend(id, new TypeError("id must be 1-64 characters of A-Z a-z 0-9 _ . : -"));
    }
    const waiting = this.#pending.get(id);
    if (waiting) return waiting.promise;
    if (this.#state === "closed") return refusedSend(id, closedError(id, false));
    /** @type {Message} */
    const frame = { type: "gift", id, gift, count };
    if (confirm) frame.confirm = true;
    const pending = newPending(id, frame);
    this.#pending.set(id, pending);
    pageRequestIds.add(id);
    this.#write(pending);
    return pending.promise;
  }

  /** Closes the room for good: no reconnects; unanswered sends are rejected (`closed`). */
  close() {
    if (this.#state === "closed") return;
    clearTimeout(this.#retryTimer);
    globalThis.removeEventListener?.("online", this.#reconnectWhenOnline);
    this.#dropSocket();
    this.#setState("closed", { reason: "closed by the page" });
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(closedError(pending.id, pending.written));
    }
    this.#pending.clear();
  }

  // -------------------------------------------------------------- connecting

  async #connect() {
    this.#retryTimer = undefined;
    let url;
    try {
      url = await this.#connectionUrl();
    } catch (error) {
      this.#connectionLost({ reason: `no token: ${describe(error)}` });
      return;
    }
    if (this.#state === "closed") return;
    let socket;
    try {
      socket = new this.#WebSocket(url, [SUBPROTOCOLS[this.#codec]]);
    } catch (error) {
      this.#connectionLost({ reason: describe(error) });
      return;
    }
    socket.binaryType = "arraybuffer";
    socket.onmessage = (message) => this.#receive(message.data);
    // An error is always followed by a close, which is where it is handled.
    socket.onclose = ({ code, reason }) =>
      this.#connectionLost({ closeCode: code, reason: reason || closeReason(code) });
    this.#socket = socket;
    this.#welcomed = false;
  }

  async #connectionUrl() {
    const query = new URLSearchParams();
    if (this.#key !== null) {
      query.set("key", this.#key);
    } else {
      const token = typeof this.#token === "function" ? await this.#token() : this.#token;
      if (token) query.set("token", token);
    }
    // Resume from the last event delivered, once the page has a place in
    // the room's sequence (since=0 too: a room with no events yet).
    this.#askedSince = this.#epoch !== null || this.#lastSeq > 0 ? this.#lastSeq : null;
    if (this.#askedSince !== null) query.set("since", String(this.#askedSince));
    if (this.#askedSince !== null && this.#epoch !== null) query.set("epoch", this.#epoch);
    const text = query.toString();
    return text ? `${this.#url}?${text}` : this.#url;
  }

  /** @param {StateDetail} detail */
  #connectionLost(detail) {
    this.#dropSocket();
    if (this.#state === "closed") return;
    const retryInMs = backoffDelay(this.#failures, this.#backoff);
    this.#failures += 1;
    this.#setState("reconnecting", { ...detail, retryInMs, failures: this.#failures });
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => this.#connect(), retryInMs);
  }

  // Back online: waiting out the backoff would only keep the page behind.
  #retryNow() {
    if (this.#state !== "reconnecting" || this.#retryTimer === undefined) return;
    clearTimeout(this.#retryTimer);
    this.#connect();
  }

  // Lets go of the socket at once: whatever it still says is not listened to.
  #dropSocket() {
    clearInterval(this.#heartbeatTimer);
    this.#heartbeatTimer = undefined;
    this.#unansweredPing = null;
    const socket = this.#socket;
    this.#socket = null;
    this.#welcomed = false;
    if (!socket) return;
    socket.onmessage = null;
    socket.onclose = null;
    if (socket.readyState === socket.CONNECTING || socket.readyState === socket.OPEN) {
      socket.close(1000);
    }
  }

  /**
   * @param {ConnectionState} state
   * @param {StateDetail} [detail]
   */
  #setState(state, detail = {}) {
    this.#state = state;
    this.#emit("state", state, detail);
  }

  // A socket can die without a close event (a laptop's network changed):
  // a ping unanswered for a whole beat replaces it.
  #startHeartbeat() {
    if (!(this.#heartbeatMs > 0)) return;
    this.#heartbeatTimer = setInterval(() => {
      if (this.#unansweredPing !== null) {
        this.#connectionLost({ reason: "the server stopped answering" });
        return;
      }
      this.#pings += 1;
      this.#unansweredPing = `ping-${this.#pings}`;
      this.#socket?.send(this.#encode({ type: "ping", id: this.#unansweredPing }));
    }, this.#heartbeatMs);
  }

  // -------------------------------------------------------------- receiving

  /** @param {unknown} data */
  #receive(data) {
    let message;
    try {
      message = typeof data === "string" ? JSON.parse(data) : decodeMsgpack(toBytes(data));
    } catch {
      return; // not a frame this version can read: ignored, like an unknown type
    }
    if (!isMap(message)) return;
    switch (message.type) {
      case "welcome":
        return this.#onWelcome(/** @type {Welcome} */ (/** @type {unknown} */ (message)));
      case "ack":
        return this.#onAck(/** @type {GiftAck} */ (/** @type {unknown} */ (message)));
      case "error":
        return this.#onError(message);
      case "pong":
        if (message.id === this.#unansweredPing) this.#unansweredPing = null;
        return;
      case "events":
        // Each element as if it had come in a frame of its own, in order.
        for (const event of Array.isArray(message.events) ? message.events : []) {
          if (isMap(event)) this.#onRoomMessage(event);
        }
        return;
      default:
        return this.#onRoomMessage(message);
    }
  }

  /** @param {Welcome} welcome */
  #onWelcome(welcome) {
    const reconnected = this.#welcome !== null;
    const resume = isMap(welcome.resume) ? welcome.resume : null;
    // The missed events follow this welcome only when a resume was asked
    // for and granted; otherwise carry on from the room's present.
    const resumed = this.#askedSince !== null && resume?.status === "ok";
    const lastSeq = Number.isSafeInteger(welcome.last_seq) ? welcome.last_seq : 0;
    const missed =
      !resumed && (resume?.status === "resync" || (reconnected && lastSeq > this.#lastSeq));
    if (!resumed) this.#lastSeq = lastSeq;
    this.#epoch = typeof welcome.epoch === "string" ? welcome.epoch : null;
    this.#welcome = welcome;
    this.#welcomed = true;
    this.#failures = 0;
    this.#setState("open");
    this.#emit("welcome", welcome, { reconnected, missed });
    this.#startHeartbeat();
    for (const pending of this.#pending.values()) this.#write(pending);
  }

  /** @param {Message} message */
  #onRoomMessage(message) {
    if (typeof message.type !== "string" || NOT_ROOM_MESSAGES.has(message.type)) return;
    const seq = message.seq;
    // A positive seq places an event in the room's sequence: deliver each
    // once, in order (seq 0, a goal or a test alert, is no position).
    if (typeof seq === "number" && Number.isSafeInteger(seq) && seq > 0) {
      if (seq <= this.#lastSeq) return;
      this.#lastSeq = seq;
    }
    if (message.type === "gift") message.own = this.#isOwnGift(message);
    this.#emit(message.type, message);
  }

  // Request ids are each sender's own: a match counts only from our user.
  /** @param {Message} event */
  #isOwnGift(event) {
    const user = this.#welcome?.you?.user;
    return (
      typeof event.request_id === "string" &&
      pageRequestIds.has(event.request_id) &&
      user != null &&
      event.sender === user
    );
  }

  /** @param {GiftAck} ack */
  #onAck(ack) {
    const pending = this.#pending.get(ack.id);
    if (!pending) return;
    this.#settle(pending);
    pending.resolve(ack);
  }

  /** @param {Message} frame */
  #onError(frame) {
    // A refused ping (rate_limited) still shows the server is there.
    if (frame.id === this.#unansweredPing) {
      this.#unansweredPing = null;
      return;
    }
    const code = typeof frame.code === "string" ? frame.code : "unknown";
    const error = new GiftstreamError({ ...frame, code });
    const pending = typeof frame.id === "string" ? this.#pending.get(frame.id) : undefined;
    if (!pending) {
      this.#emit("error", error);
      return;
    }
    if (error.temporary && pending.retries < TEMPORARY_RETRIES) {
      const delay = jitter(TEMPORARY_RETRY_MS * 2 ** pending.retries);
      pending.retries += 1;
      pending.timer = setTimeout(() => this.#write(pending), delay);
      return;
    }
    this.#settle(pending);
    pending.reject(error);
  }

  // -------------------------------------------------------------- sending

  /** @param {PendingGift} pending */
  #write(pending) {
    clearTimeout(pending.timer);
    pending.timer = undefined;
    // Not open: the next welcome sends it.
    if (!this.#welcomed || !this.#socket) return;
    const data = this.#encode(pending.frame);
    const limit = this.#welcome?.limits?.max_frame_bytes ?? DEFAULT_MAX_FRAME_BYTES;
    // The server would close the socket on it, and it would go again after
    // each reconnect: refuse it here instead.
    if (byteLength(data) > limit) {
      this.#settle(pending);
      pending.reject(tooLargeError(pending.id, limit));
      return;
    }
    this.#socket.send(data);
    pending.written = true;
  }

  /** @param {PendingGift} pending */
  #settle(pending) {
    clearTimeout(pending.timer);
    this.#pending.delete(pending.id);
  }

  /**
   * @param {Message} message
   * @returns {string | Uint8Array}
   */
  #encode(message) {
    return this.#codec === "json" ? JSON.stringify(message) : encodeMsgpack(message);
  }

  /**
   * @param {string} type
   * @param {unknown[]} args
   */
  #emit(type, ...args) {
    const handlers = this.#listeners.get(type);
    if (!handlers) return;
    for (const handler of [...handlers]) {
      try {
        handler(...args);
      } catch (error) {
        // One page handler's bug must not stop the room, nor hide.
        reportLater(error);
      }
    }
  }
}

// ------------------------------------------------------------------ helpers

/**
 * `server` (http, https, ws or wss) with the room's path.
 * @param {string | undefined} server
 * @param {string} room
 */
function roomUrl(server, room) {
  if (!server) throw new TypeError("server is needed outside a page");
  const url = new URL(server);
  if (url.protocol === "http:") url.protocol = "ws:";
  else if (url.protocol === "https:") url.protocol = "wss:";
  else if (url.protocol !== "ws:" && url.protocol !== "wss:") {
    throw new TypeError("server must be an http, https, ws or wss URL");
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}/ws/rooms/${room}`;
}

/**
 * The delay before retry number `failures` + 1: doubling from `initialMs`,
 * capped at `maxMs`, with jitter so that a room's viewers dropped together
 * do not all come back at the same moment.
 * @param {number} failures
 * @param {Backoff} backoff
 */
function backoffDelay(failures, { initialMs, maxMs }) {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(failures, 30));
  return jitter(ceiling);
}

/** Somewhere from half of `ms` to all of it. @param {number} ms */
function jitter(ms) {
  return Math.round(ms * (0.5 + Math.random() * 0.5));
}

/**
 * @param {string} id
 * @param {boolean} written
 */
function closedError(id, written) {
  const message = "the room was closed before the gift was answered";
  return new GiftstreamError(
    { type: "error", id, code: "closed", message, temporary: false },
    { outcomeUnknown: written },
  );
}

/**
 * @param {string} id
 * @param {number} limit
 */
function tooLargeError(id, limit) {
  const message = `the gift frame is longer than the server reads (${limit} bytes)`;
  return new GiftstreamError(
    { type: "error", id, code: "frame_too_large", message, temporary: false, limit },
    { outcomeUnknown: false },
  );
}

/**
 * @param {string} id
 * @param {Message} frame
 * @returns {PendingGift}
 */
function newPending(id, frame) {
  /** @type {(ack: GiftAck) => void} */
  let resolve = () => {};
  /** @type {(error: GiftstreamError) => void} */
  let reject = () => {};
  /** @type {Promise<GiftAck>} */
  const answer = new Promise((resolved, rejected) => {
    resolve = resolved;
    reject = rejected;
  });
  /** @type {SentGift} */
  const promise = Object.assign(answer, { requestId: id });
  return { id, frame, promise, resolve, reject, written: false, retries: 0, timer: undefined };
}

/**
 * A send refused before it could go out.
 * @param {string} id
 * @param {Error} error
 * @returns {SentGift}
 */
function refusedSend(id, error) {
  return Object.assign(Promise.reject(error), { requestId: String(id) });
}

/** @param {number} code */
function closeReason(code) {
  switch (code) {
    case 1006:
      return "the connection was lost";
    case 1011:
      return "server error";
    case 1012:
      return "the server is restarting";
    case 4001:
      return "fell too far behind the room";
    case 4401:
      return "the token was revoked";
    default:
      return `closed (${code})`;
  }
}

/**
 * @param {unknown} value
 * @returns {value is Message}
 */
function isMap(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** @param {unknown} error */
function describe(error) {
  return error instanceof Error ? error.message : String(error);
}

/** @param {string | Uint8Array} data */
function byteLength(data) {
  return typeof data === "string" ? utf8Encoder.encode(data).length : data.length;
}

/** @param {unknown} data */
function toBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw new TypeError("a binary frame must arrive as an ArrayBuffer");
}

/** @param {unknown} error */
function reportLater(error) {
  if (typeof globalThis.reportError === "function") {
    globalThis.reportError(error);
  } else {
    setTimeout(() => {
      throw error;
    });
  }
}

// ------------------------------------------------------------------ MessagePack
//
// The few MessagePack types the protocol uses, both ways: maps with string
// keys, arrays, strings, integers (up to 64 bits, read as Number: the
// protocol's numbers stay below 2^53), 64-bit floats (32-bit read too), true,
// false, nil and bin (as Uint8Array). Extension types are refused.

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();
// Deeper than any message; reached only by a value that contains itself.
const MAX_DEPTH = 100;

/**
 * Length headers: a "fix" form holding the length in the type byte when it
 * fits, else a type byte followed by an 8-, 16- or 32-bit length.
 * @typedef {{ fix?: number, fixMax?: number, u8?: number, u16: number, u32: number }} LengthTags
 */
/** @type {LengthTags} */
const STR = { fix: 0xa0, fixMax: 31, u8: 0xd9, u16: 0xda, u32: 0xdb };
/** @type {LengthTags} */
const BIN = { u8: 0xc4, u16: 0xc5, u32: 0xc6 };
/** @type {LengthTags} */
const ARRAY = { fix: 0x90, fixMax: 15, u16: 0xdc, u32: 0xdd };
/** @type {LengthTags} */
const MAP = { fix: 0x80, fixMax: 15, u16: 0xde, u32: 0xdf };

/**
 * The MessagePack encoding of `value`: plain objects (string keys; entries
 * whose value is undefined are left out, as JSON does), arrays, strings,
 * numbers, bigints, booleans, null and Uint8Array / ArrayBuffer (bin).
 * @param {unknown} value
 * @returns {Uint8Array}
 */
export function encodeMsgpack(value) {
  const writer = new ByteWriter();
  writeValue(writer, value, 0);
  return writer.bytes();
}

class ByteWriter {
  #buffer = new Uint8Array(64);
  #view = new DataView(this.#buffer.buffer);
  #length = 0;

  /**
   * The offset of `size` new bytes at the end, growing the buffer as needed
   * (so take the offset before touching the buffer or its view).
   * @param {number} size
   */
  #claim(size) {
    const needed = this.#length + size;
    if (needed > this.#buffer.length) {
      const grown = new Uint8Array(Math.max(needed, this.#buffer.length * 2));
      grown.set(this.#buffer.subarray(0, this.#length));
      this.#buffer = grown;
      this.#view = new DataView(grown.buffer);
    }
    const offset = this.#length;
    this.#length = needed;
    return offset;
  }

  /** @param {number} n */
  u8(n) {
    const offset = this.#claim(1);
    this.#view.setUint8(offset, n);
  }
  /** @param {number} n */
  u16(n) {
    const offset = this.#claim(2);
    this.#view.setUint16(offset, n);
  }
  /** @param {number} n */
  u32(n) {
    const offset = this.#claim(4);
    this.#view.setUint32(offset, n);
  }
  /** @param {bigint} n */
  u64(n) {
    const offset = this.#claim(8);
    this.#view.setBigUint64(offset, n);
  }
  /** @param {number} n */
  i8(n) {
    const offset = this.#claim(1);
    this.#view.setInt8(offset, n);
  }
  /** @param {number} n */
  i16(n) {
    const offset = this.#claim(2);
    this.#view.setInt16(offset, n);
  }
  /** @param {number} n */
  i32(n) {
    const offset = this.#claim(4);
    this.#view.setInt32(offset, n);
  }
  /** @param {bigint} n */
  i64(n) {
    const offset = this.#claim(8);
    this.#view.setBigInt64(offset, n);
  }
  /** @param {number} n */
  f64(n) {
    const offset = this.#claim(8);
    this.#view.setFloat64(offset, n);
  }
  /** @param {Uint8Array} bytes */
  raw(bytes) {
    const offset = this.#claim(bytes.length);
    this.#buffer.set(bytes, offset);
  }

  bytes() {
    return this.#buffer.slice(0, this.#length);
  }
}

/**
 * @param {ByteWriter} writer
 * @param {unknown} value
 * @param {number} depth
 */
function writeValue(writer, value, depth) {
  if (value === null || value === undefined) return writer.u8(0xc0);
  switch (typeof value) {
    case "boolean":
      return writer.u8(value ? 0xc3 : 0xc2);
    case "number":
      return writeNumber(writer, value);
    case "bigint":
      return writeBigInt(writer, value);
    case "string":
      return writeBytes(writer, utf8Encoder.encode(value), STR);
    case "object":
      break;
    default:
      throw new TypeError(`MessagePack cannot hold a ${typeof value}`);
  }
  if (depth >= MAX_DEPTH) throw new RangeError("MessagePack: nested too deep (a cycle?)");
  if (value instanceof Uint8Array) return writeBytes(writer, value, BIN);
  if (value instanceof ArrayBuffer) return writeBytes(writer, new Uint8Array(value), BIN);
  if (Array.isArray(value)) {
    writeLength(writer, value.length, ARRAY);
    for (const item of value) writeValue(writer, item, depth + 1);
    return;
  }
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) {
    throw new TypeError("MessagePack: only plain objects become maps");
  }
  const entries = Object.entries(value).filter(([, item]) => item !== undefined);
  writeLength(writer, entries.length, MAP);
  for (const [key, item] of entries) {
    writeBytes(writer, utf8Encoder.encode(key), STR);
    writeValue(writer, item, depth + 1);
  }
}

/**
 * Integers in the smallest form that holds them; other numbers (fractions,
 * -0, NaN, infinities, integers beyond 64 bits) as 64-bit floats.
 * @param {ByteWriter} writer
 * @param {number} value
 */
function writeNumber(writer, value) {
  if (!Number.isInteger(value) || Object.is(value, -0) || Math.abs(value) >= 2 ** 64) {
    writer.u8(0xcb);
    writer.f64(value);
  } else if (value >= 0) {
    writeUnsigned(writer, value);
  } else if (value >= -(2 ** 63)) {
    writeNegative(writer, value);
  } else {
    writer.u8(0xcb);
    writer.f64(value);
  }
}

/**
 * @param {ByteWriter} writer
 * @param {number} value a whole number from 0 to 2^64 - 1
 */
function writeUnsigned(writer, value) {
  if (value < 0x80) {
    writer.u8(value);
  } else if (value < 0x100) {
    writer.u8(0xcc);
    writer.u8(value);
  } else if (value < 0x10000) {
    writer.u8(0xcd);
    writer.u16(value);
  } else if (value < 0x100000000) {
    writer.u8(0xce);
    writer.u32(value);
  } else {
    writer.u8(0xcf);
    writer.u64(BigInt(value));
  }
}

/**
 * @param {ByteWriter} writer
 * @param {number} value a whole number from -2^63 to -1
 */
function writeNegative(writer, value) {
  if (value >= -32) {
    writer.i8(value); // negative fixint: the type byte is the number
  } else if (value >= -0x80) {
    writer.u8(0xd0);
    writer.i8(value);
  } else if (value >= -0x8000) {
    writer.u8(0xd1);
    writer.i16(value);
  } else if (value >= -0x80000000) {
    writer.u8(0xd2);
    writer.i32(value);
  } else {
    writer.u8(0xd3);
    writer.i64(BigInt(value));
  }
}

/**
 * @param {ByteWriter} writer
 * @param {bigint} value
 */
function writeBigInt(writer, value) {
  if (value >= -(2n ** 63n) && value <= BigInt(Number.MAX_SAFE_INTEGER)) {
    if (value >= BigInt(Number.MIN_SAFE_INTEGER)) return writeNumber(writer, Number(value));
    writer.u8(0xd3);
    return writer.i64(value);
  }
  if (value > 0n && value < 2n ** 64n) {
    writer.u8(0xcf);
    return writer.u64(value);
  }
  throw new RangeError("MessagePack: an integer beyond 64 bits");
}

/**
 * @param {ByteWriter} writer
 * @param {Uint8Array} bytes
 * @param {LengthTags} tags
 */
function writeBytes(writer, bytes, tags) {
  writeLength(writer, bytes.length, tags);
  writer.raw(bytes);
}

/**
 * @param {ByteWriter} writer
 * @param {number} length
 * @param {LengthTags} tags
 */
function writeLength(writer, length, { fix = 0, fixMax = -1, u8, u16, u32 }) {
  if (length <= fixMax) {
    writer.u8(fix | length);
  } else if (u8 !== undefined && length < 0x100) {
    writer.u8(u8);
    writer.u8(length);
  } else if (length < 0x10000) {
    writer.u8(u16);
    writer.u16(length);
  } else if (length < 0x100000000) {
    writer.u8(u32);
    writer.u32(length);
  } else {
    throw new RangeError("MessagePack: longer than 2^32 - 1");
  }
}

/**
 * The value of one MessagePack document. Maps become plain objects, bin
 * becomes Uint8Array, 64-bit integers become Number. Throws a RangeError on
 * truncated input, trailing bytes and extension types.
 * @param {Uint8Array | ArrayBuffer} input
 * @returns {unknown}
 */
export function decodeMsgpack(input) {
  const reader = new ByteReader(input instanceof ArrayBuffer ? new Uint8Array(input) : input);
  const value = readValue(reader, 0);
  if (!reader.finished) throw new RangeError("MessagePack: bytes after the value");
  return value;
}

class ByteReader {
  #bytes;
  #view;
  #offset = 0;

  /** @param {Uint8Array} bytes */
  constructor(bytes) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get finished() {
    return this.#offset === this.#bytes.length;
  }

  /** The offset of the next `size` bytes, which are then read. @param {number} size */
  #take(size) {
    const offset = this.#offset;
    if (offset + size > this.#bytes.length) throw new RangeError("MessagePack: truncated");
    this.#offset += size;
    return offset;
  }

  u8() {
    return this.#view.getUint8(this.#take(1));
  }
  u16() {
    return this.#view.getUint16(this.#take(2));
  }
  u32() {
    return this.#view.getUint32(this.#take(4));
  }
  u64() {
    return Number(this.#view.getBigUint64(this.#take(8)));
  }
  i8() {
    return this.#view.getInt8(this.#take(1));
  }
  i16() {
    return this.#view.getInt16(this.#take(2));
  }
  i32() {
    return this.#view.getInt32(this.#take(4));
  }
  i64() {
    return Number(this.#view.getBigInt64(this.#take(8)));
  }
  f32() {
    return this.#view.getFloat32(this.#take(4));
  }
  f64() {
    return this.#view.getFloat64(this.#take(8));
  }
  /** @param {number} size */
  bytes(size) {
    const offset = this.#take(size);
    return this.#bytes.subarray(offset, offset + size);
  }
}

/**
 * @param {ByteReader} reader
 * @param {number} depth
 * @returns {unknown}
 */
function readValue(reader, depth) {
  if (depth > MAX_DEPTH) throw new RangeError("MessagePack: nested too deep");
  const tag = reader.u8();
  if (tag <= 0x7f) return tag;
  if (tag >= 0xe0) return tag - 0x100;
  if (tag >= 0xa0 && tag <= 0xbf) return readString(reader, tag & 0x1f);
  if (tag >= 0x90 && tag <= 0x9f) return readArray(reader, tag & 0x0f, depth);
  if (tag >= 0x80 && tag <= 0x8f) return readMap(reader, tag & 0x0f, depth);
  switch (tag) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xc4:
      return reader.bytes(reader.u8()).slice();
    case 0xc5:
      return reader.bytes(reader.u16()).slice();
    case 0xc6:
      return reader.bytes(reader.u32()).slice();
    case 0xca:
      return reader.f32();
    case 0xcb:
      return reader.f64();
    case 0xcc:
      return reader.u8();
    case 0xcd:
      return reader.u16();
    case 0xce:
      return reader.u32();
    case 0xcf:
      return reader.u64();
    case 0xd0:
      return reader.i8();
    case 0xd1:
      return reader.i16();
    case 0xd2:
      return reader.i32();
    case 0xd3:
      return reader.i64();
    case 0xd9:
      return readString(reader, reader.u8());
    case 0xda:
      return readString(reader, reader.u16());
    case 0xdb:
      return readString(reader, reader.u32());
    case 0xdc:
      return readArray(reader, reader.u16(), depth);
    case 0xdd:
      return readArray(reader, reader.u32(), depth);
    case 0xde:
      return readMap(reader, reader.u16(), depth);
    case 0xdf:
      return readMap(reader, reader.u32(), depth);
    default:
      throw new RangeError(`MessagePack: type 0x${tag.toString(16)} is not read here`);
  }
}

/**
 * @param {ByteReader} reader
 * @param {number} size
 */
function readString(reader, size) {
  return utf8Decoder.decode(reader.bytes(size));
}

/**
 * @param {ByteReader} reader
 * @param {number} length
 * @param {number} depth
 */
function readArray(reader, length, depth) {
  const items = [];
  for (let i = 0; i < length; i += 1) items.push(readValue(reader, depth + 1));
  return items;
}

/**
 * @param {ByteReader} reader
 * @param {number} size
 * @param {number} depth
 */
function readMap(reader, size, depth) {
  /** @type {Record<string, unknown>} */
  const map = {};
  for (let i = 0; i < size; i += 1) {
    const key = String(readValue(reader, depth + 1));
    // defineProperty, not assignment: a key "__proto__" must stay a key.
    Object.defineProperty(map, key, {
      value: readValue(reader, depth + 1),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return map;
}
