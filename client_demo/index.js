// The list of demo pages, in the page's language (with a switcher, whose
// choice the other pages follow). In demo mode, carol's overlay is linked
// directly (its URL needs her overlay key).

import { api } from "./common.js";
import { languageSwitcher, startLanguage } from "./i18n.js";

startLanguage();
languageSwitcher(document.querySelector("#language"));

async function linkOverlay() {
  try {
    const { token } = await api("/api/dev/token", {
      method: "POST",
      body: { user: "carol", role: "creator" },
    });
    const answer = await api("/api/creator/overlay-key", { token });
    document.querySelector("#overlay-link").href = answer.url.replace(/^\//, "");
  } catch {
    // Not a demo server: the link leads to the studio page, which explains.
  }
}

linkOverlay();
