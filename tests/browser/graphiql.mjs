// GraphiQL at BASE/graphql loads from our own server alone and shows the
// schema's docs: the query root (Query) and its `tasks` field.
//   node graphiql.mjs http://127.0.0.1:PORT
import { launch, fail } from './browser.mjs';

const base = process.argv[2] || fail('usage: node graphiql.mjs BASE_URL');
const { browser, context, offsite, problems } = await launch();
try {
  const page = await context.newPage();
  const response = await page.goto(`${base}/graphql`);
  if (response.status() !== 200) fail(`GET /graphql answered ${response.status()}`);
  await page.getByRole('button', { name: 'Show Documentation Explorer' }).click({ timeout: 20000 });
  const docs = page.locator('.graphiql-doc-explorer');
  await docs.getByText('Query', { exact: true }).first().click({ timeout: 20000 });
  await docs.getByText('tasks', { exact: true }).first().waitFor({ timeout: 10000 });
  if (offsite.length) fail(`the page reached beyond 127.0.0.1: ${offsite.join(', ')}`);
  if (problems.length) fail(problems.join('\n'));
  console.log('GraphiQL loaded the schema from 127.0.0.1 alone');
} catch (e) {
  fail(`${e.message}\noffsite: ${offsite.join(', ')}\n${problems.join('\n')}`);
} finally {
  await browser.close();
}
