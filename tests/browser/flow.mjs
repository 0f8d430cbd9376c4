#!/usr/bin/env node
// Drives Warden's real login and consent pages in headless Chromium (Playwright, Debian's
// /usr/bin/chromium) against a running `warden serve --role provider`, as a person would:
// the authorization code flow with PKCE S256 up to the client's redirect URI, a denied
// consent, the keyboard, and axe-core on every page. Saves a screenshot of each page.
//
// Started by tests/browser/run.sh, which runs the provider (scripts/provider.sh), creates the
// user and passes:
//   --warden BIN      the warden binary (this script creates the client with its CLI; the
//                     data dir comes from the inherited WARDEN_DATA_DIR)
//   --issuer URL      the provider's issuer (http://127.0.0.1:PORT)
//   --username U --password P   a user run.sh created (signs in and allows)
//   --other-username U2         a second one with the same password (denies)
//   --out DIR         where the screenshots go (TARGET/browser)
//
// Prints one line per check (`ok`/`FAIL`) and `N passed, M failed` last; exits 1 on any failure.

import { chromium } from 'playwright-core';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const TIMEOUT_MS = 15_000;
const SCOPE = 'openid profile email';
// What the consent page must say for each scope (src/oauth/interaction/mod.rs).
const SCOPE_WORDS = {
  openid: 'Confirm who you are',
  profile: 'See your name and basic profile',
  email: 'See your email address',
};
const BAD_LOGIN = 'The username or password is not right.';
const VIEWPORT = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

// --- checks ---------------------------------------------------------------------------

class Abort extends Error {}

const tally = { passed: 0, failed: 0, skipped: 0 };

function check(name, ok, detail = '', { fatal = false } = {}) {
  if (ok) {
    tally.passed += 1;
    console.log(`ok    ${name}`);
  } else {
    tally.failed += 1;
    console.log(`FAIL  ${name}: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`);
  }
  if (!ok && fatal) throw new Abort(name);
  return ok;
}

function skip(name, why) {
  tally.skipped += 1;
  console.log(`skip  ${name}: ${why}`);
}

/** Runs one independent group of checks; an abort or surprise ends only that group. */
async function section(title, fn) {
  console.log(`--- ${title}`);
  try {
    await fn();
  } catch (e) {
    if (e instanceof Abort) {
      console.log(`      (${title}: skipping the rest of this section after '${e.message}' failed)`);
    } else {
      console.log(e && e.stack ? e.stack : String(e));
      check(`${title}: no unexpected exception`, false, 'see the stack above');
    }
  }
}

// --- the client: PKCE, the authorization URL, the callback server -----------------------

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/** A fresh authorization request: PKCE S256 (RFC 7636 §4.1-4.2), state and nonce. */
function newRequest(issuer, clientId, redirectUri, extra = {}) {
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash('sha256').update(verifier, 'ascii').digest());
  // Printable ASCII that needs escaping in a query: echoed byte for byte (RFC 6749 §4.1.2).
  const state = `s ${b64url(randomBytes(9))}+/=&?%~"'`;
  const nonce = b64url(randomBytes(16));
  const url = new URL(`${issuer}/authorize`);
  for (const [k, v] of Object.entries({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    scope: SCOPE,
    state,
    nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...extra,
  })) url.searchParams.set(k, v);
  return { url: url.toString(), verifier, state, nonce };
}

/** The client's redirect endpoint: records each request's query, answers a small page. */
async function startCallbackServer() {
  const received = [];
  const waiters = [];
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const ours = url.pathname === '/cb' || url.pathname === '/bye';
    if (ours) {
      // The query (response_mode query), or a form's body (form_post); `method` and `path`
      // say which, and where (/cb: authorization responses, /bye: after signing out).
      let body = '';
      for await (const chunk of req) body += chunk;
      const params = req.method === 'POST' ? new URLSearchParams(body) : url.searchParams;
      params.method = req.method;
      params.path = url.pathname;
      const w = waiters.shift();
      if (w) w(params); else received.push(params);
    }
    res.writeHead(ours ? 200 : 404, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><html lang="en"><title>Photo App</title><main><h1>Back at Photo App</h1></main></html>');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    redirectUri: `http://127.0.0.1:${server.address().port}/cb`,
    postLogoutUri: `http://127.0.0.1:${server.address().port}/bye`,
    /** The next callback's parameters (a URLSearchParams); rejects after TIMEOUT_MS. */
    next: () => {
      if (received.length) return Promise.resolve(received.shift());
      const p = new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(done), 1);
          reject(new Error(`no request reached the client within ${TIMEOUT_MS} ms`));
        }, TIMEOUT_MS);
        const done = (params) => { clearTimeout(timer); resolve(params); };
        waiters.push(done);
      });
      p.catch(() => {}); // a section that gave up first never awaits it: not a crash
      return p;
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

