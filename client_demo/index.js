// In demo mode, link carol's overlay directly (its URL needs her overlay key).

import { api } from "./common.js";

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
