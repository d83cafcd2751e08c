// A self-contained, interactive SVG flame graph, drawn by rbtrace itself (no
// flamegraph.pl needed): one <g> per frame (rect, text, and a <title> for
// the hover), the root at the bottom, widths proportional to samples, and a
// small inline script for click-to-zoom and regex search, as flamegraph.pl's
// output has. Every name is escaped for XML (and its control characters made
// visible: they are not allowed in XML 1.0 at all).
import { escapeForTerminal, plural } from '../output/format.js';
import type { OutputKind } from '../output/file.js';

export interface FoldedStack {
  /** Outermost first; the first is the root (the comm). */
  frames: string[];
  count: number;
}

export interface FlameGraphOptions {
  title: string;
  /** Under the title: what was sampled, how. */
  subtitle?: string;
  width?: number;
  /** Frames narrower than this many pixels are left out (as flamegraph.pl --minwidth). */
  minWidth?: number;
}

interface Node {
  name: string;
  count: number;
  children: Map<string, Node>;
}

const FRAME_H = 16;
const FONT_SIZE = 12;
const PAD_X = 10;
const TOP = 2 * FRAME_H + 8;
const BOTTOM = 2 * FRAME_H;

/** Text for XML character data and attribute values. */
export function escapeXml(s: string): string {
  return escapeForTerminal(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function buildTree(stacks: readonly FoldedStack[]): { root: Node; depth: number } {
  const root: Node = { name: 'all', count: 0, children: new Map() };
  let depth = 0;
  for (const s of stacks) {
    root.count += s.count;
    let node = root;
    for (const f of s.frames) {
      let child = node.children.get(f);
      if (!child) node.children.set(f, (child = { name: f, count: 0, children: new Map() }));
      child.count += s.count;
      node = child;
    }
    depth = Math.max(depth, s.frames.length);
  }
  return { root, depth };
}

/** A stable colour per name: flamegraph.pl's "hot" for user code, orange for the kernel, grey for markers. */
function colour(name: string): string {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  const v1 = (h % 1000) / 1000;
  const v2 = ((h >>> 10) % 1000) / 1000;
  if (name.endsWith('_[k]')) return `rgb(${230 + Math.round(25 * v2)},${110 + Math.round(60 * v1)},${30 + Math.round(20 * v1)})`;
  if (name.startsWith('[')) return `rgb(${180 + Math.round(30 * v1)},${180 + Math.round(30 * v1)},${180 + Math.round(30 * v1)})`;
  return `rgb(${205 + Math.round(50 * v2)},${Math.round(230 * v1)},${Math.round(55 * v2)})`;
}

/** Label that fits `width` pixels (approximate glyph width, as flamegraph.pl). */
function fitText(name: string, width: number): string {
  const chars = Math.floor(width / (FONT_SIZE * 0.59));
  if (chars < 3) return '';
  return name.length <= chars ? name : `${name.slice(0, chars - 2)}..`;
}

const SCRIPT = `
var svg, frames, details, unzoombtn, searchbtn, matchedtxt, searching = null, W, PAD = ${PAD_X}, FS = ${FONT_SIZE};
function init(evt) {
  svg = document.documentElement; frames = document.getElementById("frames");
  details = document.getElementById("details").firstChild; unzoombtn = document.getElementById("unzoom");
  searchbtn = document.getElementById("search"); matchedtxt = document.getElementById("matched");
  W = +svg.getAttribute("width");
  frames.addEventListener("click", function (e) { var g = e.target.closest("g"); if (g && g.getAttribute("data-w")) zoom(g); });
  frames.addEventListener("mouseover", function (e) { var g = e.target.closest("g"); if (g) details.nodeValue = g.querySelector("title").textContent; });
  frames.addEventListener("mouseout", function () { details.nodeValue = " "; });
  unzoombtn.addEventListener("click", unzoom);
  searchbtn.addEventListener("click", function () { if (searching) resetSearch(); else search(prompt("Search for (regular expression):", "")); });
  window.addEventListener("keydown", function (e) { if ((e.ctrlKey || e.metaKey) && e.key === "f") { e.preventDefault(); search(prompt("Search for (regular expression):", "")); } if (e.key === "Escape") { unzoom(); resetSearch(); } });
}
function nameOf(g) { var t = g.querySelector("title").textContent; return t.slice(0, t.lastIndexOf(" (")); }
function fit(g, x, w) {
  var r = g.querySelector("rect"), t = g.querySelector("text"), n = nameOf(g), c = Math.floor(w / (FS * 0.59));
  r.setAttribute("x", x); r.setAttribute("width", w); t.setAttribute("x", x + 3);
  t.textContent = c < 3 ? "" : n.length <= c ? n : n.slice(0, c - 2) + "..";
}
function zoom(node) {
  var x0 = +node.getAttribute("data-x"), w0 = +node.getAttribute("data-w"), y0 = +node.querySelector("rect").getAttribute("y");
  var ratio = (W - 2 * PAD) / w0, gs = frames.children;
  unzoombtn.classList.remove("hide");
  for (var i = 0; i < gs.length; i++) {
    var g = gs[i], x = +g.getAttribute("data-x"), w = +g.getAttribute("data-w"), y = +g.querySelector("rect").getAttribute("y");
    if (x + w <= x0 + 1e-6 || x >= x0 + w0 - 1e-6 || (y > y0 && (x > x0 + 1e-6 || x + w < x0 + w0 - 1e-6))) { g.classList.add("hide"); continue; }
    g.classList.remove("hide");
    if (y > y0) { fit(g, PAD, W - 2 * PAD); g.classList.add("parent"); }
    else { fit(g, PAD + (x - x0) * ratio, w * ratio); g.classList.remove("parent"); }
  }
}
function unzoom() {
  unzoombtn.classList.add("hide");
  var gs = frames.children;
  for (var i = 0; i < gs.length; i++) { var g = gs[i]; g.classList.remove("hide", "parent"); fit(g, +g.getAttribute("data-x"), +g.getAttribute("data-w")); }
}
function search(term) {
  if (!term) return;
  var re; try { re = new RegExp(term); } catch (e) { alert(e); return; }
  resetSearch();
  var gs = frames.children, spans = [], total = +frames.getAttribute("data-total-w");
  for (var i = 0; i < gs.length; i++) {
    var g = gs[i];
    if (!re.test(nameOf(g))) continue;
    var r = g.querySelector("rect"); r.setAttribute("data-fill", r.getAttribute("fill")); r.setAttribute("fill", "rgb(230,0,230)");
    spans.push([+g.getAttribute("data-x"), +g.getAttribute("data-x") + +g.getAttribute("data-w")]);
  }
  spans.sort(function (a, b) { return a[0] - b[0]; });
  var covered = 0, end = -1;
  for (var j = 0; j < spans.length; j++) { var s = Math.max(spans[j][0], end); if (spans[j][1] > s) covered += spans[j][1] - s; end = Math.max(end, spans[j][1]); }
  searching = term; searchbtn.classList.add("on");
  matchedtxt.textContent = "Matched: " + (100 * covered / total).toFixed(1) + "%";
}
function resetSearch() {
  var rs = frames.querySelectorAll("rect[data-fill]");
  for (var i = 0; i < rs.length; i++) { rs[i].setAttribute("fill", rs[i].getAttribute("data-fill")); rs[i].removeAttribute("data-fill"); }
  searching = null; searchbtn.classList.remove("on"); matchedtxt.textContent = " ";
}
`;

/** The SVG document. */
export function flameGraphSvg(stacks: readonly FoldedStack[], opts: FlameGraphOptions): string {
  const width = opts.width ?? 1200;
  const minWidth = opts.minWidth ?? 0.1;
  const { root, depth } = buildTree(stacks);
  const height = TOP + (depth + 1) * FRAME_H + BOTTOM;
  const usable = width - 2 * PAD_X;
  const perSample = root.count ? usable / root.count : 0;
  const out: string[] = [];
  const g = (node: Node, level: number, x: number): void => {
    const w = node.count * perSample;
    if (w < minWidth) return;
    const y = height - BOTTOM - (level + 1) * FRAME_H;
    const pct = root.count ? ((100 * node.count) / root.count).toFixed(2) : '0';
    const name = escapeXml(node.name);
    const label = node.name === 'all' && level === 0 ? 'all' : node.name;
    out.push(`<g data-x="${x.toFixed(2)}" data-w="${w.toFixed(2)}"><title>${name} (${plural(node.count, 'sample')}, ${pct}%)</title>` +
      `<rect x="${x.toFixed(2)}" y="${y}" width="${w.toFixed(2)}" height="${FRAME_H - 1}" fill="${colour(node.name)}" rx="2" ry="2"/>` +
      `<text x="${(x + 3).toFixed(2)}" y="${y + FRAME_H - 4.5}">${escapeXml(fitText(label, w))}</text></g>`);
    let cx = x;
    // Children in name order, as flamegraph.pl sorts them: the same stacks always draw the same picture.
    for (const child of [...node.children.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      g(child, level + 1, cx);
      cx += child.count * perSample;
    }
  };
  if (root.count) g(root, 0, PAD_X);
  const subtitle = opts.subtitle ? `<text x="${width / 2}" y="${FRAME_H * 2 + 2}" text-anchor="middle" class="sub">${escapeXml(opts.subtitle)}</text>` : '';
  return `<?xml version="1.0" standalone="no"?>
<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">
<svg version="1.1" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" onload="init(evt)" xmlns="http://www.w3.org/2000/svg">
<style type="text/css">
text { font-family: Verdana, sans-serif; font-size: ${FONT_SIZE}px; fill: rgb(0,0,0); }
#title { font-size: 17px; } .sub { font-size: 12px; fill: rgb(90,90,90); }
#frames > g { cursor: pointer; } #frames > g:hover rect { stroke: black; stroke-width: 0.5; }
#unzoom, #search { cursor: pointer; } #search.on { fill: rgb(230,0,230); }
.hide { display: none; } .parent { opacity: 0.5; }
</style>
<script type="text/ecmascript"><![CDATA[${SCRIPT}]]></script>
<rect x="0" y="0" width="${width}" height="${height}" fill="rgb(248,248,248)"/>
<text id="title" x="${width / 2}" y="${FRAME_H + 4}" text-anchor="middle">${escapeXml(opts.title)}</text>
${subtitle}
<text id="unzoom" x="${PAD_X}" y="${FRAME_H + 4}" class="hide">Reset Zoom</text>
<text id="search" x="${width - PAD_X - 60}" y="${FRAME_H + 4}">Search</text>
<text id="details" x="${PAD_X}" y="${height - FRAME_H / 2}"> </text>
<text id="matched" x="${width - PAD_X - 120}" y="${height - FRAME_H / 2}"> </text>
<g id="frames" data-total-w="${usable}">
${out.join('\n')}
</g>
</svg>
`;
}

/** What --svg writes, and so the only kind of file it replaces. */
export const FLAME_GRAPH: OutputKind = {
  flag: '--svg',
  what: 'an SVG file',
  recognise: (head) => /^\s*(<\?xml[^>]*>\s*)?(<!--[\s\S]*?-->\s*)*(<!DOCTYPE[^>]*>\s*)?<svg[\s>]/.test(head),
};
