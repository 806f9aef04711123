// The viewer's room page: /viewer.html?room=carol&user=alice
//
// URL parameters: room (default carol); user (demo mode: a token is issued
// for them; absent: watch-only); token (a platform's token, instead of
// user); confirm (coins above which a send asks first, default 1000; the
// server's own threshold, from the welcome, otherwise); rows (history rows
// per page in "My coins", default 20).
//
// Whether the room's creator takes gifts comes from GET /api/rooms/{room}
// (on load, after each reconnect, and after a gift refused with
// `gifts_disabled` or `gifting_off`); whether they are live, from the socket
// (the welcome's `live`, the room's `stream_started` and `stream_ended`
// events, a gift refused with `room_offline`). While gifts are off, the gift
// buttons are off and the panel says why.
//
// "My coins" (a sheet) lists the wallet's history, newest first, a page at a
// time (GET /api/wallet/history), and the viewer's own spending limits
// (GET and PUT /api/wallet/budget); what the tightest limit still allows is
// shown above the gifts, read again after each ack while a limit is set.
//
// "Top gifters" ranks the room's gifters for the stream, today or all time
// (GET /api/rooms/{room}/leaderboard; the stream's from the room's
// `leaderboard` messages too), with the viewer's own row marked and a
// checkbox to hide their name in rankings (GET and PUT /api/me/privacy).
// The creator's goal is a bar on the stage (GET /api/rooms/{room}/goal, then
// the room's `goal` messages), and `goal_reached` is celebrated once.
// A room `gift` event for one of this page's sends (giftstream.js marks it
// `own`: its request id, from the signed-in user) marks that send as shown
// in the room.
//
// The fan club (GET /api/rooms/{room}/fanclub, POST .../fanclub/join): a
// card to join it, then the viewer's level and the coins to the next one;
// gift events of members carry a badge ("carol Lv 3"), and a gift that
// needs a higher level than the viewer's shows as locked.
//
// Words are in the page's language (i18n.js: `?lang=`, the switcher's
// choice, the browser's); gift names come from the catalogue in that
// language, and the top-up sheet shows the packages of its region (USD for
// English, CNY for Chinese) unless another is chosen there.

import {
  ApiError,
  ID_PATTERN,
  RoomSocket,
  TokenSource,
  api,
  describeState,
  el,
  formatCoins,
  numberParam,
  param,
  plural,
  requestIds,
  sleep,
} from "./common.js";
import { BOARD_PERIODS, RoomBoard, RoomGoal, boardRows, drawGoal } from "./engagement.js";
import { Feed, ShowQueue, fanBadge, sentLine } from "./feed.js";
import { Catalog, giftPicture } from "./gifts.js";
import {
  REGION_OF_LANGUAGE,
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

const room = param("room", "carol");
const tokens = new TokenSource({ user: param("user"), token: param("token") });
// The server's threshold (the welcome's limits) replaces this once known.
let confirmAbove = numberParam("confirm", 1000);
const BIG_TIERS = new Set(["large", "fullscreen"]);
const SHOW_MS = { large: 3500, fullscreen: 5000 };
// While gifts are off, how often the page asks whether they are back on.
const ROOM_RECHECK_MS = 20000;
// How stale the server's answer on a room may be (its profile cache, 1 s):
// an answer to a question asked sooner than this after the socket said
// whether the room is live does not overrule the socket.
const ROOM_ANSWER_LAG_MS = 1500;
// How long "goal reached" stays on the stage.
const CELEBRATION_MS = 8000;
// History rows per page (the server allows 1 to 200).
const HISTORY_ROWS = Math.min(200, Math.max(1, Math.trunc(numberParam("rows", 20))));
// The spending-limit windows, in the server's order (their words: `window.*`).
const WINDOWS = ["daily", "weekly", "monthly"];
// A fan club join without an answer (none, a 5xx, `temporary`) is sent again
// after these pauses, with the same request id: paid once at most.
const JOIN_RETRY_MS = [500, 1500, 3000];
// The gift a fan club's price is paid as (the wallet's history names it).
const FAN_CLUB_GIFT = "fan_club";
// After one of the viewer's own gifts, when their fan club standing is read again.
const FAN_READ_AFTER_GIFT_MS = 800;

const $ = (selector) => document.querySelector(selector);
const nextJoinId = requestIds("fc");
let catalog = new Catalog();
let feed = new Feed($("#feed"), catalog, { me: tokens.user });
let balance = null;
// Bumped whenever the balance is read afresh (welcome, wallet): an ack for a
// gift sent before that carries an older balance and must not overwrite it.
let balanceEpoch = 0;
let canSend = false;
// What keeps gifts off. `reasons`: the creator's own, from GET
// /api/rooms/{room} (never `room_offline`); `unexplained`: refused by the
// room, why not known yet; `live`: whether the creator is live (null until
// known), and `liveAt`: when the socket last said so.
const roomState = { creator: room, reasons: [], unexplained: false, live: null, liveAt: 0 };
// True while gifts are off, for any of those reasons.
let giftsOff = false;
let roomRecheck = null;
// Gifts sent and not yet answered, by request id: their rows, and which
// reading of the balance their ack may follow. giftstream.js sends each again
// with the same id after a reconnect (a paid one is answered `duplicate`).
const inflight = new Map();
// The signed-in user, as the welcome names them (a `token` may be anyone's).
let me = tokens.user;
// The latest answer of GET or PUT /api/wallet/budget (null until read). An
// answer to an older question than the one shown is not drawn over it.
let budget = null;
const budgetReads = { issued: 0, shown: 0, reading: false, again: false };
// The limit each window was asked for (pending, else in force), as the form
// was filled: only the windows changed from these are sent.
const askedLimits = { daily: null, weekly: null, monthly: null };
// The form's windows typed in since the sheet opened (or the limits were
// saved): an answer arriving meanwhile does not overwrite them.
const budgetEdited = new Set();
// The history's paging: `cursor` for "More" (null: no more), `load` bumped
// each time the sheet opens (a page for an older opening is dropped).
const historyState = { cursor: null, load: 0, loading: false };
// The fan club: its price and level thresholds, and the viewer's membership
// (null until read); `reads` numbers the reads (an older answer is dropped).
const fanClub = { price: null, levels: [], you: null, reads: 0, joining: false, timer: null };
// Which region's packages the top-up sheet shows: the language's, unless
// chosen in the sheet.
let region = null;
// The socket's state as last shown, and the viewer count: said again in another language.
let lastState = { state: "connecting", detail: {} };
let viewerCount = null;

const bigShow = new ShowQueue({ play: playBigGift, onChange: showQueueLength });
const board = new RoomBoard(room, { onChange: showBoard });
const roomGoal = new RoomGoal(room, { onChange: showGoal });

const socket = new RoomSocket({
  room,
  tokens,
  onState: showState,
  onWelcome: welcomed,
  onEvent: roomEvent,
  onViewers: showViewers,
  onLeaderboard: (message) => board.message(message),
  onGoal: (message) => roomGoal.changed(message.goal),
});

// ------------------------------------------------------------------ start

async function start() {
  $("#room-name").textContent = room;
  $("#stage-initial").textContent = room.slice(0, 1).toUpperCase();
  document.title = `${room} · giftstream`;
  languageSwitcher($("#language"));
  onLanguageChange(relabel);
  showState(lastState.state, lastState.detail);
  showViewers(null);
  showRoom();
  $("#recharge-open").addEventListener("click", () => openRecharge(""));
  for (const input of document.querySelectorAll('input[name="region"]')) {
    input.addEventListener("change", () => chooseRegion(input.value));
  }
  $("#fanclub-join").addEventListener("click", joinFanClub);
  $("#recharge-open").hidden = !tokens.signedIn;
  $("#coins-open").addEventListener("click", openCoins);
  $("#coins-open").hidden = !tokens.signedIn;
  $("#history-more").addEventListener("click", () => loadHistory());
  $("#budget-form").addEventListener("submit", saveBudget);
  $("#budget-form").addEventListener("input", (event) => budgetEdited.add(event.target.name));
  if (!ID_PATTERN.test(room) || (tokens.user && !ID_PATTERN.test(tokens.user))) {
    showState("offline", {});
    $("#state").textContent = t("viewer.notConnected");
    showNotice(t("viewer.badAddress"), true);
    return;
  }
  checkRoom();
  startEngagement();
  readFanClub();
  catalog = await loadCatalog();
  feed = new Feed($("#feed"), catalog, { me: tokens.user });
  // The goal may have come first: its gift is named now.
  if (roomGoal.known) showGoal(roomGoal.goal);
  renderGifts();
  renderPackages();
  socket.start();
}

/** The gifts named in the page's language, and the packages of the sheet's region. */
async function loadCatalog() {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await readCatalog();
    } catch (error) {
      showNotice(t("viewer.catalogRetry", { error: error.message }));
      await sleep(Math.min(10000, 1000 * 2 ** attempt));
    }
  }
}

