// Taskledger's web app: sign in with a development token, keep a live task
// list fed by the `taskChanges` subscription, and show reminders as browser
// notifications from one tab only (the holder of a Web Lock). Served by the
// API under a strict content security policy: no inline code, no eval, no
// request to anywhere but this origin.
'use strict';

/** Shared by every tab of the browser, so one sign-in signs them all in. */
const SESSION_KEY = 'taskledger.session';
/** The tab holding this lock is the one that shows browser notifications. */
const NOTIFIER_LOCK = 'taskledger-notifier';
const FIRST_RETRY_MS = 200;
const MAX_RETRY_MS = 2000;
/** How long a notification that arrived live is counted while the inbox does not show it. */
const ARRIVAL_GRACE_MS = 60000;
/** The inbox's first page (NOTIFICATIONS asks for 20). */
const INBOX_PAGE = 20;
const TOAST_MS = 8000;
/** How long the page offers to undo a change just made. */
const UNDO_MS = 6000;
const SNOOZE_MINUTES = 10;

const PRIORITY_RANK = { NONE: 0, LOW: 1, MEDIUM: 2, HIGH: 3, URGENT: 4 };
const STATUS_RANK = { OPEN: 0, COMPLETED: 1 };

const TASK_FIELDS =
  'id title description status priority tags dueAt nextReminderAt recurrence version listId owner assignee';
const NOTIFICATION_FIELDS =
  'id kind title dueAt remindAt firedAt read invitation { id listId listName role from }';

const TASK_CHANGES = `subscription TaskChanges($since: String) {
  taskChanges(since: $since) { kind cursor taskId version task { ${TASK_FIELDS} } }
}`;
const NOTIFICATION_RECEIVED = `subscription NotificationReceived {
  notificationReceived { ${NOTIFICATION_FIELDS} }
}`;
const NOTIFICATIONS = `query Notifications {
  unreadNotificationCount
  notifications(first: ${INBOX_PAGE}) { edges { node { ${NOTIFICATION_FIELDS} } } }
}`;
const CREATE_TASK = `mutation CreateTask($input: CreateTaskInput!) {
  createTask(input: $input) { taskId version }
}`;
const TASK_ACTIONS = {
  complete: 'mutation CompleteTask($id: ID!) { completeTask(id: $id) { version } }',
  reopen: 'mutation ReopenTask($id: ID!) { reopenTask(id: $id) { version } }',
  delete: 'mutation DeleteTask($id: ID!) { deleteTask(id: $id) { version } }',
};
const UNDO = 'mutation Undo($id: String!) { undo(correlationId: $id) { taskId version } }';
const UNDONE_LABELS = { complete: 'Completed.', reopen: 'Reopened.', delete: 'Deleted.' };
const MARK_READ = 'mutation MarkRead($ids: [ID!]!) { markNotificationsRead(ids: $ids) }';
const QUICK_ADD = `mutation QuickAdd($text: String!, $zone: String, $list: ID) {
  quickAdd(text: $text, timeZone: $zone, listId: $list) { taskId title } }`;
const LISTS = `query Lists {
  inboxId
  lists { id name role archived members { userId role } }
  invitations { id listId listName role from } }`;
// A list's tasks, a page at a time: those of a list joined while the page
// was open are older than its feed's cursor.
const LIST_TASKS = `query ListTasks($list: ID!, $after: String) {
  tasks(filter: {listIds: [$list]}, first: 100, after: $after) {
    nodes { ${TASK_FIELDS} }
    pageInfo { hasNextPage endCursor } } }`;
const LIST_TASK_PAGES = 20;
const CREATE_LIST = 'mutation CreateList($name: String!) { createList(input: {name: $name}) { listId } }';
const INVITE = `mutation Invite($list: ID!, $user: String!, $role: ListRole!) {
  inviteToList(listId: $list, userId: $user, role: $role) { invitationId } }`;
const ANSWER = {
  accept: 'mutation Accept($id: ID!) { acceptInvitation(id: $id) { listId } }',
  decline: 'mutation Decline($id: ID!) { declineInvitation(id: $id) { listId } }',
};
const LEAVE_LIST = 'mutation Leave($list: ID!) { leaveList(listId: $list) { version } }';
const LIST_CHANGES = 'subscription ListChanges { listChanges { kind listId event } }';
/** List changes within this long of each other are read back together. */
const LISTS_SETTLE_MS = 300;
const SNOOZE = `mutation Snooze($id: ID!, $minutes: Int!) {
  snoozeReminder(notificationId: $id, minutes: $minutes)
}`;

