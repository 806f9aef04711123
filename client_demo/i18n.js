// The pages' languages: English and Simplified Chinese (简体中文), the two
// markets the server serves (GET /api/catalog?lang=en|zh-CN).
//
// Which one a page speaks: `?lang=en|zh-CN` in the URL wins; else the choice
// made with a page's switcher, kept in localStorage (the overlay keeps none:
// it takes `?lang=` or the browser's); else the browser's languages, the
// first one served (zh, zh-CN, zh-Hans… are Simplified Chinese); else
// English. `<html lang>` says which.
//
// Text in the HTML names its message: `data-i18n="key"` (its text),
// `data-i18n-html="key"` (the catalogue's own markup), `data-i18n-attr=
// "title=key; aria-label=key"`. Text a script makes goes through
// t(key, params). Counts, money and dates go through Intl, in the page's
// language. The catalogues are messages/en.js and messages/zh-CN.js; a key
// missing from one falls back to English.

import en from "./messages/en.js";
import zhCN from "./messages/zh-CN.js";

export const LANGUAGES = ["en", "zh-CN"];
export const LANGUAGE_NAMES = { en: "English", "zh-CN": "简体中文" };
// The recharge region of each language's market (packages in USD or CNY).
export const REGION_OF_LANGUAGE = { en: "US", "zh-CN": "CN" };
const CATALOGUES = { en, "zh-CN": zhCN };
const STORE = "giftstream:lang";
// Chinese tags that are not written in Simplified characters.
const TRADITIONAL = /^zh-(hant|tw|hk|mo)\b/;

let current = "en";
let remembers = true;
const listeners = new Set();
const formats = new Map();

// ------------------------------------------------------------------ choosing

/** A language tag as served ("zh-cn" -> "zh-CN"), or null. */
export function canonical(tag) {
  const lowered = String(tag ?? "").toLowerCase();
  return LANGUAGES.find((name) => name.toLowerCase() === lowered) || null;
}

/** The served language a browser's language tag asks for, or null. */
export function served(tag) {
  const lowered = String(tag ?? "").toLowerCase();
  if (lowered === "en" || lowered.startsWith("en-")) return "en";
  if ((lowered === "zh" || lowered.startsWith("zh-")) && !TRADITIONAL.test(lowered)) return "zh-CN";
  return null;
}

/** The URL's language, else the remembered choice, else the browser's first served one, else English. */
export function pickLanguage({ asked = null, stored = null, preferred = [] } = {}) {
  const chosen = canonical(asked) || canonical(stored);
  if (chosen) return chosen;
  for (const tag of preferred) {
    const found = served(tag);
    if (found) return found;
  }
  return "en";
}

/**
 * Chooses the page's language and puts the HTML's text in it. `remember`:
 * whether a switcher's choice is kept (and read back) in localStorage.
 */
export function startLanguage({ remember = true } = {}) {
  remembers = remember;
  current = pickLanguage({
    asked: new URLSearchParams(location.search).get("lang"),
    stored: remember ? readStored() : null,
    preferred: navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language],
  });
  document.documentElement.lang = current;
  applyStatic();
  return current;
}

export function language() {
  return current;
}

/**
 * The user's choice: said at once, remembered, and taken out of the URL (a
 * `?lang=` there would win over it at the next load).
 */
export function setLanguage(tag) {
  const chosen = canonical(tag);
  if (!chosen) return;
  if (remembers) writeStored(chosen);
  const url = new URL(location.href);
  if (url.searchParams.has("lang")) {
    url.searchParams.delete("lang");
    history.replaceState(history.state, "", url);
  }
  if (chosen === current) return;
  current = chosen;
  document.documentElement.lang = chosen;
  applyStatic();
  for (const listener of listeners) listener(chosen);
}

/** `listener(language)` after each change of language (the HTML's text is changed already). */
export function onLanguageChange(listener) {
  listeners.add(listener);
}

/** Makes `select` the page's switcher: one option per language, each named in itself. */
export function languageSwitcher(select) {
  select.replaceChildren(
    ...LANGUAGES.map((tag) => {
      const option = document.createElement("option");
      option.value = tag;
      option.lang = tag;
      option.textContent = LANGUAGE_NAMES[tag];
      return option;
    }),
  );
  select.value = current;
  select.addEventListener("change", () => setLanguage(select.value));
  onLanguageChange((tag) => (select.value = tag));
  select.hidden = false;
}