async function readCatalog() {
  const query = new URLSearchParams({ lang: language(), region: packageRegion() });
  return new Catalog(await api(`/api/catalog?${query}`));
}

/** The region whose packages the sheet shows: chosen there, else the language's. */
function packageRegion() {
  return region || REGION_OF_LANGUAGE[language()] || "US";
}

/** Another region's packages in the sheet (any package can be bought, wherever it is sold). */
async function chooseRegion(chosen) {
  region = chosen;
  try {
    catalog = await readCatalog();
  } catch (error) {
    $("#recharge-status").textContent = t("recharge.cannotLoad", { error: errorText(error) });
    return;
  }
  feed.catalog = catalog;
  renderPackages();
}

/**
 * Everything the page has said, said again in the language just chosen: the
 * HTML's own text is done (i18n.js); gift names come from the catalogue in
 * that language, and the sheet's packages from its region.
 */
async function relabel() {
  showState(lastState.state, lastState.detail);
  showViewers(viewerCount);
  if (balance !== null) setBalance(balance);
  $("#who").textContent = me || (socket.everWelcomed ? t("viewer.watching") : "");
  showRoom();
  showBoard(board);
  showFanClub();
  if (budget) showBudget(budget, budgetReads.shown, false);
  try {
    catalog = await readCatalog();
  } catch {
    // The names stay as they were; the words around them are the new language's.
  }
  feed.relabel(catalog);
  renderGifts();
  renderPackages();
  showGoal(roomGoal.goal);
}

// ------------------------------------------------------------------ connection

function showState(state, detail) {
  lastState = { state, detail };
  const badge = $("#state");
  badge.dataset.state = state;
  badge.textContent = describeState(state, detail);
  badge.title = detail.reason || "";
  document.body.dataset.state = state;
}

function showViewers(count) {
  viewerCount = count;
  const known = Number.isInteger(count);
  $("#viewers").textContent = known ? t("viewer.watchingCount", { n: formatCoins(count) }) : t("viewer.watchingUnknown");
  $("#viewers").title = known ? t("viewer.watchingTitle", { people: plural(count, "person", "people") }) : t("viewer.viewersTitle");
  $("#viewers").dataset.count = known ? String(count) : "";
}

function welcomed(welcome, { reconnect, missed, resume, replayed }) {
  showViewers(welcome.viewers);
  if (welcome.you.user && welcome.you.user !== me) {
    me = welcome.you.user;
    showBoard(board);
  }
  canSend = Boolean(welcome.you && welcome.you.can_send);
  $("#who").textContent = welcome.you.user ? welcome.you.user : t("viewer.watching");
  $("#watch-only").hidden = Boolean(welcome.you.user);
  const limits = welcome.limits || {};
  if (Number.isInteger(limits.confirm_above_coins) && param("confirm") === null) {
    confirmAbove = limits.confirm_above_coins;
  }
  if (typeof welcome.live === "boolean") socketSaysLive(welcome.live);
  else updateGiftButtons();
  if (welcome.balance !== null && welcome.balance !== undefined) freshBalance(welcome.balance);
  if (welcome.you.user) readBudget();
  if (reconnect) {
    showNotice(backOnline(resume, missed, replayed));
    // Gifting may have been switched on or off meanwhile; the ranking and
    // the goal may have moved (their messages are not replayed).
    checkRoom();
    board.load();
    roomGoal.load();
    readFanClub();
  }
  // The feed has a hole where events were not replayed: say so in it.
  if (reconnect && resume !== "ok" && missed > 0) feed.note(t("viewer.missedNote"));
  // Sends still unanswered go again, with the same ids, right after this
  // welcome: a debit made from now on comes after the welcome's balance.
  for (const pending of inflight.values()) pending.epoch = balanceEpoch;
}

function backOnline(resume, missed, replayed) {
  if (resume === "ok") {
    return replayed > 0 ? t("viewer.backCaughtUp", { events: plural(replayed, "room event") }) : t("viewer.back");
  }
  if (missed > 0) return t("viewer.backMissed", { events: plural(missed, "room event") });
  return t("viewer.back");
}

function showNotice(text, sticky = false) {
  const notice = $("#notice");
  notice.textContent = text;
  notice.hidden = !text;
  clearTimeout(showNotice.timer);
  if (text && !sticky) showNotice.timer = setTimeout(() => (notice.hidden = true), 6000);
}

// ------------------------------------------------------------------ balance

