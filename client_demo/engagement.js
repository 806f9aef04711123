// What informs a room besides its gifts: the top gifters and the creator's
// goal. Shared by the viewer page, the overlay's widgets and the creator page.
//
// Both are read over HTTP when a page opens (and after a reconnect: the
// room's `leaderboard` and `goal` messages are never replayed), then kept
// up to date by those messages. An answer to a question asked before the
// latest message may predate it, so it is not drawn over it.

import { api, el, formatCoins, plural, userColour } from "./common.js";
import { giftPicture } from "./gifts.js";
import { t } from "./i18n.js";

export const BOARD_PERIODS = ["stream", "day", "all"];

// ------------------------------------------------------------------ top gifters

/**
 * A room's top gifters for one period (`stream`, `day` or `all`), as last
 * known. `onChange(board)` with `{period, entries}` after each change.
 * Only the stream's ranking comes as messages; a message while another
 * period is shown says that period changed too (a gift counts in all
 * three), so that one is read again.
 */
export class RoomBoard {
  constructor(room, { period = "stream", onChange = () => {} } = {}) {
    this.room = room;
    this.period = period;
    this.onChange = onChange;
    this.entries = [];
    // Bumped by each message and each change of period: older answers are dropped.
    this.changes = 0;
  }

  /** Shows another period: read at once. */
  choose(period) {
    if (!BOARD_PERIODS.includes(period) || period === this.period) return;
    this.period = period;
    this.changes += 1;
    this.load();
  }

  /** Reads the shown period; an unanswered question changes nothing. */
  async load() {
    const changes = this.changes;
    const query = new URLSearchParams({ period: this.period });
    let answer;
    try {
      answer = await api(`/api/rooms/${encodeURIComponent(this.room)}/leaderboard?${query}`);
    } catch {
      return;
    }
    if (changes !== this.changes) return;
    this.show(answer.entries || []);
  }

  /** A room's `leaderboard` message (the stream's ranking). */
  message(message) {
    if (message.period !== "stream" || !Array.isArray(message.entries)) return;
    this.changes += 1;
    if (this.period === "stream") this.show(message.entries);
    else this.load();
  }

  show(entries) {
    this.entries = entries;
    this.onChange({ period: this.period, entries });
  }
}

/**
 * The rows of a ranking, at most `limit`: rank, name, a fan badge ("Lv 3")
 * for a fan club member, and coins. The row of `me` (the signed-in user) is
 * marked; an anonymous gifter's cannot be, not even their own.
 */
export function boardRows(entries, { me = null, limit = 10 } = {}) {
  return entries.slice(0, limit).map((entry) => boardRow(entry, me !== null && entry.user === me));
}

function boardRow(entry, own) {
  const dataset = { rank: String(entry.rank), user: entry.user || "", coins: String(entry.coins) };
  if (own) dataset.own = "true";
  const level = Number(entry.fan_level) || 0;
  // An anonymous gifter has no user id to colour their name by (nor a name in any language).
  const name = entry.user
    ? el("span", { class: "board-name", style: `color:${userColour(entry.user)}` }, entry.name)
    : el("span", { class: "board-name anonymous" }, t("board.anonymous"));
  return el(
    "li",
    { class: `board-row${own ? " own" : ""}`, "aria-current": own ? "true" : null, dataset },
    el("span", { class: "board-rank" }, String(entry.rank)),
    name,
    level > 0 ? el("span", { class: "fan-badge", title: t("board.fanLevel", { level }) }, `Lv ${level}`) : null,
    el(
      "span",
      { class: "board-coins", title: plural(entry.coins, "coin") },
      el("span", { class: "coin", "aria-hidden": "true" }),
      formatCoins(entry.coins),
    ),
  );
}

// ------------------------------------------------------------------ the goal

/**
 * A room's goal as last known (null: none), from GET /api/rooms/{room}/goal,
 * the room's `goal` messages and the creator's own answers. `onChange(goal)`
 * after each change.
 */