const state = {
  session: null, // { token, name, expiresAt } while signed in
  live: null, // the LiveConnection while signed in
  tasks: new Map(), // task id → the task at the newest version seen
  cursor: '0', // the highest taskChanges cursor: where a resubscription resumes
  notifications: [], // the panel's list, newest first
  arrived: new Map(), // notification id → one received live that the inbox did not show yet
  unread: 0, // the inbox's unread count
  refreshes: 0, // numbers notification refreshes, so a slow answer never overwrites a newer one
  notifier: false, // whether this tab holds NOTIFIER_LOCK
  announced: new Set(), // `${id}@${remindAt}` of reminders this tab has announced
  toastTimer: null,
  undo: null, // { correlation, timer } while the last change can be undone
  lists: [], // the lists the user belongs to, as `lists` answered
  invitations: [], // invitations waiting for the user's answer
  listsRefresh: null, // the pending read of the lists after a burst of changes
  listsRead: false, // whether `lists` was answered once this session
};

const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);
const toMinute = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const toSecond = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
/** An RFC 3339 instant in the browser's time zone, to the minute or to the second. */
const localTime = (instant, format = toMinute) => format.format(new Date(instant));

/** An error the API (or the way to it) reported; `code` is its `extensions.code`. */
class ApiError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

/**
 * A graphql-transport-ws client for a fixed set of subscriptions. It
 * reconnects after any close except an authentication refusal, with
 * exponential backoff, and resubscribes once the server acknowledges;
 * `variables()` is asked again then, so a subscription can resume.
 */
class LiveConnection {
  constructor({ token, subscriptions, onStatus, onError, onRefused }) {
    this.token = token;
    this.subscriptions = subscriptions; // id → { query, variables(), onNext(response), onResubscribed()? }
    this.onStatus = onStatus;
    this.onError = onError;
    this.onRefused = onRefused;
    this.retries = 0;
    this.socket = null;
    this.retryTimer = null;
    this.stopped = false;
    this.connect();
  }

  connect() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const socket = new WebSocket(`${scheme}://${location.host}/graphql/ws`, 'graphql-transport-ws');
    this.socket = socket;
    socket.onopen = () =>
      this.send({ type: 'connection_init', payload: { authorization: `Bearer ${this.token}` } });
    // A socket this connection has given up on may still deliver; ignore it.
    const current = () => socket === this.socket && !this.stopped;
    socket.onmessage = (event) => current() && this.receive(event.data);
    socket.onclose = (event) => current() && this.closed(event);
  }

  send(message) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  receive(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      this.socket.close(4400, 'the server sent a message that is not JSON');
      return;
    }
    switch (message.type) {
      case 'connection_ack':
        this.retries = 0;
        for (const [id, { query, variables }] of Object.entries(this.subscriptions)) {
          this.send({ id, type: 'subscribe', payload: { query, variables: variables() } });
        }
        this.onStatus('live');
        break;
      case 'ping':
        this.send({ type: 'pong' });
        break;
      case 'next':
        this.subscriptions[message.id]?.onNext(message.payload);
        break;
      case 'error':
        // Refused (a rate limit, say): show why and try that subscription again.
        this.onError(errorText(message.payload));
        this.resubscribe(message.id);
        break;
      case 'complete':
        // The server ended it (a failed backlog read, say): subscribe again,
        // from where it stood.
        this.resubscribe(message.id);
        break;
      default: // pong: nothing to do
    }
  }

  /** Subscribes `id` again after a pause, on this socket if it is still open. */
  resubscribe(id) {
    const subscription = this.subscriptions[id];
    if (!subscription) return;
    const socket = this.socket;
    setTimeout(() => {
      if (socket !== this.socket || this.stopped) return; // a reconnect resubscribes anyway
      const { query, variables } = subscription;
      this.send({ id, type: 'subscribe', payload: { query, variables: variables() } });
      // What the feed carried while it was down is read back, if it can be.
      subscription.onResubscribed?.();
    }, MAX_RETRY_MS);
  }

  closed(event) {
    this.socket = null;
    if (event.code === 4401 || event.code === 4403) {
      this.stopped = true;
      this.onRefused(event.reason || 'the server refused the session');
      return;
    }
    this.onStatus('reconnecting');
    // About 200 ms, 400 ms, 800 ms, ... then every 2 s; jittered so that tabs
    // and browsers do not all come back in the same instant.
    const jitter = 0.8 + Math.random() * 0.4;
    const delay = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** this.retries * jitter);
    this.retries += 1;
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.socket?.close(1000, 'signed out');
  }
}

// ---- Talking to the API over HTTP ----

function errorText(errors) {
  return (errors ?? []).map((e) => e.message).join('; ') || 'The server reported an error.';
}

