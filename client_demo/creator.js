// The creator's page: /creator.html?user=carol
//
// URL parameters: user (demo mode: a creator token is issued for them;
// default carol) or token (a platform's creator token).
// Shows whether gifting is on and why (GET /api/creator/profile), the
// diamonds balance and the earnings of GET /api/creator/earnings:
// a chart over the chosen period, by gift and by top supporter, for the
// period and for the current stream; the overlay URL with copy, regenerate
// (GET/POST /api/creator/overlay-key) and a test alert
// (POST /api/creator/test-alert), with where it stands on an overlay open in
// this browser (queued, showing, shown); and the gifts arriving in the room,
// live.

import {
  RoomSocket,
  TokenSource,
  api,
  describeState,
  el,
  formatCoins,
  overlayChannel,
  param,
  plural,
  testAlertKey,
  userColour,
} from "./common.js";
import { Feed } from "./feed.js";
import { Catalog, giftPicture } from "./gifts.js";

const tokens = new TokenSource({
  user: param("user", param("token") ? null : "carol"),
  role: "creator",
  token: param("token"),
});
const EARNINGS_POLL_MS = 15000;
// Diamonds reach the creator's wallet through settlement, a moment after the gift.
const EARNINGS_AFTER_GIFT_MS = [700, 2500];
const PERIOD_TITLES = { day: "Today", week: "Last 7 days", month: "Last 30 days", all: "All time" };
const UNIT_WORDS = { hour: "hour", day: "day", month: "month" };
const SVG = "http://www.w3.org/2000/svg";
// Why gifting is off, from GET /api/creator/profile `reasons`.
const PROFILE_REASONS = {
  followers_below_minimum: (profile) =>
    `${formatCoins(profile.followers)} of the ${plural(profile.min_followers, "follower")} needed`,
  not_a_creator: () => "no creator profile yet",
};

const $ = (selector) => document.querySelector(selector);
let catalog = new Catalog();
let feed = null;
let socket = null;
let refreshTimers = [];
let channel = null;
// The test alert last sent from this page, and its gift's name.
let testSent = null;
// Answers may cross: only the latest request's answer is drawn.
let requestNumber = 0;

async function start() {
  let token;
  try {
    token = await tokens.get();
  } catch (error) {
    return problem(`Cannot sign in as a creator: ${error.message}`);
  }
  const room = tokens.user || roomFromToken(token);
  $("#creator-name").textContent = room;
  document.title = `${room} · giftstream studio`;
  $("#room-link").href = `viewer.html?room=${encodeURIComponent(room)}`;
  $("#copy").addEventListener("click", copyOverlayUrl);
  $("#regenerate").addEventListener("click", regenerate);
  $("#test-alert").addEventListener("click", testAlert);
  for (const input of document.querySelectorAll('input[name="period"]')) {
    input.addEventListener("change", () => loadEarnings());
  }

  channel = overlayChannel(room);
  if (channel) channel.onmessage = ({ data }) => testAlertNews(data);

  catalog = await api("/api/catalog").then((doc) => new Catalog(doc), () => new Catalog());
  feed = new Feed($("#live"), catalog, { limit: 100, showCoins: true });
  socket = new RoomSocket({
    room,
    tokens,
    onState: showState,
    onWelcome: (welcome) => showViewers(welcome.viewers),
    onViewers: showViewers,
    onEvent: roomEvent,
  });
  socket.start();
  await Promise.all([loadProfile(), loadEarnings(), loadOverlayKey()]);
  setInterval(() => {
    loadEarnings();
    loadProfile();
  }, EARNINGS_POLL_MS);
}

function roomFromToken(token) {
  try {
    const first = token.split(".")[0].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(first.padEnd(Math.ceil(first.length / 4) * 4, "="))).sub;
  } catch {
    return "room";
  }
}

function problem(text) {
  $("#problem").textContent = text;
  $("#problem").hidden = !text;
}

function period() {
  return document.querySelector('input[name="period"]:checked').value;
}

