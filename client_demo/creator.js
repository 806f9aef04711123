// The creator's page: /creator.html?user=carol
//
// URL parameters: user (demo mode: a creator token is issued for them;
// default carol) or token (a platform's creator token).
// Shows whether the creator is live (GET /api/creator/streams and the room's
// stream events), with Go live and End stream (POST /api/creator/streams,
// POST /api/creator/streams/{id}/end); whether gifting is on and why (GET
// /api/creator/profile), with a switch (POST /api/creator/gifting); the
// diamonds balance and the earnings of GET /api/creator/earnings:
// a chart over the chosen period, by gift and by top supporter, for the
// period and for the live (else the last) stream; the period's streams, each
// one's earnings on choosing it (`stream_id=`), and the selection as CSV
// (`Accept: text/csv`); the overlay URL with copy, regenerate
// (GET/POST /api/creator/overlay-key) and a test alert
// (POST /api/creator/test-alert), with where it stands on an overlay open in
// this browser (queued, showing, shown); the gifts arriving in the room,
// live; and withdrawals: the payout profile (GET/PUT
// /api/creator/payout-profile), a withdraw form (POST
// /api/creator/withdrawals), the withdrawals (GET, read again on the room
// socket's `withdrawal` message, and every 5 s while one is pending) and the
// wallet's diamonds, reserved and paid out; and the room's goal (GET
// /api/rooms/{room}/goal, then the room's `goal` messages and `goal_reached`
// event), set with POST and cleared with DELETE /api/creator/goals.
// Words are in the page's language (i18n.js), with a switcher; switching
// reads everything again, named in the new language.