function setBalance(coins) {
  balance = coins;
  const shown = $("#balance");
  shown.textContent = formatCoins(coins);
  shown.dataset.value = String(coins);
  shown.closest(".coin-badge").title = t("viewer.youHave", { coins: plural(coins, "coin") });
}

function freshBalance(coins) {
  balanceEpoch += 1;
  setBalance(coins);
}

async function refreshBalance() {
  const token = await tokens.get();
  if (!token) return;
  const wallet = await api("/api/wallet", { token });
  freshBalance(wallet.coins);
}

// ------------------------------------------------------------------ does the room take gifts?

/**
 * Asks GET /api/rooms/{room}; an unanswered question changes nothing. Its
 * `live` counts unless the socket has said otherwise since, or just before,
 * the question. `afterRefusal`: a gift was just refused by the room, so an
 * answer that it takes gifts is not believed yet (the next look may be).
 */
async function checkRoom({ afterRefusal = false } = {}) {
  const askedAt = Date.now();
  const liveAt = roomState.liveAt;
  let answer;
  try {
    answer = await api(`/api/rooms/${encodeURIComponent(room)}`);
  } catch {
    return null;
  }
  const reasons = answer.reasons || [];
  roomState.creator = answer.creator || room;
  roomState.reasons = reasons.filter((reason) => reason !== "room_offline");
  roomState.unexplained =
    answer.accepts_gifts === false ? reasons.length === 0 : afterRefusal && roomState.unexplained;
  const fresh = liveAt === roomState.liveAt && askedAt - liveAt >= ROOM_ANSWER_LAG_MS;
  if (fresh && typeof answer.live === "boolean") roomState.live = answer.live;
  else if (fresh && reasons.includes("room_offline")) roomState.live = false;
  if (showRoom()) showNotice(t("room.takingAgain", { name: roomState.creator }));
  return answer;
}

/**
 * A gift was refused with `gifts_disabled` or `gifting_off`: the creator switched gifts off
 * while this page was open. The panel closes at once and then learns why.
 */
function refusedByRoom() {
  roomState.unexplained = true;
  showRoom();
  checkRoom({ afterRefusal: true });
}

/** The socket says whether the room is live (a welcome, a stream event, a refusal). */
function socketSaysLive(live) {
  roomState.live = live;
  roomState.liveAt = Date.now();
  return showRoom();
}

/** A stream started or ended in the room. */
function streamEvent(event) {
  const live = event.type === "stream_started";
  feed.note(live ? t("room.wentLive", { name: roomState.creator }) : t("room.streamEnded"));
  // A new stream starts a new ranking.
  if (live && board.period === "stream") board.load();
  if (socketSaysLive(live)) showNotice(t("room.liveOpen", { name: roomState.creator }));
}

/**
 * A gift was refused with `room_offline`. The refusal may predate a
 * `stream_started` this page has seen already (the server reads a room's
 * stream at most once a second): asked again once that second is over.
 */
function refusedOffline() {
  socketSaysLive(false);
  setTimeout(checkRoom, ROOM_ANSWER_LAG_MS + 100);
}

/** Shows the room as `roomState` has it; true when gifts have just opened. */
function showRoom() {
  const { creator, reasons, unexplained, live } = roomState;
  const wasOff = giftsOff;
  giftsOff = reasons.length > 0 || unexplained || live === false;
  document.body.dataset.gifts = giftsOff ? "off" : "on";
  document.body.dataset.live = live === null ? "unknown" : String(live);
  const badge = $("#live-badge");
  badge.dataset.live = document.body.dataset.live;
  badge.textContent = live === false ? t("room.badgeOffline") : live ? t("room.badgeLive") : "…";
  badge.title =
    live === false ? t("room.isOffline", { name: creator }) : live ? t("room.isLive", { name: creator }) : t("room.badgeTitle");
  const box = $("#gifts-off");
  box.hidden = !giftsOff;
  box.dataset.offline = String(live === false);
  if (giftsOff) sayGiftsOff(box, creator, reasons, unexplained);
  updateGiftButtons();
  showFanClub();
  clearTimeout(roomRecheck);
  if (giftsOff) roomRecheck = setTimeout(checkRoom, ROOM_RECHECK_MS);
  return wasOff && !giftsOff;
}

/**
 * Why gifts are off, in words. The creator's own reasons come first: while
 * one stands, gifts would stay off when the stream starts, so being offline
 * (said by the badge) is not given as the reason.
 */
function sayGiftsOff(box, name, reasons, unexplained) {
  const title = box.querySelector(".gifts-off-title");
  const why = box.querySelector(".gifts-off-why");
  if (!reasons.length && !unexplained) {
    title.textContent = t("room.isOffline", { name });
    why.textContent = t("room.opensWhenLive");
    box.dataset.reasons = "room_offline";
    return;
  }
  const known = reasons.filter((reason) => has(`reason.${reason}`));
  title.textContent = t("room.notTaking", { name });
  why.textContent = known.length
    ? t("room.because", { name, reasons: known.map((reason) => t(`reason.${reason}`)) })
    : t("room.cannotReach", { name });
  box.dataset.reasons = reasons.join(" ");
}

/** Gifts are tappable when signed in (once welcomed) and the creator takes them. */
function updateGiftButtons() {
  const grid = $("#gifts");
  grid.classList.toggle("disabled", giftsOff || (socket.everWelcomed && !canSend));
  for (const button of grid.querySelectorAll("button")) button.disabled = giftsOff;
  showLocks();
}

/** The viewer's fan level (0: not a member, or not known yet). */
function fanLevel() {
  return fanClub.you ? Number(fanClub.you.fan_level) || 0 : 0;
}

/** The level a gift needs (the catalogue's `fan_level_required`; 0: none). */
function levelNeeded(gift) {
  return Number(gift.fan_level_required) || 0;
}

/** Gifts that need a higher fan level than the viewer's show as locked, with the level they need. */
function showLocks() {
  for (const button of document.querySelectorAll("#gifts .gift-button")) {
    const gift = catalog.byId.get(button.dataset.gift);
    const needed = gift ? levelNeeded(gift) : 0;
    if (needed === 0) continue;
    const locked = needed > fanLevel();
    button.dataset.locked = String(locked);
    button.classList.toggle("locked", locked);
    button.querySelector(".gift-lock").hidden = !locked;
    button.title = locked
      ? t("fan.lockedTitle", { gift: gift.name, level: needed })
      : t("gift.title", { gift: gift.name, coins: plural(gift.coins, "coin"), tier: t(`tier.${gift.tier}`) });
  }
}

// ------------------------------------------------------------------ gift panel