function readStored() {
  try {
    return localStorage.getItem(STORE);
  } catch {
    return null; // storage off: the browser's languages decide
  }
}

function writeStored(tag) {
  try {
    localStorage.setItem(STORE, tag);
  } catch {
    // Storage off: the choice lasts as long as the page.
  }
}

// ------------------------------------------------------------------ messages

function lookup(key) {
  return CATALOGUES[current][key] ?? CATALOGUES.en[key];
}

/** Whether the catalogue has `key` (in the page's language or in English). */
export function has(key) {
  return lookup(key) !== undefined;
}

/** The message `key` in the page's language, its `{name}`s filled from `params`. */
export function t(key, params = {}) {
  const message = lookup(key);
  if (message === undefined) {
    console.warn(`no message ${key}`);
    return key;
  }
  return typeof message === "function" ? message(params) : fillIn(message, params);
}

/**
 * The message `key` as nodes, for text around elements: each `{name}` is
 * `params[name]`, an element (kept as it is) or text.
 * nodes("feed.sent", {sender: b, gift: span}) -> [b, " sent ", span].
 */
export function nodes(key, params = {}) {
  const message = lookup(key);
  const text = typeof message === "string" ? message : key;
  return text
    .split(/\{(\w+)\}/)
    .map((part, index) => {
      if (index % 2 === 0) return part;
      const value = params[part];
      if (value instanceof Node) return value;
      return value === undefined || value === null ? "" : String(value);
    })
    .filter((part) => part !== "");
}

function fillIn(text, params) {
  return text.replace(/\{(\w+)\}/g, (whole, name) =>
    params[name] === undefined || params[name] === null ? whole : String(params[name]),
  );
}

/**
 * Puts the HTML's marked text (under `root`) in the page's language:
 * data-i18n, data-i18n-html and data-i18n-attr.
 */
export function applyStatic(root = document) {
  for (const element of root.querySelectorAll("[data-i18n]")) element.textContent = t(element.dataset.i18n);
  for (const element of root.querySelectorAll("[data-i18n-html]")) element.innerHTML = t(element.dataset.i18nHtml);
  for (const element of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of element.dataset.i18nAttr.split(";")) {
      const [name, key] = pair.split("=").map((part) => part.trim());
      if (name && key) element.setAttribute(name, t(key));
    }
  }
}

// ------------------------------------------------------------------ counts, money, dates

function format(kind, options) {
  const key = `${current}|${kind}|${JSON.stringify(options)}`;
  let made = formats.get(key);
  if (!made) {
    made = kind === "number" ? new Intl.NumberFormat(current, options) : new Intl.DateTimeFormat(current, options);
    formats.set(key, made);
  }
  return made;
}

/** 12345 -> "12,345": a whole number, grouped as the page's language does. */
export function formatNumber(amount) {
  return format("number", { maximumFractionDigits: 0 }).format(Math.trunc(amount) || 0);
}

/** ("4.99", "USD") -> "$4.99" in English, "US$4.99" in Chinese; ("98.00", "CNY") -> "¥98.00" in Chinese. */
export function formatMoney(amount, currency) {
  try {
    return format("number", { style: "currency", currency }).format(Number(amount));
  } catch {
    return `${amount} ${currency}`; // a currency Intl does not know
  }
}

/** A time (ms since the epoch) in the page's language: `options` as Intl.DateTimeFormat's. */
export function formatDate(ms, options) {
  return format("date", options).format(new Date(ms));
}

/**
 * A count and its noun, the one way the pages put them together. In
 * English: plural(1, "coin") is "1 coin", plural(1200, "coin") "1,200
 * coins", plural(2, "person", "people") "2 people"; the noun agrees with
 * the number as shown (1.4 shows as "1", so "1 coin"). Another language
 * words it with its catalogue's `count.<noun>` ("{n} 金币").
 */
export function plural(count, singular, pluralForm = `${singular}s`) {
  const shown = formatNumber(count);
  const own = CATALOGUES[current][`count.${singular}`];
  if (current !== "en" && own !== undefined) return fillIn(own, { n: shown });
  return `${shown} ${shown === "1" ? singular : pluralForm}`;
}
