// The viewer's room page: /viewer.html?room=carol&user=alice
//
// URL parameters: room (default carol); user (demo mode: a token is issued
// for them; absent: watch-only); token (a platform's token, instead of
// user); confirm (coins above which a send asks first, default 1000).

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
import { Feed, ShowQueue } from "./feed.js";
import { Catalog, giftPicture } from "./gifts.js";

const room = param("room", "carol");
const tokens = new TokenSource({ user: param("user"), token: param("token") });
const confirmAbove = numberParam("confirm", 1000);
const BIG_TIERS = new Set(["large", "fullscreen"]);
const SHOW_MS = { large: 3500, fullscreen: 5000 };
const MAX_RETRIES = 4;
const ERROR_WORDS = {
  insufficient_coins: "not enough coins",
  not_allowed: "you cannot send gifts here",
  gifts_disabled: "this creator does not take gifts",
  unknown_gift: "that gift is no longer offered",
  bad_count: "that many cannot be sent at once",
  rate_limited: "too many taps; slow down",
  unavailable: "the server is busy; try again",
  internal: "the server had a problem; try again",
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
// Gifts sent and not yet answered, by request id: resent with the same id
// after a reconnect (a retry of a paid gift is answered `duplicate`).
const inflight = new Map();

const bigShow = new ShowQueue({ play: playBigGift, onChange: showQueueLength });

const socket = new RoomSocket({
  room,
  tokens,
  onState: showState,
  onWelcome: welcomed,
  onEvent: roomEvent,
  onViewers: showViewers,
  onReply: reply,
});

// ------------------------------------------------------------------ start

async function start() {
  $("#room-name").textContent = room;
  $("#stage-initial").textContent = room.slice(0, 1).toUpperCase();
  document.title = `${room} · giftstream`;
  $("#recharge-open").addEventListener("click", () => openRecharge(""));
  $("#recharge-open").hidden = !tokens.signedIn;
  if (!ID_PATTERN.test(room) || (tokens.user && !ID_PATTERN.test(tokens.user))) {
    showState("offline", {});
    $("#state").textContent = "not connected";
    showNotice("Room and user names are 1-64 letters, digits, _ or -: check the address.", true);
    return;
  }
  catalog = await loadCatalog();
  feed = new Feed($("#feed"), catalog, { me: tokens.user });
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
  $("#viewers").dataset.count = String(count);
}

function welcomed(welcome, { reconnect, missed, resume, replayed }) {
  showViewers(welcome.viewers);
  canSend = Boolean(welcome.you && welcome.you.can_send);
  $("#who").textContent = welcome.you.user ? welcome.you.user : "watching";
  $("#watch-only").hidden = Boolean(welcome.you.user);
  $("#gifts").classList.toggle("disabled", !canSend);
  if (welcome.balance !== null && welcome.balance !== undefined) freshBalance(welcome.balance);
  if (reconnect) showNotice(backOnline(resume, missed, replayed));
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
          title: `${gift.name}: ${formatCoins(gift.coins)} coins (${gift.tier})`,
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
}

function batchSize() {
  return Number(document.querySelector('input[name="batch"]:checked').value);
}

async function tapGift(gift) {
  if (!tokens.signedIn) {
    showNotice("Sign in to send gifts: add &user=yourname to the address.");
    return;
  }
  const count = batchSize();
  const cost = gift.coins * count;
  if (cost > confirmAbove) {
    const question = `Send ${gift.name} x${count} for ${formatCoins(cost)} coins?`;
    if (!(await confirmSend(question))) return;
  }
  sendGift(gift, count);
}

function sendGift(gift, count) {
  const id = nextId();
  const message = { type: "gift", id, gift: gift.id, count };
  const row = el(
    "li",
    { class: "send", dataset: { id, state: "pending", gift: gift.id } },
    giftPicture(gift.id, gift.tier, gift.name),
    el("span", { class: "send-what" }, `${gift.name} x${count}`),
    el("span", { class: "send-status" }, "sending…"),
  );
  $("#sends").prepend(row);
  while ($("#sends").children.length > 6) $("#sends").lastElementChild.remove();
  inflight.set(id, { message, row, epoch: balanceEpoch, tries: 0 });
  if (!socket.send(message)) setSendState(row, "pending", "waiting for the connection…");
}

function setSendState(row, state, text) {
  row.dataset.state = state;
  row.querySelector(".send-status").textContent = text;
}

function confirmSend(question) {
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
  const words = ERROR_WORDS[error.code] || "not sent";
  setSendState(pending.row, "failed", `not sent: ${words} (${error.message})`);
  pending.row.dataset.code = error.code;
  if (error.code === "insufficient_coins") openRecharge(`Not enough coins: ${error.message}.`);
}

// ------------------------------------------------------------------ room events

function roomEvent(event) {
  feed.add(event);
  if (event.type === "gift" && BIG_TIERS.has(event.tier)) bigShow.push(event);
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
  note.textContent = `+${queue.length} more`;
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
          onclick: () => buy(pack),
        },
        el("span", { class: "package-coins" }, el("span", { class: "coin" }), formatCoins(pack.coins + pack.bonus)),
        pack.bonus ? el("span", { class: "package-bonus" }, `incl. ${formatCoins(pack.bonus)} bonus`) : null,
        el("span", { class: "package-price" }, `${pack.price} ${pack.currency}`),
      ),
    ),
  );
}

function openRecharge(why) {
  if (!tokens.signedIn) return;
  $("#recharge-why").textContent = why;
  $("#recharge-status").textContent = "";
  const dialog = $("#recharge");
  if (!dialog.open) {
    // Another modal (the confirmation) may be open: the top-up comes after it.
    if ($("#confirm").open) $("#confirm").close("cancel");
    dialog.showModal();
  }
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
    showNotice(`+${formatCoins(order.coins)} coins. Balance: ${formatCoins(balance)}.`);
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
