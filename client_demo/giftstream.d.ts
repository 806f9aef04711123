// Types of giftstream.js, the browser client for a giftstream room
// (docs/protocol.md, version 1). The module's JSDoc says the same.

export type Codec = "msgpack" | "json";
export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

/** Where a page is in a room's sequence: enough to resume after a reload. */
export interface Position {
  /** The last room event delivered (0: none yet). */
  seq: number;
  /** The run of the room's sequence `seq` belongs to. */
  epoch: string | null;
}

type MaybeToken = string | null | undefined;
/**
 * A token, or a function that gives one (called before each connection, so
 * that a page can hand over a fresh token). No token connects watch-only.
 */
export type TokenSource = MaybeToken | (() => MaybeToken | Promise<MaybeToken>);

export interface Backoff {
  /** The delay before the first retry (default 500 ms). */
  initialMs: number;
  /** No delay is longer (default 15 s). */
  maxMs: number;
}

export interface ConnectOptions {
  /** The room id: the creator's user id. */
  room: string;
  /** The server's origin, `https://…` or `wss://…` (default: the page's). */
  server?: string;
  token?: TokenSource;
  /**
   * The room's overlay key (from the creator's page), instead of a token:
   * the socket is the creator's overlay, watch-only. Not with `token`.
   */
  key?: string | null;
  /** "msgpack" (the default) or "json". */
  codec?: Codec;
  /** A position kept from an earlier page load. */
  resumeFrom?: Position;
  backoff?: Partial<Backoff>;
  /** How often to ping an open socket (default 20000; 0: never). */
  heartbeatMs?: number;
  /** The WebSocket class to use (default: the browser's). */
  WebSocket?: typeof WebSocket;
}

export interface GiftOptions {
  /** The user confirmed a send worth more than `limits.confirm_above_coins`. */
  confirm?: boolean;
  /** A request id; by default a new one. The `requestId` of a failed send retries it. */
  id?: string;
}

export interface Welcome {
  type: "welcome";
  protocol: number;
  room: string;
  you: {
    user: string | null;
    role: "viewer" | "creator" | "overlay" | "anonymous";
    can_send: boolean;
  };
  /** The user's coins; null when watch-only. */
  balance: number | null;
  viewers: number;
  last_seq: number;
  epoch: string;
  resume: { status: "ok"; replayed: number } | { status: "resync"; reason: string } | null;
  live: boolean;
  stream_id: string | null;
  limits: {
    max_count: number;
    max_frame_bytes: number;
    gift_rate_per_second: number;
    gift_rate_burst: number;
    confirm_above_coins: number;
    max_send_coins: number;
  };
}

export interface WelcomeInfo {
  /** Not the room's first welcome. */
  reconnected: boolean;
  /** Events went by that will not be delivered: read the room's state again. */
  missed: boolean;
}

export interface StateDetail {
  /** Why the connection ended, for people. */
  reason?: string;
  closeCode?: number;
  /** When the next attempt starts. */
  retryInMs?: number;
  /** Connections lost or refused in a row. */
  failures?: number;
}

/** A gift was paid for (`duplicate`: by an earlier attempt of the same id). */
export interface GiftAck {
  type: "ack";
  id: string;
  /** The sender's coins right after the debit. */
  balance: number;
  coins: number;
  /** The room event showing the gift. */
  seq: number;
  duplicate: boolean;
}

/** The answer to come, and the send's request id at once. */
export type SentGift = Promise<GiftAck> & { requestId: string };

export interface GiftEvent {
  type: "gift";
  seq: number;
  room: string;
  sender: string;
  gift: string;
  count: number;
  coins: number;
  tier: "small" | "medium" | "large" | "fullscreen";
  /** Ms since the Unix epoch. */
  ts: number;
  combo: { id: string; count: number } | null;
  stream_id: string | null;
  fan_level: number;
  fan_badge: string | null;
  /** The id of the send that paid for it. */
  request_id: string;
  /** Added by the library: sent from this page load by the signed-in user. */
  own: boolean;
}

export interface ComboEndEvent {
  type: "combo_end";
  seq: number;
  room: string;
  sender: string;
  gift: string;
  /** The streak id (`combo.id` of its gift events). */
  combo: string;
  count: number;
  ts: number;
  stream_id: string | null;
}

