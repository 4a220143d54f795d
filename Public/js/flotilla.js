// Progressive enhancement only: every form works without this file.

// Calls Flotilla's API with the session cookie. State-changing calls must carry the session's
// CSRF token (from the page's csrf-token meta tag) in X-CSRF-Token, or the server refuses them.
const apiFetch = (url, options = {}) => {
  const token = document.querySelector('meta[name="csrf-token"]')?.content || "";
  return fetch(url, { credentials: "same-origin", ...options, headers: { "X-CSRF-Token": token, ...(options.headers || {}) } });
};
document.addEventListener("DOMContentLoaded", () => {
  // Ask before destructive form submissions marked with data-confirm.
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
  // Check that a password and its confirmation match before the form is sent
  // (the server checks again).
  document.querySelectorAll("form[data-password-pair]").forEach((form) => {
    const password = form.querySelector("input[name=password]");
    const confirmation = form.querySelector("input[name=passwordConfirmation]");
    if (!password || !confirmation) return;
    const check = () => {
      confirmation.setCustomValidity(password.value === confirmation.value ? "" : "The passwords do not match.");
    };
    password.addEventListener("input", check);
    confirmation.addEventListener("input", check);
  });
});

// Live parts of pages. Each fetch is independent, so a slow host delays only its own row.
document.addEventListener("DOMContentLoaded", () => {
  // Buttons that need a confirmation of their own (e.g. "Delete" in a batch form).
  document.querySelectorAll("[data-confirm-click]").forEach((button) => {
    button.addEventListener("click", (event) => {
      if (!window.confirm(button.dataset.confirmClick)) event.preventDefault();
    });
  });

  // Environments: power state from vSphere and services from the guests, after the list shows.
  const fillLive = (container) => {
    if (container.dataset.loaded) return;
    container.dataset.loaded = "yes";
    apiFetch(container.dataset.live)
      .then((response) => (response.ok ? response.json() : []))
      .then((vms) => {
        vms.forEach((vm) => {
          const row = container.querySelector(`tr[data-vm="${vm.id}"]`);
          if (!row) return;
          if (vm.powerState) row.querySelector(".power").textContent = vm.powerState;
          const services = row.querySelector(".services");
          if (vm.services) {
            services.textContent = vm.services.map((s) => `${s.name} ${s.running ? "✓" : "✗"}`).join(", ") || "—";
          } else {
            services.textContent = vm.servicesError ? `unreachable: ${vm.servicesError}` : "—";
          }
        });
      })
      .catch(() => {});
  };
  // An environment's expander lists its VMs when first opened, then fills in the live columns.
  const fillVMs = (details) => {
    if (details.dataset.listed) return;
    details.dataset.listed = "yes";
    apiFetch(details.dataset.vms)
      .then((response) => (response.ok ? response.json() : { vms: [] }))
      .then((environment) => {
        const body = details.querySelector("tbody");
        environment.vms.forEach((vm) => {
          const row = document.createElement("tr");
          row.dataset.vm = vm.id;
          for (const [value, name] of [[vm.hostName], [vm.ip], [vm.role], [vm.powerState || "unknown", "power"], ["…", "services"]]) {
            const cell = document.createElement("td");
            cell.textContent = value;
            if (name) cell.className = name;
            row.appendChild(cell);
          }
          body.appendChild(row);
        });
        fillLive(details);
      })
      .catch(() => {});
  };
  document.querySelectorAll("details[data-vms]").forEach((details) => {
    details.addEventListener("toggle", () => details.open && fillVMs(details));
  });
  document.querySelectorAll("table[data-live]").forEach(fillLive);

  // A running job's page follows its progress every second.
  const steps = document.getElementById("job-steps");
  if (steps && steps.dataset.finished !== "true") {
    const poll = () => {
      apiFetch(steps.dataset.job)
        .then((response) => response.json())
        .then((job) => {
          document.getElementById("job-status").textContent = job.status;
          document.getElementById("job-summary").textContent = job.summary;
          const sections = steps.querySelectorAll("section.step");
          (job.steps || []).forEach((step, index) => {
            const section = sections[index];
            if (!section) return;
            section.className = `step status-${step.status}`;
            section.querySelector(".step-status").textContent = step.status;
            section.querySelector("pre.log").textContent = step.log;
          });
          if (["queued", "running"].includes(job.status)) setTimeout(poll, 1000);
          else window.location.reload();
        })
        .catch(() => setTimeout(poll, 2000));
    };
    setTimeout(poll, 1000);
  }
});

// Settings: each connection's templates, read from vSphere after the page is shown, so a slow
// or unreachable vCenter delays only its own cell. They also become the role form's choices.
document.addEventListener("DOMContentLoaded", () => {
  const choices = document.getElementById("role-templates");
  document.querySelectorAll("[data-templates]").forEach((cell) => {
    cell.textContent = "…";
    fetch(cell.dataset.templates, { credentials: "same-origin" })
      .then((response) => response.json().then((body) => ({ ok: response.ok, body })))
      .then(({ ok, body }) => {
        if (!ok) throw new Error(body?.error?.message || "templates unavailable");
        cell.textContent = body.join(" ");
        body.forEach((name) => {
          const option = document.createElement("option");
          option.value = name;
          choices?.appendChild(option);
        });
      })
      .catch((error) => {
        cell.textContent = error.message || "templates unavailable";
        cell.classList.add("error");
      });
  });
});