function renderGifts() {
  const grid = $("#gifts");
  grid.replaceChildren(
    ...catalog.gifts.map((gift) =>
      el(
        "button",
        {
          class: `gift-button tier-${gift.tier}`,
          type: "button",
          dataset: { gift: gift.id, tier: gift.tier, level: String(levelNeeded(gift)) },
          title: t("gift.title", { gift: gift.name, coins: plural(gift.coins, "coin"), tier: t(`tier.${gift.tier}`) }),
          "aria-label": t("gift.label", { gift: gift.name, coins: plural(gift.coins, "coin") }),
          onclick: () => tapGift(gift),
        },
        giftPicture(gift.id, gift.tier, gift.name),
        el("span", { class: "gift-label" }, gift.name),
        el("span", { class: "gift-price" }, el("span", { class: "coin" }), formatCoins(gift.coins)),
        el("span", { class: "gift-tier" }, t(`tier.${gift.tier}`)),
        levelNeeded(gift) > 0 ? el("span", { class: "gift-lock", hidden: true }, `Lv ${levelNeeded(gift)}`) : null,
      ),
    ),
  );
  grid.setAttribute("aria-busy", "false");
  updateGiftButtons();
}

function batchSize() {
  return Number(document.querySelector('input[name="batch"]:checked').value);
}

async function tapGift(gift) {
  if (giftsOff) return;
  if (!tokens.signedIn) {
    showNotice(t("viewer.signInToSend"));
    return;
  }
  if (levelNeeded(gift) > fanLevel()) {
    showNotice(t("fan.lockedNotice", { gift: gift.name, level: levelNeeded(gift) }));
    return;
  }
  const count = batchSize();
  const cost = gift.coins * count;
  let confirmed = false;
  if (cost > confirmAbove) {
    const question = t("confirm.question", { gift: gift.name, count, coins: plural(cost, "coin") });
    if (!(await confirmSend(question))) return;
    confirmed = true;
  }
  sendGift(gift, count, confirmed);
}

/**
 * A send; `confirmed` when the user said yes to its cost (the server asks for
 * it above its threshold). `row`: the row of a refused send that this one
 * sends again, under a new id; else a new row.
 */
function sendGift(gift, count, confirmed = false, row = null) {
  const sending = socket.sendGift(gift.id, count, { confirm: confirmed });
  const id = sending.requestId;
  if (row) {
    row.dataset.id = id;
    delete row.dataset.code;
    setSendState(row, "pending", t("send.sending"));
  } else {
    row = el(
      "li",
      { class: "send", dataset: { id, state: "pending", gift: gift.id } },
      giftPicture(gift.id, gift.tier, gift.name),
      el("span", { class: "send-what" }, `${gift.name} x${count}`),
      el("span", { class: "send-status" }, t("send.sending")),
      el("span", { class: "send-shown", title: t("send.shownTitle"), hidden: true }, t("send.shown")),
    );
    $("#sends").prepend(row);
    while ($("#sends").children.length > 6) $("#sends").lastElementChild.remove();
  }
  const pending = { row, gift, count, epoch: balanceEpoch };
  inflight.set(id, pending);
  // It goes once the room is connected again.
  if (socket.state !== "live") setSendState(row, "pending", t("send.waitingConnection"));
  sending.then(
    (ack) => acked(id, pending, ack),
    (error) => refused(id, pending, error),
  );
}

function setSendState(row, state, text) {
  row.dataset.state = state;
  row.querySelector(".send-status").textContent = text;
}

/** Asks `question` in the confirmation dialog: true for "Send". One question at a time. */
function confirmSend(question) {
  const answer = confirmSend.queue.then(() => askOnce(question));
  confirmSend.queue = answer.catch(() => false);
  return answer;
}
confirmSend.queue = Promise.resolve(false);

function askOnce(question) {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = question;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "send"), { once: true });
  });
}

// ------------------------------------------------------------------ answers

function acked(id, pending, ack) {
  inflight.delete(id);
  setSendState(pending.row, "confirmed", t("send.sent", { coins: plural(ack.coins, "coin") }));
  pending.row.dataset.coins = String(ack.coins);
  budgetAfterAck();
  if (ack.duplicate || pending.epoch !== balanceEpoch) {
    // A duplicate's balance is from its first attempt, and a debit that raced
    // a fresh reading of the balance may come before or after it: ask the wallet.
    refreshBalance().catch(() => {});
  } else if (balance === null || ack.balance < balance) {
    // Acks may come out of order: the lowest balance is the latest debit.
    setBalance(ack.balance);
  }
}

/**
 * A send refused (a GiftstreamError: the frame's code and numbers). A
 * `temporary` refusal has been sent again already, with the same id, and
 * was still refused.
 */
function refused(id, pending, error) {
  inflight.delete(id);
  pending.row.dataset.code = error.code;
  // Unanswered for good (`unavailable`, `internal`): it may have been paid.
  if (error.outcomeUnknown) refreshBalance().catch(() => {});
  // One refusal, one message, in one place. Where another part of the page
  // explains it (the top-up sheet, the panel's "not taking gifts" or
  // "offline" box), the row only says that this gift was not sent. A
  // confirmation the server wants is asked for, and the gift sent again; a
  // limit's refusal is said in the row, and its numbers in the notice.
  if (error.code === "insufficient_coins" && openRecharge(notEnoughCoins(pending))) {
    setSendState(pending.row, "failed", t("send.notSent"));
  } else if (error.code === "gifts_disabled" || error.code === "gifting_off") {
    setSendState(pending.row, "failed", t("send.notSent"));
    refusedByRoom();
  } else if (error.code === "room_offline") {
    setSendState(pending.row, "failed", t("send.notSent"));
    refusedOffline();
  } else if (error.code === "confirm_required") {
    askAgain(pending, error);
  } else if (error.code === "budget_exceeded") {
    setSendState(pending.row, "failed", t("send.notSentBecause", { words: refusalWords(error) }));
    overBudget(pending, error);
  } else if (error.code === "send_limit_exceeded") {
    setSendState(pending.row, "failed", t("send.notSentBecause", { words: refusalWords(error) }));
    showNotice(tooMuchForOneSend(pending, error));
  } else {
    setSendState(pending.row, "failed", t("send.notSentBecause", { words: refusalWords(error) }));
    // The viewer's level may have changed elsewhere: read it again.
    if (error.code === "fan_level_required") readFanClub();
  }
}

/**
 * A refusal in the page's own words, by its code (the frame's numbers filled
 * in); a code the page does not know has none: the server's are the words.
 */
function refusalWords(error) {
  if (has(`refusal.${error.code}`)) return t(`refusal.${error.code}`, error);
  return error.message || t("refusal.other");
}

/** The words of an HTTP refusal (an `ApiError`), by code like a frame's. */
function errorText(error) {
  return has(`refusal.${error.code}`) ? t(`refusal.${error.code}`, error) : error.message;
}