export class RoomGoal {
  constructor(room, { onChange = () => {} } = {}) {
    this.room = room;
    this.onChange = onChange;
    this.goal = null;
    this.known = false;
    this.changes = 0;
  }

  /** Reads the goal; an unanswered question (or a server without goals) changes nothing. */
  async load() {
    const changes = this.changes;
    let answer;
    try {
      answer = await api(`/api/rooms/${encodeURIComponent(this.room)}/goal`);
    } catch {
      return;
    }
    if (changes !== this.changes) return;
    this.show(answer.goal || null);
  }

  /** A `goal` message, or the creator's answer to setting or clearing it: newer than any read. */
  changed(goal) {
    this.changes += 1;
    this.show(goal || null);
  }

  /**
   * A `goal_reached` event: marks the goal shown as reached. A replayed one
   * (after a reconnect) may be for a goal since replaced: that one is left.
   */
  reached(goal) {
    if (!goal || !this.goal || goal.goal_id !== this.goal.goal_id) return;
    this.show({ ...goal, reached: goal.reached || this.goal.reached || Date.now() });
  }

  show(goal) {
    const known = this.goal;
    // Counted by two server processes, progress may arrive out of order: a
    // goal's progress never goes back, and once reached it stays reached.
    if (goal && known && goal.goal_id === known.goal_id) {
      const progress = Math.max(goal.progress, known.progress);
      goal = { ...goal, progress, reached: goal.reached || known.reached };
    }
    this.goal = goal;
    this.known = true;
    this.onChange(goal);
  }
}

/**
 * Draws `goal` in `box` (hidden for none): its title, progress of target,
 * and a bar filled that far. A gift goal names its gift from `catalog`.
 * The parts are made once, so the bar can grow from where it was.
 */
export function drawGoal(box, goal, catalog) {
  box.hidden = !goal;
  if (!goal) {
    box.dataset.goal = "";
    return;
  }
  if (!box.querySelector(".goal-fill")) box.replaceChildren(...goalParts());
  const target = Math.max(1, goal.target);
  const filled = Math.min(goal.progress, target);
  Object.assign(box.dataset, {
    goal: goal.goal_id,
    kind: goal.kind,
    progress: String(goal.progress),
    target: String(goal.target),
    reached: String(Boolean(goal.reached)),
  });
  const gift = goal.kind === "gift" ? goal.gift_id : null;
  box.querySelector(".goal-picture").replaceChildren(
    ...(gift ? [giftPicture(gift, catalog.byId.get(gift)?.tier || "small", catalog.name(gift))] : []),
  );
  box.querySelector(".goal-title").textContent = goal.title;
  box.querySelector(".goal-numbers").textContent = goalNumbers(goal, catalog);
  box.querySelector(".goal-done").hidden = !goal.reached;
  box.querySelector(".goal-done").textContent = t("goal.reached");
  const track = box.querySelector(".goal-track");
  track.setAttribute("aria-valuemax", String(target));
  track.setAttribute("aria-valuenow", String(filled));
  track.setAttribute("aria-valuetext", goalNumbers(goal, catalog));
  box.querySelector(".goal-fill").style.width = `${((filled / target) * 100).toFixed(2)}%`;
}

function goalParts() {
  return [
    el(
      "div",
      { class: "goal-head" },
      el("span", { class: "goal-picture" }),
      el("span", { class: "goal-title" }),
      el("span", { class: "goal-done", hidden: true }, t("goal.reached")),
      el("span", { class: "goal-numbers" }),
    ),
    el(
      "div",
      { class: "goal-track", role: "progressbar", "aria-valuemin": "0" },
      el("div", { class: "goal-fill" }),
    ),
  ];
}

/** "120 / 500 coins"; for a gift goal, "Rose 37 / 100". */
export function goalNumbers(goal, catalog) {
  if (goal.kind === "gift") {
    return `${catalog.name(goal.gift_id)} ${formatCoins(goal.progress)} / ${formatCoins(goal.target)}`;
  }
  return `${formatCoins(goal.progress)} / ${plural(goal.target, "coin")}`;
}
