// The web app at BASE/, end to end in three tabs of one browser: a sign-in in
// one tab reaches the others, a reminder is shown as exactly one browser
// notification on time, changes reach the other tabs live, and every tab
// reconnects by itself when the API restarts. The bounds are generous: how
// fast is measured by `./dev bench live`, not here, where the suite shares
// two cores with everything else.
//   node app.mjs http://127.0.0.1:PORT
// Halfway it prints `RESTART-API` and waits for a line on stdin: whoever runs
// it restarts the API on the same port, then writes `restarted`.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { launch, fail } from './browser.mjs';

const base = process.argv[2] || fail('usage: node app.mjs BASE_URL');
const artifacts = process.env.ARTIFACT_DIR || '../../target/browser-artifacts';
/** How soon a change must show in another tab, and a notification after its time. */
const LIVE_MS = 3000;
/** How soon every tab must be live again after the API is back. */
const RECONNECT_MS = 10000;
/** What the restart may leave in the console: connections refused while the API is down. */
const RESTART_NOISE = new RegExp(
  "^console error: (WebSocket connection to '[^']*/graphql/ws' failed" +
    '|Failed to load resource: net::ERR_(CONNECTION_REFUSED|CONNECTION_RESET|EMPTY_RESPONSE))',
);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** Runs in every page before its own scripts: records each notification constructed. */
function recordNotifications() {
  const Native = window.Notification;
  window.__notifications = [];
  if (!Native) return;
  window.Notification = class Recorded extends Native {
    static get permission() {
      return Native.permission;
    }
    static requestPermission(...args) {
      return Native.requestPermission(...args);
    }
    constructor(title, options) {
      super(title, options);
      window.__notifications.push({ title, tag: options?.tag ?? '', at: Date.now() });
    }
  };
}

/**
 * Polls `probe` every 20 ms until it answers `{ ok: true }`; returns the ms
 * since `since`. Past `since + ms`, fails with `expected` and what was seen last.
 */
async function within(since, ms, expected, probe) {
  for (;;) {
    const { ok, seen } = await probe();
    const elapsed = Date.now() - since;
    if (ok) return elapsed;
    if (elapsed > ms) fail(`expected ${expected} within ${ms} ms; after ${elapsed} ms saw ${seen}`);
    await sleep(20);
  }
}

/** One tab's view of itself and of the task titled `title`. */
function glance(page, title) {
  return page.evaluate((wanted) => {
    const text = (id) => document.querySelector(`[data-testid="${id}"]`).textContent.trim();
    const row = [...document.querySelectorAll('[data-testid="task"]')].find(
      (item) => item.querySelector('[data-testid="task-title"]').textContent === wanted,
    );
    return {
      connection: text('connection'),
      error: text('error'),
      unread: Number(text('unread-badge')),
      notifier: document.body.dataset.notifier === 'true',
      permission: window.Notification?.permission,
      taskId: row?.dataset.taskId ?? null,
      status: row?.dataset.status ?? 'absent',
    };
  }, title ?? null);
}

function describe(views, detail = (v) => `task ${v.status}`) {
  return views
    .map((v, i) => {
      const error = v.error ? `, error "${v.error}"` : '';
      return `tab ${i + 1}: ${v.connection}, ${detail(v, i)}${error}`;
    })
    .join('; ');
}

/** The next line on stdin, or null if none comes within `ms`. */
function nextLine(ms) {
  return new Promise((resolve) => {
    const lines = createInterface({ input: process.stdin });
    let settled = false;
    const settle = (line) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      lines.close();
      resolve(line);
    };
    const timer = setTimeout(() => settle(null), ms);
    lines.once('line', settle);
    lines.once('close', () => settle(null));
  });
}