import {
  ApiError,
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
import { RoomGoal, drawGoal } from "./engagement.js";
import { Feed } from "./feed.js";
import { Catalog, giftPicture } from "./gifts.js";
import {
  formatDate,
  formatMoney,
  has,
  language,
  languageSwitcher,
  nodes,
  onLanguageChange,
  startLanguage,
  t,
} from "./i18n.js";

startLanguage();

const tokens = new TokenSource({
  user: param("user", param("token") ? null : "carol"),
  role: "creator",
  token: param("token"),
});
const EARNINGS_POLL_MS = 15000;
// Diamonds reach the creator's wallet through settlement, a moment after the gift.
const EARNINGS_AFTER_GIFT_MS = [700, 2500];
// The periods' titles are `creator.periodTitle.*`, the chart's units `creator.unit.*`.
const SVG = "http://www.w3.org/2000/svg";
// The gift a fan club's price is paid as: a line of its own in "by gift".
const FAN_CLUB_GIFT = "fan_club";
// Why gifting is off, from GET /api/creator/profile `reasons`: `creator.reason.*`,
// worded with the profile's numbers.
// While a withdrawal is pending, how often the page asks how it stands: a
// `withdrawal` message on the room socket says so at once; this is for a
// socket that is down when the provider answers.
const PAYOUT_POLL_MS = 5000;
// A withdrawal without an answer (none, a 5xx, `temporary`) is sent again
// after these pauses, with the same request id: made once at most.
const WITHDRAW_RETRY_MS = [500, 1500];
// Payout methods are named `creator.method.*`, withdrawal states `creator.withdrawal.*`.
// A refused goal (`creator.goalRefused.*`) or go-live or end
// (`creator.streamRefused.*`) is said in the page's words; the server's for
// other codes.

const $ = (selector) => document.querySelector(selector);
// The creator, whose room this is.
let room = "room";
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
// The room's goal, as last known.
let roomGoal = null;
// The socket's state and the viewer count as last shown: said again in another language.
let lastState = { state: "connecting", detail: {} };
let viewerCount = null;

async function start() {
  languageSwitcher($("#language"));
  onLanguageChange(relabel);
  showState(lastState.state, lastState.detail);
  showViewers(null);
  showChartUnit("day");
  let token;
  try {
    token = await tokens.get();
  } catch (error) {
    return problem(t("creator.cannotSignIn", { error: error.message }));
  }
  room = tokens.user || roomFromToken(token);
  $("#creator-name").textContent = room;
  document.title = t("creator.docTitle", { name: room });
  $("#room-link").href = `viewer.html?room=${encodeURIComponent(room)}`;
  $("#copy").addEventListener("click", copyOverlayUrl);
  $("#regenerate").addEventListener("click", regenerate);
  $("#test-alert").addEventListener("click", testAlert);
  $("#gifting-switch").addEventListener("click", switchGifting);
  $("#payout-form").addEventListener("submit", savePayoutProfile);
  $("#withdraw-form").addEventListener("submit", withdraw);
  $("#go-live").addEventListener("click", goLive);
  $("#end-stream").addEventListener("click", endStream);
  $("#download-csv").addEventListener("click", downloadCsv);
  $("#stream-detail-close").addEventListener("click", () => chooseStream(null));
  for (const input of document.querySelectorAll('input[name="period"]')) {
    // Another period is another list of streams: the chosen one is let go.
    input.addEventListener("change", () => chooseStream(null));
  }

  channel = overlayChannel(room);
  if (channel) channel.onmessage = ({ data }) => testAlertNews(data);

  catalog = await readCatalog().catch(() => new Catalog());
  feed = new Feed($("#live"), catalog, { limit: 100, showCoins: true });
  startGoal();
  socket = new RoomSocket({
    room,
    tokens,
    onState: showState,
    onWelcome: welcomed,
    onViewers: showViewers,
    onEvent: roomEvent,
    onWithdrawal: () => loadPayouts(),
    onGoal: (message) => roomGoal.changed(message.goal),
  });
  socket.start();
  await Promise.all([
    roomGoal.load(),
    loadStreams(),
    loadProfile(),
    loadEarnings(),
    loadOverlayKey(),
    loadPayoutProfile(),
    loadPayouts(),
  ]);
  setInterval(() => {
    loadStreams();
    loadEarnings();
    loadProfile();
    loadPayouts();
  }, EARNINGS_POLL_MS);
}

/** The gifts, named in the page's language. */
async function readCatalog() {
  return new Catalog(await api(`/api/catalog?${new URLSearchParams({ lang: language() })}`));
}

/**
 * Everything said again in the language just chosen (the HTML's own text is
 * done): what the page holds is drawn again, and what it reads is read again.
 */
async function relabel() {
  document.title = t("creator.docTitle", { name: room });
  showState(lastState.state, lastState.detail);
  showViewers(viewerCount);
  if (onAir.known) showOnAir(onAir.live, onAir.last);
  if (payoutProfile.method) showPayoutProfile(payoutProfile);
  else $("#payout-profile").textContent = t("creator.noPayoutProfile");
  if (wallet) showWallet(wallet);
  $("#withdrawals").replaceChildren(); // drawn again, in the new words
  catalog = await readCatalog().catch(() => catalog);
  if (feed) feed.relabel(catalog);
  if (roomGoal) {
    fillGoalGifts();
    showGoal(roomGoal.goal);
  }
  loadProfile();
  loadEarnings();
  loadPayouts();
}

function roomFromToken(token) {
  try {
    const first = token.split(".")[0].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(first.padEnd(Math.ceil(first.length / 4) * 4, "="))).sub;
  } catch {
    return "room";
  }
}

/** An HTTP refusal in the page's words where it has some (by code), else the server's. */
function errorText(error) {
  return has(`refusal.${error.code}`) ? t(`refusal.${error.code}`, error) : error.message;
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
    $("#gifting-why").replaceChildren(el("li", {}, t("creator.cannotTellGifting", { error: errorText(error) })));
    return null;
  }
}

/** Why the creator may not take gifts: [code, words] for each eligibility reason. */
function eligibilityReasons(profile) {
  return (profile.reasons || []).map((code) => {
    const key = `creator.reason.${code}`;
    const words = has(key)
      ? t(key, { followers: formatCoins(profile.followers), needed: plural(profile.min_followers, "follower") })
      : code.replace(/_/g, " ");
    return [code, words];
  });
}

function showProfile(profile) {
  const on = Boolean(profile.gifting_enabled && profile.eligible);
  const reasons = profile.gifting_enabled ? [] : [["gifting_off", t("creator.reason.gifting_off")]];
  reasons.push(...eligibilityReasons(profile));
  const card = $("#gifting");
  card.dataset.state = on ? "on" : "off";
  card.dataset.reasons = reasons.map(([code]) => code).join(" ");
  $("#gifting-state").textContent = on ? t("creator.on") : t("creator.off");
  const lines = on
    ? [t("creator.viewersCanSend"), plural(profile.followers, "follower")]
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
  giftingNote(refused ? t("creator.giftsStayOff", { reasons: reasons.length ? reasons : null }) : "");
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
      if (!(await loadProfile())) giftingNote(t("creator.giftsStayOff", { reasons: null }));
    } else {
      giftingNote(t(enabled ? "creator.cannotSwitchOn" : "creator.cannotSwitchOff", { error: errorText(error) }));
    }
  } finally {
    switching = false;
    button.disabled = false;
  }
}

