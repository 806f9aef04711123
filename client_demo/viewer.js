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
// A room `gift` event for one of this page's sends (its `request_id`) marks
// that send as shown in the room.

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
import { Feed, ShowQueue } from "./feed.js";
import { Catalog, giftPicture } from "./gifts.js";

const room = param("room", "carol");
const tokens = new TokenSource({ user: param("user"), token: param("token") });
// The server's threshold (the welcome's limits) replaces this once known.
let confirmAbove = numberParam("confirm", 1000);
const BIG_TIERS = new Set(["large", "fullscreen"]);
const SHOW_MS = { large: 3500, fullscreen: 5000 };
const MAX_RETRIES = 4;
// While gifts are off, how often the page asks whether they are back on.
const ROOM_RECHECK_MS = 20000;
// How stale the server's answer on a room may be (its profile cache, 1 s):
// an answer to a question asked sooner than this after the socket said
// whether the room is live does not overrule the socket.
const ROOM_ANSWER_LAG_MS = 1500;
// How long "goal reached" stays on the stage.
const CELEBRATION_MS = 8000;
// This page's request ids remembered, to know its own gifts in the room.
const SENDS_REMEMBERED = 500;
// What an empty ranking says, by period.
const EMPTY_BOARD = {
  stream: "No gifts in this stream yet.",
  day: "No gifts today yet.",
  all: "No gifts yet.",
};
// History rows per page (the server allows 1 to 200).
const HISTORY_ROWS = Math.min(200, Math.max(1, Math.trunc(numberParam("rows", 20))));
// The spending-limit windows, in the server's order, and their words.
const WINDOWS = ["daily", "weekly", "monthly"];
const WINDOW_WORDS = { daily: "today", weekly: "this week", monthly: "this month" };
// The words of a refusal, by error code: the page's own, never the server's
// `message` as well (one refusal, one message). `gifts_disabled`,
// `gifting_off`, `room_offline` and `insufficient_coins` are explained by the
// panel and the top-up sheet.
const ERROR_WORDS = {
  insufficient_coins: "not enough coins",
  not_allowed: "you cannot send gifts here",
  gifts_disabled: "this creator isn't taking gifts",
  gifting_off: "this creator has switched gifts off",
  room_offline: "this creator is offline",
  unknown_gift: "that gift is no longer offered",
  bad_count: "that many cannot be sent at once",
  rate_limited: "too many taps; slow down",
  unavailable: "the server is busy; try again",
  internal: "the server had a problem; try again",
  budget_exceeded: "over your limit",
  confirm_required: "needs your confirmation",
  send_limit_exceeded: "too much for one send",
};
// Why a creator isn't taking gifts (GET /api/rooms/{room} `reasons`), as the
// end of a sentence that starts with their name.
const REASON_WORDS = {
  gifting_off: "has switched gifts off",
  followers_below_minimum: "needs more followers before they can receive gifts",
  not_a_creator: "hasn't set up gifts as a creator",
  not_adult: "cannot receive gifts",
  suspended: "cannot receive gifts right now",
  room_offline: "is offline",
};

const $ = (selector) => document.querySelector(selector);
const nextId = requestIds("v");
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
// Gifts sent and not yet answered, by request id: resent with the same id
// after a reconnect (a retry of a paid gift is answered `duplicate`).
const inflight = new Map();
// Every request id this page has sent (the latest SENDS_REMEMBERED): a room
// `gift` event carrying one of them, from the signed-in user, is this page's.
const mySends = new Set();
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
  onReply: reply,
});

// ------------------------------------------------------------------ start

async function start() {
  $("#room-name").textContent = room;
  $("#stage-initial").textContent = room.slice(0, 1).toUpperCase();
  document.title = `${room} · giftstream`;
  $("#recharge-open").addEventListener("click", () => openRecharge(""));
  $("#recharge-open").hidden = !tokens.signedIn;
  $("#coins-open").addEventListener("click", openCoins);
  $("#coins-open").hidden = !tokens.signedIn;
  $("#history-more").addEventListener("click", () => loadHistory());
  $("#budget-form").addEventListener("submit", saveBudget);
  $("#budget-form").addEventListener("input", (event) => budgetEdited.add(event.target.name));
  if (!ID_PATTERN.test(room) || (tokens.user && !ID_PATTERN.test(tokens.user))) {
    showState("offline", {});
    $("#state").textContent = "not connected";
    showNotice("Room and user names are 1-64 letters, digits, _ or -: check the address.", true);
    return;
  }
  checkRoom();
  startEngagement();
  catalog = await loadCatalog();
  feed = new Feed($("#feed"), catalog, { me: tokens.user });
  // The goal may have come first: its gift is named now.
  if (roomGoal.known) showGoal(roomGoal.goal);
  renderGifts();
  renderPackages();
  socket.start();
}

