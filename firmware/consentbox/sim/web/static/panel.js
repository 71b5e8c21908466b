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
}

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
  $("buttons").replaceChildren(...layout.buttons.map(makeButton));
  const holds = layout.holds;
  $("hint").textContent = `Tap: press and let go. Hold RECORD ${holds.record} s to record, ${holds.end} s to end the `
    + `session; hold a CONSENT button ${holds.withdraw} s to withdraw. The box times each press, as on the `
    + "hardware. Mouse, touch, or Space/Enter on a focused button.";
  $("card-path").textContent = `The card is the directory ${layout.card}`;
  $("export").textContent = layout.export ? `Export with the demo supervisor key: ${layout.export}` : "";
  $("microphone").textContent = `Microphone: ${layout.microphone}`;
  listen();
}

start();
