// The room's live feed, and a queue that plays shows one after another.

import { el, plural, userColour } from "./common.js";
import { giftPicture } from "./gifts.js";
import { nodes, t } from "./i18n.js";

/**
 * The fan club badge of a gift event's sender ("carol Lv 3"), or null for
 * one who is not a member (`fan_level` 0).
 */
export function fanBadge(event) {
  const level = Number(event.fan_level) || 0;
  if (level <= 0) return null;
  const club = event.fan_badge || "";
  return el(
    "span",
    {
      class: "fan-badge gift-fan-badge",
      title: t("fan.badgeTitle", { club, level }),
      dataset: { level: String(level), club },
    },
    club ? `${club} Lv ${level}` : `Lv ${level}`,
  );
}

/** "alice [badge] sent Rose": the sender (and badge) and the gift, in the page's words. */
export function sentLine(who, gift) {
  return nodes("feed.sent", { sender: who, gift });
}

/**
 * A list of the room's gifts, newest first in the DOM (the CSS shows it
 * bottom-up, like a chat). A streak is ONE row per combo id whose counter
 * grows ("Rose x12") until its `combo_end`; every other gift is a row of
 * its own. At most `limit` rows are kept.
 */
export class Feed {
  constructor(list, catalog, { limit = 60, showCoins = false, me = null } = {}) {
    this.list = list;
    this.catalog = catalog;
    this.limit = limit;
    this.showCoins = showCoins;
    this.me = me;
  }

  /** Shows a room event; the row it went to (null for an event the feed does not show). */
  add(event) {
    if (event.type === "gift") return this.gift(event);
    if (event.type === "combo_end") return this.comboEnd(event);
    return null;
  }

  gift(event) {
    const combo = event.combo && typeof event.combo.id === "string" ? event.combo : null;
    let row = combo ? this.comboRow(combo.id) : null;
    if (row) {
      // Newer seqs only: a running total never goes back.
      if (combo.count > Number(row.dataset.count)) this.setCount(row, combo.count, event);
      this.raiseBadge(row, event);
    } else {
      row = this.row(event, combo ? combo.count : event.count);
      if (combo) row.dataset.combo = combo.id;
    }
    row.dataset.seq = event.seq;
    this.prepend(row);
    return row;
  }

  comboEnd(event) {
    let row = this.comboRow(event.combo);
    if (!row) {
      // Joined in the middle of a streak whose gifts we never saw.
      row = this.row({ ...event, tier: "small", coins: null }, event.count);
      row.dataset.combo = event.combo;
      this.prepend(row);
    }
    if (event.count >= Number(row.dataset.count)) this.setCount(row, event.count, null);
    row.classList.add("ended");
    row.dataset.ended = "true";
    row.querySelector(".streak-note").textContent = t("feed.streakEnded");
    return row;
  }

  /** The rows shown again in the page's language (after a switch), gift names from `catalog`. */
  relabel(catalog) {
    this.catalog = catalog;
    for (const row of this.list.querySelectorAll(".feed-item")) {
      const text = row.querySelector(".feed-text");
      const gift = text.querySelector(".gift-name");
      const note = text.querySelector(".streak-note");
      gift.textContent = catalog.name(row.dataset.gift);
      note.textContent = row.dataset.ended === "true" ? t("feed.streakEnded") : "";
      text.replaceChildren(...sentLine(text.querySelector(".feed-who"), gift), note);
      for (const badge of row.querySelectorAll(".gift-fan-badge")) {
        badge.title = t("fan.badgeTitle", { club: badge.dataset.club, level: badge.dataset.level });
      }
      const coins = row.querySelector(".coins");
      if (coins && coins.dataset.value) coins.textContent = plural(Number(coins.dataset.value), "coin");
    }
  }

  /** A streak's later send may come from a higher fan level than its first. */
  raiseBadge(row, event) {
    const badge = fanBadge(event);
    const shown = row.querySelector(".gift-fan-badge");
    if (!badge || (shown && Number(shown.dataset.level) >= Number(badge.dataset.level))) return;
    if (shown) shown.replaceWith(badge);
    else row.querySelector(".feed-who").append(" ", badge);
  }

  /** A line in the feed that is not a gift (a gap while offline, say); `kind` names it. */
  note(text, kind = null) {
    this.prepend(el("li", { class: "feed-note", dataset: kind ? { note: kind } : {} }, text));
  }

  comboRow(id) {
    return this.list.querySelector(`li[data-combo="${CSS.escape(id)}"]`);
  }

  row(event, count) {
    const mine = this.me !== null && event.sender === this.me;
    const badge = fanBadge(event);
    const who = el(
      "span",
      { class: "feed-who" },
      el("b", { class: "sender", style: `color:${userColour(event.sender)}` }, event.sender),
      badge ? " " : null,
      badge,
    );
    const row = el(
      "li",
      {
        class: `feed-item tier-${event.tier || "small"}${mine ? " mine" : ""}`,
        dataset: { sender: event.sender, gift: event.gift, count: String(count) },
      },
      giftPicture(event.gift, event.tier, this.catalog.name(event.gift)),
      el(
        "span",
        { class: "feed-text" },
        ...sentLine(who, el("span", { class: "gift-name" }, this.catalog.name(event.gift))),
        el("span", { class: "streak-note" }, ""),
      ),
      el("span", { class: "count" }, `x${count}`),
    );
    if (this.showCoins && event.coins !== null && event.coins !== undefined) {
      row.append(el("span", { class: "coins", dataset: { value: String(event.coins) } }, plural(event.coins, "coin")));
    }
    return row;
  }

  setCount(row, count, event) {
    row.dataset.count = String(count);
    const counter = row.querySelector(".count");
    counter.textContent = `x${count}`;
    // Restart the bump animation on every growth.
    counter.classList.remove("bump");
    void counter.offsetWidth;
    counter.classList.add("bump");
    if (event && this.showCoins) {
      const coins = row.querySelector(".coins");
      const unit = event.count > 0 ? event.coins / event.count : 0;
      if (coins) {
        coins.dataset.value = String(unit * count);
        coins.textContent = plural(unit * count, "coin");
      }
    }
  }

  prepend(row) {
    this.list.prepend(row);
    while (this.list.children.length > this.limit) this.list.lastElementChild.remove();
  }
}

/**
 * Shows that take the stage one at a time. Nothing pushed is ever dropped;
 * `compare` (optional) orders what waits, e.g. bigger gifts first.
 * `play(item)` returns a promise that settles when the show is over.
 */
export class ShowQueue {
  constructor({ play, compare = null, onChange = () => {} }) {
    this.play = play;
    this.compare = compare;
    this.onChange = onChange;
    this.waiting = [];
    this.current = null;
  }

  get length() {
    return this.waiting.length;
  }

  push(item) {
    this.waiting.push(item);
    if (this.compare) this.waiting.sort(this.compare); // stable: ties keep arrival order
    this.onChange(this);
    this.pump();
  }

  find(predicate) {
    if (this.current && predicate(this.current)) return this.current;
    return this.waiting.find(predicate) || null;
  }

  async pump() {
    if (this.current) return;
    while (this.waiting.length) {
      this.current = this.waiting.shift();
      this.onChange(this);
      try {
        await this.play(this.current);
      } catch (error) {
        console.error("a show failed", error);
      }
      this.current = null;
    }
    this.onChange(this);
  }
}