async function postJson(path, body, token, correlation) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (correlation) headers['x-correlation-id'] = correlation;
  let response;
  try {
    response = await fetch(path, { method: 'POST', headers, body: JSON.stringify(body) });
  } catch {
    throw new ApiError('The server cannot be reached; try again in a moment.', 'NETWORK');
  }
  const answer = await response.json().catch(() => null);
  const error = answer?.errors?.[0];
  if (error) throw new ApiError(error.message, error.extensions?.code);
  if (!response.ok || !answer) {
    throw new ApiError(`The server answered ${response.status}.`, 'HTTP');
  }
  return answer;
}

/** Runs `query`; with `correlation`, as the request of that id (what `undo` names). */
async function graphql(query, variables = {}, correlation = null) {
  if (!state.session) throw new ApiError('Sign in first.', 'UNAUTHENTICATED');
  const answer = await postJson(
    '/graphql',
    { query, variables },
    state.session.token,
    correlation,
  );
  return answer.data;
}

/** Awaits `work`, showing a failure in the error area; a refused token signs out. */
async function report(work) {
  try {
    await work;
  } catch (error) {
    if (error.code === 'UNAUTHENTICATED') signOut(error.message);
    else showError(error.message);
  }
}

/** A user's action: clears the last error first. */
function act(action) {
  clearError();
  return report(action());
}

// ---- Session ----

function loadSession() {
  try {
    const session = JSON.parse(localStorage.getItem(SESSION_KEY));
    return session?.token && Date.parse(session.expiresAt) > Date.now() ? session : null;
  } catch {
    return null;
  }
}

async function signIn(name) {
  const answer = await postJson('/auth/dev-token', { name });
  const session = { token: answer.token, name: answer.userId, expiresAt: answer.expiresAt };
  localStorage.setItem(SESSION_KEY, JSON.stringify(session));
  startSession(session);
}

function signOut(message) {
  localStorage.removeItem(SESSION_KEY);
  hideUndo();
  stopSession();
  if (message) showError(message);
}

function startSession(session) {
  state.session = session;
  state.tasks.clear();
  state.cursor = '0'; // the backlog from the beginning is the initial load
  showSignedIn(session.name);
  setConnection('reconnecting');
  state.live = new LiveConnection({
    token: session.token,
    subscriptions: {
      tasks: {
        query: TASK_CHANGES,
        variables: () => ({ since: state.cursor }),
        onNext: onTaskChange,
      },
      notifications: {
        query: NOTIFICATION_RECEIVED,
        variables: () => ({}),
        onNext: onNotification,
        // Reminders have no backlog to resume from: what fired meanwhile is
        // in the inbox.
        onResubscribed: () => report(refreshNotifications()),
      },
      lists: {
        query: LIST_CHANGES,
        variables: () => ({}),
        // Any change to a list of ours, or about us: ask where things stand,
        // once for a burst of changes.
        onNext: refreshListsSoon,
        onResubscribed: () => report(refreshLists()),
      },
    },
    onStatus: (status) => {
      setConnection(status);
      // Reminders may have fired while the connection was down.
      if (status === 'live') {
        report(refreshNotifications());
        // Once now, and once the subscriptions just sent surely hold: a
        // change between the two would otherwise be missed.
        report(refreshLists());
        refreshListsSoon();
      }
    },
    onError: showError,
    onRefused: (reason) => signOut(`Signed out: ${reason}`),
  });
  report(refreshLists());
}

function stopSession() {
  state.live?.stop();
  state.live = null;
  clearTimeout(state.listsRefresh);
  state.listsRefresh = null;
  state.lists = [];
  state.listsRead = false;
  state.invitations = [];
  renderLists();
  state.session = null;
  state.tasks.clear();
  state.notifications = [];
  state.arrived.clear();
  state.unread = 0;
  setConnection('offline');
  showSignedOut();
}

/** Another tab signed in or out: follow it. */
function onStorage(event) {
  if (event.key !== SESSION_KEY && event.key !== null) return;
  const session = loadSession();
  if (session?.token === state.session?.token) return;
  stopSession();
  if (session) startSession(session);
}

// ---- Live tasks ----

function onTaskChange(response) {
  if (response.errors?.length) showError(errorText(response.errors));
  const change = response.data?.taskChanges;
  if (!change) return;
  if (change.kind === 'RESYNC') {
    // We fell behind; the server resends from our cursor, so keep it as it is.
    console.info('taskChanges: resync from cursor', state.cursor);
    return;
  }
  if (change.kind === 'REMOVED') {
    // It left what we read (moved out of a list we share).
    state.tasks.delete(change.taskId);
    renderTasks();
    return;
  }
  // The latest cursor is where a resubscription resumes (it never passes a
  // change not sent yet, so a resumed backlog may repeat a version we hold).
  if (Number(change.cursor) > Number(state.cursor)) state.cursor = change.cursor;
  const version = change.version ?? change.task?.version ?? 0;
  const held = state.tasks.get(change.taskId);
  if (held && held.version >= version) return; // a repeat, or older than what we show
  const task = change.task ?? { id: change.taskId, status: 'DELETED' };
  state.tasks.set(change.taskId, { ...task, version });
  renderTasks();
}

