// The creator's page, a first version: /creator.html?user=carol
//
// URL parameters: user (demo mode: a creator token is issued for them;
// default carol) or token (a platform's creator token).
// Shows the wallet (GET /api/wallet), the overlay URL with copy and
// regenerate (GET/POST /api/creator/overlay-key), and the gifts arriving in
// the creator's room, live, with the supporters since the page opened.

import {
  RoomSocket,
  TokenSource,
  api,
  describeState,
  el,
  formatCoins,
  param,
  plural,
  userColour,
} from "./common.js";
import { Feed } from "./feed.js";
import { Catalog } from "./gifts.js";

const tokens = new TokenSource({
  user: param("user", param("token") ? null : "carol"),
  role: "creator",
  token: param("token"),
});
const WALLET_POLL_MS = 15000;
// Diamonds reach the creator's wallet through settlement, a moment after the gift.
const WALLET_AFTER_GIFT_MS = [700, 2500];

const $ = (selector) => document.querySelector(selector);
const session = { coins: 0, gifts: 0, bySender: new Map() };
let feed = null;
let socket = null;
let walletTimers = [];

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

  const catalog = await api("/api/catalog").then((doc) => new Catalog(doc), () => new Catalog());
  feed = new Feed($("#live"), catalog, { limit: 100, showCoins: true });
  socket = new RoomSocket({ room, tokens, onState: showState, onWelcome: welcomed, onEvent: roomEvent });
  socket.start();
  await Promise.all([loadWallet(), loadOverlayKey()]);
  setInterval(() => loadWallet(), WALLET_POLL_MS);
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

// ------------------------------------------------------------------ wallet

async function loadWallet() {
  try {
    const wallet = await api("/api/wallet", { token: await tokens.get() });
    $("#diamonds").textContent = formatCoins(wallet.diamonds);
    $("#diamonds").dataset.value = String(wallet.diamonds);
    $("#earned").textContent = formatCoins(wallet.diamonds_earned ?? wallet.diamonds);
    $("#received").textContent = formatCoins(wallet.received ?? 0);
    $("#received").dataset.value = String(wallet.received ?? 0);
    problem("");
  } catch (error) {
    problem(`Cannot read the wallet: ${error.message}`);
  }
}

function walletSoon() {
  walletTimers.forEach(clearTimeout);
  walletTimers = WALLET_AFTER_GIFT_MS.map((ms) => setTimeout(loadWallet, ms));
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

// ------------------------------------------------------------------ live gifts

function showState(state, detail) {
  $("#state").dataset.state = state;
  $("#state").textContent = describeState(state, detail);
}

function welcomed(welcome) {
  $("#viewers").textContent = `${formatCoins(welcome.viewers)} watching`;
}

function roomEvent(event) {
  feed.add(event);
  $("#live-empty").hidden = true;
  if (event.type !== "gift") return;
  session.coins += event.coins;
  session.gifts += event.count;
  session.bySender.set(event.sender, (session.bySender.get(event.sender) || 0) + event.coins);
  $("#session-coins").textContent = formatCoins(session.coins);
  $("#session-gifts").textContent = plural(session.gifts, "gift");
  $("#session-senders").textContent = plural(session.bySender.size, "supporter");
  renderSupporters();
  walletSoon();
}

function renderSupporters() {
  const top = [...session.bySender.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5);
  $("#supporters-empty").hidden = top.length > 0;
  $("#supporters").replaceChildren(
    ...top.map(([sender, coins]) =>
      el(
        "li",
        { dataset: { sender } },
        el("span", { style: `color:${userColour(sender)}` }, sender),
        el("span", {}, el("span", { class: "coin" }), formatCoins(coins)),
      ),
    ),
  );
}

start();
