// The streamer's overlay: /overlay.html?room=carol&key=<overlay key>
//
// URL parameters:
//   room    the creator's room (required)
//   key     the overlay key from the creator page (required)
//   min     coins: gifts worth less are not shown (a streak shows once its
//           running value reaches it); default 0
//   sound   1: play a chime per tier when an alert or a streak starts
//   hold    a factor on how long alerts stay (2 = twice as long); default 1
//   widget  instead of the alerts, one widget: `leaderboard` (the stream's
//           top five gifters) or `goal` (the creator's goal, filling live)
//   lang    en or zh-CN; default: the browser's languages (OBS's, there).
//           The overlay keeps no choice of its own: it has no switcher.
//
// Alerts play one at a time, bigger gifts first. A streak is one growing
// counter, never one alert per send. The overlay's place in the room (the
// last seq handled and its epoch) is kept in localStorage, per room: after a
// reconnect, or OBS reloading the source (hiding and showing it), it resumes
// from there, so what was missed meanwhile plays and what was shown does not.
// A creator's test alert (seq 0) plays like a gift, whatever `min` says.
// While one waits behind other alerts the overlay says so ("Test alert
// queued: 2 alerts ahead"), and it tells a creator page open in the same
// browser whether the test alert is queued, showing or shown.
//
// A widget shows nothing else: no alerts, streaks or sounds. It reads its
// state over HTTP at start and after each reconnect, and follows the room's
// `leaderboard` or `goal` messages meanwhile. It keeps no place in the room:
// its source and the alerts' may share one browser's storage in OBS, and the
// alerts' place must stay the alerts' own.

import {
  ID_PATTERN,
  RoomSocket,
  api,
  el,
  numberParam,
  overlayChannel,
  param,
  plural,
  sleep,
  testAlertKey,
} from "./common.js";
import { RoomBoard, RoomGoal, boardRows, drawGoal } from "./engagement.js";
import { ShowQueue, fanBadge, sentLine } from "./feed.js";
import { Catalog, giftPicture } from "./gifts.js";
import { language, startLanguage, t } from "./i18n.js";

startLanguage({ remember: false });

const room = param("room");
const key = param("key");
const minCoins = numberParam("min", 0);
const hold = Math.max(0.1, numberParam("hold", 1));
const withSound = param("sound") === "1";
const RANK = { small: 0, medium: 1, large: 2, fullscreen: 3 };
const ALERT_MS = { small: 3000, medium: 5000, large: 7000, fullscreen: 10000 };
// A streak whose combo_end never came (missed while offline) goes after this.
const STREAK_IDLE_MS = 15000;
const MAX_STREAKS = 5;
const POSITION_STORE = `giftstream:overlay:${room}:position`;
const TESTS_REMEMBERED = 10;
const widget = param("widget");
const WIDGETS = new Set(["leaderboard", "goal"]);
// Gifters the leaderboard widget shows.
const BOARD_ROWS = 5;
// How long "goal reached" stays under the goal widget's bar, times `hold`.
const CELEBRATION_MS = 10000;

const $ = (selector) => document.querySelector(selector);
let catalog = new Catalog();
const streaks = new Map();
// A widget plays no chimes.
const sounds = withSound && !widget ? loadSounds() : {};
let shown = 0;
// Test alerts by key: {key, state: "queued" | "showing" | "shown", ahead}.
const testAlerts = new Map();
const changedTests = new Set();
const channel = room && key ? overlayChannel(room) : null;

const alerts = new ShowQueue({
  play: playAlert,
  // Bigger gifts first; equal ones by value, then in room order.
  compare: (a, b) => RANK[b.tier] - RANK[a.tier] || b.coins - a.coins || a.seq - b.seq,
  onChange: followTests,
});

const board = new RoomBoard(room, { onChange: showBoard });
const roomGoal = new RoomGoal(room, { onChange: (goal) => drawGoal($("#goal"), goal, catalog) });

const socket = widget
  ? new RoomSocket({
      room,
      key,
      onState: showState,
      onWelcome: widgetWelcome,
      onEvent: widgetEvent,
      // Each widget follows its own messages only.
      onLeaderboard: widget === "leaderboard" ? (message) => board.message(message) : null,
      onGoal: widget === "goal" ? (message) => roomGoal.changed(message.goal) : null,
    })
  : new RoomSocket({
      room,
      key,
      position: loadPosition(),
      onState: showState,
      onWelcome: () => {},
      onEvent: roomEvent,
      onTestAlert: (event) => alerts.push({ ...event, test: true, testKey: testAlertKey(event) }),
      onPosition: savePosition,
    });