async function createClient(warden, redirectUri, postLogoutUri) {
  const { stdout } = await promisify(execFile)(warden, [
    'client', 'create', '--name', 'Photo App', '--redirect-uri', redirectUri, '--post-logout-redirect-uri', postLogoutUri,
    '--auth-method', 'none', '--grant-type', 'authorization_code', '--scope', SCOPE, '--json',
  ]);
  return JSON.parse(stdout);
}

/**
 * The token request of the code flow (RFC 6749 §4.1.3 with the PKCE verifier, RFC 7636 §4.5):
 * the step after the callback. Runs once the provider advertises the `authorization_code`
 * grant in its metadata; until then it is reported as skipped.
 */
async function exchangeCode(ctx, { code, verifier, nonce }) {
  const { issuer, clientId, redirectUri, metadata } = ctx;
  if (!(metadata.grant_types_supported || []).includes('authorization_code')) {
    skip('token exchange', 'the provider does not advertise the authorization_code grant yet');
    return;
  }
  const resp = await fetch(metadata.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, client_id: clientId, code_verifier: verifier }),
  });
  const body = await resp.json().catch(() => ({}));
  check('token exchange: 200 with an access token and an ID token', resp.status === 200 && body.access_token && body.id_token, { status: resp.status, body }, { fatal: true });
  const idToken = JSON.parse(Buffer.from(body.id_token.split('.')[1], 'base64url').toString());
  check('token exchange: the ID token names the issuer, the client and the nonce',
    idToken.iss === issuer && [].concat(idToken.aud).includes(clientId) && idToken.nonce === nonce, idToken);
}

// --- page helpers -------------------------------------------------------------------------

/** Console errors and uncaught exceptions of a page, collected as they happen. */
function watchConsole(page) {
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`${m.text()} (${m.location().url})`); });
  page.on('pageerror', (e) => errors.push(String(e)));
  return errors;
}

function checkHeaders(what, resp) {
  const h = resp ? resp.headers() : {};
  const csp = h['content-security-policy'] || '';
  check(`${what}: Content-Security-Policy with frame-ancestors 'none'`, csp.includes("frame-ancestors 'none'"), csp || 'no CSP header');
  check(`${what}: X-Frame-Options DENY`, (h['x-frame-options'] || '').toUpperCase() === 'DENY', h['x-frame-options'] || 'missing');
}

function checkNoConsoleErrors(what, errors) {
  check(`${what}: no console errors`, errors.length === 0, errors);
  errors.length = 0;
}

const focused = (page) => page.evaluate(() => {
  const e = document.activeElement;
  return e ? (e.id || `${e.tagName.toLowerCase()}:${(e.textContent || '').trim()}`) : null;
});

/** Screenshots `name`.png at the desktop size and `name`-phone.png at a phone's. */
async function shot(ctx, page, name) {
  const desktop = page.viewportSize();
  for (const [file, size] of [[`${name}.png`, desktop], [`${name}-phone.png`, PHONE]]) {
    await page.setViewportSize(size);
    await page.screenshot({ path: join(ctx.out, file), fullPage: true });
  }
  await page.setViewportSize(desktop);
  console.log(`      screenshots ${join(ctx.out, name)}{,-phone}.png`);
}

/** Submits the login form by clicking its button; the response of the POST. */
async function submitLogin(page, username, password) {
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  const [resp] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname.endsWith('/login')),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  await page.waitForLoadState();
  return resp;
}

/** Waits for the browser to reach the client's redirect URI; that request's parameters. */
async function arriveAtClient(ctx, page, errors, what, at = ctx.redirectUri) {
  const callback = ctx.callbacks.next();
  await page.getByRole('button', { name: what }).click();
  const arrived = await page.waitForURL((u) => u.toString().startsWith(at)).then(() => true, () => false);
  check(`${what}: the browser arrives at the client's redirect URI`, arrived, { at: page.url(), console: errors }, { fatal: true });
  return callback;
}