async function loadCatalog() {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return new Catalog(await api("/api/catalog"));
    } catch (error) {
      showNotice(`Cannot load the gifts (${error.message}); trying again…`);
      await sleep(Math.min(10000, 1000 * 2 ** attempt));
    }
  }
}

// ------------------------------------------------------------------ connection

function showState(state, detail) {
  const badge = $("#state");
  badge.dataset.state = state;
  badge.textContent = describeState(state, detail);
  badge.title = detail.reason || "";
  document.body.dataset.state = state;
}

function showViewers(count) {
  $("#viewers").textContent = `${formatCoins(count)} watching`;
  $("#viewers").title = `${plural(count, "person", "people")} watching now`;
  $("#viewers").dataset.count = String(count);
}

function welcomed(welcome, { reconnect, missed, resume, replayed }) {
  showViewers(welcome.viewers);
  if (welcome.you.user && welcome.you.user !== me) {
    me = welcome.you.user;
    showBoard(board);
  }
  canSend = Boolean(welcome.you && welcome.you.can_send);
  $("#who").textContent = welcome.you.user ? welcome.you.user : "watching";
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
  }
  // The feed has a hole where events were not replayed: say so in it.
  if (reconnect && resume !== "ok" && missed > 0) feed.note("missed some gifts while offline");
  // Answers lost with the old socket: the same ids again, so nothing is paid
  // twice. A debit made from now on comes after the welcome's balance.
  for (const pending of inflight.values()) {
    pending.epoch = balanceEpoch;
    socket.send(pending.message);
  }
}

function backOnline(resume, missed, replayed) {
  if (resume === "ok") {
    return replayed > 0 ? `Back online: caught up on ${plural(replayed, "room event")}.` : "Back online.";
  }
  if (missed > 0) return `Back online. You missed some gifts while offline (${plural(missed, "room event")}).`;
  return "Back online.";
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
  shown.closest(".coin-badge").title = `you have ${plural(coins, "coin")}`;
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
  if (showRoom()) showNotice(`${roomState.creator} is taking gifts again.`);
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
  feed.note(live ? `${roomState.creator} went live` : "the stream ended");
  // A new stream starts a new ranking.
  if (live && board.period === "stream") board.load();
  if (socketSaysLive(live)) showNotice(`${roomState.creator} is live: gifts are open.`);
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
  badge.textContent = live === false ? "OFFLINE" : live ? "LIVE" : "…";
  badge.title = live === false ? `${creator} is offline` : live ? `${creator} is live` : "";
  const box = $("#gifts-off");
  box.hidden = !giftsOff;
  box.dataset.offline = String(live === false);
  if (giftsOff) sayGiftsOff(box, creator, reasons, unexplained);
  updateGiftButtons();
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
    title.textContent = `${name} ${REASON_WORDS.room_offline}`;
    why.textContent = "Gifts open when the stream starts.";
    box.dataset.reasons = "room_offline";
    return;
  }
  const known = reasons.filter((reason) => REASON_WORDS[reason]);
  title.textContent = `${name} isn't taking gifts right now`;
  why.textContent = known.length
    ? `${name} ${known.map((reason) => REASON_WORDS[reason]).join(" and ")}.`
    : `Gifts can't reach ${name} at the moment.`;
  box.dataset.reasons = reasons.join(" ");
}

