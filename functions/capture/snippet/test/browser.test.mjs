// The snippet in a real headless browser (Debian's chromium, driven by playwright-core), behind a
// CDN-like proxy, against the local gateway: a tracking link records exactly one click with its
// offer, partner, sub id and the browser's user agent; a reload sends nothing new; a page without
// click_id sends nothing. Also checks the snippet's cookie and its minified size (< 2 KB).
//
// Usage: node browser.test.mjs   (TRCKER_LOCAL_BIN: the trcker-local binary; CHROMIUM: the browser)

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { minify } from "terser";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../../../..");
const snippetSource = readFileSync(path.join(here, "..", "trcker.js"), "utf8");
const localBin = process.env.TRCKER_LOCAL_BIN || path.join(root, "target/debug/trcker-local");
const browserPath = process.env.CHROMIUM || "/usr/bin/chromium";
const CAPTURE_PATH = "/trk/capture";
const CDN_ADDRESS = "127.0.0.2";

const results = { passed: 0, failed: 0 };
async function check(name, body) {
  try {
    await body();
    results.passed += 1;
    console.log(`ok - ${name}`);
  } catch (error) {
    results.failed += 1;
    console.log(`not ok - ${name}\n${error.stack}`);
  }
}

/** Starts trcker-local on a free loopback port and resolves with its base URL and demo key. */
function startGateway() {
  return new Promise((resolve, reject) => {
    const child = spawn(localBin, ["--port", "0"], {
      // One trusted hop: the CDN proxy below appends the browser's address to X-Forwarded-For.
      env: { ...process.env, TRCKER_TRUSTED_PROXY_HOPS: "1", RUST_LOG: "warn" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let output = "";
    const timer = setTimeout(() => reject(new Error(`trcker-local did not start:\n${output}`)), 60_000);
    child.on("exit", (code) => reject(new Error(`trcker-local exited with ${code}:\n${output}`)));
    child.stdout.on("data", (chunk) => {
      output += chunk;
      const key = output.match(/^demo key: (tk_\S+)$/m);
      const listening = output.match(/listening on (http:\/\/\S+)/);
      if (key && listening) {
        clearTimeout(timer);
        resolve({ child, base: listening[1], key: key[1] });
      }
    });
  });
}

function listen(server) {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server.address().port)));
}

function readBody(request) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks)));
    request.on("error", reject);
  });
}

/** The brand's site: a landing page that loads the snippet. */
function originServer() {
  return http.createServer((request, response) => {
    const url = new URL(request.url, "http://origin");
    if (url.pathname === "/landing") {
      response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      response.end(`<!doctype html><html><head><title>Summer sale</title>
<script src="/trcker.js" data-endpoint="${CAPTURE_PATH}" data-offer="summer-sale" async></script>
</head><body><h1>Summer sale</h1></body></html>`);
    } else if (url.pathname === "/trcker.js") {
      response.writeHead(200, { "content-type": "text/javascript; charset=utf-8" });
      response.end(snippetSource);
    } else {
      response.writeHead(404);
      response.end();
    }
  });
}

/**
 * The brand's CDN: the site under one origin, and the capture path forwarded to the gateway with
 * Authorization stripped, the key added as x-api-key and the browser's address appended to
 * X-Forwarded-For. Counts the captures it forwards.
 */
function cdnProxy({ originPort, gateway, key, forwarded }) {
  return http.createServer(async (request, response) => {
    const body = await readBody(request);
    const url = new URL(request.url, "http://cdn");
    const toCapture = url.pathname === CAPTURE_PATH;
    const target = toCapture
      ? new URL("/api/clicks/capture", gateway.base)
      : new URL(url.pathname + url.search, `http://127.0.0.1:${originPort}`);
    const headers = { ...request.headers };
    delete headers.host;
    if (toCapture) {
      delete headers.authorization;
      delete headers.cookie;
      headers["x-api-key"] = key;
      const client = request.socket.remoteAddress.replace(/^::ffff:/, "");
      headers["x-forwarded-for"] = headers["x-forwarded-for"]
        ? `${headers["x-forwarded-for"]}, ${client}`
        : client;
      forwarded.push({ headers: request.headers, body: body.toString("utf8") });
    }
    // The CDN reaches the gateway from its own address (127.0.0.2), as a real edge would, so the
    // gateway can only learn the browser's address (127.0.0.1) from X-Forwarded-For.
    const options = { method: request.method, headers, localAddress: toCapture ? CDN_ADDRESS : undefined };
    const upstream = http.request(target, options, (reply) => {
      response.writeHead(reply.statusCode, reply.headers);
      reply.pipe(response);
      if (toCapture) reply.on("end", () => forwarded.at(-1) && (forwarded.at(-1).status = reply.statusCode));
    });
    upstream.on("error", (error) => {
      response.writeHead(502);
      response.end(String(error));
    });
    upstream.end(body);
  });
}