function notEnoughCoins({ gift, count }) {
  const cost = plural(gift.coins * count, "coin");
  const held = balance === null ? null : formatCoins(balance);
  return t("recharge.notEnough", { what: `${gift.name} x${count}`, cost, held });
}

/**
 * The server wants a confirmation the page did not ask for (its threshold is
 * lower than the page's): asked now, and, on "Send", the same gift sent again
 * with it. Nothing moved, so a new id is safe. Later sends ask first.
 */
async function askAgain(pending, error) {
  const { gift, count, row } = pending;
  if (Number.isInteger(error.threshold)) confirmAbove = Math.min(confirmAbove, error.threshold);
  setSendState(row, "pending", t("send.waitingAnswer"));
  const coins = Number.isInteger(error.coins) ? error.coins : gift.coins * count;
  if (await confirmSend(t("confirm.question", { gift: gift.name, count, coins: plural(coins, "coin") }))) {
    sendGift(gift, count, true, row);
  } else {
    setSendState(row, "failed", t("send.notSent"));
  }
}

/** A gift refused by the viewer's own limit: what is left is said, and read again. */
function overBudget({ gift, count }, error) {
  const left = Number.isInteger(error.remaining) ? error.remaining : null;
  const tightest = budget ? tightestWindow(budget) : null;
  if (left !== null) showBudgetLine(left, tightest);
  const said = left === null ? null : leftWords(left, tightest);
  showNotice(t("budget.overNotice", { what: `${gift.name} x${count}`, left: said }));
  readBudget();
}

function tooMuchForOneSend({ gift, count }, error) {
  const most = Number.isInteger(error.limit) ? plural(error.limit, "coin") : null;
  return t("send.tooMuch", { most, what: `${gift.name} x${count}`, coins: plural(gift.coins * count, "coin") });
}

// ------------------------------------------------------------------ my coins: spending limits

/** Opens "My coins": the limits and the first page of the history, read afresh. */
function openCoins() {
  if (!tokens.signedIn) return;
  const dialog = $("#coins");
  if (!dialog.open) dialog.showModal();
  sayBudget("", "");
  budgetEdited.clear();
  readBudget({ fill: true });
  loadHistory({ first: true });
}

/** Reads the limits and shows them; `fill` also puts them in the form. */
async function readBudget({ fill = false } = {}) {
  const ticket = ++budgetReads.issued;
  try {
    const token = await tokens.get();
    showBudget(await api("/api/wallet/budget", { token }), ticket, fill);
  } catch (error) {
    if (fill) sayBudget("error", t("budget.cannotRead", { error: errorText(error) }));
  }
}

/** After an ack, while a limit is set: one read at a time, and one more for the acks meanwhile. */
function budgetAfterAck() {
  if (!tokens.signedIn || !budgetMatters(budget)) return;
  if (budgetReads.reading) {
    budgetReads.again = true;
    return;
  }
  budgetReads.reading = true;
  readBudget().finally(() => {
    budgetReads.reading = false;
    if (budgetReads.again) {
      budgetReads.again = false;
      budgetAfterAck();
    }
  });
}

/** Whether a gift can change what the limits say: unknown yet, or some limit set or waiting. */
function budgetMatters(answer) {
  if (!answer) return true;
  return WINDOWS.some((name) => answer[name] && (answer[name].limit !== null || answer[name].pending));
}

/**
 * Shows an answer on the limits, unless one to a later question is shown
 * already (`ticket`: when it was asked); `fill` also puts the limits in the form.
 */
function showBudget(answer, ticket, fill) {
  if (ticket < budgetReads.shown) {
    if (fill) fillBudgetForm(budget);
    return;
  }
  budgetReads.shown = ticket;
  budget = answer;
  for (const name of WINDOWS) {
    const { limit, spent, remaining } = answer[name];
    const row = $(`#budget tr[data-window="${name}"]`);
    row.dataset.limit = limit === null ? "" : String(limit);
    row.dataset.spent = String(spent);
    row.dataset.remaining = remaining === null ? "" : String(remaining);
    row.querySelector(".budget-limit").textContent = limit === null ? t("budget.none") : formatCoins(limit);
    row.querySelector(".budget-spent").textContent = formatCoins(spent);
    row.querySelector(".budget-left").textContent = remaining === null ? "–" : formatCoins(remaining);
  }
  showPending(answer);
  showBudgetRule(answer.cooling_seconds);
  showBudgetLine(answer.remaining, tightestWindow(answer));
  if (fill) fillBudgetForm(answer);
}

/** The changes waiting for their cooling-off, each with when it applies. */
function showPending(answer) {
  const waiting = WINDOWS.filter((name) => answer[name].pending);
  $("#budget-pending").hidden = waiting.length === 0;
  $("#budget-pending").replaceChildren(
    ...waiting.map((name) => {
      const { limit, from } = answer[name].pending;
      const time = el("time", { datetime: new Date(from).toISOString() }, when(from));
      const period = t(`window.${name}`);
      const words =
        limit === null
          ? nodes("budget.pendingNone", { window: period, time })
          : nodes("budget.pendingLimit", { window: period, coins: plural(limit, "coin"), time });
      return el(
        "li",
        { dataset: { window: name, limit: limit === null ? "" : String(limit), from: String(from) } },
        ...words,
      );
    }),
  );
}

function showBudgetRule(coolingSeconds) {
  const cooling = Number(coolingSeconds) || 0;
  $("#budget-rule").textContent =
    cooling > 0 ? t("budget.ruleCooling", { duration: duration(cooling) }) : t("budget.ruleAtOnce");
}

/** Each window's limit as asked for (a waiting change, else the limit in force), but where typed in. */
function fillBudgetForm(answer) {
  const form = $("#budget-form");
  for (const name of WINDOWS) {
    const { limit, pending } = answer[name];
    askedLimits[name] = pending ? pending.limit : limit;
    if (budgetEdited.has(name)) continue;
    form.elements[name].value = askedLimits[name] === null ? "" : String(askedLimits[name]);
  }
}

/** The window whose limit leaves the least (the answer's `remaining`), or null. */
function tightestWindow(answer) {
  if (answer.remaining === null || answer.remaining === undefined) return null;
  return WINDOWS.find((name) => answer[name].limit !== null && answer[name].remaining === answer.remaining) || null;
}

/** "100 coins left today" above the gifts; hidden while no limit is set. */
function showBudgetLine(remaining, windowName) {
  const line = $("#budget-line");
  const known = Number.isInteger(remaining);
  line.hidden = !known;
  line.dataset.remaining = known ? String(remaining) : "";
  line.textContent = known ? leftWords(remaining, windowName) : "";
}

/** "10 coins left today" (the window unknown: "10 coins left"). */
function leftWords(remaining, windowName) {
  return t("budget.leftIn", { coins: plural(remaining, "coin"), window: WINDOWS.includes(windowName) ? windowName : null });
}