// ------------------------------------------------------------------ gifting on or off

async function loadProfile() {
  try {
    showProfile(await api("/api/creator/profile", { token: await tokens.get() }));
  } catch (error) {
    const card = $("#gifting");
    if (card.dataset.state !== "unknown") return; // keep what was last known
    $("#gifting-state").textContent = "–";
    $("#gifting-why").replaceChildren(el("li", {}, `Cannot tell whether gifts are on: ${error.message}`));
  }
}

function showProfile(profile) {
  const on = Boolean(profile.gifting_enabled && profile.eligible);
  const reasons = [];
  if (!profile.gifting_enabled) reasons.push(["gifting_off", "switched off"]);
  for (const code of profile.reasons || []) {
    const words = PROFILE_REASONS[code];
    reasons.push([code, words ? words(profile) : code.replace(/_/g, " ")]);
  }
  const card = $("#gifting");
  card.dataset.state = on ? "on" : "off";
  card.dataset.reasons = reasons.map(([code]) => code).join(" ");
  $("#gifting-state").textContent = on ? "On" : "Off";
  const lines = on
    ? ["viewers can send you gifts", plural(profile.followers, "follower")]
    : reasons.map(([, words]) => words);
  $("#gifting-why").replaceChildren(...lines.map((line) => el("li", {}, line)));
}

// ------------------------------------------------------------------ earnings

async function loadEarnings() {
  const number = ++requestNumber;
  const chosen = period();
  try {
    const token = await tokens.get();
    const report = await api(`/api/creator/earnings?period=${chosen}`, { token });
    if (number !== requestNumber) return;
    showEarnings(report);
    problem("");
  } catch (error) {
    if (number === requestNumber) problem(`Cannot read the earnings: ${error.message}`);
  }
}

function earningsSoon() {
  refreshTimers.forEach(clearTimeout);
  refreshTimers = EARNINGS_AFTER_GIFT_MS.map((ms) => setTimeout(loadEarnings, ms));
}

function setFigure(selector, value) {
  $(selector).textContent = formatCoins(value);
  $(selector).dataset.value = String(value);
}

/** "1 coin", "350 coins": the count and its noun, the count in data-value. */
function setCount(selector, value, noun) {
  $(selector).textContent = plural(value, noun);
  $(selector).dataset.value = String(value);
}

function showEarnings(report) {
  setFigure("#diamonds", report.diamonds);
  setCount("#earned", report.diamonds_earned, "diamond");
  setCount("#received", report.received, "coin");

  const chosen = report.period;
  $("#period-title").textContent = PERIOD_TITLES[chosen.name] || chosen.name;
  setFigure("#period-diamonds", chosen.totals.diamonds);
  setCount("#period-gifts", chosen.totals.count, "gift");
  setCount("#period-coins", chosen.totals.coins, "coin");
  $("#chart-unit").textContent = UNIT_WORDS[chosen.unit] || chosen.unit;
  drawChart($("#chart"), chosen.series, chosen.unit);
  giftRows($("#by-gift tbody"), chosen.by_gift, true);
  supporterRows($("#top-supporters tbody"), chosen.top_supporters);

  showStream(report.stream);
}