function filters() {
  return {
    search: byTestId('search').value.trim().toLowerCase(),
    status: byTestId('filter-status').value,
    priority: byTestId('filter-priority').value,
    tag: byTestId('filter-tag').value.trim().toLowerCase(),
  };
}

function matches(task, { search, status, priority, tag }) {
  if (task.status === 'DELETED') return false;
  if (status !== 'all' && task.status !== status) return false;
  if (priority && task.priority !== priority) return false;
  // A tag filter also matches the tags under it: `work` matches `work/clients`.
  if (tag && !task.tags.some((t) => t === tag || t.startsWith(`${tag}/`))) return false;
  const text = [task.title, task.description ?? '', ...task.tags].join(' ').toLowerCase();
  return !search || text.includes(search);
}

/** Open before completed, then by priority, then soonest due, then by title. */
function compareTasks(a, b) {
  const due = (task) => (task.dueAt ? Date.parse(task.dueAt) : Infinity);
  return (
    STATUS_RANK[a.status] - STATUS_RANK[b.status] ||
    PRIORITY_RANK[b.priority] - PRIORITY_RANK[a.priority] ||
    due(a) - due(b) ||
    a.title.localeCompare(b.title)
  );
}

function renderTasks() {
  const list = byTestId('task-list');
  // Keyboard focus survives the rebuild: same task, same button (or its first).
  const focused = list.contains(document.activeElement) ? document.activeElement : null;
  const row = focused && `[data-task-id="${focused.closest('[data-task-id]').dataset.taskId}"]`;
  const current = filters();
  const shown = [...state.tasks.values()].filter((t) => matches(t, current)).sort(compareTasks);
  list.replaceChildren(...shown.map(taskItem));
  byTestId('task-list-empty').hidden = shown.length > 0 || !state.session;
  if (row) {
    const again = list.querySelector(`${row} [data-action="${focused.dataset.action}"]`);
    (again ?? list.querySelector(`${row} button`))?.focus();
  }
}

function taskItem(task) {
  const done = task.status === 'COMPLETED';
  const item = element('li', {
    class: `task ${done ? 'done' : 'open'} priority-${task.priority.toLowerCase()}`,
    'data-testid': 'task',
    'data-task-id': task.id,
    'data-status': task.status,
  });
  const facts = [task.priority.toLowerCase()];
  if (task.dueAt) facts.push(`due ${localTime(task.dueAt)}`);
  if (task.recurrence) facts.push(repeatText(task.recurrence));
  if (task.nextReminderAt) facts.push(`reminder ${localTime(task.nextReminderAt, toSecond)}`);
  const list = state.lists.find((shared) => shared.id === task.listId);
  if (list) facts.push(`in ${list.name || 'a shared list'}`);
  if (list && task.owner !== state.session?.name) facts.push(`by ${task.owner}`);
  if (task.assignee) facts.push(`for ${task.assignee}`);
  const toggle = done ? ['reopen', 'Reopen'] : ['complete', 'Complete'];
  item.append(
    element('span', { class: 'title', 'data-testid': 'task-title' }, task.title),
    element('span', { class: 'facts' }, facts.join(' · ')),
    element('span', { class: 'tags' }, ...task.tags.map(tagChip)),
    taskButton(toggle[0], toggle[1], task.title),
    taskButton('delete', 'Delete', task.title),
  );
  return item;
}

/** An RRULE as a person reads it: "repeats weekly on MO, WE", "repeats every 2 days". */
function repeatText(rule) {
  const parts = Object.fromEntries(rule.split(';').map((part) => part.split('=')));
  const units = { DAILY: 'day', WEEKLY: 'week', MONTHLY: 'month', YEARLY: 'year' };
  const unit = units[parts.FREQ] ?? 'time';
  const interval = Number(parts.INTERVAL ?? 1);
  let text = interval > 1 ? `repeats every ${interval} ${unit}s` : `repeats ${parts.FREQ?.toLowerCase() ?? rule}`;
  if (parts.BYDAY) text += ` on ${parts.BYDAY.split(',').join(', ')}`;
  if (parts.BYMONTHDAY) text += ` on day ${parts.BYMONTHDAY}`;
  if (parts.COUNT) text += `, ${parts.COUNT} times`;
  return text;
}

function tagChip(tag) {
  return element('span', { class: 'tag' }, tag);
}

function taskButton(action, label, title) {
  const attributes = {
    type: 'button',
    'data-action': action,
    'data-testid': `task-${action}`,
    'aria-label': `${label} “${title}”`,
  };
  return element('button', attributes, label);
}