/** A fresh browser profile (own cookies); every wait in it is bounded by TIMEOUT_MS. */
async function newContext(browser, options) {
  const context = await browser.newContext(options);
  context.setDefaultTimeout(TIMEOUT_MS);
  context.setDefaultNavigationTimeout(TIMEOUT_MS);
  return context;
}

// --- the flows ------------------------------------------------------------------------------

/** Sign in (after a wrong password and an unknown user), consent, and the code at the client. */
async function allowFlow(ctx, browser) {
  const context = await newContext(browser, { viewport: VIEWPORT, colorScheme: 'light' });
  const page = await context.newPage();
  const errors = watchConsole(page);
  try {
    const req = newRequest(ctx.issuer, ctx.clientId, ctx.redirectUri);
    const resp = await page.goto(req.url);
    check('login page: 200 at /interaction/…', resp && resp.status() === 200 && new URL(page.url()).pathname.includes('/interaction/'), page.url(), { fatal: true });
    checkHeaders('login page', resp);
    const title = await page.title();
    check('login page: title "Sign in · …"', title.startsWith('Sign in'), title);
    check('login page: a "Sign in" heading', await page.getByRole('heading', { name: 'Sign in' }).isVisible());
    check('login page: names the app', (await page.locator('main').innerText()).includes('Photo App'));
    const user = page.getByLabel('Username');
    const pass = page.getByLabel('Password');
    check('login page: a labelled username input', (await user.count()) === 1 && (await user.getAttribute('autocomplete')) === 'username', await user.count());
    check('login page: a labelled password input', (await pass.count()) === 1 && (await pass.getAttribute('type')) === 'password', await pass.count());
    await shot(ctx, page, 'login');
    checkNoConsoleErrors('login page', errors);

    const wrong = await submitLogin(page, ctx.username, 'not the password at all');
    const wrongText = await page.getByRole('alert').innerText();
    check('wrong password: the login page again with an alert', wrongText.trim() === BAD_LOGIN, wrongText);
    check('wrong password: the username is kept, the password is not', (await user.inputValue()) === ctx.username && (await pass.inputValue()) === '');
    check('wrong password: the password is not in the page', !(await page.content()).includes('not the password at all'));
    await shot(ctx, page, 'login-error');
    checkNoConsoleErrors('login page with an error', errors);
    const unknown = await submitLogin(page, 'nobody-here', 'not the password at all');
    const unknownText = await page.getByRole('alert').innerText();
    check('unknown user: the same status and message as a wrong password',
      unknown.status() === wrong.status() && unknownText === wrongText, { wrong: [wrong.status(), wrongText], unknown: [unknown.status(), unknownText] });

    await submitLogin(page, ctx.username, ctx.password);
    const heading = page.getByRole('heading', { level: 1 });
    check('consent page: after signing in', (await heading.innerText()) === 'Photo App wants to access your account', await heading.innerText(), { fatal: true });
    const consentResp = await page.reload();
    checkHeaders('consent page', consentResp);
    check('consent page: title "Allow access · …"', (await page.title()).startsWith('Allow access'), await page.title());
    const items = (await page.locator('ul.scopes li').allInnerTexts()).map((s) => s.trim());
    for (const [scope, words] of Object.entries(SCOPE_WORDS)) {
      check(`consent page: scope ${scope} in words`, items.some((i) => i.startsWith(words)), items);
    }
    check('consent page: no bare scope names', !items.some((i) => Object.keys(SCOPE_WORDS).includes(i)), items);
    check('consent page: says who is signed in', (await page.locator('main').innerText()).includes(`Signed in as ${ctx.username}`));
    await shot(ctx, page, 'consent');
    checkNoConsoleErrors('consent page', errors);

    const q = await arriveAtClient(ctx, page, errors, 'Allow');
    const code = q.get('code') || '';
    check('allow: the client gets a code in the query', q.method === 'GET' && code.length >= 20 && !q.has('error'), Object.fromEntries(q));
    check('allow: state byte for byte', q.get('state') === req.state, { sent: req.state, got: q.get('state') });
    check('allow: iss is the issuer (RFC 9207)', q.get('iss') === ctx.issuer, q.get('iss'));
    checkNoConsoleErrors('allow', errors);

    await exchangeCode(ctx, { code, verifier: req.verifier, nonce: req.nonce });
    await signInAgain(ctx, context.browser());
  } finally {
    await context.close();
  }
}

