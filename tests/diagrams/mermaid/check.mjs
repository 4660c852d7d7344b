// Parse Mermaid diagrams with Mermaid's own parser and print what it understood.
// stdin: a JSON array of diagram texts. stdout: a JSON array, one entry per diagram:
// {"ok": true, "nodes": [[id, label, shape, cssClasses]], "edges": [[from, to, label]]}
// or {"ok": false, "error": "..."}. Mermaid needs a DOM only for its sanitizer; jsdom
// provides one, so no browser is involved and nothing is fetched.
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import("mermaid");

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const texts = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const results = [];
for (const text of texts) {
  try {
    await mermaid.parse(text);
    const diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
    const data = diagram.db.getData();
    results.push({
      ok: true,
      type: diagram.type,
      nodes: data.nodes.map((n) => [n.id, n.label ?? null, n.shape, n.cssClasses ?? ""]),
      edges: data.edges.map((e) => [e.start, e.end, e.label ?? null]),
    });
  } catch (err) {
    results.push({ ok: false, error: String(err && err.message ? err.message : err) });
  }
}
process.stdout.write(JSON.stringify(results));
