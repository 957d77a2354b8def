// Launches Debian's chromium headless through playwright-core, with every
// request beyond 127.0.0.1 refused and recorded, so a page that reaches for
// a CDN fails its test instead of silently working online.
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export async function launch() {
  const args = [
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-default-apps',
    '--disable-sync',
    '--no-first-run',
    '--metrics-recording-only',
    '--disable-features=MediaRouter,OptimizationHints,Translate',
  ];
  if (process.getuid && process.getuid() === 0) args.push('--no-sandbox');
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args });
  const context = await browser.newContext();
  const offsite = [];
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.protocol === 'data:' || url.hostname === '127.0.0.1') return route.continue();
    offsite.push(url.href);
    return route.abort('blockedbyclient');
  });
  const problems = [];
  context.on('weberror', (e) => problems.push(`page error: ${e.error().message}`));
  context.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  return { browser, context, offsite, problems };
}

export function fail(message) {
  console.error(`FAIL: ${message}`);
  process.exit(1);
}
