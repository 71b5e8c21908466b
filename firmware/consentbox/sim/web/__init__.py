"""The simulated front panel: the box on gpiozero's mock pins, its panel drawn on a local web page.

`consentbox panel` (and `make run`) runs the real box in real time on `SimulatedFactory` pins and serves
a page on 127.0.0.1 that draws the panel (docs/product.md, "Without the hardware"):

- simulator: puts it together (demo supervisor key, card and state directories, microphone, box, page)
  and runs the box's own main loop (`box.daemon.serve`).
- microphone: the machine's ALSA capture device if there is one that opens in the policy's format,
  else a generated test signal through the real ALSA path (the `file` plugin from a memory file).
- buttons: a press on the page drives the same mock pin a finger would; the core times taps and holds.
- feed: what the page shows, sampled from the panel's gpiozero devices (never from the timeline for
  the LEDs), the timeline in words, the card's files, the status in words and the level meter.
- level: one number per captured period; no audio ever leaves the box through the page.
- server: the standard library's ThreadingHTTPServer on 127.0.0.1 only, refusing any Host header but
  127.0.0.1:PORT and localhost:PORT (DNS rebinding) and any button press from another origin;
  the LEDs reach the page as server-sent events.
- static/: the page itself, plain HTML, CSS and JavaScript (no build step).
"""
