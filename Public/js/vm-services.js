// A VM's watched services on its page (SPEC MON-4, VM-13): state, restarts and the latest
// events as the VM's monitor agent reported them, from /api/v1/vms/{id}/services, refreshed
// every 5 s. System administrators get Start / Stop / Restart (the server checks that too).
(() => {
  const section = document.querySelector("[data-vm-services]");
  if (!section) return;
  const url = section.dataset.vmServices;
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? "";
  const agentLine = section.querySelector("[data-services-agent]");
  const table = section.querySelector("table");
  const rows = section.querySelector("[data-services-rows]");
  const events = section.querySelector("[data-services-events]");
  const when = (text) => (text ? new Date(text).toLocaleString() : "");
  const cell = (row, text, className) => {
    const td = row.insertCell();
    td.textContent = text;
    if (className) td.className = className;
    return td;
  };
  const phrases = {
    restarted: "restarted",
    recovered: "recovered",
    gave_up: "gave up",
    recovered_from_giving_up: "running again after giving up",
  };

  const act = async (service, action, button) => {
    button.disabled = true;
    agentLine.textContent = `${action} ${service}…`;
    try {
      const answer = await fetch(`${url}/${encodeURIComponent(service)}/${action}`, {
        method: "POST",
        headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
        credentials: "same-origin",
      });
      const body = await answer.json();
      if (!answer.ok) throw new Error(body?.error?.message ?? `HTTP ${answer.status}`);
      render(body);
    } catch (error) {
      agentLine.textContent = `${action} ${service} failed: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  };

  const render = (data) => {
    const agent = data.agent;
    agentLine.textContent =
      agent.state === "not installed"
        ? "No heartbeat from a monitor agent yet."
        : `Agent ${agent.state}, last heartbeat ${when(agent.lastHeartbeatAt)}` +
          (agent.queuedEvents ? `, ${agent.queuedEvents} events waiting on the VM` : "");
    agentLine.classList.toggle("error", agent.state === "silent");
    rows.replaceChildren();
    data.services.forEach((service) => {
      const row = rows.insertRow();
      cell(row, service.name);
      cell(row, service.state.replace("_", " "), `state-${service.state}`);
      cell(row, when(service.since));
      cell(row, String(service.restarts));
      cell(row, String(service.failures));
      const actions = row.insertCell();
      if (data.canControl) {
        ["start", "stop", "restart"].forEach((action) => {
          const button = document.createElement("button");
          button.type = "button";
          button.textContent = action[0].toUpperCase() + action.slice(1);
          button.addEventListener("click", () => {
            if (action !== "start" && !window.confirm(`${button.textContent} ${service.name}?`)) return;
            act(service.name, action, button);
          });
          actions.appendChild(button);
        });
      }
    });
    table.hidden = data.services.length === 0;
    events.replaceChildren();
    data.events.forEach((event) => {
      const item = document.createElement("li");
      const outage = event.outageStartedAt
        ? `, down ${((new Date(event.occurredAt) - new Date(event.outageStartedAt)) / 1000).toFixed(1)} s`
        : "";
      item.textContent = `${when(event.occurredAt)}: ${event.service} ${phrases[event.kind] ?? event.kind} ` +
        `(attempts ${event.attempts}${outage})`;
      events.appendChild(item);
    });
    if (!data.events.length) events.innerHTML = '<li class="muted">None yet.</li>';
  };

  const refresh = async () => {
    try {
      const answer = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (answer.ok) render(await answer.json());
    } catch (error) {
      agentLine.textContent = `Could not load the services: ${error.message}`;
    }
  };
  refresh();
  setInterval(refresh, 5000);
})();
