// Quick add on the page at BASE/: one line typed the way people say it
// becomes a task whose due date, repeat, reminder, priority and tags the
// list shows.
//   node quick-add.mjs http://127.0.0.1:PORT
import { launch, fail } from './browser.mjs';

const base = process.argv[2] || fail('usage: node quick-add.mjs BASE_URL');
const SHOWN_MS = 10000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const { browser, context, offsite, problems } = await launch();
try {
  const page = await context.newPage();
  await page.goto(`${base}/`);
  await page.getByTestId('sign-in-name').fill('quinn');
  await page.getByTestId('sign-in').click();
  await page.getByTestId('quick-add').fill('water the plants every day 9am remind me 30 min before #home !high');
  await page.getByTestId('quick-add-submit').click();

  const started = Date.now();
  let text = '';
  for (;;) {
    const tasks = page.getByTestId('task');
    text = (await tasks.count()) ? await tasks.first().innerText() : '';
    const shown =
      text.includes('water the plants') &&
      text.includes('repeats daily') &&
      text.includes('due ') &&
      text.includes('reminder ') &&
      text.includes('high') &&
      text.includes('home');
    if (shown) break;
    if (Date.now() - started > SHOWN_MS) fail(`the quick-added task never showed whole; saw: ${text}`);
    await sleep(50);
  }
  if ((await page.getByTestId('quick-add').inputValue()) !== '') fail('the box was not cleared');
  if (offsite.length) fail(`requests beyond 127.0.0.1: ${offsite.join(', ')}`);
  if (problems.length) fail(`page problems: ${problems.join('; ')}`);
  console.log('ok: quick add on the page');
} finally {
  await browser.close();
}
