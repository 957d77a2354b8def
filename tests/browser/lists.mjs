// Shared lists on the page at BASE/, two people in two browser contexts
// (each its own storage, so its own sign-in): ann creates a list and invites
// bob; bob sees the invitation (among his lists and as a notification) and
// accepts it from the notification; both pages then show the
// list with both members; bob adds a task to it, which ann's page shows;
// bob leaves and his page drops the list and its task.
//   node lists.mjs http://127.0.0.1:PORT
import { launch, fail } from './browser.mjs';

const base = process.argv[2] || fail('usage: node lists.mjs BASE_URL');
/** The panel follows `listChanges` live; allow for a loaded machine (the
 * whole suite runs beside it). */
const SHOWN_MS = 20000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what, probe) {
  const started = Date.now();
  let seen;
  for (;;) {
    seen = await probe();
    if (seen.ok) return;
    if (Date.now() - started > SHOWN_MS) fail(`expected ${what} within ${SHOWN_MS} ms; saw ${seen.text}`);
    await sleep(50);
  }
}

async function signedIn(context, user) {
  const page = await context.newPage();
  await page.goto(`${base}/`);
  await page.getByTestId('sign-in-name').fill(user);
  await page.getByTestId('sign-in').click();
  await page.getByTestId('lists').waitFor();
  // Live: list changes reach the page from here on.
  await page.locator('[data-testid="connection"][data-state="live"]').waitFor({ timeout: SHOWN_MS });
  await sleep(500);
  return page;
}

