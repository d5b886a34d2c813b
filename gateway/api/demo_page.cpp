#include "gateway/api/demo_page.hpp"

namespace ssegw::api {

// The page keeps its conversation channel in sessionStorage, so a reload or a dropped network
// resumes the same stream: EventSource reconnects by itself with Last-Event-ID and the gateway
// replays exactly what was missed. Answers are tee'd into the channel (SSE-Channel header).
std::string_view demo_page_html() {
  static constexpr std::string_view kPage = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ssegw chat demo</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0; background: #f5f5f7; color: #1d1d1f; }
  main { max-width: 760px; margin: 0 auto; padding: 24px 16px 120px; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  #status { font-size: 13px; color: #6e6e73; margin-bottom: 16px; }
  .msg { padding: 12px 16px; border-radius: 12px; margin: 8px 0; white-space: pre-wrap; }
  .user { background: #0071e3; color: white; margin-left: 20%; }
  .assistant { background: white; border: 1px solid #d2d2d7; margin-right: 20%; }
  .error { background: #fff0f0; border: 1px solid #ff3b30; }
  form { position: fixed; bottom: 0; left: 0; right: 0; background: #f5f5f7; padding: 16px; }
  form div { max-width: 760px; margin: 0 auto; display: flex; gap: 8px; }
  input { flex: 1; font-size: 16px; padding: 10px 12px; border-radius: 10px; border: 1px solid #d2d2d7; }
  button { font-size: 16px; padding: 10px 18px; border-radius: 10px; border: 0; background: #0071e3; color: white; }
</style>
</head>
<body>
<main>
  <h1>ssegw chat demo</h1>
  <div id="status">connecting…</div>
  <div id="log"></div>
</main>
<form id="form"><div>
  <input id="prompt" autocomplete="off" placeholder="Ask something" autofocus>
  <button id="send" type="submit">Send</button>
</div></form>
<script>
const params = new URLSearchParams(location.search);
let channel = params.get("channel") || sessionStorage.getItem("ssegw-channel");
if (!channel) {
  channel = "chat-" + Math.random().toString(16).slice(2, 14);
  sessionStorage.setItem("ssegw-channel", channel);
}
const model = params.get("model") || "mock";
const log = document.getElementById("log");
const statusLine = document.getElementById("status");
const history = [];
let current = null;          // the assistant message being streamed
const seen = new Set();      // event ids shown, to prove nothing comes twice
window.ssegwDemo = { channel, events: 0, duplicates: 0, answers: [] };

function add(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.textContent = text;
  log.appendChild(div);
  window.scrollTo(0, document.body.scrollHeight);
  return div;
}

const source = new EventSource("/v1/channels/" + encodeURIComponent(channel) + "/events");
source.onopen = () => { statusLine.textContent = "connected · channel " + channel; };
source.onerror = () => { statusLine.textContent = "reconnecting… (the answer resumes where it stopped)"; };
function handle(kind, e) {
  if (e.lastEventId) {
    if (seen.has(e.lastEventId)) { window.ssegwDemo.duplicates++; return; }
    seen.add(e.lastEventId);
  }
  window.ssegwDemo.events++;
  if (kind === "error") {
    add("assistant error", "error: " + e.data);
    current = null;
    return;
  }
  if (e.data === "[DONE]") {
    if (current) {
      history.push({ role: "assistant", content: current.textContent });
      window.ssegwDemo.answers.push(current.textContent);
    }
    current = null;
    return;
  }
  let delta = "";
  try {
    const chunk = JSON.parse(e.data);
    if (chunk.error) { add("assistant error", "error: " + (chunk.error.message || e.data)); return; }
    delta = (chunk.choices && chunk.choices[0] && chunk.choices[0].delta &&
             chunk.choices[0].delta.content) || "";
  } catch (err) {
    delta = e.data;  // plain text events published with curl
  }
  if (!delta) return;
  if (!current) current = add("assistant", "");
  current.textContent += delta;
  window.scrollTo(0, document.body.scrollHeight);
}
source.onmessage = (e) => handle("message", e);
source.addEventListener("error", (e) => { if (e.data) handle("error", e); });

async function send(text) {
  add("user", text);
  history.push({ role: "user", content: text });
  current = null;
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json", "SSE-Channel": channel,
                 "Prefer": "respond-async" },
      body: JSON.stringify({ model, stream: true, messages: history }),
    });
    if (response.status !== 202) add("assistant error", "error: HTTP " + response.status + " " + await response.text());
  } catch (err) {
    add("assistant error", "error: " + err);
  }
}
document.getElementById("form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = document.getElementById("prompt");
  const text = input.value.trim();
  input.value = "";
  if (text) send(text);
});
// ?prompt=... sends one prompt as soon as the stream is open (demos and browser tests).
if (params.get("prompt")) {
  source.addEventListener("open", () => send(params.get("prompt")), { once: true });
}
</script>
</body>
</html>
)HTML";
  return kPage;
}

}  // namespace ssegw::api