/** Gifts are tappable when signed in (once welcomed) and the creator takes them. */
function updateGiftButtons() {
  const grid = $("#gifts");
  grid.classList.toggle("disabled", giftsOff || (socket.everWelcomed && !canSend));
  for (const button of grid.querySelectorAll("button")) button.disabled = giftsOff;
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
          dataset: { gift: gift.id, tier: gift.tier },
          title: `${gift.name}: ${plural(gift.coins, "coin")} (${gift.tier})`,
          "aria-label": `${gift.name}, ${plural(gift.coins, "coin")}`,
          onclick: () => tapGift(gift),
        },
        giftPicture(gift.id, gift.tier, gift.name),
        el("span", { class: "gift-label" }, gift.name),
        el("span", { class: "gift-price" }, el("span", { class: "coin" }), formatCoins(gift.coins)),
        el("span", { class: "gift-tier" }, gift.tier),
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
    showNotice("Sign in to send gifts: add &user=yourname to the address.");
    return;
  }
  const count = batchSize();
  const cost = gift.coins * count;
  let confirmed = false;
  if (cost > confirmAbove) {
    const question = `Send ${gift.name} x${count} for ${plural(cost, "coin")}?`;
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
  const id = nextId();
  rememberSend(id);
  const message = { type: "gift", id, gift: gift.id, count };
  if (confirmed) message.confirm = true;
  if (row) {
    row.dataset.id = id;
    delete row.dataset.code;
    setSendState(row, "pending", "sending…");
  } else {
    row = el(
      "li",
      { class: "send", dataset: { id, state: "pending", gift: gift.id } },
      giftPicture(gift.id, gift.tier, gift.name),
      el("span", { class: "send-what" }, `${gift.name} x${count}`),
      el("span", { class: "send-status" }, "sending…"),
      el("span", { class: "send-shown", title: "shown in the room", hidden: true }, "· shown"),
    );
    $("#sends").prepend(row);
    while ($("#sends").children.length > 6) $("#sends").lastElementChild.remove();
  }
  inflight.set(id, { message, row, gift, count, epoch: balanceEpoch, tries: 0 });
  if (!socket.send(message)) setSendState(row, "pending", "waiting for the connection…");
}

function setSendState(row, state, text) {
  row.dataset.state = state;
  row.querySelector(".send-status").textContent = text;
}