/** The next whole second at least `ms` ahead, and that instant as a datetime-local value. */
function secondsAhead(page, ms) {
  return page.evaluate((ahead) => {
    const at = Math.ceil((Date.now() + ahead) / 1000) * 1000;
    const d = new Date(at);
    const two = (n) => String(n).padStart(2, '0');
    const day = `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;
    // The input normalises `:00` seconds away, and Playwright checks the value reads back.
    const second = d.getSeconds() ? `:${two(d.getSeconds())}` : '';
    return { at, value: `${day}T${two(d.getHours())}:${two(d.getMinutes())}${second}` };
  }, ms);
}

/** Fills the create form of `page` and clicks Add; returns when it clicked. */
async function createTask(page, title, remindAt) {
  // A tab in the background barely renders, so clicks in it wait on animation frames.
  await page.bringToFront();
  await page.getByTestId('new-title').fill(title);
  if (remindAt) await page.getByTestId('new-remind-at').fill(remindAt);
  const clicked = Date.now();
  await page.getByTestId('create').click();
  return clicked;
}

const { browser, context, offsite, problems } = await launch();
let summary;
try {
  await context.grantPermissions(['notifications'], { origin: base });
  await context.addInitScript(recordNotifications);
  const tabs = [];
  const sockets = []; // WebSockets each tab has opened
  for (let i = 0; i < 3; i += 1) {
    const page = await context.newPage();
    sockets.push(0);
    page.on('websocket', () => {
      sockets[i] += 1;
    });
    const response = await page.goto(base);
    if (response.status() !== 200) fail(`GET / in tab ${i + 1} answered ${response.status()}`);
    tabs.push(page);
  }
  const [first, second] = tabs;
  const all = (title) => Promise.all(tabs.map((page) => glance(page, title)));

  // Sign in in one tab; the other two follow through localStorage.
  const user = `e2e-${Date.now()}`;
  await first.getByTestId('sign-in-name').fill(user);
  const signedIn = Date.now();
  await first.getByTestId('sign-in').click();
  await within(signedIn, RECONNECT_MS, 'every tab "live" after signing in', async () => {
    const views = await all();
    return { ok: views.every((v) => v.connection === 'live'), seen: describe(views) };
  });
  const opened = await all();
  opened.forEach((v, i) => {
    if (v.permission !== 'granted') {
      fail(`tab ${i + 1}: Notification.permission is ${v.permission}, expected granted`);
    }
  });
  const notifiers = opened.filter((v) => v.notifier).length;
  if (notifiers !== 1) fail(`expected exactly one tab to hold the notifier lock, ${notifiers} do`);
  console.log(`signed in as ${user}; 3 tabs live`);

  // A task with a reminder two seconds ahead, at a whole second (the input's precision).
  const reminded = `e2e reminder ${Date.now()}`;
  const remind = await secondsAhead(first, 2000);
  const created = await createTask(first, reminded, remind.value);
  const createdSeen = await within(created, LIVE_MS, `"${reminded}" in tabs 2 and 3`, async () => {
    const views = await all(reminded);
    return { ok: views.slice(1).every((v) => v.status === 'OPEN'), seen: describe(views) };
  });
  const remindIso = new Date(remind.at).toISOString();
  console.log(`created "${reminded}" to remind at ${remindIso}; in tabs 2, 3 in ${createdSeen} ms`);

  await sleep(remind.at + 1500 - Date.now());
  const recorded = await Promise.all(tabs.map((tab) => tab.evaluate(() => window.__notifications)));
  const shown = recorded
    .flatMap((list, i) => list.map((n) => ({ ...n, tab: i + 1 })))
    .filter((n) => n.title === reminded);
  if (shown.length !== 1) {
    fail(
      `expected exactly one browser notification "${reminded}" across the tabs by 1.5 s ` +
        `after ${remindIso}; saw ${shown.length}: ${JSON.stringify(shown)}`,
    );
  }
  const late = shown[0].at - remind.at;
  if (late < -50 || late > LIVE_MS) {
    fail(`the notification came ${late} ms after its time; expected -50 to ${LIVE_MS} ms`);
  }
  if (!shown[0].tag) fail('the notification has no tag, so a second one could show beside it');
  // Every tab counts it unread; the tabs that did not show it hear of it on
  // their own sockets, which a loaded machine may delay past LIVE_MS.
  await within(Date.now(), RECONNECT_MS, 'an unread badge of at least 1 in every tab', async () => {
    const views = await all();
    return { ok: views.every((v) => v.unread >= 1), seen: describe(views, (v) => `${v.unread}`) };
  });
  console.log(`notification shown once, by tab ${shown[0].tab}, ${late} ms after its time`);

  // Completing in one tab shows in another.
  const { taskId } = await glance(first, reminded);
  await first.bringToFront();
  const completed = Date.now();
  await first.locator(`[data-task-id="${taskId}"] [data-testid="task-complete"]`).click();
  const completedSeen = await within(completed, LIVE_MS, 'it completed in tab 2', async () => {
    const views = await all(reminded);
    return { ok: views[1].status === 'COMPLETED', seen: describe(views) };
  });
  console.log(`completed in tab 1; tab 2 saw it after ${completedSeen} ms`);

  // The page offers to undo it for a few seconds; undone, every tab shows it open.
  const undone = Date.now();
  await first.locator('[data-testid="undo-button"]').click();
  const undoneSeen = await within(undone, LIVE_MS, 'it open again in tabs 1 and 2', async () => {
    const views = await all(reminded);
    return { ok: views[0].status === 'OPEN' && views[1].status === 'OPEN', seen: describe(views) };
  });
  console.log(`undone in tab 1; both tabs saw it open after ${undoneSeen} ms`);

  // The API restarts; every tab must come back by itself, on a new WebSocket.
  const quietFrom = problems.length;
  const socketsBefore = [...sockets];
  console.log('RESTART-API');
  const answer = await nextLine(120000);
  if (answer?.trim() !== 'restarted') {
    fail(`expected "restarted" on stdin, got ${JSON.stringify(answer)}`);
  }
  const restarted = Date.now();
  const newSockets = (v, i) => `${sockets[i] - socketsBefore[i]} new sockets`;
  const reconnected = await within(restarted, RECONNECT_MS, 'every tab live again', async () => {
    const views = await all();
    const back = views.every((v, i) => v.connection === 'live' && sockets[i] > socketsBefore[i]);
    return { ok: back, seen: describe(views, newSockets) };
  });
  const after = `e2e after restart ${Date.now()}`;
  const createdAfter = await createTask(second, after);
  const afterSeen = await within(createdAfter, LIVE_MS, `"${after}" in tab 3`, async () => {
    const views = await all(after);
    return { ok: views[2].status === 'OPEN', seen: describe(views) };
  });
  const quietTo = problems.length;
  console.log(`live ${reconnected} ms after the restart; a new task in tab 3 in ${afterSeen} ms`);

  await mkdir(artifacts, { recursive: true });
  await first.bringToFront();
  await first.screenshot({ path: join(artifacts, 'app.png'), fullPage: true });
  const final = await all();
  if (final.some((v) => v.error)) fail(`a tab shows an error: ${describe(final)}`);
  if (offsite.length) fail(`the page reached beyond 127.0.0.1: ${offsite.join(', ')}`);
  const restartNoise = (p, i) => i >= quietFrom && i < quietTo && RESTART_NOISE.test(p);
  const unexpected = problems.filter((p, i) => !restartNoise(p, i));
  if (unexpected.length) fail(unexpected.join('\n'));
  summary =
    `OK notification after ${late} ms; change seen in other tab after ${completedSeen} ms; ` +
    `reconnected after ${reconnected} ms`;
} catch (e) {
  fail(`${e.message}\noffsite: ${offsite.join(', ')}\n${problems.join('\n')}`);
} finally {
  await browser.close();
}
console.log(summary);
process.exit(0);