async function saveBudget(event) {
  event.preventDefault();
  const form = $("#budget-form");
  const changes = {};
  for (const name of WINDOWS) {
    const input = form.elements[name];
    const text = input.value.trim();
    const wanted = text === "" ? null : Number(text);
    if (!input.validity.valid || (wanted !== null && !(Number.isInteger(wanted) && wanted >= 0))) {
      sayBudget("error", t("budget.badValue"));
      input.focus();
      return;
    }
    if (wanted !== askedLimits[name]) changes[name] = wanted;
  }
  if (Object.keys(changes).length === 0) {
    sayBudget("saved", t("budget.nothing"));
    return;
  }
  $("#budget-save").disabled = true;
  sayBudget("saving", t("common.saving"));
  try {
    const token = await tokens.get();
    const answer = await api("/api/wallet/budget", { method: "PUT", token, body: changes });
    // Newer than any read asked before this answer came, whenever the server took those.
    budgetEdited.clear();
    showBudget(answer, ++budgetReads.issued, true);
    sayBudget("saved", savedWords(Object.keys(changes), answer));
  } catch (error) {
    sayBudget("error", t("budget.notSaved", { error: errorText(error) }));
  } finally {
    $("#budget-save").disabled = false;
  }
}

function savedWords(changed, answer) {
  const waiting = changed.filter((name) => answer[name].pending);
  if (waiting.length === 0) return t("budget.savedNow");
  const from = Math.min(...waiting.map((name) => answer[name].pending.from));
  return t("budget.savedLater", { duration: duration(answer.cooling_seconds), time: when(from) });
}

function sayBudget(state, text) {
  const status = $("#budget-status");
  status.dataset.state = state;
  status.textContent = text;
  status.hidden = !text;
}

/** 86400 -> "24 hours", 90 -> "90 seconds". */
function duration(seconds) {
  if (seconds >= 3600 && seconds % 3600 === 0) return plural(seconds / 3600, "hour");
  if (seconds >= 60 && seconds % 60 === 0) return plural(seconds / 60, "minute");
  return plural(Math.ceil(seconds), "second");
}