// ------------------------------------------------------------------ start

async function start() {
  // A room id the server cannot have made is an address cut short too.
  if (!room || !key || !ID_PATTERN.test(room)) {
    showStatus(t("overlay.noKey"));
    return;
  }
  if (widget && !WIDGETS.has(widget)) {
    showStatus(t("overlay.noWidget", { widget }));
    return;
  }
  document.body.dataset.widget = widget || "alerts";
  try {
    catalog = new Catalog(await api(`/api/catalog?${new URLSearchParams({ lang: language() })}`));
  } catch {
    // Gift names fall back to their ids; the alerts still play.
  }
  socket.start();
}

function showState(state, detail) {
  document.body.dataset.state = state;
  if (state === "live") showStatus("");
  // Said only after a few failures: a blip should not flash on stream.
  else if (state === "offline" && detail.failures >= 3) {
    showStatus(t("overlay.reconnecting"));
  }
}

function showStatus(text) {
  $("#status").textContent = text;
  $("#status").hidden = !text;
}

// ------------------------------------------------------------------ events

function roomEvent(event) {
  if (event.type === "combo_end") return endStreak(event);
  if (event.combo && typeof event.combo.id === "string") return streak(event);
  if (event.coins >= minCoins) alerts.push(event);
}

function streak(event) {
  const total = event.count > 0 ? (event.coins / event.count) * event.combo.count : event.coins;
  let item = streaks.get(event.combo.id);
  if (!item) {
    if (total < minCoins) return;
    item = addStreak(event);
  }
  if (event.combo.count > item.count) {
    item.count = event.combo.count;
    const counter = item.row.querySelector(".streak-count");
    counter.textContent = `x${item.count}`;
    counter.classList.remove("bump");
    void counter.offsetWidth;
    counter.classList.add("bump");
    item.row.dataset.count = String(item.count);
  }
  clearTimeout(item.idle);
  item.idle = setTimeout(() => removeStreak(event.combo.id), STREAK_IDLE_MS * hold);
}

function addStreak(event) {
  const name = catalog.name(event.gift);
  const row = el(
    "li",
    { class: `streak tier-${event.tier}`, dataset: { combo: event.combo.id, count: "0" } },
    giftPicture(event.gift, event.tier, name),
    el(
      "span",
      { class: "streak-who" },
      el("span", { class: "streak-sender" }, event.sender),
      el("span", { class: "streak-gift" }, t("overlay.streakGift", { gift: name })),
    ),
    el("span", { class: "streak-count" }, ""),
  );
  $("#streaks").prepend(row);
  const item = { row, count: 0, idle: null };
  streaks.set(event.combo.id, item);
  countShown();
  playSound(event.tier);
  while (streaks.size > MAX_STREAKS) removeStreak(streaks.keys().next().value);
  return item;
}

function endStreak(event) {
  const item = streaks.get(event.combo);
  if (!item) return;
  if (event.count > item.count) {
    item.count = event.count;
    item.row.querySelector(".streak-count").textContent = `x${event.count}`;
    item.row.dataset.count = String(event.count);
  }
  item.row.classList.add("ended");
  item.row.dataset.ended = "true";
  clearTimeout(item.idle);
  item.idle = setTimeout(() => removeStreak(event.combo), 3000);
}

function removeStreak(id) {
  const item = streaks.get(id);
  if (!item) return;
  clearTimeout(item.idle);
  item.row.remove();
  streaks.delete(id);
}

// ------------------------------------------------------------------ widgets

/** Each welcome: the widget's state read afresh (its messages are not replayed). */
function widgetWelcome() {
  if (widget === "leaderboard") {
    $("#board-widget").hidden = false;
    board.load();
  } else {
    roomGoal.load();
  }
}

function widgetEvent(event) {
  // A new stream starts a new ranking.
  if (widget === "leaderboard" && event.type === "stream_started") board.load();
  if (widget === "goal" && event.type === "goal_reached") goalReached(event);
}

function showBoard({ entries }) {
  $("#leaderboard").replaceChildren(...boardRows(entries, { limit: BOARD_ROWS }));
  $("#board-widget .empty").hidden = entries.length > 0;
}

/** The goal is reached (a room event: once): said under the bar for a while. */
function goalReached(event) {
  roomGoal.reached(event.goal);
  const line = $("#goal-celebration");
  line.textContent = t("overlay.goalReached");
  line.dataset.goal = event.goal ? event.goal.goal_id : "";
  line.hidden = false;
  clearTimeout(goalReached.timer);
  goalReached.timer = setTimeout(() => (line.hidden = true), CELEBRATION_MS * hold);
}

