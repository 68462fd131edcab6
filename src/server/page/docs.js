// The API reference: /api/openapi.json rendered as text (no framework, nothing from elsewhere).
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
};
const json = (value) => el("pre", { class: "schema" }, JSON.stringify(value, null, 2));
const anchorOf = (method, path) => `${method}-${path}`.replace(/[^A-Za-z0-9_-]+/g, "-");

function render(doc) {
  document.getElementById("about").textContent = `${doc.info.title} ${doc.info.version}, OpenAPI ${doc.openapi}. ${doc.info.description ?? ""}`;
  const toc = document.getElementById("toc");
  const operations = document.getElementById("operations");
  for (const tag of doc.tags ?? []) {
    const entries = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) if ((op.tags ?? []).includes(tag.name)) entries.push({ path, method, op });
    }
    if (entries.length === 0) continue;
    const list = el("ul");
    const section = el("section", { "aria-labelledby": `tag-${tag.name}` }, el("h2", { id: `tag-${tag.name}` }, tag.name), el("p", { class: "hint" }, tag.description ?? ""));
    for (const { path, method, op } of entries) {
      const id = anchorOf(method, path);
      list.append(el("li", {}, el("a", { href: `#${id}` }, `${method.toUpperCase()} ${path}`)));
      const article = el("article", { id, class: "operation" }, el("h3", {}, el("code", {}, `${method.toUpperCase()} ${path}`)), el("p", {}, op.summary ?? ""));
      const auth = (op.security ?? []).flatMap((s) => Object.keys(s));
      article.append(el("p", { class: "hint" }, `operationId ${op.operationId}; ${auth.length ? `auth: ${auth.join(" or ")}` : "no auth"}`));
      if ((op.parameters ?? []).length) {
        const table = el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Parameter"), el("th", {}, "In"), el("th", {}, "Required"), el("th", {}, "Schema"))));
        const body = el("tbody");
        for (const p of op.parameters) body.append(el("tr", {}, el("td", {}, el("code", {}, p.name)), el("td", {}, p.in), el("td", {}, p.required ? "yes" : "no"), el("td", {}, p.description ?? "", json(p.schema))));
        table.append(body);
        article.append(table);
      }
      if (op.requestBody) {
        const [type, media] = Object.entries(op.requestBody.content)[0];
        article.append(el("h4", {}, `Request body (${type}${op.requestBody.required ? ", required" : ""})`), json(media.schema));
      }
      article.append(el("h4", {}, "Responses"));
      for (const [status, answer] of Object.entries(op.responses ?? {})) {
        const detail = el("details", {}, el("summary", {}, `${status}: ${answer.description}`));
        for (const [type, media] of Object.entries(answer.content ?? {})) detail.append(el("p", { class: "hint" }, type), json(media.schema));
        article.append(detail);
      }
      section.append(article);
    }
    toc.append(el("h2", {}, tag.name), list);
    operations.append(section);
  }
  const schemas = document.getElementById("schemas");
  for (const [name, schema] of Object.entries(doc.components?.schemas ?? {})) {
    schemas.append(el("details", { id: `schema-${name}` }, el("summary", {}, name), json(schema)));
  }
}

fetch("/api/openapi.json")
  .then((res) => (res.ok ? res.json() : Promise.reject(new Error(`GET /api/openapi.json answered ${res.status}`))))
  .then(render)
  .catch((error) => {
    document.getElementById("problem").textContent = String(error.message ?? error);
  });