function onTaskListClick(event) {
  const button = event.target.closest('button[data-action]');
  if (!button) return;
  const id = button.closest('[data-task-id]').dataset.taskId;
  const action = button.dataset.action;
  const correlation = crypto.randomUUID();
  act(async () => {
    try {
      await graphql(TASK_ACTIONS[action], { id }, correlation);
    } catch (error) {
      // No longer ours to see (it left a list we share, say), which the
      // feed does not announce: it leaves the page.
      if (error.code !== 'NOT_FOUND') throw error;
      state.tasks.delete(id);
      renderTasks();
      showToast('That task is no longer shared with you.');
      return;
    }
    offerUndo(UNDONE_LABELS[action], correlation);
  });
}

/** Offers, for a few seconds, to undo the request `correlation` just made. */
function offerUndo(label, correlation) {
  clearTimeout(state.undo?.timer);
  byTestId('undo-text').textContent = label;
  byTestId('undo').hidden = false;
  const timer = setTimeout(hideUndo, UNDO_MS);
  state.undo = { correlation, timer };
}

function hideUndo() {
  clearTimeout(state.undo?.timer);
  state.undo = null;
  byTestId('undo').hidden = true;
}

/** Takes back the change on offer: the server refuses if it changed since. */
function undoLastChange() {
  const correlation = state.undo?.correlation;
  hideUndo();
  if (!correlation) return;
  act(async () => {
    await graphql(UNDO, { id: correlation });
    showToast('Undone.');
  });
}

/** A `datetime-local` value, read in the browser's time zone, as an RFC 3339 UTC instant. */
function localInstant(value) {
  return value ? new Date(value).toISOString() : null;
}

async function quickAdd(form) {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const list = form.elements.list.value || null;
  const data = await graphql(QUICK_ADD, { text: form.elements.text.value, zone, list });
  form.reset();
  form.elements.list.value = list ?? ''; // the next one goes to the same list
  showToast(`Added “${data.quickAdd.title}”.`);
}

async function createTask(form) {
  const data = new FormData(form);
  const input = {
    title: data.get('title'),
    priority: data.get('priority'),
    tags: data.get('tags').split(',').map((tag) => tag.trim()).filter(Boolean),
  };
  const dueAt = localInstant(data.get('due'));
  if (dueAt) {
    input.dueAt = dueAt;
    input.timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  }
  const remindAt = localInstant(data.get('remindAt'));
  if (remindAt) input.reminders = [{ at: remindAt }];
  await graphql(CREATE_TASK, { input });
  // The task itself arrives through taskChanges, in this tab as in the others.
  form.reset();
  form.elements.title.focus();
}

// ---- Notifications ----

/** Asks once, on a sign-in click (browsers only ask in answer to a gesture). */
function askNotificationPermission() {
  if (window.Notification?.permission === 'default') {
    Notification.requestPermission().catch(() => {});
  }
}

/** Whichever tab holds the lock notifies; when it closes, a waiting tab gets it. */
function electNotifier() {
  const lead = () => {
    state.notifier = true;
    document.body.dataset.notifier = 'true';
  };
  if (!navigator.locks) {
    lead(); // every tab notifies; the notification tag still collapses repeats
    return;
  }
  navigator.locks
    .request(NOTIFIER_LOCK, () => {
      lead();
      return new Promise(() => {}); // held for the tab's lifetime
    })
    .catch(lead);
}

function onNotification(response) {
  if (response.errors?.length) showError(errorText(response.errors));
  const notification = response.data?.notificationReceived;
  if (!notification) return;
  announce(notification);
  // The live message can arrive before the inbox has stored it: count it
  // until the inbox shows it.
  if (!state.arrived.has(notification.id)) {
    state.arrived.set(notification.id, { ...notification, read: false, arrivedAt: Date.now() });
    renderInbox(state.unread);
  }
  report(refreshNotifications());
}

function announce(notification) {
  // The same reminder may be delivered again (a redelivery); a snoozed one fires anew.
  const key = `${notification.id}@${notification.remindAt}`;
  if (state.announced.has(key)) return;
  state.announced.add(key);
  const body = notification.invitation
    ? invitationText(notification.invitation)
    : notification.dueAt
      ? `Due ${localTime(notification.dueAt)}`
      : 'Reminder';
  if (window.Notification?.permission !== 'granted') {
    showToast(`${notification.title}: ${body}`);
    return;
  }
  if (!state.notifier) return;
  try {
    // The tag makes a browser show one notification per reminder, whichever tab sends it.
    new Notification(notification.title, { body, tag: notification.id });
  } catch {
    // A browser that notifies only from a service worker refuses the constructor.
    showToast(`${notification.title}: ${body}`);
  }
}

