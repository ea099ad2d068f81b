// The storefront's glue around two <liveshop-player> elements: sign-in for buying, the line-up
// that follows the product on screen, the basket count, and the catalogue of past shows.
const player = document.getElementById("player");
const replay = document.getElementById("replay");
const locale = player.getAttribute("locale");

// Signed in at the first tap, with the origin's demo tokens; a real shop passes its session's.
const userId = (localStorage.liveshopUser ??= `viewer-${crypto.randomUUID().slice(0, 8)}`);
let token = null;
const signIn = async () => (token ??= await fetch("/demo/login", { method: "POST", body: JSON.stringify({ userId }) })
  .then((r) => r.json())
  .then((r) => r.token));
player.userToken = replay.userToken = signIn;

const money = (cents, currency = "EUR") => new Intl.NumberFormat(locale, { style: "currency", currency }).format(cents / 100);
for (const item of document.querySelectorAll("#products li")) {
  item.querySelector(".price").textContent = money(Number(item.dataset.cents));
}

// The line-up marks the product on screen.
const mark = (productId) => {
  for (const item of document.querySelectorAll("#products li")) {
    const on = item.dataset.product === productId;
    item.classList.toggle("on-air", on);
    if (on) item.setAttribute("aria-current", "true");
    else item.removeAttribute("aria-current");
  }
};
player.addEventListener("liveshop-cue", (e) => mark(e.detail.productId));
player.addEventListener("liveshop-cueend", () => mark(null));

// Orders from either player land in the basket.
const note = document.getElementById("order-note");
const ordered = new Set();
document.addEventListener("liveshop-order", (e) => {
  const o = e.detail;
  if (o.status === "won" && !ordered.has(o.orderId)) {
    ordered.add(o.orderId);
    document.getElementById("cart-count").value = String(ordered.size);
    note.textContent = `Added to your basket (order ${o.orderId}).`;
  } else if (o.status === "sold_out") {
    note.textContent = "That one has sold out.";
  }
});

// Past shows: each a button that loads it into the replay element.
const shows = document.getElementById("shows");
const when = new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" });
const length = (ms) => `${Math.round(ms / 60000) || "<1"} min`;
async function catalogue() {
  const index = await fetch("/vod/index.json").then((r) => r.json());
  const recorded = index.shows.filter((s) => s.nodes > 0);
  shows.replaceChildren();
  for (const show of recorded) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "show-card";
    const title = document.createElement("strong");
    title.textContent = show.live ? "Tonight's show so far" : `Show of ${when.format(show.startedAtMs)}`;
    const meta = document.createElement("span");
    meta.textContent = `${when.format(show.startedAtMs)} · ${length(show.durationMs)} · ${show.nodes} product${show.nodes === 1 ? "" : "s"}`;
    button.append(title, meta);
    button.addEventListener("click", () => select(show, button));
    const item = document.createElement("li");
    item.append(button);
    shows.append(item);
  }
  if (!recorded.length) {
    const empty = document.createElement("li");
    empty.className = "empty";
    empty.textContent = "No recorded show yet: the first product of tonight's show starts the catalogue.";
    shows.append(empty);
    replay.hidden = true;
    setTimeout(catalogue, 5000);
    return;
  }
  if (!replay.getAttribute("src")) select(recorded[0], shows.querySelector("button"));
}
function select(show, button) {
  for (const b of shows.querySelectorAll("button")) b.setAttribute("aria-pressed", String(b === button));
  replay.hidden = false;
  replay.setAttribute("src", show.master);
}
catalogue().catch((e) => (note.textContent = `The catalogue is unavailable: ${e.message}`));
