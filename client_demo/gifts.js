// Pictures of the catalogue's gifts: small inline SVGs drawn for this
// project, so the pages need no image files, no emoji font and no network.
// A gift without a picture gets a badge with its initial in its tier's colour.

const HEART =
  "M32 54C12 40 6 30 6 21C6 13 12 8 19 8C25 8 29 12 32 16C35 12 39 8 45 8C52 8 58 13 58 21C58 30 52 40 32 54Z";

const PICTURES = {
  rose: `
    <path d="M32 34C31 44 30 52 33 60" stroke="#3fa34d" stroke-width="3.5" fill="none" stroke-linecap="round"/>
    <path d="M31 46C24 42 19 44 16 48C22 51 27 50 31 46Z" fill="#4cbb5c"/>
    <path d="M33 50C39 45 45 46 48 50C42 54 37 53 33 50Z" fill="#4cbb5c"/>
    <circle cx="32" cy="22" r="14" fill="#e0245e"/>
    <circle cx="26" cy="18" r="8" fill="#f0467a"/>
    <circle cx="38" cy="18" r="8" fill="#f0467a"/>
    <path d="M26 22C28 14 36 14 38 22C35 26 29 26 26 22Z" fill="#b3124a"/>`,
  finger_heart: `
    <path d="${HEART}" fill="#ff5c8a" transform="translate(10 10) scale(0.7)"/>
    <path d="M14 50L22 36L30 40L24 56Z" fill="#f2c29b"/>
    <path d="M48 8L50 14L56 16L50 18L48 24L46 18L40 16L46 14Z" fill="#ffe066"/>`,
  doughnut: `
    <circle cx="32" cy="32" r="24" fill="#d99a5b"/>
    <path d="M11 30C11 16 22 9 32 9C44 9 53 17 53 30C50 26 46 29 43 27C40 30 36 27 32 29C28 26 24 30 20 27C17 30 14 27 11 30Z" fill="#ff7eb6"/>
    <circle cx="32" cy="32" r="8" fill="#1b1530"/>
    <g stroke-width="2.5" stroke-linecap="round">
      <path d="M20 18L23 20" stroke="#fff"/><path d="M40 15L43 14" stroke="#7df9ff"/>
      <path d="M45 22L47 25" stroke="#ffe066"/><path d="M27 13L29 11" stroke="#9dff7d"/>
    </g>`,
  hand_hearts: `
    <path d="${HEART}" fill="#ff3d71" transform="translate(2 12) scale(0.6)"/>
    <path d="${HEART}" fill="#ff8fab" transform="translate(26 4) scale(0.6)"/>
    <path d="M8 58C12 48 20 44 32 46C44 44 52 48 56 58Z" fill="#f2c29b"/>`,
  corgi: `
    <path d="M12 10L26 22L14 30Z" fill="#e8892f"/><path d="M52 10L38 22L50 30Z" fill="#e8892f"/>
    <path d="M16 14L23 21L17 26Z" fill="#ffc4a0"/><path d="M48 14L41 21L47 26Z" fill="#ffc4a0"/>
    <ellipse cx="32" cy="36" rx="20" ry="18" fill="#f29a3f"/>
    <path d="M32 24C26 34 20 42 22 48C26 54 38 54 42 48C44 42 38 34 32 24Z" fill="#fff4e8"/>
    <circle cx="24" cy="34" r="3" fill="#1b1530"/><circle cx="40" cy="34" r="3" fill="#1b1530"/>
    <ellipse cx="32" cy="44" rx="4" ry="3" fill="#1b1530"/>`,
  money_gun: `
    <rect x="10" y="14" width="40" height="22" rx="3" fill="#2e9e5b" transform="rotate(-12 30 25)"/>
    <rect x="14" y="24" width="40" height="22" rx="3" fill="#45c177" transform="rotate(6 34 35)"/>
    <circle cx="34" cy="35" r="6" fill="#2e9e5b"/>
    <path d="M36.5 32C35.5 30.5 32.5 30.3 31.6 32C30.8 33.6 32.4 34.4 34 34.8C35.8 35.3 37 36.6 36 38.2C35 39.8 32 39.6 31 38M33.8 29V41" stroke="#d9ffe6" stroke-width="1.8" fill="none" stroke-linecap="round"/>`,
  rocket: `
    <path d="M32 4C44 14 46 30 42 44H22C18 30 20 14 32 4Z" fill="#e8e8f4"/>
    <circle cx="32" cy="22" r="6" fill="#4fc3ff" stroke="#3a3f6b" stroke-width="2.5"/>
    <path d="M22 34L12 46L22 44Z" fill="#ff4f6d"/><path d="M42 34L52 46L42 44Z" fill="#ff4f6d"/>
    <path d="M25 44H39L36 56L32 62L28 56Z" fill="#ffb020"/><path d="M28 44H36L32 54Z" fill="#fff2a8"/>`,
  jet: `
    <path d="M6 36L58 24C62 23 62 29 58 30L36 36L26 54H20L24 38L6 42Z" fill="#dfe6ff"/>
    <path d="M30 27L22 12H28L40 25Z" fill="#aab7ff"/>
    <path d="M8 36L4 26H9L14 34Z" fill="#aab7ff"/>
    <g fill="#3a4aa8"><circle cx="44" cy="28" r="1.8"/><circle cx="39" cy="29" r="1.8"/><circle cx="34" cy="30.5" r="1.8"/></g>`,
  lion: `
    <g fill="#c9621e">
      <circle cx="32" cy="32" r="26"/>
    </g>
    <g fill="#e07b2a">
      <circle cx="14" cy="20" r="8"/><circle cx="50" cy="20" r="8"/><circle cx="12" cy="40" r="8"/>
      <circle cx="52" cy="40" r="8"/><circle cx="32" cy="8" r="8"/><circle cx="32" cy="56" r="8"/>
    </g>
    <circle cx="32" cy="33" r="17" fill="#f7c25b"/>
    <circle cx="26" cy="29" r="2.6" fill="#1b1530"/><circle cx="38" cy="29" r="2.6" fill="#1b1530"/>
    <path d="M28 37H36L32 41Z" fill="#7a3a12"/>
    <path d="M32 41V44M27 46C30 47 34 47 37 46" stroke="#7a3a12" stroke-width="2" fill="none" stroke-linecap="round"/>`,
  universe: `
    <circle cx="32" cy="32" r="30" fill="#1d1147"/>
    <g fill="#fff"><circle cx="12" cy="20" r="1.5"/><circle cx="50" cy="12" r="1.2"/><circle cx="54" cy="44" r="1.6"/>
      <circle cx="16" cy="50" r="1.1"/><circle cx="40" cy="8" r="1"/></g>
    <circle cx="32" cy="32" r="13" fill="#8f6bff"/>
    <path d="M26 26C30 24 36 26 38 30" stroke="#c5b3ff" stroke-width="3" fill="none" stroke-linecap="round"/>
    <ellipse cx="32" cy="34" rx="26" ry="7" fill="none" stroke="#ffcf5c" stroke-width="3" transform="rotate(-18 32 34)"/>`,
};