export interface StreamEvent {
  type: "stream_started" | "stream_ended";
  seq: number;
  room: string;
  stream_id: string;
  started: number;
  ended?: number;
  reason?: "ended" | "idle";
  ts: number;
}

export interface Goal {
  goal_id: string;
  title: string;
  kind: "coins" | "gift";
  gift_id: string | null;
  target: number;
  progress: number;
  created: number;
  reached: number | null;
}

export interface GoalReachedEvent {
  type: "goal_reached";
  seq: number;
  room: string;
  ts: number;
  goal: Goal;
}

export interface GoalMessage {
  type: "goal";
  room: string;
  goal: Goal | null;
}

export interface LeaderboardMessage {
  type: "leaderboard";
  room: string;
  period: string;
  stream_id: string | null;
  entries: { rank: number; user: string | null; name: string; coins: number; fan_level: number }[];
}

export interface ViewersMessage {
  type: "viewers";
  count: number;
}

/** The arguments each event's handlers get. */
export interface RoomEvents {
  gift: [GiftEvent];
  combo_end: [ComboEndEvent];
  stream_started: [StreamEvent];
  stream_ended: [StreamEvent];
  goal: [GoalMessage];
  goal_reached: [GoalReachedEvent];
  leaderboard: [LeaderboardMessage];
  viewers: [ViewersMessage];
  welcome: [Welcome, WelcomeInfo];
  state: [ConnectionState, StateDetail];
  /** An error frame that answers no send of this page. */
  error: [GiftstreamError];
}

/**
 * A refusal from the server, or the library's own `closed` (the room was
 * closed before the send was answered) and `frame_too_large`. Extra fields
 * of the frame are copied on.
 */
export class GiftstreamError extends Error {
  constructor(
    frame: { code: string; [field: string]: unknown },
    options?: { outcomeUnknown?: boolean },
  );
  readonly name: "GiftstreamError";
  /** A stable code from docs/protocol.md, "Error codes". */
  readonly code: string;
  /** The same request may succeed later, unchanged. */
  readonly temporary: boolean;
  readonly requestId: string | null;
  /** The gift may have been paid for: retry with the same id to learn. */
  readonly outcomeUnknown: boolean;
  /** `confirm_required`: what the send would cost, and the threshold. */
  readonly coins?: number;
  readonly threshold?: number;
  /** `send_limit_exceeded`. */
  readonly limit?: number;
  /** `budget_exceeded`. */
  readonly remaining?: number;
  /** `fan_level_required`. */
  readonly required?: number;
  readonly level?: number;
  readonly [field: string]: unknown;
}

export class GiftstreamRoom {
  constructor(options: ConnectOptions);
  readonly room: string;
  readonly state: ConnectionState;
  /** The latest welcome, or null before the first. */
  readonly welcome: Welcome | null;
  /** The last room event delivered; keep it to resume after a reload. */
  readonly position: Position;
  /** Calls `handler` for each event of `type`; returns a function that stops it. */
  on<K extends keyof RoomEvents>(type: K, handler: (...args: RoomEvents[K]) => void): () => void;
  /** Any other message type the server sends, by its name. */
  on(type: string, handler: (message: Record<string, unknown>) => void): () => void;
  off<K extends keyof RoomEvents>(type: K, handler: (...args: RoomEvents[K]) => void): void;
  off(type: string, handler: (message: Record<string, unknown>) => void): void;
  /** Sends `count` (default 1) of `gift`; waits while the room is not open. */
  sendGift(gift: string, count?: number, options?: GiftOptions): SentGift;
  /** Closes for good: no reconnects; unanswered sends are rejected (`closed`). */
  close(): void;
}

/** Connects to a room and keeps it connected until `close()`. */
export function connect(options: ConnectOptions): GiftstreamRoom;

export const SUBPROTOCOLS: {
  readonly msgpack: "giftstream.v1.msgpack";
  readonly json: "giftstream.v1.json";
};

/** MessagePack: plain objects, arrays, strings, numbers, bigints, booleans, null, bin. */
export function encodeMsgpack(value: unknown): Uint8Array;
/** Maps become plain objects, bin Uint8Array, 64-bit integers Number. */
export function decodeMsgpack(input: Uint8Array | ArrayBuffer): unknown;