/** The same user in another browser: consent is remembered, so the login form's 303 goes
 * straight to the client (a redirect the login page's CSP must allow). */
async function signInAgain(ctx, browser) {
  const context = await newContext(browser, { viewport: VIEWPORT, colorScheme: 'light' });
  const page = await context.newPage();
  const errors = watchConsole(page);
  try {
    const req = newRequest(ctx.issuer, ctx.clientId, ctx.redirectUri);
    await page.goto(req.url);
    const callback = ctx.callbacks.next();
    await page.getByLabel('Username').fill(ctx.username);
    await page.getByLabel('Password').fill(ctx.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const arrived = await page.waitForURL((u) => u.toString().startsWith(ctx.redirectUri)).then(() => true, () => false);
    check('remembered consent: signing in leads straight back to the client', arrived, { at: page.url(), console: errors }, { fatal: true });
    const q = await callback;
    check('remembered consent: a code, state and iss', (q.get('code') || '').length >= 20 && q.get('state') === req.state && q.get('iss') === ctx.issuer, Object.fromEntries(q));
    checkNoConsoleErrors('remembered consent', errors);
  } finally {
    await context.close();
  }
}

/** Another person signs in with the keyboard alone and denies: access_denied at the client. */
async function denyFlow(ctx, browser) {
  const context = await newContext(browser, { viewport: VIEWPORT, colorScheme: 'light' });
  const page = await context.newPage();
  const errors = watchConsole(page);
  try {
    const req = newRequest(ctx.issuer, ctx.clientId, ctx.redirectUri);
    await page.goto(req.url);
    check('keyboard: the username field has focus on load', (await focused(page)) === 'username', await focused(page));
    await page.keyboard.type(ctx.otherUsername);
    await page.keyboard.press('Tab');
    check('keyboard: Tab goes to the password', (await focused(page)) === 'password', await focused(page));
    await page.keyboard.type(ctx.password);
    await page.keyboard.press('Tab');
    check('keyboard: then to the Sign in button', (await focused(page)) === 'button:Sign in', await focused(page));
    await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname.endsWith('/login')),
      page.keyboard.press('Enter'),
    ]);
    await page.waitForLoadState();
    const heading = await page.getByRole('heading', { level: 1 }).innerText();
    check('keyboard: Enter signs in (the consent page)', heading === 'Photo App wants to access your account', heading, { fatal: true });

    const q = await arriveAtClient(ctx, page, errors, 'Deny');
    check('deny: error=access_denied and no code', q.get('error') === 'access_denied' && !q.has('code'), Object.fromEntries(q));
    check('deny: state byte for byte', q.get('state') === req.state, { sent: req.state, got: q.get('state') });
    check('deny: iss is the issuer', q.get('iss') === ctx.issuer, q.get('iss'));
    checkNoConsoleErrors('deny', errors);
  } finally {
    await context.close();
  }
}

/**
 * response_mode=form_post (OAuth 2.0 Form Post Response Mode): the page that carries the code
 * submits itself with its one script, allowed by hash in its CSP; a real browser runs it.
 */
async function formPostFlow(ctx, browser) {
  const context = await newContext(browser, { viewport: VIEWPORT, colorScheme: 'light' });
  const page = await context.newPage();
  const errors = watchConsole(page);
  try {
    const req = newRequest(ctx.issuer, ctx.clientId, ctx.redirectUri, { response_mode: 'form_post', prompt: 'consent' });
    await page.goto(req.url);
    await submitLogin(page, ctx.username, ctx.password);
    const q = await arriveAtClient(ctx, page, errors, 'Allow');
    check('form_post: the code arrives in a POST body', q.method === 'POST' && (q.get('code') || '').length >= 20, { method: q.method, ...Object.fromEntries(q) });
    check('form_post: state and iss', q.get('state') === req.state && q.get('iss') === ctx.issuer, Object.fromEntries(q));
    checkNoConsoleErrors('form_post', errors);
  } finally {
    await context.close();
  }
}