function rememberSend(id) {
  mySends.add(id);
  if (mySends.size > SENDS_REMEMBERED) mySends.delete(mySends.values().next().value);
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

function reply(message) {
  const pending = inflight.get(message.id);
  if (!pending) return; // a pong, or an answer to a retry already settled
  if (message.type === "ack") acked(pending, message);
  else if (message.type === "error") refused(pending, message);
}

function acked(pending, ack) {
  inflight.delete(ack.id);
  setSendState(pending.row, "confirmed", `sent · ${plural(ack.coins, "coin")}`);
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

function refused(pending, error) {
  if (error.temporary && pending.tries < MAX_RETRIES) {
    pending.tries += 1;
    const delay = 500 * 2 ** pending.tries;
    setSendState(pending.row, "pending", `${ERROR_WORDS[error.code] || error.message}; retrying…`);
    setTimeout(() => {
      if (inflight.has(error.id)) socket.send(pending.message);
    }, delay);
    return;
  }
  inflight.delete(error.id);
  pending.row.dataset.code = error.code;
  // One refusal, one message, in one place. Where another part of the page
  // explains it (the top-up sheet, the panel's "not taking gifts" or
  // "offline" box), the row only says that this gift was not sent. A
  // confirmation the server wants is asked for, and the gift sent again; a
  // limit's refusal is said in the row, and its numbers in the notice.
  if (error.code === "insufficient_coins" && openRecharge(notEnoughCoins(pending))) {
    setSendState(pending.row, "failed", "not sent");
  } else if (error.code === "gifts_disabled" || error.code === "gifting_off") {
    setSendState(pending.row, "failed", "not sent");
    refusedByRoom();
  } else if (error.code === "room_offline") {
    setSendState(pending.row, "failed", "not sent");
    refusedOffline();
  } else if (error.code === "confirm_required") {
    askAgain(pending, error);
  } else if (error.code === "budget_exceeded") {
    setSendState(pending.row, "failed", `not sent: ${ERROR_WORDS.budget_exceeded}`);
    overBudget(pending, error);
  } else if (error.code === "send_limit_exceeded") {
    setSendState(pending.row, "failed", `not sent: ${ERROR_WORDS.send_limit_exceeded}`);
    showNotice(tooMuchForOneSend(pending, error));
  } else {
    // An unknown code has no words of the page's own: the server's are the message.
    const words = ERROR_WORDS[error.code] || error.message || "refused";
    setSendState(pending.row, "failed", `not sent: ${words}`);
  }
}

function notEnoughCoins({ gift, count }) {
  const cost = plural(gift.coins * count, "coin");
  const held = balance === null ? "" : ` and you have ${formatCoins(balance)}`;
  return `Not enough coins for ${gift.name} x${count}: it costs ${cost}${held}.`;
}

/**
 * The server wants a confirmation the page did not ask for (its threshold is
 * lower than the page's): asked now, and, on "Send", the same gift sent again
 * with it. Nothing moved, so a new id is safe. Later sends ask first.
 */
async function askAgain(pending, error) {
  const { gift, count, row } = pending;
  if (Number.isInteger(error.threshold)) confirmAbove = Math.min(confirmAbove, error.threshold);
  setSendState(row, "pending", "waiting for your answer…");
  const coins = Number.isInteger(error.coins) ? error.coins : gift.coins * count;
  if (await confirmSend(`Send ${gift.name} x${count} for ${plural(coins, "coin")}?`)) {
    sendGift(gift, count, true, row);
  } else {
    setSendState(row, "failed", "not sent");
  }
}

/** A gift refused by the viewer's own limit: what is left is said, and read again. */
function overBudget({ gift, count }, error) {
  const left = Number.isInteger(error.remaining) ? error.remaining : null;
  const tightest = budget ? tightestWindow(budget) : null;
  if (left !== null) showBudgetLine(left, tightest);
  const said = left === null ? "" : `: ${leftWords(left, tightest)}`;
  showNotice(`${gift.name} x${count} is over your spending limit${said}.`);
  readBudget();
}

function tooMuchForOneSend({ gift, count }, error) {
  const most = Number.isInteger(error.limit) ? `at most ${plural(error.limit, "coin")}` : "only so much";
  return `One send may be worth ${most}; ${gift.name} x${count} is ${plural(gift.coins * count, "coin")}.`;
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
    if (fill) sayBudget("error", `Cannot read your limits: ${error.message}`);
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
    row.querySelector(".budget-limit").textContent = limit === null ? "none" : formatCoins(limit);
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
      const what = limit === null ? `No ${name} limit` : `A ${name} limit of ${plural(limit, "coin")}`;
      return el(
        "li",
        { dataset: { window: name, limit: limit === null ? "" : String(limit), from: String(from) } },
        `${what} from `,
        el("time", { datetime: new Date(from).toISOString() }, when(from)),
      );
    }),
  );
}

function showBudgetRule(coolingSeconds) {
  const cooling = Number(coolingSeconds) || 0;
  $("#budget-rule").textContent =
    cooling > 0
      ? `Empty means no limit. Lower limits apply at once; raises apply after ${duration(cooling)}.`
      : "Empty means no limit. Changes apply at once.";
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
  const period = WINDOW_WORDS[windowName];
  return `${plural(remaining, "coin")} left${period ? ` ${period}` : ""}`;
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
      sayBudget("error", "A limit is whole coins, 0 or more; empty for no limit.");
      input.focus();
      return;
    }
    if (wanted !== askedLimits[name]) changes[name] = wanted;
  }
  if (Object.keys(changes).length === 0) {
    sayBudget("saved", "Nothing to change.");
    return;
  }
  $("#budget-save").disabled = true;
  sayBudget("saving", "Saving…");
  try {
    const token = await tokens.get();
    const answer = await api("/api/wallet/budget", { method: "PUT", token, body: changes });
    // Newer than any read asked before this answer came, whenever the server took those.
    budgetEdited.clear();
    showBudget(answer, ++budgetReads.issued, true);
    sayBudget("saved", savedWords(Object.keys(changes), answer));
  } catch (error) {
    sayBudget("error", `Not saved: ${error.message}`);
  } finally {
    $("#budget-save").disabled = false;
  }
}

function savedWords(changed, answer) {
  const waiting = changed.filter((name) => answer[name].pending);
  if (waiting.length === 0) return "Saved: your limits apply now.";
  const from = Math.min(...waiting.map((name) => answer[name].pending.from));
  return `Saved. A raise applies after ${duration(answer.cooling_seconds)}, from ${when(from)}.`;
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
  return new Date(ms).toLocaleString([], { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
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
    if (load === historyState.load) sayHistory(`Cannot load your history: ${error.message}`);
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
      { class: "history-balance", title: "balance after" },
      after === null || after === undefined ? null : unit(),
      after === null || after === undefined ? "" : formatCoins(after),
    ),
  );
}

