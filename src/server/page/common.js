// What both pages share: building elements (text only, never HTML), calling the API, saying what happened.

/** An element with attributes and children; strings become text nodes, so nothing the API answers is parsed as HTML. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = String(value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) if (child !== undefined && child !== null) node.append(child instanceof Node ? child : String(child));
  return node;
}

/** The API's answer as JSON, or an Error carrying the one error body's message, type and code. */
export async function callApi(token, method, path, body) {
  const headers = { accept: "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  const text = await response.text();
  let json;
  try {
    json = text === "" ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (!response.ok) {
    const error = json && json.error ? json.error : { message: `${response.status} ${response.statusText}` };
    throw Object.assign(new Error(error.message || `${response.status}`), { status: response.status, type: error.type, code: error.code, body: json });
  }
  return json;
}

/** Tells the user something in the polite live region (and clears the alert). */
export function say(message) {
  document.getElementById("problem").textContent = "";
  document.getElementById("notice").textContent = message;
}

/** Tells the user a problem in the assertive live region. */
export function complain(message) {
  document.getElementById("notice").textContent = "";
  document.getElementById("problem").textContent = message;
}

/** An ISO time in the reader's locale, keeping the ISO text as the element's datetime. */
export function timeOf(iso) {
  if (!iso) return "never";
  const date = new Date(iso);
  return el("time", { datetime: iso, title: iso }, Number.isNaN(date.getTime()) ? iso : date.toLocaleString());
}

/** A status badge: the word is always there, the colour only repeats it. */
export function badge(status) {
  return el("span", { class: `badge status-${status}` }, status);
}

/** Runs a button's work with the button disabled meanwhile; a failure is told, never thrown away. */
export async function busy(button, work) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    await work();
  } catch (error) {
    complain(error instanceof Error ? error.message : String(error));
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}