const { browser, context, offsite, problems } = await launch();
const other = await browser.newContext();
await other.route('**/*', (route) => {
  const url = new URL(route.request().url());
  if (url.protocol === 'data:' || url.hostname === '127.0.0.1') return route.continue();
  offsite.push(url.href);
  return route.abort('blockedbyclient');
});
try {
  const ann = await signedIn(context, 'ann');
  const bob = await signedIn(other, 'bob');

  await ann.getByTestId('new-list-name').fill('Holiday');
  await ann.getByTestId('create-list').click();
  const annsList = ann.getByTestId('list');
  await until('ann sees her list as its owner', async () => {
    const text = (await annsList.count()) ? await annsList.first().innerText() : '';
    return { ok: text.includes('Holiday') && text.includes('owner'), text };
  });
  // A task in the list before bob joins it: his page must show it once he
  // does, though his feed's cursor is past it.
  await ann.getByTestId('quick-add-list').selectOption({ label: 'Holiday' });
  await ann.getByTestId('quick-add').fill('book the ferry');
  await ann.getByTestId('quick-add-submit').click();
  const ferry = (page) => page.getByTestId('task').filter({ hasText: 'book the ferry' });
  await until('ann sees the task she added to the list', async () => {
    const text = (await ferry(ann).count()) ? await ferry(ann).first().innerText() : '';
    return { ok: text.includes('in Holiday'), text };
  });
  await annsList.first().getByTestId('invite-user').fill('bob');
  await annsList.first().getByTestId('invite-role').selectOption('EDITOR');
  // A list change arriving while she types redraws her lists; what she
  // typed stays (a second list made elsewhere stands for it).
  const redrawn = ann.locator('[data-testid="list"]');
  const made = await ann.evaluate(async () => {
    const token = JSON.parse(localStorage.getItem('taskledger.session') || '{}').token;
    const body = JSON.stringify({ query: 'mutation { createList(input: {name: "Elsewhere"}) { listId } }' });
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${token}` };
    return (await fetch('/graphql', { method: 'POST', headers, body })).text();
  });
  if (!made.includes('listId')) fail(`a list made elsewhere was refused: ${made}`);
  await until('ann sees a list made elsewhere', async () => ({ ok: (await redrawn.count()) === 2, text: `${await redrawn.count()} lists` }));
  const holiday = redrawn.filter({ hasText: 'Holiday' });
  const typed = await holiday.getByTestId('invite-user').inputValue();
  const role = await holiday.getByTestId('invite-role').inputValue();
  if (typed !== 'bob' || role !== 'EDITOR') fail(`a redraw wiped the invite form: "${typed}" as ${role}`);
  await holiday.getByTestId('invite').click();
  await until('ann is told bob was invited', async () => {
    const text = await ann.getByTestId('toast').innerText();
    return { ok: text.includes('Invited bob'), text };
  });

  const invitation = bob.getByTestId('invitation');
  await until('bob sees the invitation', async () => {
    const text = (await invitation.count()) ? await invitation.first().innerText() : '';
    return { ok: text.includes('Holiday') && text.includes('ann') && text.includes('editor'), text };
  });
  // It is a notification too: counted unread, answered from the panel.
  const notice = bob.getByTestId('notification').filter({ hasText: 'invited you' });
  await until('bob is notified of the invitation', async () => {
    const text = (await notice.count()) ? await notice.first().innerText() : '';
    const badge = await bob.getByTestId('unread-badge').innerText();
    return { ok: text.includes('ann invited you to “Holiday” as editor') && badge === '1', text: `${text} (${badge} unread)` };
  });
  if (await notice.first().getByTestId('notification-snooze').count()) fail('an invitation offers a snooze');
  await notice.first().getByTestId('notification-accept').click();
  await until('bob sees the list as an editor', async () => {
    const list = bob.getByTestId('list');
    const text = (await list.count()) ? await list.first().innerText() : '';
    return { ok: text.includes('Holiday') && text.includes('bob (editor)'), text };
  });
  await until('bob sees the task added before he joined, without a reload', async () => {
    const text = (await ferry(bob).count()) ? await ferry(bob).first().innerText() : '';
    return { ok: text.includes('in Holiday') && text.includes('by ann'), text };
  });
  if (await bob.getByTestId('invitation').count()) fail('an accepted invitation is still shown');

  // ann takes the ferry task into her own Inbox: bob's page hears it left
  // the list and drops it, with nothing of what it holds now.
  const moved = await ann.evaluate(async () => {
    const token = JSON.parse(localStorage.getItem('taskledger.session') || '{}').token;
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${token}` };
    const ask = async (query, variables) =>
      (await fetch('/graphql', { method: 'POST', headers, body: JSON.stringify({ query, variables }) })).json();
    const found = await ask('{ inboxId tasks(search: {query: "ferry"}) { nodes { id } } }');
    return ask('mutation($id: ID!, $list: ID!) { moveTask(id: $id, listId: $list) { version } }', {
      id: found.data.tasks.nodes[0].id,
      list: found.data.inboxId,
    });
  });
  if (!moved.data?.moveTask) fail(`ann could not take the task: ${JSON.stringify(moved)}`);
  await until("bob's page drops the task that left the list", async () => {
    const count = await ferry(bob).count();
    return { ok: count === 0, text: `${count} tasks` };
  });
  await until('the answered notification offers no answer', async () => {
    const count = await notice.first().getByTestId('notification-accept').count();
    return { ok: count === 0, text: `${count} accept buttons` };
  });
  await until('ann sees bob among the members', async () => {
    const text = await holiday.getByTestId('list-members').innerText();
    return { ok: text.includes('ann (owner)') && text.includes('bob (editor)'), text };
  });

  // bob adds a task to the list with quick add; ann's page shows it, in
  // the list and by bob.
  await bob.getByTestId('quick-add-list').selectOption({ label: 'Holiday' });
  await bob.getByTestId('quick-add').fill('pack sunscreen tomorrow 9am');
  await bob.getByTestId('quick-add-submit').click();
  const sunscreen = (page) => page.getByTestId('task').filter({ hasText: 'pack sunscreen' });
  await until('ann sees the task bob added to the list', async () => {
    const text = (await sunscreen(ann).count()) ? await sunscreen(ann).first().innerText() : '';
    return { ok: text.includes('in Holiday') && text.includes('by bob'), text };
  });

  await bob.getByTestId('leave-list').first().click();
  await until('bob no longer sees the list', async () => {
    const count = await bob.getByTestId('list').count();
    return { ok: count === 0, text: `${count} lists` };
  });
  await until("bob's page drops the list's task", async () => {
    const count = await sunscreen(bob).count();
    return { ok: count === 0, text: `${count} tasks` };
  });
  if (!(await sunscreen(ann).count())) fail("the task left ann's list with bob");
  await until('ann sees bob gone', async () => {
    const text = await holiday.getByTestId('list-members').innerText();
    return { ok: !text.includes('bob'), text };
  });
  if (offsite.length) fail(`requests beyond 127.0.0.1: ${offsite.join(', ')}`);
  if (problems.length) fail(`page problems: ${problems.join('; ')}`);
  console.log('ok: lists shared on the page');
} finally {
  await browser.close();
}