function logoutUrl(ctx, state) {
  const url = new URL(`${ctx.issuer}/logout`);
  url.searchParams.set('client_id', ctx.clientId);
  url.searchParams.set('post_logout_redirect_uri', ctx.postLogoutUri);
  url.searchParams.set('state', state);
  return url.toString();
}

/**
 * RP-Initiated Logout: signed in, the app sends the browser to the end-session endpoint; the
 * confirmation page, then back at the app's post-logout URI with its state, signed out.
 */
async function logoutFlow(ctx, browser) {
  const context = await newContext(browser, { viewport: VIEWPORT, colorScheme: 'light' });
  const page = await context.newPage();
  const errors = watchConsole(page);
  try {
    await page.goto(newRequest(ctx.issuer, ctx.clientId, ctx.redirectUri).url);
    const signedIn = ctx.callbacks.next();
    await submitLogin(page, ctx.username, ctx.password);
    check('logout: signed in (consent remembered)', (await signedIn).has('code'), page.url(), { fatal: true });

    const state = `bye ${b64url(randomBytes(6))}&=?`;
    const resp = await page.goto(logoutUrl(ctx, state));
    check('logout page: 200 "Sign out?"', resp.status() === 200 && (await page.getByRole('heading', { level: 1 }).innerText()) === 'Sign out?', resp.status(), { fatal: true });
    checkHeaders('logout page', resp);
    check('logout page: names the user and the app', /alice.*Photo App/s.test(await page.locator('main').innerText()));
    await shot(ctx, page, 'logout');
    checkNoConsoleErrors('logout page', errors);

    const q = await arriveAtClient(ctx, page, errors, 'Sign out', ctx.postLogoutUri);
    check('logout: back at the post-logout URI with the state', q.path === '/bye' && q.get('state') === state, { path: q.path, ...Object.fromEntries(q) });
    checkNoConsoleErrors('logout', errors);

    const silent = newRequest(ctx.issuer, ctx.clientId, ctx.redirectUri, { prompt: 'none' });
    const after = ctx.callbacks.next();
    await page.goto(silent.url);
    const a = await after;
    check('logout: then prompt=none is login_required', a.get('error') === 'login_required' && a.get('state') === silent.state, Object.fromEntries(a));
  } finally {
    await context.close();
  }
}

/** An error shown by Warden itself (an unknown client: never redirected, RFC 6749 §4.1.2.1). */
async function errorPage(ctx, browser) {
  const context = await newContext(browser, { viewport: VIEWPORT, colorScheme: 'light' });
  const page = await context.newPage();
  const errors = watchConsole(page);
  try {
    const req = newRequest(ctx.issuer, 'no-such-client', ctx.redirectUri);
    const resp = await page.goto(req.url);
    check('error page: 4xx at /authorize, not redirected', resp.status() >= 400 && resp.status() < 500 && new URL(page.url()).pathname === '/authorize', { status: resp.status(), url: page.url() });
    checkHeaders('error page', resp);
    check('error page: an alert with the message', (await page.getByRole('alert').count()) === 1);
    await shot(ctx, page, 'error');
    // Chromium logs the page's own 4xx status as a console error: expected here, nothing else.
    const own = (e) => e.startsWith('Failed to load resource') && e.endsWith(`(${req.url})`);
    checkNoConsoleErrors('error page', errors.filter((e) => !own(e)));
  } finally {
    await context.close();
  }
}

/**
 * axe-core on the login page (plain and with an error), the consent page and the error page,
 * in the light and the dark theme; any serious or critical violation fails. The pages forbid
 * scripts (CSP), so this context bypasses CSP to inject axe and does nothing else.
 */