// ------------------------------------------------------------------ going live

// The live stream (null when not live) and, when not live, the last one, as
// last known. `streamChanges` counts the changes seen (answers to Go live and
// End stream, the room's stream events): an answer to GET /api/creator/streams
// asked before the latest change is not drawn over it.
let onAir = { known: false, live: null, last: null };
let streamChanges = 0;
// Go live or End stream is on its way: both buttons wait for its answer.
let streamBusy = false;
let idleSeconds = 120;

async function loadStreams() {
  const changes = streamChanges;
  try {
    const answer = await api("/api/creator/streams", { token: await tokens.get() });
    if (changes !== streamChanges) return;
    if (Number.isFinite(answer.idle_seconds)) idleSeconds = answer.idle_seconds;
    showOnAir(answer.live, answer.live ? null : answer.streams[0] || null);
    if ($("#on-air-status").dataset.state === "unknown") onAirSaid("", "");
  } catch (error) {
    if (!onAir.known) onAirSaid("unknown", t("creator.cannotTellLive", { error: errorText(error) }));
  }
}

/** A stream record from the answers, or from a room event. */
function streamChanged(stream) {
  streamChanges += 1;
  if (stream.live) showOnAir(stream, null);
  else if (!onAir.live || onAir.live.stream_id === stream.stream_id) showOnAir(null, stream);
}

function streamFromEvent(event) {
  const live = event.type === "stream_started";
  return {
    stream_id: event.stream_id,
    live,
    started: event.started,
    ended: live ? null : event.ended,
    end_reason: live ? null : event.reason,
  };
}

function showOnAir(live, last) {
  onAir = { known: true, live, last: live ? null : last };
  const card = $("#on-air");
  card.dataset.live = String(Boolean(live));
  card.dataset.stream = live ? live.stream_id : "";
  document.body.dataset.live = String(Boolean(live));
  $("#on-air-state").textContent = live ? t("creator.live") : t("creator.notLive");
  $("#on-air-since").textContent = live ? t("creator.since", { time: clock(live.started) }) : lastStreamWords(last);
  $("#go-live").disabled = streamBusy || Boolean(live);
  $("#end-stream").disabled = streamBusy || !live;
}

function lastStreamWords(last) {
  if (!last) return t("creator.giftsWhileLive");
  if (last.end_reason === "idle") {
    const idle = idleSeconds >= 120 ? plural(Math.round(idleSeconds / 60), "minute") : plural(idleSeconds, "second");
    return t("creator.lastEndedIdle", { time: clock(last.ended), idle });
  }
  return t("creator.lastEnded", { time: clock(last.ended) });
}

function onAirSaid(state, text) {
  const status = $("#on-air-status");
  status.dataset.state = state;
  status.textContent = text;
  status.hidden = !text;
}

async function goLive() {
  await streamRequest("/api/creator/streams", t("creator.goingLive"), "creator.cannotGoLive");
}

async function endStream() {
  if (!onAir.live) return;
  const path = `/api/creator/streams/${encodeURIComponent(onAir.live.stream_id)}/end`;
  await streamRequest(path, t("creator.ending"), "creator.cannotEnd");
}

/** Go live or End stream: `doing` said meanwhile, `failed` (a message key) if refused in words not the page's. */
async function streamRequest(path, doing, failed) {
  streamBusy = true;
  showOnAir(onAir.live, onAir.last);
  onAirSaid("busy", doing);
  try {
    streamChanged(await api(path, { method: "POST", token: await tokens.get() }));
    onAirSaid("", "");
    loadEarnings();
  } catch (error) {
    const key = `creator.streamRefused.${error.code}`;
    onAirSaid("error", has(key) ? t(key) : t(failed, { error: error.message }));
    loadStreams();
  } finally {
    streamBusy = false;
    showOnAir(onAir.live, onAir.last);
  }
}

// ------------------------------------------------------------------ earnings

// The stream whose earnings are shown under the Streams table, or null.
let chosenStream = null;