async function api(gateway, pathAndQuery) {
  const response = await fetch(new URL(pathAndQuery, gateway.base), {
    headers: { authorization: `Bearer ${gateway.key}` },
  });
  return { status: response.status, body: await response.json() };
}

async function waitFor(what, predicate, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** What the page's scripts could still send: wait until the network is idle, then a little more. */
async function settle(page) {
  await page.waitForLoadState("networkidle");
  await new Promise((resolve) => setTimeout(resolve, 500));
}

const gateway = await startGateway();
const forwarded = [];
const origin = originServer();
const originPort = await listen(origin);
const cdn = cdnProxy({ originPort, gateway, key: gateway.key, forwarded });
const cdnPort = await listen(cdn);
const site = `http://127.0.0.1:${cdnPort}`;
const browser = await chromium.launch({
  executablePath: browserPath,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

try {
  const context = await browser.newContext();
  const page = await context.newPage();
  const userAgent = await page.evaluate(() => navigator.userAgent);

  await check("a tracking link records exactly one click with its offer, partner, sub1 and UA", async () => {
    await page.goto(`${site}/landing?click_id=abc&via=alice-media&sub1=x`);
    const click = await waitFor("click abc", async () => {
      const response = await api(gateway, "/api/public/clicks/abc");
      return response.status === 200 ? response.body : null;
    });
    const offers = (await api(gateway, "/api/public/offers?limit=100")).body.data;
    const partners = (await api(gateway, "/api/public/partners?limit=100")).body.data;
    assert.equal(click.offer_id, offers.find((offer) => offer.slug === "summer-sale").id);
    assert.equal(click.partner_id, partners.find((partner) => partner.slug === "alice-media").id);
    assert.equal(click.sub1, "x");
    assert.equal(click.user_agent, userAgent);
    assert.equal(click.source_ip, "127.0.0.1", "the browser behind the CDN, not the CDN");
    assert.match(click.landing_url, /\/landing\?click_id=abc/);
    await settle(page);
    assert.equal(forwarded.length, 1, "one capture went through the CDN");
    assert.equal(forwarded[0].status, 201);
    assert.equal(forwarded[0].headers.authorization, undefined, "the browser sent no key");
    assert.equal(forwarded[0].headers["x-api-key"], undefined, "the key was added at the CDN");
  });

  await check("the click id is kept in a 30-day first-party SameSite=Lax cookie", async () => {
    const cookie = (await context.cookies(site)).find((c) => c.name === "trk_click_id");
    assert.ok(cookie, "trk_click_id is set");
    assert.equal(cookie.value, "abc");
    assert.equal(cookie.sameSite, "Lax");
    assert.equal(cookie.secure, false, "Secure is only added on https pages");
    const days = (cookie.expires * 1000 - Date.now()) / 86_400_000;
    assert.ok(days > 29.9 && days <= 30, `expires in ${days} days`);
  });

  await check("a reload sends nothing and the brand still has one click abc", async () => {
    await page.reload();
    await settle(page);
    assert.equal(forwarded.length, 1, "no second capture");
    const clicks = (await api(gateway, "/api/public/clicks?limit=100")).body.data;
    assert.equal(clicks.filter((click) => click.click_id === "abc").length, 1);
  });

  await check("a page without click_id sends nothing", async () => {
    const fresh = await browser.newContext();
    const other = await fresh.newPage();
    await other.goto(`${site}/landing?via=alice-media`);
    await settle(other);
    assert.equal(forwarded.length, 1);
    assert.equal((await fresh.cookies(site)).length, 0, "no cookie either");
    await fresh.close();
  });

  await check("the capture is in the brand's activity log with the browser's user agent", async () => {
    const activity = (await api(gateway, "/api/public/activity?source=capture&limit=10")).body.data;
    const captures = activity.filter((record) => record.target === "/api/clicks/capture");
    assert.equal(captures.length, 1);
    assert.equal(captures[0].status, 201);
    assert.equal(captures[0].user_agent, userAgent);
    assert.match(captures[0].fingerprint, /^fp_[0-9a-f]{12}$/);
    assert.equal(captures[0].source_ip, "127.0.0.1");
  });

  await check("the snippet is under 2 KB minified", async () => {
    const minified = await minify(snippetSource, { compress: true, mangle: true });
    const bytes = Buffer.byteLength(minified.code, "utf8");
    console.log(`# snippet: ${Buffer.byteLength(snippetSource)} bytes source, ${bytes} bytes minified`);
    assert.ok(bytes < 2048, `${bytes} bytes`);
  });
} finally {
  await browser.close();
  cdn.close();
  origin.close();
  gateway.child.removeAllListeners("exit");
  gateway.child.kill();
}

// The same summary line cargo prints, so the test script counts these with the rest.
console.log(
  `test result: ${results.failed ? "FAILED" : "ok"}. ${results.passed} passed; ${results.failed} failed; (browser)`,
);
process.exit(results.failed ? 1 : 0);