function showStream(stream) {
  const totals = stream ? stream.totals : { diamonds: 0, coins: 0, count: 0 };
  setFigure("#stream-diamonds", totals.diamonds);
  $("#stream-title").textContent = stream && !stream.open ? "Last stream" : "This stream";
  $("#stream-note").textContent = stream
    ? `${plural(totals.count, "gift")} · ${plural(totals.coins, "coin")} · since ${clock(stream.started)}`
    : "No gifts yet.";
  $("#stream-empty").hidden = Boolean(stream);
  giftRows($("#stream-by-gift tbody"), stream ? stream.by_gift : [], false);
  const top = stream ? stream.top_supporters.slice(0, 5) : [];
  $("#supporters").replaceChildren(
    ...top.map((row) =>
      el(
        "li",
        { dataset: { sender: row.user } },
        el("span", { style: `color:${userColour(row.user)}` }, row.user),
        el("span", {}, el("span", { class: "coin" }), formatCoins(row.coins)),
      ),
    ),
  );
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function giftRows(body, rows, withCoins) {
  if (!rows.length) {
    body.replaceChildren(el("tr", { class: "none" }, el("td", { colspan: 4 }, "No gifts in this period.")));
    return;
  }
  body.replaceChildren(
    ...rows.map((row) =>
      el(
        "tr",
        { dataset: { gift: row.gift, count: row.count, coins: row.coins, diamonds: row.diamonds } },
        el("td", {}, giftPicture(row.gift, row.tier || "small", row.name), row.name),
        el("td", {}, `x${formatCoins(row.count)}`),
        withCoins ? el("td", {}, formatCoins(row.coins)) : null,
        el("td", {}, formatCoins(row.diamonds)),
      ),
    ),
  );
}

function supporterRows(body, rows) {
  if (!rows.length) {
    body.replaceChildren(el("tr", { class: "none" }, el("td", { colspan: 4 }, "Nobody yet.")));
    return;
  }
  body.replaceChildren(
    ...rows.map((row, index) =>
      el(
        "tr",
        { dataset: { user: row.user, coins: row.coins, diamonds: row.diamonds } },
        el("td", {}, String(index + 1)),
        el("td", { style: `color:${userColour(row.user)}` }, row.user),
        el("td", {}, formatCoins(row.coins)),
        el("td", {}, formatCoins(row.diamonds)),
      ),
    ),
  );
}

// ------------------------------------------------------------------ the chart

function svg(tag, attributes = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

function label(start, unit) {
  const date = new Date(start);
  if (unit === "hour") return `${String(date.getUTCHours()).padStart(2, "0")}h`;
  if (unit === "month") return date.toLocaleDateString([], { month: "short", year: "2-digit", timeZone: "UTC" });
  return date.toLocaleDateString([], { day: "numeric", month: "short", timeZone: "UTC" });
}

/** Bars of diamonds per unit, drawn as SVG: no library, nothing fetched. */
function drawChart(chart, series, unit) {
  const width = 960;
  const height = 220;
  const top = 18;
  const bottom = 24;
  const left = 8;
  const plot = height - top - bottom;
  const highest = Math.max(1, ...series.map((point) => point.diamonds));
  const step = (width - left * 2) / Math.max(1, series.length);
  const barWidth = Math.max(2, step * 0.7);
  // Enough labels to read, never so many that they overlap.
  const every = Math.max(1, Math.ceil(series.length / 12));
  const fill = svg("linearGradient", { id: "bar-fill", x1: 0, y1: 0, x2: 0, y2: 1 });
  fill.append(svg("stop", { offset: "0%", "stop-color": "#ff8fab" }), svg("stop", { offset: "100%", "stop-color": "#ff3d71" }));
  const nodes = [svg("defs"), svg("line", { class: "grid", x1: 0, x2: width, y1: top + plot, y2: top + plot })];
  nodes[0].append(fill);
  series.forEach((point, index) => {
    const barHeight = point.diamonds ? Math.max(2, (point.diamonds / highest) * plot) : 2;
    const x = left + index * step + (step - barWidth) / 2;
    const bar = svg("rect", {
      class: point.diamonds ? "bar" : "bar empty-bar",
      x: x.toFixed(1),
      y: (top + plot - barHeight).toFixed(1),
      width: barWidth.toFixed(1),
      height: barHeight.toFixed(1),
      rx: 3,
      "data-start": point.start,
      "data-diamonds": point.diamonds,
    });
    bar.append(svg("title", {}, `${label(point.start, unit)}: ${plural(point.diamonds, "diamond")}`));
    nodes.push(bar);
    if (point.diamonds === highest && point.diamonds > 0) {
      nodes.push(svg("text", { class: "bar-label", x: x + barWidth / 2, y: top + plot - barHeight - 4, "text-anchor": "middle" }, formatCoins(point.diamonds)));
    }
    if (index % every === 0) {
      nodes.push(svg("text", { x: x + barWidth / 2, y: height - 6, "text-anchor": "middle" }, label(point.start, unit)));
    }
  });
  chart.replaceChildren(...nodes);
  chart.dataset.points = String(series.length);
  chart.dataset.total = String(series.reduce((sum, point) => sum + point.diamonds, 0));
}

// ------------------------------------------------------------------ overlay key

function showOverlay(answer) {
  const url = new URL(answer.url, location.origin).href;
  $("#overlay-url").value = url;
  $("#open-overlay").href = url;
  $("#open-overlay").hidden = false;
  $("#copy").disabled = false;
  $("#regenerate").disabled = false;
}

async function loadOverlayKey() {
  try {
    showOverlay(await api("/api/creator/overlay-key", { token: await tokens.get() }));
  } catch (error) {
    $("#overlay-status").textContent = `No overlay URL: ${error.message}`;
  }
}

async function copyOverlayUrl() {
  const input = $("#overlay-url");
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    input.select();
    document.execCommand("copy");
  }
  $("#overlay-status").textContent = "Copied. Paste it into an OBS Browser source (1920×1080).";
}

async function regenerate() {
  const dialog = $("#regenerate-confirm");
  dialog.returnValue = "";
  dialog.showModal();
  await new Promise((resolve) => dialog.addEventListener("close", resolve, { once: true }));
  if (dialog.returnValue !== "yes") return;
  try {
    const token = await tokens.get();
    showOverlay(await api("/api/creator/overlay-key", { method: "POST", token }));
    $("#overlay-status").textContent =
      "New key made. The old overlay URL no longer connects: update OBS with this one.";
  } catch (error) {
    $("#overlay-status").textContent = `Could not regenerate: ${error.message}`;
  }
}

async function testAlert() {
  const button = $("#test-alert");
  button.disabled = true;
  try {
    const answer = await api("/api/creator/test-alert", { method: "POST", token: await tokens.get() });
    testSent = { key: testAlertKey(answer.event), name: catalog.name(answer.event.gift) };
    // Sent is all this page knows, unless an overlay open in this browser
    // says more: it may be showing other alerts, and this one waits its turn.
    showTestAlert("sent", 0);
    if (channel) channel.postMessage({ type: "ask" });
  } catch (error) {
    testSent = null;
    showTestAlertText("failed", `Could not send a test alert: ${error.message}`);
  } finally {
    // A short pause, so that a double click is one alert.
    setTimeout(() => (button.disabled = false), 1000);
  }
}

/** What an overlay in this browser says of a test alert. */
function testAlertNews(data) {
  if (!data || data.type !== "test_alert" || !testSent || data.key !== testSent.key) return;
  showTestAlert(data.state, Number(data.ahead) || 0);
}

function showTestAlert(state, ahead) {
  const name = testSent.name;
  const words = {
    sent: `Test alert sent (${name}). Your overlay shows it once the alerts ahead of it, if any, have played.`,
    queued: `Test alert (${name}) queued on your overlay: ${plural(ahead, "alert")} ahead of it.`,
    showing: `Your overlay is showing the test alert (${name}) now.`,
    shown: `Your overlay has shown the test alert (${name}).`,
  };
  if (words[state]) showTestAlertText(state, words[state]);
}

function showTestAlertText(state, text) {
  const status = $("#test-alert-status");
  status.dataset.state = state;
  status.textContent = text;
  status.hidden = false;
}

// ------------------------------------------------------------------ live gifts

function showState(state, detail) {
  $("#state").dataset.state = state;
  $("#state").textContent = describeState(state, detail);
}

function showViewers(count) {
  $("#viewers").textContent = `${formatCoins(count)} watching`;
}

function roomEvent(event) {
  feed.add(event);
  $("#live-empty").hidden = true;
  if (event.type === "gift") earningsSoon();
}

start();
