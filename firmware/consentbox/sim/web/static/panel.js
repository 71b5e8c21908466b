// ConsentBox simulated front panel. Buttons send each edge (down, up) to the box, which drives the
// same gpiozero pin a finger would; the box, not this page, tells taps from holds. Everything shown
// comes from the box's event stream: the lights are its pins as they are now.
"use strict";

const $ = (id) => document.getElementById(id);
const BUZZER_SHOWN_MS = 180; // a 50 ms beep would be too short to see
const TIMELINE_SHOWN = 200;

// Edges are sent one after the other, in order, whatever the network does.
let sending = Promise.resolve();
function sendEdge(button, pressed) {
  sending = sending
    .then(() => fetch("/button", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ button, pressed }),
      keepalive: true,
    }))
    .then((answer) => { if (!answer.ok) answer.text().then((why) => showConnection(`button refused: ${why}`, false)); })
    .catch(() => showConnection("cannot reach the box", true));
}

const releases = [];
// A button as the page draws it: a CONSENT button with a seat LED has the LED's lamp beside it.
function makeFace(face) {
  const button = makeButton(face);
  if (!face.led) return button;
  const seat = document.createElement("div");
  seat.className = "seat";
  seat.id = `seat-${face.id}`;
  seat.dataset.on = "unknown";
  seat.dataset.shows = "unknown";
  const lamp = document.createElement("span");
  lamp.className = "lamp";
  lamp.setAttribute("aria-hidden", "true");
  const reading = document.createElement("span");
  reading.className = "reading";
  reading.id = `seat-${face.id}-text`;
  reading.textContent = "unknown";
  const led = document.createElement("span");
  led.className = "seat-led";
  led.append(lamp, reading);
  seat.append(button, led);
  return seat;
}

function makeButton(face) {
  const element = document.createElement("button");
  element.type = "button";
  element.className = face.kind;
  element.id = `button-${face.id}`;
  element.dataset.button = face.id;
  element.textContent = face.label;
  element.setAttribute("aria-describedby", "hint");
  let holder = null; // the pointer (or "key") holding the button down

  const press = (who) => {
    if (holder !== null) return;
    holder = who;
    element.classList.add("down");
    sendEdge(face.id, true);
  };
  const release = (who) => {
    if (holder === null || who !== holder) return;
    holder = null;
    element.classList.remove("down");
    sendEdge(face.id, false);
  };
  element.addEventListener("pointerdown", (event) => {
    if (event.pointerType === "mouse" && event.button !== 0) return;
    event.preventDefault(); // no focus-stealing, text selection or emulated mouse events
    element.setPointerCapture(event.pointerId); // the release counts even off the button
    press(event.pointerId);
  });
  for (const name of ["pointerup", "pointercancel", "lostpointercapture"]) {
    element.addEventListener(name, (event) => release(event.pointerId));
  }
  element.addEventListener("keydown", (event) => {
    if ((event.key === " " || event.key === "Enter") && !event.repeat) { event.preventDefault(); press("key"); }
  });
  element.addEventListener("keyup", (event) => {
    if (event.key === " " || event.key === "Enter") { event.preventDefault(); release("key"); }
  });
  element.addEventListener("blur", () => release("key"));
  element.addEventListener("contextmenu", (event) => event.preventDefault()); // a long touch is a hold
  releases.push(() => release(holder));
  return element;
}
// A page that loses the pointer or goes away lets go, as a finger leaving the button would.
for (const name of ["blur", "pagehide"]) window.addEventListener(name, () => releases.forEach((let_go) => let_go()));
document.addEventListener("visibilitychange", () => { if (document.hidden) releases.forEach((let_go) => let_go()); });

function showConnection(text, trouble) {
  $("connection").textContent = text;
  document.body.classList.toggle("offline", trouble);
}

function unknownLights() {
  $("rec").dataset.on = "unknown";
  $("status").dataset.colour = "unknown";
  $("buzzer").dataset.on = "unknown";
  for (const id of ["rec-text", "status-text", "buzzer-text"]) $(id).textContent = "unknown";
  for (const seat of document.querySelectorAll(".seat")) {
    seat.dataset.on = "unknown";
    seat.dataset.shows = "unknown";
    $(`${seat.id}-text`).textContent = "unknown";
  }
}

// What a seat LED's pattern means (docs/status-codes.md, "Seat LEDs").
const SEAT_WORDS = { lit: "lit: consented", blinking: "blinking: consent missing", dark: "dark" };

let buzzerShownUntil = 0;
let buzzerTimer = null;
function showLights(lights) {
  $("rec").dataset.on = String(lights.rec);
  $("rec-text").textContent = lights.rec ? "on: capturing audio" : "off";
  const status = $("status");
  status.dataset.colour = lights.status.colour;
  status.dataset.levels = lights.status.levels.join(",");
  $("status-text").textContent = lights.status.colour === "off" ? "off (dark)" : `${lights.status.colour} (lit)`;
  const buzzer = $("buzzer");
  buzzer.dataset.on = lights.buzzer === null ? "none" : String(lights.buzzer);
  $("buzzer-text").textContent = lights.buzzer === null ? "none fitted" : lights.buzzer ? "sounding" : "quiet";
  clearTimeout(buzzerTimer);
  if (lights.buzzer) {
    buzzerShownUntil = performance.now() + BUZZER_SHOWN_MS;
    buzzer.classList.add("sounding");
  } else {
    buzzerTimer = setTimeout(() => buzzer.classList.remove("sounding"), Math.max(0, buzzerShownUntil - performance.now()));
  }
  for (const [id, on] of Object.entries(lights.seats)) {
    const seat = $(`seat-${id}`);
    if (seat) seat.dataset.on = String(on);
  }
  for (const [id, pressed] of Object.entries(lights.buttons)) {
    const button = $(`button-${id}`);
    if (button) button.dataset.pressed = String(pressed);
  }
}