async function refreshNotifications() {
  const refresh = ++state.refreshes;
  const data = await graphql(NOTIFICATIONS);
  if (refresh !== state.refreshes || !state.session) return;
  state.notifications = data.notifications.edges.map((edge) => edge.node);
  for (const n of state.notifications) state.arrived.delete(n.id);
  // One the inbox does not show is counted until it does (the inbox may lag
  // the live feed by seconds on a busy server), unless it is older than the
  // inbox's full first page (many arrived at once) or a minute went by (it
  // was never stored): then the stored count stands.
  const full = state.notifications.length >= INBOX_PAGE;
  const oldest = full ? Date.parse(state.notifications.at(-1).firedAt) : -Infinity;
  for (const [id, n] of state.arrived) {
    const pastFirstPage = Date.parse(n.firedAt) < oldest;
    if (pastFirstPage || Date.now() - n.arrivedAt > ARRIVAL_GRACE_MS) state.arrived.delete(id);
  }
  // The count and the list are read by separate statements, so a
  // notification stored between the two may be listed and not counted.
  const listedUnread = state.notifications.filter((n) => !n.read).length;
  state.unread = Math.max(data.unreadNotificationCount, listedUnread);
  renderInbox(state.unread);
  // Some arrived live but are not stored yet: look again, less often as it waits.
  if (state.arrived.size > 0) {
    const waited = Math.max(...[...state.arrived.values()].map((n) => Date.now() - n.arrivedAt));
    setTimeout(() => report(refreshNotifications()), Math.min(500 + waited / 4, 5000));
  }
}

/** The inbox as stored, plus what arrived live and is not stored yet. */
function renderInbox(storedUnread) {
  renderBadge(storedUnread + state.arrived.size);
  renderNotifications();
}

function renderBadge(count) {
  const badge = byTestId('unread-badge');
  badge.textContent = String(count);
  badge.setAttribute('aria-label', `${count} unread notifications`);
  badge.hidden = count === 0;
}

function renderNotifications() {
  const items = [...state.arrived.values(), ...state.notifications].map((n) => {
    const item = element('li', {
      class: n.read ? 'read' : 'unread',
      'data-testid': 'notification',
      'data-notification-id': n.id,
    });
    if (n.invitation) {
      item.append(
        element('span', { class: 'title' }, invitationText(n.invitation)),
        element('time', { datetime: n.firedAt }, localTime(n.firedAt, toSecond)),
        ...invitationAnswers(n.invitation),
      );
      return item;
    }
    item.append(
      element('span', { class: 'title' }, n.title),
      element('time', { datetime: n.firedAt }, localTime(n.firedAt, toSecond)),
      element(
        'button',
        {
          type: 'button',
          'data-action': 'snooze',
          'data-testid': 'notification-snooze',
          'aria-label': `Snooze “${n.title}” ${SNOOZE_MINUTES} minutes`,
        },
        `Snooze ${SNOOZE_MINUTES} min`,
      ),
    );
    return item;
  });
  byTestId('notification-list').replaceChildren(...items);
}

function invitationText(invitation) {
  const list = invitation.listName ? `“${invitation.listName}”` : 'a list';
  return `${invitation.from} invited you to ${list} as ${roleName(invitation.role)}`;
}

/** Accept and Decline while the invitation still waits for an answer. */
function invitationAnswers(invitation) {
  if (!state.invitations.some((waiting) => waiting.id === invitation.id)) return [];
  return [
    element('button', { type: 'button', 'data-action': 'accept', 'data-testid': 'notification-accept' }, 'Accept'),
    element('button', { type: 'button', 'data-action': 'decline', 'data-testid': 'notification-decline' }, 'Decline'),
  ];
}

async function markAllRead() {
  const ids = state.notifications.filter((n) => !n.read).map((n) => n.id);
  if (ids.length) await graphql(MARK_READ, { ids });
  await refreshNotifications();
}

async function snooze(id) {
  const data = await graphql(SNOOZE, { id, minutes: SNOOZE_MINUTES });
  showToast(`Snoozed until ${localTime(data.snoozeReminder, toSecond)}`);
  await refreshNotifications();
}

function onNotificationListClick(event) {
  const button = event.target.closest('button[data-action]');
  const id = button?.closest('[data-notification-id]')?.dataset.notificationId;
  if (!id) return;
  const action = button.dataset.action;
  if (action === 'snooze') act(() => snooze(id));
  else
    act(async () => {
      await graphql(ANSWER[action], { id });
      await refreshLists();
    });
}

// ---- Lists ----

