// CPU and memory charts on a VM's page (SPEC DASH-5), drawn as SVG by this file alone.
// Series come from /api/v1/vms/{id}/metrics: one value per bucket, null where nothing was
// collected, so a gap stays a gap. Rollups (24 h, 7 d) also draw their min–max band. Hovering
// shows the bucket's exact time and values.
(() => {
  const svgNS = "http://www.w3.org/2000/svg";
  const size = { width: 760, height: 170, left: 44, right: 12, top: 10, bottom: 26 };
  const plotWidth = size.width - size.left - size.right;
  const plotHeight = size.height - size.top - size.bottom;
  const colors = { cpu: "#2f6fd0", memory: "#b0529a" };

  const node = (name, attributes = {}, parent) => {
    const element = document.createElementNS(svgNS, name);
    Object.entries(attributes).forEach(([key, value]) => element.setAttribute(key, value));
    if (parent) parent.appendChild(element);
    return element;
  };
  const x = (index, count) => size.left + (count <= 1 ? 0 : (index / (count - 1)) * plotWidth);
  const y = (percent) => size.top + plotHeight - (Math.max(0, Math.min(100, percent)) / 100) * plotHeight;
  const timeFormat = (withDate) =>
    new Intl.DateTimeFormat(undefined, {
      ...(withDate ? { year: "numeric", month: "2-digit", day: "2-digit" } : {}),
      hour: "2-digit", minute: "2-digit", second: withDate ? "2-digit" : undefined, hour12: false,
      timeZoneName: withDate ? "short" : undefined,
    });
  const percent = (value) => (value === null || value === undefined ? "no data" : `${value.toFixed(1)} %`);

  // Runs of consecutive non-null indexes: each is drawn on its own, so nulls break the line.
  const runs = (values) => {
    const found = [];
    let current = null;
    values.forEach((value, index) => {
      if (value === null) {
        current = null;
      } else {
        if (!current) found.push((current = []));
        current.push(index);
      }
    });
    return found;
  };

  const drawChart = (svg, data, name) => {
    svg.replaceChildren();
    const band = data[name];
    const count = data.points;
    const stepMs = data.stepSeconds * 1000;
    const start = Date.parse(data.start);
    [0, 25, 50, 75, 100].forEach((level) => {
      node("line", { x1: size.left, x2: size.left + plotWidth, y1: y(level), y2: y(level), stroke: "#e3e8ee" }, svg);
      node("text", { x: size.left - 6, y: y(level) + 4, "text-anchor": "end", "font-size": 11, fill: "#5b6775" }, svg).textContent =
        `${level}%`;
    });
    const labels = timeFormat(data.range === "7d" || data.range === "24h");
    for (let tick = 0; tick <= 4; tick++) {
      const index = Math.round((tick / 4) * (count - 1));
      node("text", {
        x: x(index, count), y: size.height - 8, "text-anchor": tick === 0 ? "start" : tick === 4 ? "end" : "middle",
        "font-size": 11, fill: "#5b6775",
      }, svg).textContent = labels.format(new Date(start + index * stepMs));
    }
    runs(band.avg).forEach((run) => {
      if (band.min && band.max) {
        const upper = run.map((index) => `${x(index, count)},${y(band.max[index] ?? band.avg[index])}`);
        const lower = run.map((index) => `${x(index, count)},${y(band.min[index] ?? band.avg[index])}`).reverse();
        node("polygon", { points: upper.concat(lower).join(" "), fill: colors[name], "fill-opacity": 0.15 }, svg);
      }
      if (run.length === 1) {
        node("circle", { cx: x(run[0], count), cy: y(band.avg[run[0]]), r: 2, fill: colors[name] }, svg);
      } else {
        const path = run.map((index, position) => `${position ? "L" : "M"}${x(index, count)},${y(band.avg[index])}`).join("");
        node("path", { d: path, fill: "none", stroke: colors[name], "stroke-width": 1.5 }, svg);
      }
    });
    svg.dataset.empty = band.avg.every((value) => value === null) ? "yes" : "no";
  };

  const attachHover = (section, data) => {
    const readout = section.querySelector("[data-chart-readout]");
    const exact = timeFormat(true);
    section.querySelectorAll("svg[data-chart]").forEach((svg) => {
      const cursor = node("line", { y1: size.top, y2: size.top + plotHeight, stroke: "#14202e", "stroke-dasharray": "3 3", visibility: "hidden" }, svg);
      const area = node("rect", { x: size.left, y: size.top, width: plotWidth, height: plotHeight, fill: "transparent" }, svg);
      const show = (event) => {
        const box = svg.getBoundingClientRect();
        const svgX = ((event.clientX - box.left) / box.width) * size.width;
        const index = Math.max(0, Math.min(data.points - 1, Math.round(((svgX - size.left) / plotWidth) * (data.points - 1))));
        section.querySelectorAll("svg[data-chart] line[stroke-dasharray]").forEach((line) => {
          line.setAttribute("x1", x(index, data.points));
          line.setAttribute("x2", x(index, data.points));
          line.setAttribute("visibility", "visible");
        });
        const describe = (name, label) => {
          const band = data[name];
          const spread = band.min && band.avg[index] !== null ? ` (min ${percent(band.min[index])}, max ${percent(band.max[index])})` : "";
          return `${label} ${percent(band.avg[index])}${spread}`;
        };
        const time = new Date(Date.parse(data.start) + index * data.stepSeconds * 1000);
        readout.textContent = `${exact.format(time)} · ${describe("cpu", "CPU")} · ${describe("memory", "memory")}`;
      };
      area.addEventListener("mousemove", show);
      area.addEventListener("mouseleave", () => {
        section.querySelectorAll("svg[data-chart] line[stroke-dasharray]").forEach((line) => line.setAttribute("visibility", "hidden"));
      });
      cursor.setAttribute("pointer-events", "none");
    });
  };

  const load = (section, range) => {
    const status = section.querySelector("[data-chart-readout]");
    section.querySelectorAll("[data-range]").forEach((button) => button.setAttribute("aria-pressed", String(button.dataset.range === range)));
    fetch(`${section.dataset.vmMetrics}?range=${encodeURIComponent(range)}`, { credentials: "same-origin" })
      .then((response) => (response.ok ? response.json() : Promise.reject(new Error(`the server answered ${response.status}`))))
      .then((data) => {
        section.querySelectorAll("svg[data-chart]").forEach((svg) => drawChart(svg, data, svg.dataset.chart));
        attachHover(section, data);
        const empty = [data.cpu, data.memory].every((band) => band.avg.every((value) => value === null));
        status.textContent = empty ? "No samples in this window yet (the VM was off, or nothing was collected)." : "Hover over a chart for exact values.";
      })
      .catch((error) => {
        status.textContent = `Charts could not be loaded: ${error.message}`;
      });
  };

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-vm-metrics]").forEach((section) => {
      section.querySelectorAll("svg[data-chart]").forEach((svg) => {
        svg.setAttribute("viewBox", `0 0 ${size.width} ${size.height}`);
      });
      section.querySelectorAll("[data-range]").forEach((button) => {
        button.addEventListener("click", () => load(section, button.dataset.range));
      });
      load(section, section.dataset.defaultRange || "2h");
    });
  });
})();