function when(ms) {
  return formatDate(ms, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
}

// ------------------------------------------------------------------ my coins: history

/** A page of the history: the first (the list emptied) or, for "More", the next. */
async function loadHistory({ first = false } = {}) {
  if (!first && (historyState.loading || historyState.cursor === null)) return;
  const load = first ? ++historyState.load : historyState.load;
  const list = $("#history");
  const more = $("#history-more");
  if (first) {
    list.replaceChildren();
    historyState.cursor = null;
    more.hidden = true;
    $("#history-empty").hidden = true;
  }
  historyState.loading = true;
  list.setAttribute("aria-busy", "true");
  more.disabled = true;
  const query = new URLSearchParams({ limit: String(HISTORY_ROWS) });
  if (!first) query.set("cursor", historyState.cursor);
  try {
    const token = await tokens.get();
    const page = await api(`/api/wallet/history?${query}`, { token });
    if (load !== historyState.load) return; // the sheet was opened again meanwhile
    list.append(...page.entries.map(historyRow));
    historyState.cursor = page.next_cursor || null;
    more.hidden = historyState.cursor === null;
    $("#history-empty").hidden = list.children.length > 0;
    sayHistory("");
  } catch (error) {
    if (load === historyState.load) sayHistory(t("history.cannotLoad", { error: errorText(error) }));
  } finally {
    if (load === historyState.load) {
      historyState.loading = false;
      list.setAttribute("aria-busy", "false");
      more.disabled = false;
    }
  }
}

function sayHistory(text) {
  $("#history-status").textContent = text;
  $("#history-status").hidden = !text;
}

/** One movement: when, what, how much (signed) and the balance after it. */
function historyRow(entry) {
  const inDiamonds = entry.coins === 0 && entry.diamonds !== 0;
  const amount = inDiamonds ? entry.diamonds : entry.coins;
  const unit = () => el("span", { class: inDiamonds ? "diamond" : "coin", "aria-hidden": "true" });
  const after = entry.balance_after;
  return el(
    "li",
    {
      class: "history-row",
      dataset: {
        id: entry.id,
        kind: entry.kind,
        coins: String(entry.coins),
        diamonds: String(entry.diamonds),
        balance: after === null || after === undefined ? "" : String(after),
      },
    },
    el("time", { class: "history-time", datetime: new Date(entry.at).toISOString() }, when(entry.at)),
    el("span", { class: "history-what" }, historyWhat(entry)),
    el(
      "span",
      { class: `history-amount ${amount < 0 ? "out" : "in"}` },
      amount === 0 ? null : unit(),
      signed(amount),
    ),
    el(
      "span",
      { class: "history-balance", title: t("history.balanceAfter") },
      after === null || after === undefined ? null : unit(),
      after === null || after === undefined ? "" : formatCoins(after),
    ),
  );
}

function historyWhat(entry) {
  const gift = entry.gift ? `${catalog.name(entry.gift)}${entry.count ? ` x${entry.count}` : ""}` : t("history.aGift");
  switch (entry.kind) {
    case "gift":
      // A fan club's price is paid as a gift to its creator.
      if (entry.gift === FAN_CLUB_GIFT) return t("history.fanClub", { to: entry.to || entry.room });
      return t("history.giftTo", { gift, to: entry.to || entry.room });
    case "recharge":
      return t("history.bought", {
        coins: plural(entry.coins, "coin"),
        bonus: entry.bonus ? plural(entry.bonus, "bonus coin") : null,
      });
    case "promo":
      return t("history.promo");
    case "gift_received":
      return t("history.giftFrom", { gift, from: entry.from || t("history.aViewer") });
    case "withdrawal":
      return t("history.withdrawal");
    case "payout":
      return t("history.payout", { diamonds: plural(entry.paid_out || 0, "diamond") });
    case "payout_failed":
      return t("history.payoutFailed");
    default:
      return entry.kind;
  }
}

/** +5,000, −299 (a minus sign), or "" for nothing. */
function signed(amount) {
  if (amount > 0) return `+${formatCoins(amount)}`;
  if (amount < 0) return `\u2212${formatCoins(-amount)}`;
  return "";
}

// ------------------------------------------------------------------ room events

function roomEvent(event) {
  if (event.type === "stream_started" || event.type === "stream_ended") return streamEvent(event);
  if (event.type === "goal_reached") return goalReached(event);
  const row = feed.add(event);
  if (event.type === "gift" && event.own) shownInRoom(event, row);
  if (event.type === "gift" && me !== null && event.sender === me) ownFanLevel(event);
  if (event.type === "gift" && BIG_TIERS.has(event.tier)) bigShow.push(event);
}

/**
 * The room has shown one of this page's sends: its row says so (beside its
 * status, whether or not the ack came first), and its feed row is marked as
 * the viewer's own. Nothing plays again: the feed and the big show had it
 * once, as for anyone's gift.
 */
function shownInRoom(event, feedRow) {
  if (feedRow) {
    feedRow.dataset.own = "true";
    feedRow.classList.add("own");
  }
  const row = $(`#sends li[data-id="${CSS.escape(event.request_id)}"]`);
  if (!row || row.dataset.shown === "true") return;
  row.dataset.shown = "true";
  row.querySelector(".send-shown").hidden = false;
}

async function playBigGift(event) {
  const layer = $("#bigshow");
  layer.querySelector(".bigshow-picture").replaceChildren(
    giftPicture(event.gift, event.tier, catalog.name(event.gift)),
  );
  const badge = fanBadge(event);
  const who = el("span", { class: "bigshow-who" }, event.sender, badge ? " " : null, badge);
  const gift = `${catalog.name(event.gift)}${event.count > 1 ? ` x${event.count}` : ""}`;
  layer.querySelector(".bigshow-line").replaceChildren(...sentLine(who, gift));
  layer.querySelector(".bigshow-coins").textContent = plural(event.coins, "coin");
  layer.className = `bigshow tier-${event.tier}`;
  layer.dataset.seq = String(event.seq);
  layer.hidden = false;
  await sleep(SHOW_MS[event.tier] || 3500);
  layer.classList.add("leaving");
  await sleep(350);
  layer.hidden = true;
}

function showQueueLength(queue) {
  const note = document.querySelector(".bigshow-queue");
  note.hidden = queue.length === 0;
  note.textContent = t("bigshow.more", { gifts: plural(queue.length, "more big gift") });
}

// ------------------------------------------------------------------ top gifters and the goal

/** Reads the ranking and the goal, and wires the period switch and the privacy box. */
function startEngagement() {
  for (const input of document.querySelectorAll('input[name="board-period"]')) {
    input.addEventListener("change", () => {
      $("#leaderboard").setAttribute("aria-busy", "true");
      board.choose(input.value);
    });
  }
  $("#privacy").addEventListener("change", changePrivacy);
  board.load();
  roomGoal.load();
  if (tokens.signedIn) readPrivacy();
}

/** The ranking as last known; `data-period` says which once it is drawn. */
function showBoard({ period, entries }) {
  if (!BOARD_PERIODS.includes(period)) return;
  $("#top-gifters").dataset.period = period;
  const list = $("#leaderboard");
  list.replaceChildren(...boardRows(entries, { me }));
  list.setAttribute("aria-busy", "false");
  $("#leaderboard-empty").textContent = t(`board.empty.${period}`);
  $("#leaderboard-empty").hidden = entries.length > 0;
}

function showGoal(goal) {
  drawGoal($("#goal"), goal, catalog);
}

/** The goal is reached: celebrated on the stage and in the feed (a room event: once). */
function goalReached(event) {
  roomGoal.reached(event.goal);
  const title = event.goal && event.goal.title ? event.goal.title : t("goal.theGoal");
  feed.note(t("goal.reachedNote", { title }), "goal");
  const line = $("#goal-celebration");
  line.textContent = t("goal.celebration", { name: roomState.creator, title });
  line.dataset.goal = event.goal ? event.goal.goal_id : "";
  line.hidden = false;
  clearTimeout(goalReached.timer);
  goalReached.timer = setTimeout(() => (line.hidden = true), CELEBRATION_MS);
}

async function readPrivacy() {
  try {
    const answer = await api("/api/me/privacy", { token: await tokens.get() });
    $("#privacy").checked = Boolean(answer.anonymous);
    $("#privacy-label").hidden = false;
  } catch {
    // A server without rankings' privacy: no box to tick.
  }
}

/** Hides or shows the viewer's name in rankings, then reads the ranking again. */
async function changePrivacy() {
  const box = $("#privacy");
  const anonymous = box.checked;
  box.disabled = true;
  sayPrivacy("");
  try {
    const answer = await api("/api/me/privacy", { method: "PUT", token: await tokens.get(), body: { anonymous } });
    box.checked = Boolean(answer.anonymous);
    board.load();
  } catch (error) {
    box.checked = !anonymous;
    sayPrivacy(t("board.privacyNotChanged", { error: errorText(error) }));
  } finally {
    box.disabled = false;
  }
}

function sayPrivacy(text) {
  $("#privacy-status").textContent = text;
  $("#privacy-status").hidden = !text;
}

// ------------------------------------------------------------------ fan club

/** Reads the club's price and levels and, signed in, the viewer's membership; a failed read changes nothing. */
async function readFanClub() {
  const read = ++fanClub.reads;
  let answer;
  try {
    const token = tokens.signedIn ? await tokens.get() : null;
    answer = await api(`/api/rooms/${encodeURIComponent(room)}/fanclub`, { token });
  } catch {
    return; // a server without fan clubs shows no card
  }
  if (read !== fanClub.reads) return; // a join answered meanwhile: that is newer
  fanClub.price = answer.price_coins;
  fanClub.levels = Array.isArray(answer.level_coins) ? answer.level_coins : [];
  if (answer.you) fanClub.you = answer.you;
  showFanClub();
}

/** The card: "Join the fan club · 1 coin", or the viewer's level and the coins to the next. */
function showFanClub() {
  const card = $("#fanclub");
  card.hidden = fanClub.price === null || !tokens.signedIn;
  if (card.hidden) return;
  const you = fanClub.you;
  const member = Boolean(you && you.member);
  const level = fanLevel();
  card.dataset.member = you ? String(member) : "unknown";
  card.dataset.level = String(level);
  const badge = $("#fanclub-badge");
  badge.hidden = !member;
  badge.textContent = `${room} Lv ${level}`;
  badge.title = t("fan.badgeTitle", { club: room, level });
  $("#fanclub-level").hidden = !member;
  $("#fanclub-level").textContent = t("fan.level", { level });
  $("#fanclub-next").hidden = !member;
  $("#fanclub-next").textContent = member ? nextLevelWords(you) : "";
  $("#fanclub-pitch").hidden = member;
  $("#fanclub-pitch").textContent = t("fan.pitch", { name: room });
  const join = $("#fanclub-join");
  join.hidden = member;
  // Joining pays the creator, as a gift does: not while gifts are off.
  join.disabled = fanClub.joining || giftsOff;
  join.textContent = t("fan.join", { coins: plural(fanClub.price, "coin") });
  join.dataset.price = String(fanClub.price);
  showLocks();
}

/** "99 coins to Lv 2" (the levels' thresholds are coins counted since joining), or the top level. */
function nextLevelWords(you) {
  const coins = Number(you.fan_coins) || 0;
  const next = fanClub.levels.findIndex((threshold) => threshold > coins);
  if (next < 0) return t("fan.topLevel");
  return t("fan.next", { coins: plural(fanClub.levels[next] - coins, "coin"), level: next + 1 });
}

/** Joins the club: a new request id per press, sent again with the same id while unanswered. */
async function joinFanClub() {
  if (fanClub.joining || !tokens.signedIn) return;
  fanClub.joining = true;
  showFanClub();
  sayFanClub("busy", t("fan.joining"));
  try {
    const answer = await sendJoin(nextJoinId());
    fanClub.reads += 1; // newer than any read on its way
    fanClub.you = {
      member: answer.member,
      joined: answer.joined,
      fan_level: answer.fan_level,
      fan_coins: answer.fan_coins,
    };
    // A duplicate's balance is from its first attempt: the wallet says what it is now.
    if (answer.duplicate) refreshBalance().catch(() => {});
    else freshBalance(answer.balance);
    sayFanClub("joined", t("fan.welcome", { name: answer.room || room }));
  } catch (error) {
    joinRefused(error);
  } finally {
    fanClub.joining = false;
    showFanClub();
  }
}

async function sendJoin(requestId) {
  const path = `/api/rooms/${encodeURIComponent(room)}/fanclub/join`;
  for (let tries = 0; ; tries += 1) {
    try {
      const token = await tokens.get();
      return await api(path, { method: "POST", token, body: { request_id: requestId } });
    } catch (error) {
      if (!worthRetrying(error) || tries >= JOIN_RETRY_MS.length) throw error;
      await sleep(JOIN_RETRY_MS[tries]);
    }
  }
}

/** No answer, a fault, or `temporary`: worth sending again with the same request id. */
function worthRetrying(error) {
  return error.temporary || error.status === 0 || error.status >= 500;
}

/**
 * A join refused, said once: in the card, or where the page explains it (the
 * top-up sheet for too few coins; the panel's box for a room that takes no
 * gifts), the card then saying only "not joined".
 */
function joinRefused(error) {
  const code = error.code;
  if (code === "already_member") {
    sayFanClub("joined", t("fan.already"));
    readFanClub();
  } else if (code === "insufficient_coins" && openRecharge(notEnoughToJoin())) {
    sayFanClub("refused", t("fan.notJoinedShort"));
  } else if (code === "gifts_disabled" || code === "gifting_off") {
    sayFanClub("refused", t("fan.notJoinedShort"));
    refusedByRoom();
  } else if (code === "room_offline") {
    sayFanClub("refused", t("fan.notJoinedShort"));
    refusedOffline();
  } else if (worthRetrying(error)) {
    // Unanswered after every retry: it may have been made; the server says.
    sayFanClub("unknown", t("fan.noAnswer"));
    readFanClub();
    refreshBalance().catch(() => {});
  } else {
    sayFanClub("refused", t("fan.notJoined", { words: errorText(error) }));
  }
}

function notEnoughToJoin() {
  const held = balance === null ? null : formatCoins(balance);
  return t("recharge.notEnoughToJoin", { cost: plural(fanClub.price, "coin"), held });
}

function sayFanClub(state, text) {
  const status = $("#fanclub-status");
  status.dataset.state = state;
  status.textContent = text;
  status.hidden = !text;
}

/**
 * One of the viewer's own gifts in the room: a member's level may have
 * grown (the event says the level it was sent at), and the coins to the
 * next level have: read again shortly.
 */
function ownFanLevel(event) {
  if (!fanClub.you || !fanClub.you.member) return;
  const level = Number(event.fan_level) || 0;
  if (level > fanLevel()) {
    fanClub.you = { ...fanClub.you, fan_level: level };
    showFanClub();
  }
  clearTimeout(fanClub.timer);
  fanClub.timer = setTimeout(readFanClub, FAN_READ_AFTER_GIFT_MS);
}

// ------------------------------------------------------------------ recharge

/** The packages of the sheet's region: coins, any bonus a promotion adds, and the price in its currency. */
function renderPackages() {
  const shown = packageRegion();
  $("#packages").dataset.region = shown;
  for (const input of document.querySelectorAll('input[name="region"]')) input.checked = input.value === shown;
  $("#packages").replaceChildren(
    ...catalog.packages.map((pack) =>
      el(
        "button",
        {
          class: "package",
          type: "button",
          dataset: { package: pack.id, currency: pack.currency, bonus: String(pack.bonus) },
          "aria-label": t("recharge.packageLabel", {
            coins: plural(pack.coins + pack.bonus, "coin"),
            amount: pack.price,
            currency: pack.currency,
            price: formatMoney(pack.price, pack.currency),
          }),
          onclick: () => buy(pack),
        },
        el("span", { class: "package-coins" }, el("span", { class: "coin" }), formatCoins(pack.coins)),
        pack.bonus > 0 ? el("span", { class: "package-bonus" }, t("recharge.bonus", { n: formatCoins(pack.bonus) })) : null,
        el("span", { class: "package-price" }, formatMoney(pack.price, pack.currency)),
      ),
    ),
  );
}

/** Opens the top-up sheet, saying `why` (if anything); false if it cannot open. */
function openRecharge(why) {
  if (!tokens.signedIn) return false;
  $("#recharge-why").textContent = why;
  $("#recharge-why").hidden = !why;
  $("#recharge-status").textContent = "";
  const dialog = $("#recharge");
  if (!dialog.open) {
    // Another modal (the confirmation) may be open: the top-up comes after it.
    if ($("#confirm").open) $("#confirm").close("cancel");
    dialog.showModal();
  }
  return true;
}

async function buy(pack) {
  const status = $("#recharge-status");
  const buttons = [...document.querySelectorAll("#packages button")];
  buttons.forEach((button) => (button.disabled = true));
  try {
    const token = await tokens.get();
    status.textContent = t("recharge.creating");
    const order = await api("/api/orders", { method: "POST", token, body: { package: pack.id } });
    status.textContent = t("recharge.paying");
    const paid = await api(`/api/sandbox/pay/${order.order_id}`, { method: "POST", token });
    if (paid.status !== "ok" && paid.status !== "duplicate") {
      throw new ApiError(409, { detail: `payment answered ${paid.status}` });
    }
    await refreshBalance();
    $("#recharge").close("paid");
    showNotice(t("recharge.done", { coins: plural(order.coins, "coin"), balance: plural(balance, "coin") }));
  } catch (error) {
    status.textContent =
      error.code === "not_found" ? t("recharge.noSandbox") : t("recharge.failed", { error: errorText(error) });
  } finally {
    buttons.forEach((button) => (button.disabled = false));
  }
}

start();
