// The class channel (/ws/classroom/<id>/): pushed questions, answers, reveals and "paused by the instructor".
// Students answer over the socket; the instructor's dashboard updates its answer counts from it.
// Text from the server is always set with textContent (never parsed as HTML).
(function () {
  "use strict";
  const root = document.getElementById("classroom");
  if (!root || !root.dataset.ws) return;
  const role = root.dataset.role;
  const $ = (id) => document.getElementById(id);
  let ws = null;
  let current = null;  // the student's current question (as the server sent it)

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else node.setAttribute(k, v);
    }
    for (const c of children || []) if (c) node.appendChild(c);
    return node;
  }

  function status(text, isError) {
    const box = $("class-status");
    if (!box) return;
    box.textContent = text;
    box.className = isError ? "error" : "muted";
  }

  function setPaused(paused) {
    const box = $("class-paused");
    if (box) box.hidden = !paused;
    const word = $("class-run-state");
    if (word) word.textContent = paused ? "paused" : "running";
  }

  function send(message) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
    else status("not connected to the class; reconnecting…", true);
  }

  // ── student ────────────────────────────────────────────────────────────
  function optionText(q, given) {
    return q.kind === "choice" && /^\d+$/.test(String(given)) ? q.options[Number(given)] : String(given);
  }

  function renderQuestion() {
    const box = $("class-question");
    if (!box) return;
    box.replaceChildren();
    const q = current;
    if (!q) return;
    const panel = el("div", { class: "class-question", id: "class-question-" + q.id, "data-question": String(q.id) }, [
      el("p", { class: "asked" }, [el("strong", { text: "Your instructor asks: " }), el("span", { id: "class-prompt", text: q.prompt })]),
    ]);
    if (q.answered == null && !q.revealed) {
      if (q.kind === "choice") {
        const list = el("div", { class: "choices" });
        q.options.forEach((option, i) => {
          const button = el("button", { type: "button", class: "choice", id: "class-option-" + i, text: option });
          button.addEventListener("click", () => send({ type: "answer", question: q.id, answer: String(i) }));
          list.appendChild(button);
        });
        panel.appendChild(list);
      } else {
        const input = el("input", { id: "class-text-answer", maxlength: "200", size: "40", "aria-label": "your answer" });
        const button = el("button", { type: "button", id: "class-send-answer", text: "Send answer" });
        const go = () => { if (input.value.trim()) send({ type: "answer", question: q.id, answer: input.value }); };
        button.addEventListener("click", go);
        input.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); go(); } });
        panel.appendChild(el("div", { class: "text-answer" }, [input, button]));
      }
    } else if (q.answered != null) {
      panel.appendChild(el("p", { id: "class-my-answer", text: "Your answer: " + optionText(q, q.answered) +
        (q.revealed ? "" : " — the instructor reveals the answer to everyone.") }));
    }
    if (q.result) panel.appendChild(renderResult(q, q.result));
    box.appendChild(panel);
  }

  function renderResult(q, r) {
    const box = el("div", { class: "class-reveal", id: "class-reveal" });
    const mine = q.answered;
    let verdict = "";
    if (mine != null && r.right !== "") {
      const right = q.kind === "choice" ? String(mine) === String(r.right)
        : mine.trim().toLowerCase() === String(r.right_text).trim().toLowerCase();
      verdict = right ? " ✓ You were right." : " ✗ Not this time.";
    }
    box.appendChild(el("p", { id: "class-right", class: "reveal-line", text: (r.right_text ? "The answer: " + r.right_text + "." :
      "There was no single right answer.") + verdict }));
    const list = el("ul", { class: "distribution", id: "class-distribution" });
    if (q.kind === "choice") {
      q.options.forEach((option, i) => list.appendChild(el("li", { class: String(i) === String(r.right) ? "right" : "",
        text: option + ": " + (r.counts[i] || 0) })));
    } else {
      for (const [given, count] of r.top || []) list.appendChild(el("li", { text: given + ": " + count }));
    }
    box.appendChild(el("p", { class: "muted", text: r.answers + " answer" + (r.answers === 1 ? "" : "s") + " in the class:" }));
    box.appendChild(list);
    return box;
  }

  // ── instructor ─────────────────────────────────────────────────────────
  function updateCounts(c) {
    const answers = $("q-" + c.question + "-answers");
    if (!answers) { refreshQuestions(); return; }
    answers.textContent = String(c.answers);
    (c.counts || []).forEach((n, i) => { const cell = $("q-" + c.question + "-opt-" + i); if (cell) cell.textContent = String(n); });
    const top = $("q-" + c.question + "-top");
    if (top && c.top) top.replaceChildren(...c.top.map(([given, n]) => el("li", { text: given + ": " + n })));
    const right = $("q-" + c.question + "-right");
    if (right && c.right_count != null) right.textContent = String(c.right_count);
  }

  let refreshing = false;
  function refreshQuestions() {
    const box = $("questions");
    if (!box || !box.dataset.refresh || refreshing || !window.htmx) return;
    refreshing = true;
    htmx.ajax("GET", box.dataset.refresh, { target: "#questions", swap: "outerHTML" }).finally(() => { refreshing = false; });
  }

  // ── frames ─────────────────────────────────────────────────────────────
  function handle(frame) {
    switch (frame.type) {
      case "hello":
        setPaused(frame.paused);
        status(role === "student" ? "connected to the class" : "connected: answers arrive live", false);
        if (role === "student") { current = frame.question; renderQuestion(); }
        else if (frame.counts) updateCounts(frame.counts);
        break;
      case "question":
        if (role === "student") { current = Object.assign({ answered: null }, frame.question); renderQuestion(); }
        else refreshQuestions();
        break;
      case "answered":
        if (current && current.id === frame.question) { current.answered = frame.given; renderQuestion(); }
        status("answer sent", false);
        break;
      case "counts":
        if (role === "instructor") updateCounts(frame);
        break;
      case "reveal":
        if (role === "student" && current && current.id === frame.question) {
          current.revealed = true; current.result = frame; renderQuestion();
        } else if (role === "instructor") refreshQuestions();
        break;
      case "pause":
        setPaused(frame.paused);
        break;
      case "error":
        status(frame.message, true);
        break;
    }
  }

  let retry = 500;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(scheme + location.host + root.dataset.ws);
    ws.onopen = () => { retry = 500; };
    ws.onmessage = (msg) => handle(JSON.parse(msg.data));
    ws.onclose = (evt) => {
      if (evt.code === 4403 || evt.code === 4404) { status("this browser is not in this class (or it was deleted)", true); return; }
      status("disconnected from the class; reconnecting…", true);
      setTimeout(connect, retry); retry = Math.min(retry * 2, 8000);
    };
  }
  connect();
})();
