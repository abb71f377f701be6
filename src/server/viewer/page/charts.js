// Charts as SVG, drawn from plain numbers: bars over labelled buckets.

const SVG = "http://www.w3.org/2000/svg";

function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A bar chart of `points` ([{label, value}]), values formatted by `format`, with a title for
 *  screen readers. */
export function barChart(points, { title, format = (v) => String(v) } = {}) {
  const width = 640, height = 220, left = 56, bottom = 46, top = 12;
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title || "chart" });
  svg.appendChild(el("title", {}, title || "chart"));
  const max = Math.max(0, ...points.map((p) => p.value));
  const plotH = height - bottom - top;
  const plotW = width - left - 8;
  svg.appendChild(el("line", { class: "axis", x1: left, y1: top + plotH, x2: width - 8, y2: top + plotH }));
  for (const fraction of [0, 0.5, 1]) {
    const y = top + plotH - fraction * plotH;
    svg.appendChild(el("line", { class: "axis", x1: left - 4, y1: y, x2: left, y2: y }));
    svg.appendChild(el("text", { x: left - 6, y: y + 4, "text-anchor": "end" }, format(max * fraction)));
  }
  if (points.length === 0) {
    svg.appendChild(el("text", { x: left + plotW / 2, y: top + plotH / 2, "text-anchor": "middle" }, "nothing yet"));
    return svg;
  }
  const slot = plotW / points.length;
  const barW = Math.max(2, Math.min(48, slot * 0.7));
  const every = Math.ceil(points.length / 12);
  points.forEach((point, i) => {
    const h = max > 0 ? (point.value / max) * plotH : 0;
    const x = left + i * slot + (slot - barW) / 2;
    const bar = el("rect", { class: "bar", x, y: top + plotH - h, width: barW, height: Math.max(h, 0), "data-value": point.value });
    bar.appendChild(el("title", {}, `${point.label}: ${format(point.value)}`));
    svg.appendChild(bar);
    if (i % every === 0) {
      svg.appendChild(el("text", { x: x + barW / 2, y: top + plotH + 14, "text-anchor": "middle" }, point.label));
    }
  });
  return svg;
}