/** The query of the selection: the chosen period, or the chosen stream in it. */
function selectionQuery() {
  const query = new URLSearchParams({ period: period() });
  if (chosenStream) query.set("stream_id", chosenStream);
  return query.toString();
}

/** The period's report, and the chosen stream's (null when none is chosen or it is gone). */
async function loadEarnings() {
  const number = ++requestNumber;
  const chosen = period();
  const selection = chosenStream ? selectionQuery() : null;
  try {
    const token = await tokens.get();
    const [report, detail] = await Promise.all([
      api(`/api/creator/earnings?period=${chosen}`, { token }),
      selection ? api(`/api/creator/earnings?${selection}`, { token }).catch(goneStream) : null,
    ]);
    if (number !== requestNumber) return;
    showEarnings(report);
    showStreamDetail(detail);
    problem("");
  } catch (error) {
    if (number === requestNumber) problem(t("creator.cannotReadEarnings", { error: errorText(error) }));
  }
}

/** A chosen stream the server no longer knows is let go; other errors stand. */
function goneStream(error) {
  if (error.code !== "unknown_stream") throw error;
  chosenStream = null;
  return null;
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
  const title = `creator.periodTitle.${chosen.name}`;
  $("#period-title").textContent = has(title) ? t(title) : chosen.name;
  setFigure("#period-diamonds", chosen.totals.diamonds);
  setCount("#period-gifts", chosen.totals.count, "gift");
  setCount("#period-coins", chosen.totals.coins, "coin");
  showChartUnit(chosen.unit);
  drawChart($("#chart"), chosen.series, chosen.unit);
  giftRows($("#by-gift tbody"), chosen.by_gift, true);
  supporterRows($("#top-supporters tbody"), chosen.top_supporters);
  streamRows($("#streams tbody"), report.by_stream || []);

  showStream(report.stream);
}

/** The live stream, else the last one: its totals, gifts and top supporters. */
function showStream(stream) {
  const totals = stream ? stream.totals : { diamonds: 0, coins: 0, count: 0 };
  const which = !stream || stream.live ? "this" : "last";
  setFigure("#stream-diamonds", totals.diamonds);
  $("#stream-title").textContent = t(`creator.${which}Stream`);
  $("#stream-gifts-title").textContent = t(`creator.${which}StreamGifts`);
  $("#stream-supporters-title").textContent = t(`creator.${which}StreamSupporters`);
  const during = stream && (stream.live ? t("creator.since", { time: clock(stream.started) }) : span(stream));
  $("#stream-note").textContent = stream
    ? `${plural(totals.count, "gift")} · ${plural(totals.coins, "coin")} · ${during}`
    : t("creator.noStreamsGoLive");
  const empty = !stream || totals.count === 0;
  $("#stream-empty").textContent = !stream ? t("creator.noStreams") : t(`creator.${which}StreamEmpty`);
  $("#stream-empty").hidden = !empty;
  $("#stream-by-gift").hidden = empty;
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
  return formatDate(ms, { hour: "2-digit", minute: "2-digit" });
}

/** "Diamonds per day, UTC. …" under the chart, its unit in the page's words. */
function showChartUnit(unit) {
  const key = `creator.unit.${unit}`;
  const span = el("span", { id: "chart-unit" }, has(key) ? t(key) : unit);
  $("#chart-note").replaceChildren(...nodes("creator.chartNote", { unit: span }));
}

/** "14:03–15:20" for an ended stream. */
function span(stream) {
  return `${clock(stream.started)}–${clock(stream.ended)}`;
}

/** "live since 14:03", or "14:03–15:20, 1 h 17 min". */
function lasted(stream) {
  if (stream.live) return t("creator.liveSince", { time: clock(stream.started) });
  return `${span(stream)}, ${duration(stream.ended - stream.started)}`;
}

/** How long a stream lasted: "under a minute", "12 min", "1 h 05 min". */
function duration(ms) {
  const minutes = Math.floor(ms / 60000);
  if (minutes < 1) return t("creator.underAMinute");
  if (minutes < 60) return t("creator.minutes", { minutes });
  return t("creator.hoursMinutes", { hours: Math.floor(minutes / 60), minutes: String(minutes % 60).padStart(2, "0") });
}