async function refreshLists() {
  if (!state.session) return;
  const data = await graphql(LISTS);
  if (!state.session) return;
  // The feed's first backlog held the tasks of the lists then; a list
  // joined since has older tasks than its cursor: read them.
  const known = new Set(state.lists.map((list) => list.id));
  const joined = state.listsRead ? data.lists.filter((list) => !known.has(list.id)) : [];
  state.listsRead = true;
  state.lists = data.lists;
  state.invitations = data.invitations;
  // A list left or lost takes its tasks off this page.
  const readable = new Set([data.inboxId, ...data.lists.map((list) => list.id)]);
  for (const [id, task] of state.tasks) {
    if (task.listId && !readable.has(task.listId)) state.tasks.delete(id);
  }
  renderLists();
  renderListChoice();
  renderTasks();
  for (const list of joined) report(readListTasks(list.id));
}

/** Shows the tasks of list `id`, keeping any newer version the feed brought. */
async function readListTasks(id) {
  let after = null;
  for (let page = 0; page < LIST_TASK_PAGES; page += 1) {
    const data = await graphql(LIST_TASKS, { list: id, after });
    // Signed out, or left the list, meanwhile: its tasks are not ours.
    if (!state.session || !state.lists.some((list) => list.id === id)) return;
    for (const task of data.tasks.nodes) {
      const held = state.tasks.get(task.id);
      if (!held || held.version < task.version) state.tasks.set(task.id, task);
    }
    renderTasks();
    if (!data.tasks.pageInfo.hasNextPage) return;
    after = data.tasks.pageInfo.endCursor;
  }
}

/** The quick-add box's choice of list: the Inbox, or a list one may add to. */
function renderListChoice() {
  const choice = byTestId('quick-add-list');
  const chosen = choice.value;
  const writable = state.lists.filter((list) => !list.archived && list.role !== 'VIEWER');
  choice.replaceChildren(
    element('option', { value: '' }, 'Inbox'),
    ...writable.map((list) => element('option', { value: list.id }, list.name || '(no name)')),
  );
  choice.value = writable.some((list) => list.id === chosen) ? chosen : '';
}

/** Asks for the lists once, shortly, however many changes arrive meanwhile. */
function refreshListsSoon() {
  if (state.listsRefresh) return;
  state.listsRefresh = setTimeout(() => {
    state.listsRefresh = null;
    report(refreshLists());
  }, LISTS_SETTLE_MS);
}

const roleName = (role) => role.toLowerCase();

function renderLists() {
  const lists = state.lists.map((list) => {
    const members = list.members.map((m) => `${m.userId} (${roleName(m.role)})`).join(', ');
    const item = element(
      'li',
      { 'data-testid': 'list', 'data-list-id': list.id },
      element('strong', { 'data-testid': 'list-name' }, list.name || '(no name)'),
      ' ',
      element('span', { class: 'role', 'data-testid': 'list-role' }, roleName(list.role)),
      element('p', { class: 'members', 'data-testid': 'list-members' }, members),
    );
    if (list.role === 'OWNER' && !list.archived) {
      const role = element(
        'select',
        { name: 'role', 'data-testid': 'invite-role', 'aria-label': 'Role' },
        element('option', { value: 'EDITOR' }, 'Editor'),
        element('option', { value: 'VIEWER' }, 'Viewer'),
      );
      item.append(
        element(
          'form',
          { class: 'invite', 'data-testid': 'invite-form' },
          element('input', {
            name: 'user',
            required: '',
            placeholder: 'user to invite',
            'aria-label': `Invite to ${list.name}`,
            'data-testid': 'invite-user',
          }),
          role,
          element('button', { type: 'submit', 'data-testid': 'invite' }, 'Invite'),
        ),
      );
    } else if (list.role !== 'OWNER') {
      item.append(
        element('button', { type: 'button', 'data-action': 'leave', 'data-testid': 'leave-list' }, 'Leave'),
      );
    }
    return item;
  });
  const typing = typedInvites();
  byTestId('list-list').replaceChildren(...lists);
  restoreInvites(typing);
  const invitations = state.invitations.map((i) =>
    element(
      'li',
      { 'data-testid': 'invitation', 'data-invitation-id': i.id },
      element('span', {}, `“${i.listName}” from ${i.from}, as ${roleName(i.role)} `),
      element('button', { type: 'button', 'data-action': 'accept', 'data-testid': 'accept-invitation' }, 'Accept'),
      element('button', { type: 'button', 'data-action': 'decline', 'data-testid': 'decline-invitation' }, 'Decline'),
    ),
  );
  byTestId('invitation-list').replaceChildren(...invitations);
  byTestId('invitations-empty').hidden = invitations.length > 0;
  // An invitation's notification offers its answers while it waits.
  renderNotifications();
}

/** What the owner has typed into each list's invite form, so that a list
 * change arriving meanwhile redraws the lists without wiping it. */