function showStatus(status) {
  $("state").textContent = status.state;
  $("words").textContent = status.words;
  $("status-pattern").textContent = `shows: ${status.pattern}`;
  $("tone").textContent = status.tone ? `last tone: ${status.tone.name} (at ${status.tone.t.toFixed(1)} s)` : "";
  for (const [id, shows] of Object.entries(status.seats)) {
    const seat = $(`seat-${id}`);
    if (!seat) continue;
    seat.dataset.shows = shows;
    $(`seat-${id}-text`).textContent = SEAT_WORDS[shows];
  }
}

function showLevel(level) {
  const meter = $("level");
  if (!level.capturing) {
    meter.value = meter.min;
    $("level-text").textContent = "not recording";
  } else {
    meter.value = level.dbfs;
    $("level-text").textContent = level.dbfs <= meter.min ? "silence" : `peak ${level.dbfs} dBFS`;
  }
}

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function showCard(card) {
  const rows = $("files");
  rows.replaceChildren();
  if (card.files === null || card.files.length === 0) {
    const row = rows.insertRow();
    const cell = row.insertCell();
    cell.colSpan = 2;
    cell.textContent = card.files === null ? "no card" : "no files";
    return;
  }
  for (const [name, bytes] of card.files) {
    const row = rows.insertRow();
    row.insertCell().textContent = name;
    const cell = row.insertCell();
    cell.className = "size";
    cell.textContent = size(bytes);
  }
}

function showTimeline(lines) {
  const list = $("lines");
  for (const line of lines) {
    const item = document.createElement("li");
    item.textContent = line.trim();
    list.prepend(item);
  }
  while (list.children.length > TIMELINE_SHOWN) list.lastElementChild.remove();
}

// The gestures, in the words of docs/product.md's front panel table; times are the box's policy.
function hints(holds) {
  const after = holds.withdraw_window >= 60 ? `${holds.withdraw_window / 60} min` : `${holds.withdraw_window} s`;
  return [
    `A tap is a press let go within ${holds.record} s. A longer press that completes no gesture does nothing `
      + "but sound \"hold longer\".",
    "RECORD: tap to set up a session; before the first consent, tap again to add a party. Once everyone has "
      + `consented, hold it ${holds.record} s to record, or tap it to cancel the set-up. Held too early, it is `
      + `refused and the seats still missing blink; held on to ${holds.end} s it lowers the headcount to the `
      + "consents so far, or with none cancels the set-up.",
    `Recording: tap RECORD to pause, hold it ${holds.end} s to end the session. Paused: tap it to resume; a late `
      + "arrival taps a CONSENT button that has not consented, and must consent before recording resumes.",
    "CONSENT: tap to consent; its seat LED lights. During a session any press sounds \"hold to withdraw\": "
      + `hold ${holds.withdraw} s to withdraw, and nothing recorded since the press began is kept. `
      + (holds.withdraw_window > 0
        ? `After a session ends, for ${after} and until the next set-up, a seat that consented to it can still `
          + `hold ${holds.withdraw} s to withdraw it.`
        : "After a session ends it can no longer be withdrawn at the box (withdraw_window is 0)."),
    "The box times each press, as on the hardware. Mouse, touch, or Space/Enter on a focused button.",
  ];
}

function listen() {
  const events = new EventSource("/events");
  const on = (name, show) => events.addEventListener(name, (event) => show(JSON.parse(event.data)));
  on("lights", showLights);
  on("status", showStatus);
  on("level", showLevel);
  on("card", showCard);
  on("timeline", showTimeline);
  on("stopped", () => {
    events.close();
    unknownLights();
    showConnection("the box has stopped: what you see is no longer live", true);
  });
  events.addEventListener("open", () => {
    $("lines").replaceChildren(); // a new stream starts with every line the box kept
    showConnection("live: the lights follow the box's pins", false);
  });
  events.addEventListener("error", () => {
    unknownLights();
    showConnection("lost the box: reconnecting…", true);
  });
}

async function start() {
  let layout;
  try {
    layout = await (await fetch("/layout")).json();
  } catch {
    showConnection("cannot reach the box", true);
    return;
  }
  $("buttons").replaceChildren(...layout.buttons.map(makeFace));
  $("hint").replaceChildren(...hints(layout.holds).map((text) => {
    const line = document.createElement("p");
    line.textContent = text;
    return line;
  }));
  $("card-path").textContent = `The card is the directory ${layout.card}`;
  $("export").textContent = layout.export ? `Export with the demo supervisor key: ${layout.export}` : "";
  $("microphone").textContent = `Microphone: ${layout.microphone}`;
  listen();
}

start();