function giftRows(body, rows, withCoins, none = t("creator.noGiftsInPeriod")) {
  if (!rows.length) {
    body.replaceChildren(el("tr", { class: "none" }, el("td", { colspan: 4 }, none)));
    return;
  }
  body.replaceChildren(
    ...rows.map((row) =>
      el(
        "tr",
        { dataset: { gift: row.gift, count: row.count, coins: row.coins, diamonds: row.diamonds } },
        el("td", {}, giftPicture(row.gift, row.tier || "small", giftName(row)), giftName(row)),
        el("td", {}, `x${formatCoins(row.count)}`),
        withCoins ? el("td", {}, formatCoins(row.coins)) : null,
        el("td", {}, formatCoins(row.diamonds)),
      ),
    ),
  );
}

/** A report row's gift, named in the page's language (the report names it in English). */
function giftName(row) {
  if (row.gift === FAN_CLUB_GIFT) return t("fan.title");
  return catalog.byId.has(row.gift) ? catalog.name(row.gift) : row.name;
}

function supporterRows(body, rows, none = t("creator.nobodyYet")) {
  if (!rows.length) {
    body.replaceChildren(el("tr", { class: "none" }, el("td", { colspan: 4 }, none)));
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

// ------------------------------------------------------------------ streams

/** The period's streams, newest first; choosing one shows its earnings below. */
function streamRows(body, rows) {
  if (!rows.length) {
    body.replaceChildren(el("tr", { class: "none" }, el("td", { colspan: 5 }, t("creator.noStreamsInPeriod"))));
    return;
  }
  body.replaceChildren(
    ...rows.map((row) =>
      el(
        "tr",
        {
          class: row.stream_id === chosenStream ? "chosen" : null,
          "aria-current": row.stream_id === chosenStream ? "true" : null,
          dataset: { stream: row.stream_id, live: row.live, count: row.count, coins: row.coins, diamonds: row.diamonds },
          onclick: () => chooseStream(row.stream_id === chosenStream ? null : row.stream_id),
        },
        el("td", {}, el("button", { class: "row-button", type: "button" }, when(row.started))),
        el("td", { class: "stream-length" }, row.live ? t("creator.liveShort") : duration(row.ended - row.started)),
        el("td", {}, formatCoins(row.count)),
        el("td", {}, formatCoins(row.coins)),
        el("td", {}, formatCoins(row.diamonds)),
      ),
    ),
  );
}

/** Chooses a stream (its id) to show, or none; the CSV follows the choice. */
function chooseStream(streamId) {
  chosenStream = streamId;
  for (const row of document.querySelectorAll("#streams tbody tr[data-stream]")) {
    const chosen = row.dataset.stream === streamId;
    row.classList.toggle("chosen", chosen);
    if (chosen) row.setAttribute("aria-current", "true");
    else row.removeAttribute("aria-current");
  }
  const detail = $("#stream-detail");
  detail.hidden = !streamId;
  detail.dataset.stream = streamId || "";
  detail.setAttribute("aria-busy", String(Boolean(streamId)));
  csvSaid("", "");
  loadEarnings();
}

/** The chosen stream's earnings: totals, diamonds by day, by gift, by supporter. */
function showStreamDetail(report) {
  const detail = $("#stream-detail");
  if (!report || report.selection.stream_id !== chosenStream) {
    detail.hidden = true;
    detail.dataset.stream = "";
    return;
  }
  const stream = report.by_stream.find((row) => row.stream_id === chosenStream) || null;
  const totals = report.totals;
  detail.hidden = false;
  detail.setAttribute("aria-busy", "false");
  Object.assign(detail.dataset, { count: totals.count, coins: totals.coins, diamonds: totals.diamonds });
  $("#stream-detail-title").textContent = stream
    ? t(stream.live ? "creator.streamOfLive" : "creator.streamOf", { time: when(stream.started) })
    : t("creator.stream");
  $("#stream-detail-totals").textContent = [
    plural(totals.count, "gift"),
    plural(totals.coins, "coin"),
    plural(totals.diamonds, "diamond"),
    stream ? lasted(stream) : null,
  ].filter(Boolean).join(" · ");
  drawChart($("#stream-chart"), report.by_day, "day");
  giftRows($("#stream-detail-gifts tbody"), report.by_gift, true, t("creator.noGiftsInStream"));
  supporterRows($("#stream-detail-supporters tbody"), report.by_supporter);
}

// ------------------------------------------------------------------ CSV

/** The selection (the chosen stream, else the period) as a CSV file, saved. */
async function downloadCsv() {
  const button = $("#download-csv");
  button.disabled = true;
  csvSaid("busy", t("creator.csvPreparing"));
  try {
    const response = await fetch(`/api/creator/earnings?${selectionQuery()}`, {
      headers: { accept: "text/csv", authorization: `Bearer ${await tokens.get()}` },
    });
    if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => ({})));
    saveFile(await response.blob(), csvName(response));
    csvSaid("", "");
  } catch (error) {
    csvSaid("error", t("creator.csvFailed", { error: errorText(error) }));
  } finally {
    button.disabled = false;
  }
}