function historyWhat(entry) {
  const gift = entry.gift ? `${catalog.name(entry.gift)}${entry.count ? ` x${entry.count}` : ""}` : "a gift";
  switch (entry.kind) {
    case "gift":
      return `${gift} to ${entry.to || entry.room}`;
    case "recharge":
      return `Bought ${plural(entry.coins, "coin")}${entry.bonus ? ` (incl. ${plural(entry.bonus, "bonus coin")})` : ""}`;
    case "promo":
      return "Promotional coins";
    case "gift_received":
      return `${gift} from ${entry.from || "a viewer"}`;
    case "withdrawal":
      return "Diamonds set aside for a withdrawal";
    case "payout":
      return `${plural(entry.paid_out || 0, "diamond")} paid out`;
    case "payout_failed":
      return "A payout failed: diamonds returned";
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
  if (event.type === "gift" && isMine(event)) shownInRoom(event, row);
  if (event.type === "gift" && BIG_TIERS.has(event.tier)) bigShow.push(event);
}

/**
 * Whether a gift event is for one of this page's sends. Request ids are each
 * sender's own: another viewer's gift may carry the same one.
 */
function isMine(event) {
  return me !== null && event.sender === me && mySends.has(event.request_id);
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
  layer.querySelector(".bigshow-line").textContent =
    `${event.sender} sent ${catalog.name(event.gift)}${event.count > 1 ? ` x${event.count}` : ""}`;
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
  note.textContent = `+${plural(queue.length, "more big gift")}`;
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
  $("#leaderboard-empty").textContent = EMPTY_BOARD[period];
  $("#leaderboard-empty").hidden = entries.length > 0;
}

function showGoal(goal) {
  drawGoal($("#goal"), goal, catalog);
}

/** The goal is reached: celebrated on the stage and in the feed (a room event: once). */
function goalReached(event) {
  roomGoal.reached(event.goal);
  const title = event.goal && event.goal.title ? event.goal.title : "the goal";
  feed.note(`Goal reached: ${title}!`, "goal");
  const line = $("#goal-celebration");
  line.textContent = `${roomState.creator}'s goal is reached: ${title}!`;
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
    sayPrivacy(`Not changed: ${error.message}`);
  } finally {
    box.disabled = false;
  }
}

function sayPrivacy(text) {
  $("#privacy-status").textContent = text;
  $("#privacy-status").hidden = !text;
}

// ------------------------------------------------------------------ recharge

function renderPackages() {
  $("#packages").replaceChildren(
    ...catalog.packages.map((pack) =>
      el(
        "button",
        {
          class: "package",
          type: "button",
          dataset: { package: pack.id },
          "aria-label": `${plural(pack.coins + pack.bonus, "coin")} for ${pack.price} ${pack.currency}`,
          onclick: () => buy(pack),
        },
        el("span", { class: "package-coins" }, el("span", { class: "coin" }), formatCoins(pack.coins + pack.bonus)),
        pack.bonus ? el("span", { class: "package-bonus" }, `incl. ${plural(pack.bonus, "bonus coin")}`) : null,
        el("span", { class: "package-price" }, `${pack.price} ${pack.currency}`),
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
    status.textContent = "Creating your order…";
    const order = await api("/api/orders", { method: "POST", token, body: { package: pack.id } });
    status.textContent = "Paying through the sandbox…";
    const paid = await api(`/api/sandbox/pay/${order.order_id}`, { method: "POST", token });
    if (paid.status !== "ok" && paid.status !== "duplicate") {
      throw new ApiError(409, { detail: `payment answered ${paid.status}` });
    }
    await refreshBalance();
    $("#recharge").close("paid");
    showNotice(`+${plural(order.coins, "coin")}. Balance: ${plural(balance, "coin")}.`);
  } catch (error) {
    status.textContent =
      error.code === "not_found"
        ? "This server takes no sandbox payments (demo mode only)."
        : `The top-up failed: ${error.message}`;
  } finally {
    buttons.forEach((button) => (button.disabled = false));
  }
}

start();