const TIER_COLOURS = {
  small: "#5ec8f2",
  medium: "#a98bff",
  large: "#ffb020",
  fullscreen: "#ff4f6d",
};

/** An <svg> element picturing the gift `id` (of `tier`, for the fallback). */
export function giftPicture(id, tier = "small", name = id) {
  const body =
    PICTURES[id] ||
    `<circle cx="32" cy="32" r="28" fill="${TIER_COLOURS[tier] || "#888"}"/>
     <text x="32" y="42" text-anchor="middle" font-size="28" font-family="sans-serif"
       font-weight="700" fill="#14102a">${escapeXml(String(name).slice(0, 1).toUpperCase())}</text>`;
  const template = document.createElement("template");
  template.innerHTML = `<svg class="gift-picture" viewBox="0 0 64 64" aria-hidden="true">${body}</svg>`;
  return template.content.firstElementChild;
}

function escapeXml(text) {
  return text.replace(/[<>&"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

/**
 * The catalogue's gifts by id, for naming the gifts in room events; filled
 * from `GET /api/catalog`. Unknown ids show as their id.
 */
export class Catalog {
  constructor(document = { gifts: [], packages: [] }) {
    this.gifts = document.gifts || [];
    this.packages = document.packages || [];
    this.byId = new Map(this.gifts.map((gift) => [gift.id, gift]));
  }

  name(id) {
    return this.byId.get(id)?.name || id;
  }
}