/** The server's name for the file, else one of the page's. */
function csvName(response) {
  const disposition = response.headers.get("content-disposition") || "";
  const named = /filename="?([^";]+)"?/.exec(disposition);
  return named ? named[1] : `earnings-${room}-${chosenStream || period()}.csv`;
}

/** Saves a blob as a file: a link to it, clicked once, then let go. */
function saveFile(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = el("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  // Revoked later: the download may still be reading it.
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

function csvSaid(state, text) {
  const status = $("#csv-status");
  status.dataset.state = state;
  status.textContent = text;
  status.hidden = !text;
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
  if (unit === "month") return formatDate(date, { month: "short", year: "2-digit", timeZone: "UTC" });
  return formatDate(date, { day: "numeric", month: "short", timeZone: "UTC" });
}

/**
 * Bars of diamonds per unit, drawn as SVG in the chart's viewBox: no
 * library, nothing fetched. Each chart has its own gradient (ids are unique).
 */
function drawChart(chart, series, unit) {
  const { width, height } = chart.viewBox.baseVal;
  const top = 18;
  const bottom = 24;
  const left = 8;
  const plot = height - top - bottom;
  const highest = Math.max(1, ...series.map((point) => point.diamonds));
  const step = (width - left * 2) / Math.max(1, series.length);
  // A bar is never wider than a day of a week's chart.
  const barWidth = Math.max(2, Math.min(step * 0.7, 96));
  // Enough labels to read, never so many that they overlap.
  const every = Math.max(1, Math.ceil(series.length / 12));
  const fillId = `${chart.id}-fill`;
  const fill = svg("linearGradient", { id: fillId, x1: 0, y1: 0, x2: 0, y2: 1 });
  fill.append(svg("stop", { offset: "0%", "stop-color": "#ff8fab" }), svg("stop", { offset: "100%", "stop-color": "#ff3d71" }));
  const nodes = [svg("defs"), svg("line", { class: "grid", x1: 0, x2: width, y1: top + plot, y2: top + plot })];
  nodes[0].append(fill);
  series.forEach((point, index) => {
    const barHeight = point.diamonds ? Math.max(2, (point.diamonds / highest) * plot) : 2;
    const x = left + index * step + (step - barWidth) / 2;
    const bar = svg("rect", {
      class: point.diamonds ? "bar" : "bar empty-bar",
      fill: `url(#${fillId})`,
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
    $("#overlay-status").textContent = t("creator.noOverlayUrl", { error: errorText(error) });
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
  $("#overlay-status").textContent = t("creator.copied");
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
    $("#overlay-status").textContent = t("creator.newKey");
  } catch (error) {
    $("#overlay-status").textContent = t("creator.cannotRegenerate", { error: errorText(error) });
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
    showTestAlertText("failed", t("creator.testFailed", { error: errorText(error) }));
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
  const key = `creator.test.${state}`;
  if (has(key)) showTestAlertText(state, t(key, { name, alerts: plural(ahead, "alert") }));
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
  below_minimum: () => t("creator.withdrawRefused.below_minimum"),
  insufficient_diamonds: () =>
    wallet
      ? t("creator.withdrawRefused.insufficient_diamonds", { diamonds: plural(wallet.diamonds || 0, "diamond") })
      : t("creator.withdrawRefused.insufficient_diamonds", { diamonds: null }),
  daily_limit_exceeded: () => t("creator.withdrawRefused.daily_limit_exceeded"),
  payout_profile_unverified: () =>
    payoutProfile.method ? t("creator.withdrawRefused.unverified") : t("creator.withdrawRefused.noProfile"),
  bad_field: () => t("creator.withdrawRefused.bad_field"),
  rate_limited: () => t("creator.withdrawRefused.rate_limited"),
  suspended: () => t("creator.withdrawRefused.suspended"),
};

async function loadPayoutProfile() {
  try {
    showPayoutProfile(await api("/api/creator/payout-profile", { token: await tokens.get() }));
  } catch (error) {
    payoutSaid("error", t("creator.cannotReadPayout", { error: errorText(error) }));
  }
}

function showPayoutProfile(profile) {
  payoutProfile = profile;
  const line = $("#payout-profile");
  line.dataset.method = profile.method || "";
  line.dataset.verified = String(Boolean(profile.verified));
  if (!profile.method) {
    line.textContent = t("creator.noPayoutProfile");
    return;
  }
  const method = `creator.method.${profile.method}`;
  line.replaceChildren(
    ...nodes("creator.payoutLine", {
      method: el("span", { class: "payout-method" }, has(method) ? t(method) : profile.method),
      account: el("span", { class: "payout-account" }, profile.account),
      currency: el("span", { class: "payout-currency" }, profile.currency),
      verified: el(
        "span",
        { class: "payout-verified" },
        profile.verified ? t("creator.verified") : t("creator.notVerified"),
      ),
    }),
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
  payoutSaid("saving", t("common.saving"));
  try {
    const token = await tokens.get();
    const profile = await api("/api/creator/payout-profile", { method: "PUT", token, body });
    showPayoutProfile(profile);
    // Kept by the server, masked: not left in the page.
    $("#payout-tax-id").value = "";
    $("#payout-account").value = "";
    payoutSaid(
      "saved",
      profile.verified ? t("creator.payoutSavedVerified") : t("creator.payoutSaved"),
    );
  } catch (error) {
    payoutSaid(
      "error",
      error.code === "bad_field"
        ? t("creator.payoutBadField")
        : t("creator.payoutNotSaved", { error: errorText(error) }),
    );
  } finally {
    button.disabled = false;
  }
}

/** The withdrawals and the wallet; read again every 5 s while one is pending. */
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
      $("#withdrawals-empty").textContent = t("creator.cannotReadWithdrawals", { error: errorText(error) });
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
  note.textContent = carry ? t("creator.carry", { part: (carry / 100).toFixed(2) }) : "";
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
  $("#withdrawals-empty").textContent = t("creator.noWithdrawals");
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
    el("span", { class: "withdrawal-status" }, withdrawalState(withdrawal.status)),
    el(
      "span",
      { class: "withdrawal-diamonds", dataset: { value: withdrawal.diamonds } },
      el("span", { class: "diamond", "aria-hidden": "true" }),
      plural(withdrawal.diamonds, "diamond"),
    ),
    el("span", { class: "withdrawal-amount" }, money(withdrawal.amount, withdrawal.currency)),
    el("time", { class: "withdrawal-time", datetime: new Date(withdrawal.created).toISOString() }, when(withdrawal.created)),
  );
  return row;
}

function when(ms) {
  return formatDate(ms, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
}

function withdrawalState(status) {
  const key = `creator.withdrawal.${status}`;
  return has(key) ? t(key) : status;
}

/** An amount of money as the page's language writes it ("2.50 USD"; "US$2.50" in Chinese). */
function money(amount, currency) {
  return t("creator.money", { amount, currency, price: formatMoney(amount, currency) });
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
  withdrawSaid("sending", "", t("creator.withdrawAsking", { diamonds: plural(diamonds, "diamond") }));
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
  const worth = money(answer.amount, answer.currency);
  return t("creator.withdrawAsked", { diamonds: plural(answer.diamonds, "diamond"), worth });
}

function refusal(error, diamonds) {
  const words = WITHDRAW_WORDS[error.code];
  if (words) return words();
  if (worthRetrying(error)) {
    return t("creator.withdrawUnknown", { diamonds: plural(diamonds, "diamond") });
  }
  return t("creator.withdrawFailed", { error: error.message });
}

// ------------------------------------------------------------------ the goal

/** The goal card: its form wired, its gifts listed; the goal itself is read with the rest. */
function startGoal() {
  roomGoal = new RoomGoal(room, { onChange: showGoal });
  fillGoalGifts();
  for (const input of document.querySelectorAll('input[name="goal-kind"]')) {
    input.addEventListener("change", showGoalKind);
  }
  $("#goal-form").addEventListener("submit", setGoal);
  $("#goal-clear").addEventListener("click", clearGoal);
  showGoalKind();
}

/** The form's gifts, named in the page's language; the one chosen stays chosen. */
function fillGoalGifts() {
  const select = $("#goal-gift");
  const chosen = select.value;
  select.replaceChildren(
    ...catalog.gifts.map((gift) =>
      el("option", { value: gift.id }, t("creator.goalGiftOption", { gift: gift.name, coins: plural(gift.coins, "coin") })),
    ),
  );
  if (chosen) select.value = chosen;
}

function goalKind() {
  return document.querySelector('input[name="goal-kind"]:checked').value;
}

/** Only the chosen kind's fields are shown (and checked by the form). */
function showGoalKind() {
  const byGift = goalKind() === "gift";
  $("#goal-coins-field").hidden = byGift;
  $("#goal-coins").disabled = byGift;
  $("#goal-gift-field").hidden = !byGift;
  $("#goal-gift").disabled = !byGift;
  $("#goal-count-field").hidden = !byGift;
  $("#goal-count").disabled = !byGift;
}

function showGoal(goal) {
  drawGoal($("#goal"), goal, catalog);
  $("#goal-card").dataset.state = !goal ? "none" : goal.reached ? "reached" : "set";
  $("#goal-none").hidden = Boolean(goal);
  $("#goal-clear").disabled = !goal;
}

/** The body of POST /api/creator/goals from the form, or null (and why) when it will not do. */
function goalAsk() {
  const title = $("#goal-title").value.trim();
  const byGift = goalKind() === "gift";
  const target = Number((byGift ? $("#goal-count") : $("#goal-coins")).value);
  if (!title || title.length > 60 || !Number.isInteger(target) || target < 1) return null;
  return byGift ? { title, gift_id: $("#goal-gift").value, target_count: target } : { title, target_coins: target };
}

async function setGoal(event) {
  event.preventDefault();
  const ask = goalAsk();
  if (!ask) return goalSaid("error", t("creator.goalRefused.bad_field"));
  await goalRequest("POST", ask, t("creator.goalSetting"), t("creator.goalSet"));
}

async function clearGoal() {
  await goalRequest("DELETE", undefined, t("creator.goalClearing"), t("creator.goalCleared"));
}

/** Sets or clears the goal; the answer is the goal from now on (the room hears it too). */
async function goalRequest(method, body, doing, done) {
  const buttons = [$("#goal-set"), $("#goal-clear")];
  buttons.forEach((button) => (button.disabled = true));
  goalSaid("busy", doing);
  try {
    const answer = await api("/api/creator/goals", { method, token: await tokens.get(), body });
    roomGoal.changed(answer.goal);
    if (method === "POST") $("#goal-title").value = "";
    goalSaid("saved", done);
  } catch (error) {
    const key = `creator.goalRefused.${error.code}`;
    goalSaid("error", has(key) ? t(key) : t("creator.goalFailed", { error: error.message }));
  } finally {
    $("#goal-set").disabled = false;
    $("#goal-clear").disabled = !roomGoal.goal;
  }
}

function goalSaid(state, text) {
  const status = $("#goal-status");
  status.dataset.state = state;
  status.textContent = text;
  status.hidden = !text;
}

/** The goal is reached (a room event: once): the card and the live list say so. */
function goalReached(event) {
  roomGoal.reached(event.goal);
  feed.note(t("goal.reachedNote", { title: event.goal ? event.goal.title : t("creator.yourGoal") }), "goal");
  $("#live-empty").hidden = true;
}

// ------------------------------------------------------------------ live gifts

function showState(state, detail) {
  lastState = { state, detail };
  $("#state").dataset.state = state;
  $("#state").textContent = describeState(state, detail);
}

function showViewers(count) {
  viewerCount = count;
  $("#viewers").textContent = Number.isInteger(count)
    ? t("viewer.watchingCount", { n: formatCoins(count) })
    : t("viewer.watchingUnknown");
}

/**
 * A reconnect may have missed a start or an end (a resync replays nothing),
 * and the goal's progress (its messages are never replayed).
 */
function welcomed(welcome, { reconnect }) {
  showViewers(welcome.viewers);
  if (reconnect) {
    loadStreams();
    roomGoal.load();
  }
}

function roomEvent(event) {
  if (event.type === "stream_started" || event.type === "stream_ended") {
    streamChanged(streamFromEvent(event));
    loadEarnings();
    return;
  }
  if (event.type === "goal_reached") return goalReached(event);
  feed.add(event);
  $("#live-empty").hidden = true;
  if (event.type === "gift") earningsSoon();
}

start();
