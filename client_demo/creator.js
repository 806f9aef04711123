// The creator's page: /creator.html?user=carol
//
// URL parameters: user (demo mode: a creator token is issued for them;
// default carol) or token (a platform's creator token).
// Shows whether gifting is on and why (GET /api/creator/profile), with a
// switch (POST /api/creator/gifting); the diamonds balance and the earnings
// of GET /api/creator/earnings:
// a chart over the chosen period, by gift and by top supporter, for the
// period and for the current stream; the overlay URL with copy, regenerate
// (GET/POST /api/creator/overlay-key) and a test alert
// (POST /api/creator/test-alert), with where it stands on an overlay open in
// this browser (queued, showing, shown); the gifts arriving in the room,
// live; and withdrawals: the payout profile (GET/PUT
// /api/creator/payout-profile), a withdraw form (POST
// /api/creator/withdrawals), the withdrawals (GET, asked again every second
// while one is pending) and the wallet's diamonds, reserved and paid out.

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
  requestIds,
  sleep,
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
  not_adult: () => "not known to be 18 or older",
  suspended: () => "account suspended",
  operator_refused: () => "not allowed by the platform",
};
// While a withdrawal is pending, how often the page asks how it stands.
const PAYOUT_POLL_MS = 1000;
// A withdrawal without an answer (none, a 5xx, `temporary`) is sent again
// after these pauses, with the same request id: made once at most.
const WITHDRAW_RETRY_MS = [500, 1500];
const PAYOUT_METHODS = { bank: "Bank transfer", paypal: "PayPal", alipay: "Alipay", wechat: "WeChat Pay" };
const WITHDRAWAL_STATES = { pending: "pending", paid: "paid", failed: "failed: diamonds returned" };

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
// Switching gifting on was refused: said in words while the profile still
// explains why.
let refused = false;
// A switch is on its way: the button waits for its answer.
let switching = false;

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
  $("#gifting-switch").addEventListener("click", switchGifting);
  $("#payout-form").addEventListener("submit", savePayoutProfile);
  $("#withdraw-form").addEventListener("submit", withdraw);
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
  await Promise.all([
    loadProfile(),
    loadEarnings(),
    loadOverlayKey(),
    loadPayoutProfile(),
    loadPayouts(),
  ]);
  setInterval(() => {
    loadEarnings();
    loadProfile();
    loadPayouts();
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

/** The profile, shown; null when it could not be read. */
async function loadProfile() {
  try {
    const profile = await api("/api/creator/profile", { token: await tokens.get() });
    showProfile(profile);
    return profile;
  } catch (error) {
    const card = $("#gifting");
    if (card.dataset.state !== "unknown") return null; // keep what was last known
    $("#gifting-state").textContent = "–";
    $("#gifting-why").replaceChildren(el("li", {}, `Cannot tell whether gifts are on: ${error.message}`));
    return null;
  }
}

/** Why the creator may not take gifts: [code, words] for each eligibility reason. */
function eligibilityReasons(profile) {
  return (profile.reasons || []).map((code) => {
    const words = PROFILE_REASONS[code];
    return [code, words ? words(profile) : code.replace(/_/g, " ")];
  });
}

function showProfile(profile) {
  const on = Boolean(profile.gifting_enabled && profile.eligible);
  const reasons = profile.gifting_enabled ? [] : [["gifting_off", "switched off"]];
  reasons.push(...eligibilityReasons(profile));
  const card = $("#gifting");
  card.dataset.state = on ? "on" : "off";
  card.dataset.reasons = reasons.map(([code]) => code).join(" ");
  $("#gifting-state").textContent = on ? "On" : "Off";
  const lines = on
    ? ["viewers can send you gifts", plural(profile.followers, "follower")]
    : reasons.map(([, words]) => words);
  $("#gifting-why").replaceChildren(...lines.map((line) => el("li", {}, line)));
  showSwitch(profile);
}

/** The switch is the creator's own (`gifting_enabled`), eligible or not. */
function showSwitch(profile) {
  const button = $("#gifting-switch");
  button.setAttribute("aria-checked", String(Boolean(profile.gifting_enabled)));
  button.disabled = switching;
  // A refusal is said until the profile no longer explains it.
  if (profile.gifting_enabled || profile.eligible) refused = false;
  const reasons = eligibilityReasons(profile).map(([, words]) => words);
  giftingNote(refused ? `Gifts stay off: ${reasons.join("; ") || "not eligible yet"}.` : "");
}

/** One message under the switch; while it says why gifts stay off, the list does not. */
function giftingNote(text) {
  $("#gifting-note").textContent = text;
  $("#gifting-note").hidden = !text;
  $("#gifting-why").hidden = refused && Boolean(text);
}

async function switchGifting() {
  const button = $("#gifting-switch");
  const enabled = button.getAttribute("aria-checked") !== "true";
  switching = true;
  button.disabled = true;
  refused = false;
  try {
    const token = await tokens.get();
    showProfile(await api("/api/creator/gifting", { method: "POST", token, body: { enabled } }));
  } catch (error) {
    if (error.code === "not_eligible") {
      // The reasons, worded with the numbers of the profile as it is now.
      refused = true;
      if (!(await loadProfile())) giftingNote("Gifts stay off: not eligible yet.");
    } else {
      giftingNote(`Could not switch gifts ${enabled ? "on" : "off"}: ${error.message}`);
    }
  } finally {
    switching = false;
    button.disabled = false;
  }
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
  const refresh = () => {
    loadEarnings();
    loadPayouts();
  };
  refreshTimers = EARNINGS_AFTER_GIFT_MS.map((ms) => setTimeout(refresh, ms));
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

// ------------------------------------------------------------------ withdrawals

const nextRequestId = requestIds("wd");
// The payout profile and the wallet as last read.
let payoutProfile = { method: null, verified: false };
let wallet = null;
// A withdrawal sent without an answer: pressing Withdraw again for the same
// diamonds sends it again with the same request id.
let unanswered = null;
let payoutTimer = null;
let payoutRequest = 0;

// A refused withdrawal in the page's own words, by code; the server's
// `message` only for a code not here.
const WITHDRAW_WORDS = {
  below_minimum: () => "That is below the minimum withdrawal.",
  insufficient_diamonds: () =>
    wallet
      ? `That is more than you hold: you have ${plural(wallet.diamonds || 0, "diamond")} to withdraw.`
      : "That is more than you hold.",
  daily_limit_exceeded: () => "That is over today's limit for withdrawals: ask for less, or again tomorrow (UTC).",
  payout_profile_unverified: () =>
    payoutProfile.method
      ? "Your payout profile is not verified yet: withdraw once it is."
      : "Add a payout profile first: it says where to pay you.",
  bad_field: () => "Enter a whole number of diamonds, 1 or more.",
  rate_limited: () => "Too many requests: wait a moment, then press Withdraw again.",
  suspended: () => "Your account is suspended: withdrawals are paused.",
};

async function loadPayoutProfile() {
  try {
    showPayoutProfile(await api("/api/creator/payout-profile", { token: await tokens.get() }));
  } catch (error) {
    payoutSaid("error", `Cannot read your payout profile: ${error.message}`);
  }
}

function showPayoutProfile(profile) {
  payoutProfile = profile;
  const line = $("#payout-profile");
  line.dataset.method = profile.method || "";
  line.dataset.verified = String(Boolean(profile.verified));
  if (!profile.method) {
    line.textContent = "No payout profile yet.";
    return;
  }
  line.replaceChildren(
    el("span", { class: "payout-method" }, PAYOUT_METHODS[profile.method] || profile.method),
    " ",
    el("span", { class: "payout-account" }, profile.account),
    " · paid in ",
    el("span", { class: "payout-currency" }, profile.currency),
    " · ",
    el("span", { class: "payout-verified" }, profile.verified ? "verified" : "not verified"),
  );
  $("#payout-method").value = profile.method;
  if (!$("#payout-legal-name").value) $("#payout-legal-name").value = profile.legal_name || "";
}

function payoutSaid(state, text) {
  const status = $("#payout-status");
  status.dataset.state = state;
  status.textContent = text;
  status.hidden = !text;
}

async function savePayoutProfile(event) {
  event.preventDefault();
  const body = Object.fromEntries(new FormData($("#payout-form")));
  const button = $("#payout-save");
  button.disabled = true;
  payoutSaid("saving", "Saving…");
  try {
    const token = await tokens.get();
    const profile = await api("/api/creator/payout-profile", { method: "PUT", token, body });
    showPayoutProfile(profile);
    // Kept by the server, masked: not left in the page.
    $("#payout-tax-id").value = "";
    $("#payout-account").value = "";
    payoutSaid(
      "saved",
      profile.verified ? "Saved and verified: you can withdraw." : "Saved. It is not verified yet.",
    );
  } catch (error) {
    payoutSaid(
      "error",
      error.code === "bad_field"
        ? "Those details were not accepted: check the tax id and the account."
        : `Could not save the payout profile: ${error.message}`,
    );
  } finally {
    button.disabled = false;
  }
}

/** The withdrawals and the wallet; read again every second while one is pending. */
async function loadPayouts() {
  const number = ++payoutRequest;
  clearTimeout(payoutTimer);
  let pending = document.querySelector("#withdrawals li[data-status=pending]") !== null;
  try {
    const token = await tokens.get();
    const [listed, money] = await Promise.all([
      api("/api/creator/withdrawals", { token }),
      api("/api/wallet", { token }),
    ]);
    if (number !== payoutRequest) return;
    const settled = showWithdrawals(listed.withdrawals);
    showWallet(money);
    pending = listed.withdrawals.some((withdrawal) => withdrawal.status === "pending");
    if (settled) loadEarnings(); // a failed payout gives its diamonds back
  } catch (error) {
    if (number !== payoutRequest) return;
    if (!$("#withdrawals").children.length) {
      $("#withdrawals-empty").textContent = `Cannot read your withdrawals: ${error.message}`;
    }
  }
  if (pending) payoutTimer = setTimeout(loadPayouts, PAYOUT_POLL_MS);
}

function showWallet(money) {
  wallet = money;
  setFigure("#wallet-diamonds", money.diamonds || 0);
  setFigure("#wallet-reserved", money.reserved || 0);
  setFigure("#wallet-paid-out", money.paid_out || 0);
  const carry = money.carry_hundredths || 0;
  const note = $("#wallet-carry");
  note.dataset.value = String(carry);
  note.textContent = carry ? `And ${(carry / 100).toFixed(2)} of a diamond, made whole by your next gifts.` : "";
  note.hidden = !carry;
}

/**
 * The rows, newest first, each changed only when its status changes (the
 * list is live for screen readers). True when a pending one has settled.
 */
function showWithdrawals(withdrawals) {
  const list = $("#withdrawals");
  let settled = false;
  const rows = withdrawals.map((withdrawal) => {
    const row = list.querySelector(`li[data-id="${withdrawal.withdrawal_id}"]`);
    if (row && row.dataset.status === withdrawal.status) return row;
    if (row && row.dataset.status === "pending") settled = true;
    return withdrawalRow(row || el("li"), withdrawal);
  });
  const shown = [...list.children];
  if (rows.length !== shown.length || rows.some((row, index) => row !== shown[index])) {
    list.replaceChildren(...rows);
  }
  $("#withdrawals-empty").textContent = "No withdrawals yet.";
  $("#withdrawals-empty").hidden = rows.length > 0;
  return settled;
}

function withdrawalRow(row, withdrawal) {
  Object.assign(row.dataset, {
    id: withdrawal.withdrawal_id,
    status: withdrawal.status,
    diamonds: withdrawal.diamonds,
    amount: withdrawal.amount,
    currency: withdrawal.currency,
  });
  row.replaceChildren(
    el("span", { class: "withdrawal-status" }, WITHDRAWAL_STATES[withdrawal.status] || withdrawal.status),
    el(
      "span",
      { class: "withdrawal-diamonds", dataset: { value: withdrawal.diamonds } },
      el("span", { class: "diamond", "aria-hidden": "true" }),
      plural(withdrawal.diamonds, "diamond"),
    ),
    el("span", { class: "withdrawal-amount" }, `${withdrawal.amount} ${withdrawal.currency}`),
    el("time", { class: "withdrawal-time", datetime: new Date(withdrawal.created).toISOString() }, when(withdrawal.created)),
  );
  return row;
}

function when(ms) {
  return new Date(ms).toLocaleString([], { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
}

function withdrawSaid(state, code, text) {
  const status = $("#withdraw-status");
  status.dataset.state = state;
  status.dataset.code = code || "";
  status.textContent = text;
  status.hidden = !text;
}

/** No answer, a fault, or `temporary`: worth sending again with the same request id. */
function worthRetrying(error) {
  return error.temporary || error.status === 0 || error.status >= 500;
}

async function sendWithdrawal({ diamonds, requestId }) {
  for (let tries = 0; ; tries += 1) {
    try {
      const token = await tokens.get();
      const body = { diamonds, request_id: requestId };
      return await api("/api/creator/withdrawals", { method: "POST", token, body });
    } catch (error) {
      if (!worthRetrying(error) || tries >= WITHDRAW_RETRY_MS.length) throw error;
      await sleep(WITHDRAW_RETRY_MS[tries]);
    }
  }
}

async function withdraw(event) {
  event.preventDefault();
  const diamonds = Number($("#withdraw-diamonds").value);
  if (!Number.isInteger(diamonds) || diamonds < 1) {
    return withdrawSaid("refused", "bad_field", WITHDRAW_WORDS.bad_field());
  }
  // One request id per submission; the same submission again keeps it.
  if (!unanswered || unanswered.diamonds !== diamonds) unanswered = { diamonds, requestId: nextRequestId() };
  const button = $("#withdraw-submit");
  button.disabled = true;
  withdrawSaid("sending", "", `Asking to withdraw ${plural(diamonds, "diamond")}…`);
  let answer = null;
  let failure = null;
  try {
    answer = await sendWithdrawal(unanswered);
    unanswered = null;
    $("#withdraw-diamonds").value = "";
  } catch (error) {
    failure = error;
    if (!worthRetrying(error)) unanswered = null;
  }
  // The list and the wallet first: "you have N diamonds" is the balance now.
  await loadPayouts();
  loadEarnings();
  if (answer) withdrawSaid("asked", "", asked(answer));
  else withdrawSaid(worthRetrying(failure) ? "unknown" : "refused", failure.code, refusal(failure, diamonds));
  button.disabled = false;
}

function asked(answer) {
  const worth = `${answer.amount} ${answer.currency}`;
  return `Withdrawal of ${plural(answer.diamonds, "diamond")} (${worth}) asked for: it shows below until it is paid.`;
}

function refusal(error, diamonds) {
  const words = WITHDRAW_WORDS[error.code];
  if (words) return words();
  if (worthRetrying(error)) {
    return (
      `No answer from the server: the withdrawal of ${plural(diamonds, "diamond")} may not have been ` +
      "made. Press Withdraw again to retry; it is never made twice."
    );
  }
  return `Could not withdraw: ${error.message}`;
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