// ------------------------------------------------------------------ alerts

async function playAlert(event) {
  const alert = $("#alert");
  const name = catalog.name(event.gift);
  alert.querySelector(".alert-picture").replaceChildren(giftPicture(event.gift, event.tier, name));
  const sender = el("b", { class: "alert-sender" }, event.sender);
  const badge = fanBadge(event);
  const gift = el("span", { class: "alert-gift" }, event.count > 1 ? `${name} x${event.count}` : name);
  const who = badge ? el("span", { class: "alert-who" }, sender, " ", badge) : sender;
  alert.querySelector(".alert-line").replaceChildren(...sentLine(who, gift));
  const worth = plural(event.coins, "coin");
  alert.querySelector(".alert-detail").textContent = event.test ? t("overlay.onlyATest", { worth }) : worth;
  alert.className = `alert tier-${event.tier}${event.test ? " test" : ""}`;
  alert.dataset.seq = String(event.seq);
  alert.dataset.test = event.test ? "true" : "false";
  alert.dataset.tier = event.tier;
  alert.hidden = false;
  countShown();
  playSound(event.tier);
  await sleep((ALERT_MS[event.tier] || 3000) * hold);
  alert.classList.add("leaving");
  await sleep(450);
  alert.hidden = true;
  delete alert.dataset.seq;
  if (event.test) setTest(event.testKey, "shown", 0);
  await sleep(250);
}

// ------------------------------------------------------------------ test alerts

/** After any change to the queue: where each test alert stands in it. */
function followTests(queue) {
  if (queue.current && queue.current.test) setTest(queue.current.testKey, "showing", 0);
  const playing = queue.current ? 1 : 0;
  queue.waiting.forEach((item, index) => {
    if (item.test) setTest(item.testKey, "queued", playing + index);
  });
}

function setTest(testKey, state, ahead) {
  const known = testAlerts.get(testKey);
  if (known && known.state === state && known.ahead === ahead) return;
  testAlerts.delete(testKey);
  testAlerts.set(testKey, { key: testKey, state, ahead });
  while (testAlerts.size > TESTS_REMEMBERED) testAlerts.delete(testAlerts.keys().next().value);
  // Said once the queue has settled: a test alert that goes straight on
  // stage passes through "queued" within the same step.
  if (!changedTests.size) queueMicrotask(reportTests);
  changedTests.add(testKey);
}

function reportTests() {
  const waiting = [...testAlerts.values()].find((test) => test.state === "queued");
  const note = $("#test-status");
  note.hidden = !waiting;
  note.textContent = waiting ? t("overlay.testQueued", { alerts: plural(waiting.ahead, "alert") }) : "";
  note.dataset.ahead = waiting ? String(waiting.ahead) : "";
  for (const testKey of changedTests) {
    const test = testAlerts.get(testKey);
    if (test && channel) channel.postMessage({ type: "test_alert", ...test });
  }
  changedTests.clear();
}

if (channel) {
  channel.onmessage = ({ data }) => {
    if (!data || data.type !== "ask") return;
    for (const test of testAlerts.values()) channel.postMessage({ type: "test_alert", ...test });
  };
}

function countShown() {
  shown += 1;
  document.body.dataset.shown = String(shown);
}

// ------------------------------------------------------------------ sound

function loadSounds() {
  const loaded = {};
  for (const tier of Object.keys(RANK)) {
    loaded[tier] = new Audio(`sounds/${tier}.wav`);
    loaded[tier].preload = "auto";
  }
  return loaded;
}

function playSound(tier) {
  const sound = sounds[tier];
  if (!sound) return;
  sound.currentTime = 0;
  // A browser that refuses autoplay leaves the overlay silent, not broken.
  sound.play().catch(() => {});
}

// ------------------------------------------------------------------ place in the room

function loadPosition() {
  try {
    const stored = JSON.parse(localStorage.getItem(POSITION_STORE) || "null");
    return stored && Number.isInteger(stored.seq) ? stored : null;
  } catch {
    return null;
  }
}

function savePosition(position) {
  try {
    // At once, not later: OBS may unload the page at any moment.
    localStorage.setItem(POSITION_STORE, JSON.stringify(position));
  } catch {
    // Storage may be off in some browser sources; a reload then starts afresh.
  }
}

start();
