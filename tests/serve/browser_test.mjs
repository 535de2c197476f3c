// browser_test.mjs CHROMIUM URL SCREENSHOT PROFILE_DIR — drives headless chromium over the DevTools
// protocol (Node's built-in WebSocket: node --experimental-websocket; no npm packages): opens URL (the
// page of `bytelm serve` with autorun=1), waits until the page reports "done" (streamed, scored, patches
// drawn), prints what the DOM shows as JSON, and saves a screenshot. Exit 1 on timeout or failure.
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync, existsSync } from "node:fs";

const [chromium, url, screenshot, profile] = process.argv.slice(2);
const browser = spawn(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
  "--remote-debugging-port=0", `--user-data-dir=${profile}`, "--window-size=1000,700", "about:blank"],
  { stdio: ["ignore", "ignore", "pipe"] });
const deadline = Date.now() + 90000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function fail(msg) {
  console.error("FAIL: " + msg);
  browser.kill("SIGKILL");
  process.exit(1);
}

// Chromium writes its DevTools port into the profile directory.
let port = null;
while (!port && Date.now() < deadline) {
  const f = `${profile}/DevToolsActivePort`;
  if (existsSync(f)) port = readFileSync(f, "utf8").split("\n")[0];
  else await sleep(100);
}
if (!port) fail("chromium did not start");
const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
const page = targets.find((t) => t.type === "page");
const ws = new WebSocket(page.webSocketDebuggerUrl);
await new Promise((ok, err) => { ws.onopen = ok; ws.onerror = err; });
let nextId = 1;
const pending = new Map();
ws.onmessage = (m) => {
  const msg = JSON.parse(m.data);
  if (msg.id && pending.has(msg.id)) { pending.get(msg.id)(msg); pending.delete(msg.id); }
};
const send = (method, params = {}) => new Promise((ok) => {
  const id = nextId++;
  pending.set(id, ok);
  ws.send(JSON.stringify({ id, method, params }));
});
const evaluate = async (expr) => (await send("Runtime.evaluate", { expression: expr, returnByValue: true })).result.result.value;

await send("Page.enable");
await send("Page.navigate", { url });
let status = "";
while (Date.now() < deadline) {
  status = await evaluate("document.getElementById('status') ? document.getElementById('status').textContent : ''");
  if (status && (status.startsWith("done") || status.startsWith("error"))) break;
  await sleep(100);
}
if (!status.startsWith("done")) fail("the page did not finish: status '" + status + "'");
const seen = await evaluate(`(() => {
  const gen = [...document.querySelectorAll('#out span.gen')];
  return {
    status: document.getElementById('status').textContent,
    reported_marks: Number(document.getElementById('status').dataset.marks),
    generated_bytes: Number(document.getElementById('status').dataset.bytes),
    generated_chars: gen.length,
    shaded_chars: gen.filter((s) => s.style.background.includes('255, 140, 0') && s.title.endsWith(' bits')).length,
    patch_marks: document.querySelectorAll('#out span.patch-start').length,
    curve_marks: document.querySelectorAll('#curve .patch-mark').length,
    curve_shown: document.getElementById('curve').style.display === 'block',
    text: document.getElementById('out').textContent,
  };
})()`);
const shot = await send("Page.captureScreenshot", { format: "png" });
writeFileSync(screenshot, Buffer.from(shot.result.data, "base64"));
console.log(JSON.stringify(seen));
browser.kill("SIGKILL");
process.exit(0);
