/** A line chart as SVG text: x is categorical (bit widths), y is log-scaled milliseconds. */
export interface Series {
  name: string;
  points: [number, number][];
}

const COLORS = ['#d62728', '#1f77b4', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#17becf'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
}

const W = 640, H = 400, LEFT = 70, RIGHT = 190, TOP = 40, BOTTOM = 50;

/** A chart's opening: the canvas and its title. */
function header(title: string): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2 - RIGHT / 2 + LEFT / 2}" y="22" text-anchor="middle" font-size="14">${esc(title)}</text>`,
  ];
}

/** A chart's axes and their labels. */
function axes(xLabel: string, yLabel: string): string[] {
  return [`<text x="${(LEFT + W - RIGHT) / 2}" y="${H - 12}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text transform="translate(18 ${(TOP + H - BOTTOM) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`,
    `<line x1="${LEFT}" x2="${LEFT}" y1="${TOP}" y2="${H - BOTTOM}" stroke="black"/>`,
    `<line x1="${LEFT}" x2="${W - RIGHT}" y1="${H - BOTTOM}" y2="${H - BOTTOM}" stroke="black"/>`];
}

export function lineChart(title: string, xLabel: string, yLabel: string, series: Series[]): string {
  const left = LEFT, right = RIGHT, top = TOP, bottom = BOTTOM;
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => v > 0);
  const lo = Math.floor(Math.log10(Math.min(...ys))), hi = Math.ceil(Math.log10(Math.max(...ys)));
  const px = (x: number) => left + (xs.length === 1 ? 0.5 : xs.indexOf(x) / (xs.length - 1)) * (W - left - right);
  const py = (y: number) => top + (1 - (Math.log10(y) - lo) / Math.max(1, hi - lo)) * (H - top - bottom);
  const out: string[] = header(title);
  for (let e = lo; e <= hi; e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v < 10 ** lo || v > 10 ** hi) continue;
      out.push(`<line x1="${left}" x2="${W - right}" y1="${py(v)}" y2="${py(v)}" stroke="#ddd"/>`,
        `<text x="${left - 6}" y="${py(v) + 4}" text-anchor="end">${v >= 1 ? v : v.toPrecision(1)}</text>`);
    }
  }
  for (const x of xs) out.push(`<text x="${px(x)}" y="${H - bottom + 18}" text-anchor="middle">${x}</text>`);
  out.push(...axes(xLabel, yLabel));
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const pts = s.points.filter((p) => p[1] > 0).map((p) => `${px(p[0])},${py(p[1])}`);
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.join(' ')}"/>`);
    for (const p of pts) out.push(`<circle cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="3" fill="${c}"/>`);
    out.push(`<line x1="${W - right + 12}" x2="${W - right + 32}" y1="${top + 10 + i * 20}" y2="${top + 10 + i * 20}" stroke="${c}" stroke-width="2"/>`,
      `<text x="${W - right + 38}" y="${top + 14 + i * 20}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

/** A scatter chart as SVG text: linear x and y; each series' points joined in order (a path) or not. */
export function scatterChart(title: string, xLabel: string, yLabel: string, series: (Series & { joined?: boolean })[]): string {
  const left = LEFT, right = RIGHT, top = TOP, bottom = BOTTOM;
  const all = series.flatMap((s) => s.points);
  const span = (vs: number[]) => {
    const lo = Math.min(...vs), hi = Math.max(...vs), pad = (hi - lo || Math.abs(hi) || 1) * 0.08;
    return [lo - pad, hi + pad];
  };
  const [x0, x1] = span(all.map((p) => p[0])), [y0, y1] = span(all.map((p) => p[1]));
  const px = (x: number) => left + ((x - x0) / (x1 - x0)) * (W - left - right);
  const py = (y: number) => top + (1 - (y - y0) / (y1 - y0)) * (H - top - bottom);
  const ticks = (lo: number, hi: number) => Array.from({ length: 6 }, (_, i) => lo + ((hi - lo) * i) / 5);
  const out: string[] = header(title);
  for (const v of ticks(y0, y1)) out.push(`<line x1="${left}" x2="${W - right}" y1="${py(v)}" y2="${py(v)}" stroke="#ddd"/>`, `<text x="${left - 6}" y="${py(v) + 4}" text-anchor="end">${v.toPrecision(3)}</text>`);
  for (const v of ticks(x0, x1)) out.push(`<text x="${px(v)}" y="${H - bottom + 18}" text-anchor="middle">${v.toPrecision(3)}</text>`);
  out.push(...axes(xLabel, yLabel));
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    if (s.joined && s.points.length > 1) out.push(`<polyline fill="none" stroke="${c}" stroke-width="1.5" points="${s.points.map((p) => `${px(p[0])},${py(p[1])}`).join(' ')}"/>`);
    for (const p of s.points) out.push(`<circle cx="${px(p[0])}" cy="${py(p[1])}" r="4" fill="${c}"/>`);
    out.push(`<circle cx="${W - right + 22}" cy="${top + 10 + i * 20}" r="4" fill="${c}"/>`, `<text x="${W - right + 38}" y="${top + 14 + i * 20}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}