async function accessibility(ctx, browser) {
  const context = await newContext(browser, { viewport: VIEWPORT, bypassCSP: true });
  const page = await context.newPage();
  const audit = async (what) => {
    for (const colorScheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme });
      await page.addScriptTag({ path: AXE });
      const { passes, violations } = await page.evaluate(async () => {
        const r = await globalThis.axe.run(document, { resultTypes: ['violations'] });
        return {
          passes: r.passes.map((p) => p.id),
          violations: r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')) })),
        };
      });
      // axe really looked: contrast, landmarks, the page's language, and the login form's labels.
      const wanted = ['color-contrast', 'region', 'html-has-lang', ...(what.startsWith('login') ? ['label'] : [])];
      const unchecked = wanted.filter((id) => !passes.includes(id) && !violations.some((v) => v.id === id));
      check(`axe: ${what} (${colorScheme}) checked ${wanted.join(', ')}`, unchecked.length === 0, { unchecked });
      const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      for (const v of violations.filter((x) => !bad.includes(x))) console.log(`      note: ${what} (${colorScheme}): ${v.impact} ${v.id}: ${v.help}`);
      check(`axe: ${what} (${colorScheme}) has no serious or critical violation`, bad.length === 0, bad);
    }
  };
  try {
    // The consent page again for the user who allowed (remembered otherwise).
    const req = newRequest(ctx.issuer, ctx.clientId, ctx.redirectUri, { prompt: 'consent' });
    await page.goto(req.url);
    await audit('login page');
    await submitLogin(page, ctx.username, 'not the password at all');
    await audit('login page with an error');
    await submitLogin(page, ctx.username, ctx.password);
    check('axe: reached the consent page', (await page.title()).startsWith('Allow access'), await page.title(), { fatal: true });
    await audit('consent page');
    const back = ctx.callbacks.next();
    await page.getByRole('button', { name: 'Allow' }).click();
    await back;
    await page.goto(logoutUrl(ctx, 'axe'));
    check('axe: reached the logout page', (await page.title()).startsWith('Sign out'), await page.title(), { fatal: true });
    await audit('logout page');
    await page.goto(newRequest(ctx.issuer, 'no-such-client', ctx.redirectUri).url);
    await audit('error page');
  } finally {
    await context.close();
  }
}

// --- main -----------------------------------------------------------------------------------

async function main() {
  const { values: args } = parseArgs({
    options: {
      warden: { type: 'string' }, issuer: { type: 'string' }, out: { type: 'string' },
      username: { type: 'string' }, password: { type: 'string' }, 'other-username': { type: 'string' },
    },
  });
  for (const k of ['warden', 'issuer', 'out', 'username', 'password', 'other-username']) {
    if (!args[k]) { console.error(`flow.mjs: --${k} is required`); process.exit(2); }
  }
  await mkdir(args.out, { recursive: true });
  const callbacks = await startCallbackServer();
  let browser;
  try {
    const client = await createClient(args.warden, callbacks.redirectUri, callbacks.postLogoutUri);
    // RFC 8414 metadata (served from the start; the OIDC document comes with ID tokens).
    const metaResp = await fetch(`${args.issuer}/.well-known/oauth-authorization-server`);
    check('setup: the provider serves its metadata', metaResp.status === 200, metaResp.status, { fatal: true });
    const metadata = await metaResp.json();
    const ctx = {
      issuer: args.issuer, clientId: client.client_id, redirectUri: callbacks.redirectUri, postLogoutUri: callbacks.postLogoutUri, callbacks, metadata,
      username: args.username, otherUsername: args['other-username'], password: args.password, out: args.out,
    };
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      timeout: 60_000,
    });
    console.log(`browser: ${browser.version()}, issuer ${ctx.issuer}, client ${ctx.clientId}, callback ${ctx.redirectUri}`);
    const fresh = async (fn) => fn(ctx, browser);
    await section('sign in, consent, code', () => fresh(allowFlow));
    await section('keyboard and deny', () => fresh(denyFlow));
    await section('form_post', () => fresh(formPostFlow));
    await section('logout', () => fresh(logoutFlow));
    await section('error page', () => fresh(errorPage));
    await section('accessibility (axe-core)', () => fresh(accessibility));
  } catch (e) {
    console.log(e && e.stack ? e.stack : String(e));
    check('setup: no unexpected exception', false, 'see the stack above');
  } finally {
    if (browser) await browser.close();
    await callbacks.close();
  }
  const skipped = tally.skipped ? `, ${tally.skipped} skipped` : '';
  console.log(`${tally.passed} passed, ${tally.failed} failed${skipped}`);
  process.exit(tally.failed === 0 && tally.passed > 0 ? 0 : 1);
}

// Whatever hangs, the run ends: a failure with the counts so far.
setTimeout(() => {
  check('the whole run ends within 3 minutes', false, 'gave up');
  console.log(`${tally.passed} passed, ${tally.failed} failed`);
  process.exit(1);
}, 180_000).unref();
await main();