function typedInvites() {
  const typed = new Map();
  for (const form of byTestId('list-list').querySelectorAll('[data-testid="invite-form"]')) {
    const user = form.elements.user;
    typed.set(form.closest('[data-list-id]').dataset.listId, {
      user: user.value,
      role: form.elements.role.value,
      focused: document.activeElement === user,
      selection: [user.selectionStart, user.selectionEnd],
    });
  }
  return typed;
}

function restoreInvites(typed) {
  for (const [list, was] of typed) {
    const form = byTestId('list-list').querySelector(`[data-list-id="${CSS.escape(list)}"] [data-testid="invite-form"]`);
    if (!form) continue;
    form.elements.user.value = was.user;
    form.elements.role.value = was.role;
    if (was.focused) {
      form.elements.user.focus();
      form.elements.user.setSelectionRange(...was.selection);
    }
  }
}

async function createList(form) {
  await graphql(CREATE_LIST, { name: form.elements.name.value });
  form.reset();
  await refreshLists();
}

async function inviteTo(form) {
  const list = form.closest('[data-list-id]').dataset.listId;
  const user = form.elements.user.value.trim();
  await graphql(INVITE, { list, user, role: form.elements.role.value });
  form.reset();
  showToast(`Invited ${user}.`);
  await refreshLists();
}

function onListsClick(event) {
  const button = event.target.closest('button[data-action]');
  if (!button) return;
  const invitation = button.closest('[data-invitation-id]')?.dataset.invitationId;
  const list = button.closest('[data-list-id]')?.dataset.listId;
  const action = button.dataset.action;
  act(async () => {
    if (invitation) await graphql(ANSWER[action], { id: invitation });
    else if (list && action === 'leave') await graphql(LEAVE_LIST, { list });
    await refreshLists();
  });
}

// ---- Page chrome ----

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function setConnection(status) {
  const indicator = byTestId('connection');
  indicator.textContent = status;
  indicator.dataset.state = status;
}

function showSignedIn(name) {
  byTestId('sign-in-form').hidden = true;
  byTestId('app').hidden = false;
  byTestId('sign-out').hidden = false;
  byTestId('user-name').textContent = name;
  renderTasks();
  renderNotifications();
}

function showSignedOut() {
  byTestId('sign-in-form').hidden = false;
  byTestId('app').hidden = true;
  byTestId('sign-out').hidden = true;
  byTestId('unread-badge').hidden = true;
  byTestId('user-name').textContent = '';
  byTestId('task-list').replaceChildren();
  byTestId('notification-list').replaceChildren();
}

function showError(message) {
  const area = byTestId('error');
  area.textContent = message;
  area.hidden = false;
}

function clearError() {
  byTestId('error').hidden = true;
  byTestId('error').textContent = '';
}

function showToast(message) {
  const toast = byTestId('toast');
  toast.textContent = message;
  toast.hidden = false;
  clearTimeout(state.toastTimer);
  state.toastTimer = setTimeout(() => {
    toast.hidden = true;
  }, TOAST_MS);
}

/** The priority choices of the new-task form and the filter, lowest first. */
function fillPriorities() {
  for (const id of ['new-priority', 'filter-priority']) {
    const select = byTestId(id);
    for (const priority of Object.keys(PRIORITY_RANK)) {
      const label = priority.charAt(0) + priority.slice(1).toLowerCase();
      select.append(element('option', { value: priority }, label));
    }
  }
}

function bind() {
  fillPriorities();
  byTestId('sign-in-form').addEventListener('submit', (event) => {
    event.preventDefault();
    askNotificationPermission();
    act(() => signIn(byTestId('sign-in-name').value.trim()));
  });
  byTestId('sign-out').addEventListener('click', () => signOut());
  byTestId('create-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    act(() => createTask(form));
  });
  for (const id of ['search', 'filter-status', 'filter-priority', 'filter-tag']) {
    byTestId(id).addEventListener('input', renderTasks);
  }
  byTestId('task-list').addEventListener('click', onTaskListClick);
  byTestId('undo-button').addEventListener('click', undoLastChange);
  byTestId('mark-all-read').addEventListener('click', () => act(markAllRead));
  byTestId('notification-list').addEventListener('click', onNotificationListClick);
  byTestId('quick-add-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    act(() => quickAdd(form));
  });
  byTestId('create-list-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    act(() => createList(form));
  });
  byTestId('lists').addEventListener('submit', (event) => {
    if (!event.target.matches('[data-testid="invite-form"]')) return;
    event.preventDefault();
    const form = event.target;
    act(() => inviteTo(form));
  });
  byTestId('lists').addEventListener('click', onListsClick);
  window.addEventListener('storage', onStorage);
}

bind();
electNotifier();
const saved = loadSession();
if (saved) startSession(saved);
else showSignedOut();
