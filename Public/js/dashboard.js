// The dashboard and VM pages, live: the server renders them, then pushes only what changes
// over server-sent events (EventSource reconnects by itself and resumes from the last event).
document.addEventListener("DOMContentLoaded", () => {
  const fleet = document.getElementById("fleet");
  const state = document.getElementById("live-state");
  if (!fleet || !window.EventSource) return;

  const setText = (root, selector, value) => {
    const element = root.querySelector(selector);
    if (element) element.textContent = value;
  };
  const setHealthClass = (element, health) => {
    element.className = element.className.replace(/\bhealth-\S+/g, "").trim() + ` health-${health}`;
  };

  const applyChange = (change) => {
    document.querySelectorAll(`[data-vm="${change.vmID}"]`).forEach((element) => {
      if (element.id === "history") {
        const row = document.createElement("tr");
        setHealthClass(row, change.health);
        for (const value of [new Date(change.at).toLocaleString(), change.label, change.previous, change.reason]) {
          const cell = document.createElement("td");
          cell.textContent = value;
          row.appendChild(cell);
        }
        element.querySelector("tbody").prepend(row);
        return;
      }
      setHealthClass(element, change.health);
      setText(element, ".label", change.label);
      setText(element, ".reason", change.reason);
      // For tests and curious people: when the page last heard of this VM.
      element.dataset.changedAt = String(Date.now());
    });
  };

  const cards = document.getElementById("role-cards");
  const applySummary = (summary) => {
    for (const key of ["total", "reachable", "unreachable", "checking"]) {
      document.querySelectorAll(`[data-count="${key}"]`).forEach((element) => (element.textContent = summary[key]));
    }
    if (!cards) return;
    for (const count of summary.roles) {
      let card = cards.querySelector(`[data-role="${CSS.escape(count.role)}"]`);
      if (!card) {
        card = document.createElement("a");
        card.className = "card";
        card.href = `/?role=${encodeURIComponent(count.role)}`;
        card.dataset.role = count.role;
        card.innerHTML =
          '<span class="role"></span><span class="n-of-m"><strong data-field="reachable"></strong> of <span data-field="total"></span> reachable</span>' +
          '<span class="down"><span data-field="unreachable"></span> unreachable · <span data-field="checking"></span> checking</span>';
        card.querySelector(".role").textContent = count.role;
        cards.appendChild(card);
      }
      for (const key of ["total", "reachable", "unreachable", "checking"]) setText(card, `[data-field="${key}"]`, count[key]);
      card.classList.toggle("has-down", count.unreachable > 0);
    }
  };

  const source = new EventSource(`${fleet.dataset.events}?since=${encodeURIComponent(fleet.dataset.since || "")}`);
  const show = (text, live) => {
    if (!state) return;
    state.textContent = text;
    state.className = `live ${live ? "on" : "off"}`;
  };
  show("connecting…", false);
  source.addEventListener("open", () => show("live", true));
  source.addEventListener("error", () => show("reconnecting…", false));
  source.addEventListener("change", (event) => applyChange(JSON.parse(event.data)));
  source.addEventListener("summary", (event) => applySummary(JSON.parse(event.data)));
  source.addEventListener("reload", () => window.location.reload());
});

// The VM list: a selection that outlives the page (kept in the tab's sessionStorage, so VMs
// picked on page 1 and page 2 are powered by one batch job), select all of a page, and notes
// edited in place (the VM page has a form).
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("vm-batch");
  const boxes = () => Array.from(document.querySelectorAll('#vm-batch input[name="vm"]'));
  const key = "flotilla.vm-selection";
  const load = () => {
    try {
      return JSON.parse(sessionStorage.getItem(key) || "{}");
    } catch {
      return {};
    }
  };
  let selection = load();
  const summary = document.getElementById("selection-summary");
  const show = () => {
    sessionStorage.setItem(key, JSON.stringify(selection));
    if (!summary) return;
    const names = Object.values(selection);
    summary.hidden = names.length === 0;
    summary.querySelector("[data-field=count]").textContent = String(names.length);
    summary.querySelector("[data-field=names]").textContent = names.sort().join(", ");
  };
  const take = (box) => {
    if (box.checked) selection[box.value] = box.dataset.name || box.value;
    else delete selection[box.value];
  };
  if (form) {
    boxes().forEach((box) => {
      if (selection[box.value]) box.checked = true;
      box.addEventListener("change", () => {
        take(box);
        show();
      });
    });
    const all = document.getElementById("select-all");
    if (all) {
      all.addEventListener("change", () => {
        boxes().forEach((box) => {
          box.checked = all.checked;
          take(box);
        });
        show();
      });
    }
    const clear = document.getElementById("selection-clear");
    if (clear) {
      clear.addEventListener("click", () => {
        selection = {};
        boxes().forEach((box) => (box.checked = false));
        show();
      });
    }
    // VMs selected on other pages go along as hidden fields; the selection is spent by the job.
    form.addEventListener("submit", () => {
      const here = new Set(boxes().map((box) => box.value));
      for (const id of Object.keys(selection)) {
        if (here.has(id)) continue;
        const field = document.createElement("input");
        field.type = "hidden";
        field.name = "vm";
        field.value = id;
        form.appendChild(field);
      }
      sessionStorage.removeItem(key);
    });
    show();
  }
  document.querySelectorAll("td.notes[data-notes-api]").forEach((cell) => {
    cell.addEventListener("click", () => {
      if (cell.querySelector("textarea")) return;
      const before = cell.textContent;
      const editor = document.createElement("textarea");
      editor.value = before;
      editor.maxLength = 2000;
      editor.rows = 2;
      cell.textContent = "";
      cell.appendChild(editor);
      editor.focus();
      let done = false;
      const finish = (save) => {
        if (done) return;
        done = true;
        const text = editor.value;
        if (!save || text === before) {
          cell.textContent = before;
          return;
        }
        cell.textContent = text;
        apiFetch(cell.dataset.notesApi, {
          method: "PUT",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ notes: text }),
        })
          .then((response) => {
            if (!response.ok) throw new Error(String(response.status));
          })
          .catch(() => {
            cell.textContent = before;
            cell.title = "The notes could not be saved.";
          });
      };
      editor.addEventListener("keydown", (event) => {
        if (event.key === "Escape") finish(false);
        if (event.key === "Enter" && !event.shiftKey) {
          event.preventDefault();
          finish(true);
        }
      });
      editor.addEventListener("blur", () => finish(true));
    });
  });
});
