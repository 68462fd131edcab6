/**
 * The connect and health page (`/`), the operator view (`/admin`) and their
 * few static files: plain HTML, one stylesheet and one script each, served
 * from this service's origin under a strict Content Security Policy (nothing
 * inline, nothing from anywhere else, no framing). What they show comes from
 * the same API every client uses, with the user's JWT or the operator token.
 *
 * Signing in as the local user is offered only when every connector runs on
 * its sandbox and the HS256 secret is the service's own, and is answered only
 * to the page itself on this machine (see `notLocal`): a token minted by a
 * button is for trying the service, never for a deployment with real accounts.
 */
import { readFileSync } from "node:fs";
import { ErrorCodes, IntegrationError } from "../integrations/shared/errors.js";
import { BlockList, isIPv4 } from "node:net";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";

/** Where the callback sends a browser that began a flow from the page (it reports the outcome and closes). */
export const PAGE_RETURN_PATH = "/oauth/done";

export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join("; ");

export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": PAGE_CSP,
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-resource-policy": "same-origin",
  "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
};

const ASSETS = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  [PAGE_RETURN_PATH]: { file: "index.html", type: "text/html; charset=utf-8" },
  "/admin": { file: "admin.html", type: "text/html; charset=utf-8" },
  "/ui/page.css": { file: "page.css", type: "text/css; charset=utf-8" },
  "/ui/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "/ui/admin.js": { file: "admin.js", type: "text/javascript; charset=utf-8" },
  "/ui/common.js": { file: "common.js", type: "text/javascript; charset=utf-8" },
} as const;

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

/** The peer's own address (never a forwarded header): 127.0.0.0/8, ::1, or IPv4-mapped loopback. */
function isLoopbackPeer(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped) return LOOPBACK.check(mapped, "ipv4");
  return LOOPBACK.check(address, isIPv4(address) ? "ipv4" : "ipv6");
}

/** Host names that mean this machine, as a browser on it writes them. */
const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/**
 * Why a request for a local token is not the page on this machine asking, or undefined when it is: the peer is
 * loopback and nothing forwarded it (a proxy on this machine would make every caller look local); the Host
 * names this machine or the service's public host (a rebound DNS name does not); and the browser says the
 * page of that very origin sent it (Origin, and Sec-Fetch-Site when sent).
 */
function notLocal(request: FastifyRequest, publicHost: string): string | undefined {
  if (!isLoopbackPeer(request.socket.remoteAddress ?? "")) return "it is answered only on this machine (loopback)";
  if (request.headers.forwarded !== undefined || request.headers["x-forwarded-for"] !== undefined) return "it is not answered through a proxy";
  const host = request.headers.host ?? "";
  const hostname = host.replace(/:\d+$/, "").toLowerCase();
  if (!LOOPBACK_HOSTS.has(hostname) && host.toLowerCase() !== publicHost) return `it is not answered for the host ${JSON.stringify(host.slice(0, 100))}`;
  const origin = request.headers.origin;
  if (origin === undefined || !["http://", "https://"].some((scheme) => origin.toLowerCase() === `${scheme}${host.toLowerCase()}`)) {
    return "it is answered only to the page of this origin (the Origin header must be this service's)";
  }
  const site = request.headers["sec-fetch-site"];
  if (site !== undefined && site !== "same-origin") return "it is answered only to a same-origin request";
  return undefined;
}

export type PageDeps = {
  /** The service's public address: its host is one the local sign-in answers for, and the page is told it. */
  publicUrl: string;
  /** Mints a token for the local user; set only when signing in without one is allowed (every connector on its sandbox). */
  localSignIn?: { userId: string; mint(): Promise<string> };
  /** Whether the operator view has a token configured (the admin page says how to turn it on otherwise). */
  operatorView: boolean;
};

export function registerPageRoutes(app: FastifyInstance, deps: PageDeps): void {
  const folder = fileURLToPath(new URL("./page/", import.meta.url));
  const publicHost = new URL(deps.publicUrl).host.toLowerCase();
  // Read once at start: a few kilobytes, and a missing file fails the start rather than a request.
  for (const [path, asset] of Object.entries(ASSETS)) {
    const body = readFileSync(folder + asset.file);
    app.get(path, { config: { rateLimit: false } }, async (_request, reply) => send(reply, asset.type, body));
  }

  // What the page needs to know before anyone signs in. Nothing secret.
  app.get("/ui/config", async (_request, reply) => {
    reply.headers(PAGE_HEADERS).header("cache-control", "no-store");
    return { localSignIn: deps.localSignIn ? { userId: deps.localSignIn.userId } : null, operatorView: deps.operatorView, publicUrl: deps.publicUrl };
  });

  app.post("/ui/local-token", async (request, reply) => {
    reply.headers(PAGE_HEADERS).header("cache-control", "no-store");
    if (!deps.localSignIn) {
      throw new IntegrationError({
        type: "auth",
        code: ErrorCodes.LOCAL_SIGN_IN_OFF,
        message: "signing in as the local user is offered only when every connector runs on its sandbox; paste a user JWT instead",
      });
    }
    const why = notLocal(request, publicHost);
    if (why) throw new IntegrationError({ type: "auth", code: ErrorCodes.LOCAL_SIGN_IN_OFF, message: `signing in as the local user: ${why}; paste a user JWT instead` });
    return { token: await deps.localSignIn.mint(), userId: deps.localSignIn.userId };
  });
}

function send(reply: FastifyReply, type: string, body: Buffer): FastifyReply {
  // HTML is never cached (it names the current script); the script and style are revalidated.
  return reply
    .headers(PAGE_HEADERS)
    .header("content-type", type)
    .header("cache-control", type.startsWith("text/html") ? "no-store" : "no-cache")
    .send(body);
}
