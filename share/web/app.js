// app.js: the instructors' live dashboard. One EventSource (or WebSocket) to
// notify; per class a table of students built from its snapshot and kept up
// to date by each routed message. Data reaches the page only as textContent.
'use strict';

(function () {

const MAX_ERRORS = 10;		// entries of a class's "Latest errors" list
const BACKOFF_MIN = 1000, BACKOFF_MAX = 10000;
const TICK = 5000;		// refresh of the relative times
const ACTIVE_MS = 5 * 60 * 1000;	// "active" in a class's summary line
const STREAM_ID = /^\d+-\d+$/;

// Close codes after which trying again cannot help; the HTTP statuses of a
// refused SSE request map onto them.
const FATAL = { 4400: 'bad request', 4401: 'token refused', 4403: 'class not allowed' };
const HTTP_FATAL = { 400: 4400, 401: 4401, 403: 4403 };

const $ = (id) => document.getElementById(id);
const conf = { token: '', classes: [], proto: 'sse' };
const views = new Map();	// class -> view (see classView)
const names = new Map();	// studentId -> userName, once a message told it

let conn = null;		// the open EventSource or WebSocket
let lastId = null;		// id of the last snapshot or message received
let sinceSent = false;		// whether conn asked to resume from lastId
let attempt = 0;		// failed connects since the last hello
let retryTimer = 0;

/* Settings: the URL, then this tab's sessionStorage. */

function store(key, val) {
	try {
		if (val === null)
			sessionStorage.removeItem(key);
		else
			sessionStorage.setItem(key, val);
	} catch (e) { /* storage disabled: the URL is all we have */ }
}

function stored(key) {
	try { return sessionStorage.getItem(key); } catch (e) { return null; }
}

function splitClasses(s) {
	return [...new Set(String(s).split(/[\s,]+/).filter(Boolean))];
}

// The URL keeps the classes and the protocol (so it can be bookmarked) but
// never the token, which would end up in history and screenshots.
function writeUrl() {
	const url = new URL(location.href);
	const p = new URLSearchParams();
	for (const c of conf.classes)
		p.append('class', c);
	if (conf.proto === 'ws')
		p.set('proto', 'ws');
	url.search = p.toString();
	history.replaceState(null, '', url);
}

function readSettings() {
	const p = new URLSearchParams(location.search);
	const token = p.get('token');
	if (token)
		store('labpulse.token', token);
	conf.token = token || stored('labpulse.token') || '';
	conf.classes = splitClasses(p.getAll('class').join(' '));
	if (conf.classes.length)
		store('labpulse.classes', conf.classes.join(' '));
	else
		conf.classes = splitClasses(stored('labpulse.classes') || '');
	conf.proto = (p.get('proto') || stored('labpulse.proto')) === 'ws' ? 'ws' : 'sse';
	store('labpulse.proto', conf.proto);
	if (p.has('token') || conf.classes.length)
		writeUrl();
}

function showForm(message) {
	const form = $('login');
	$('login-msg').textContent = message || '';
	$('f-classes').value = conf.classes.join(' ');
	$('f-token').value = conf.token;
	form.querySelector(`input[name=proto][value=${conf.proto}]`).checked = true;
	$('cancel').hidden = !conf.classes.length;
	form.hidden = false;
	(conf.classes.length ? $('f-token') : $('f-classes')).focus();
}

function onSubmit(ev) {
	ev.preventDefault();
	const classes = splitClasses($('f-classes').value);
	if (!classes.length) {
		$('login-msg').textContent = 'Enter at least one class.';
		return;
	}
	conf.classes = classes;
	conf.token = $('f-token').value.trim();
	conf.proto = $('login').querySelector('input[name=proto]:checked').value;
	store('labpulse.classes', classes.join(' '));
	store('labpulse.token', conf.token || null);
	store('labpulse.proto', conf.proto);
	writeUrl();
	$('login').hidden = true;
	restart();
}

/* Connection */

function setState(state, text) {
	const el = $('state');
	el.dataset.state = state;
	el.textContent = text;
}

function query() {
	const q = new URLSearchParams();
	for (const c of conf.classes)
		q.append('class', c);
	if (conf.token)
		q.set('token', conf.token);
	// Resume only when every table holds its snapshot: a class whose
	// snapshot never came would otherwise never get one.
	sinceSent = lastId !== null &&
	    conf.classes.every((c) => views.has(c) && views.get(c).synced);
	if (sinceSent)
		q.set('since', lastId);
	return q;
}

function connect() {
	retryTimer = 0;
	setState('connecting', attempt ? 'reconnecting…' : 'connecting…');
	const q = query();
	if (!sinceSent)		// fresh snapshots will replace the tables
		for (const v of views.values())
			setSynced(v, false);
	if (conf.proto === 'ws')
		openWs(q);
	else
		openSse(q);
}

function disconnect() {
	clearTimeout(retryTimer);
	retryTimer = 0;
	if (conn) {
		const c = conn;
		conn = null;
		c.close();
	}
}

function restart() {
	disconnect();
	lastId = null;
	attempt = 0;
	buildViews();
	connect();
}

function retry(why) {
	const delay = Math.min(BACKOFF_MAX, BACKOFF_MIN * 2 ** attempt);
	attempt++;
	setState('reconnecting', `${why}; reconnecting in ${Math.round(delay / 1000)} s`);
	retryTimer = setTimeout(connect, delay);
}

function fail(code, reason) {
	if (code === 4400 && sinceSent) {
		// Most likely our resume point: start over with snapshots.
		lastId = null;
		retry('resume refused');
		return;
	}
	let text = `error: ${FATAL[code]} (${code})`;
	if (reason && reason !== FATAL[code])
		text += `: ${reason}`;
	setState('error', text);
	showForm(text);
}

function openSse(q) {
	const url = new URL('sse?' + q, location.href);
	const es = new EventSource(url);
	let opened = false;
	conn = es;
	const receive = (ev) => {
		if (conn === es)
			handle(ev.data, 'SSE');
	};
	for (const type of ['hello', 'snapshot', 'message', 'resync'])
		es.addEventListener(type, receive);
	es.onopen = () => { opened = true; };
	// The page reconnects itself, with its own backoff and ?since=, rather
	// than leaving it to EventSource, whose retries are neither bounded nor
	// told why they failed.
	es.onerror = () => {
		if (conn !== es)
			return;
		es.close();
		conn = null;
		if (opened)
			retry('connection lost');
		else
			probe(url);
	};
}

// EventSource does not say why a request failed: ask once more with fetch
// to read the status and the error text of the JSON body.
async function probe(url) {
	const ac = new AbortController();
	const timer = setTimeout(() => ac.abort(), 5000);
	let status = 0, reason = '';
	try {
		const r = await fetch(url, {
			headers: { Accept: 'text/event-stream' },
			cache: 'no-store', signal: ac.signal,
		});
		status = r.status;
		if (!r.ok)
			reason = (await r.json()).error || '';
	} catch (e) { /* unreachable, or a body that is not JSON */ }
	clearTimeout(timer);
	ac.abort();
	if (conn || retryTimer)
		return;		// restarted meanwhile
	if (HTTP_FATAL[status])
		fail(HTTP_FATAL[status], reason);
	else if (status)
		retry(`HTTP ${status}${reason ? ' ' + reason : ''}`);
	else
		retry('cannot reach notify');
}

function openWs(q) {
	const url = new URL('ws?' + q, location.href);
	url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
	const ws = new WebSocket(url);
	conn = ws;
	ws.onmessage = (ev) => {
		if (conn === ws && typeof ev.data === 'string')
			handle(ev.data, 'WebSocket');
	};
	ws.onclose = (ev) => {
		if (conn !== ws)
			return;
		conn = null;
		if (FATAL[ev.code])
			fail(ev.code, ev.reason);
		else if (ev.code === 1006)
			retry('connection lost');
		else
			retry(`closed ${ev.code}${ev.reason ? ' ' + ev.reason : ''}`);
	};
}

function handle(data, proto) {
	let msg;
	try {
		msg = JSON.parse(data);
	} catch (e) {
		console.warn('labpulse: not JSON:', data);
		return;
	}
	if (!msg || typeof msg !== 'object')
		return;
	switch (msg.type) {
	case 'hello':
		attempt = 0;
		$('who').textContent = msg.instructor ? `signed in as ${msg.instructor}` : '';
		setState('connected', `connected (${proto})`);
		break;
	case 'snapshot':
		applySnapshot(msg);
		break;
	case 'message':
		applyMessage(msg);
		break;
	case 'resync':
		// Snapshots follow; until each arrives its table is incomplete.
		for (const v of views.values())
			setSynced(v, false);
		break;
	}
	if ((msg.type === 'snapshot' || msg.type === 'message') &&
	    STREAM_ID.test(msg.id))
		lastId = msg.id;
}

/* The tables */

// Event times without a zone are UTC (DESIGN.md); Date.parse would take them
// as local time, and wants at most milliseconds.
function parseTime(s) {
	if (typeof s !== 'string')
		return NaN;
	const m = /^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d(?::\d\d)?)(\.\d+)?(Z|[+-]\d\d:?\d\d)?$/i.exec(s.trim());
	if (!m)
		return Date.parse(s);
	let zone = m[4] || 'Z';
	if (zone.length === 5)
		zone = zone.slice(0, 3) + ':' + zone.slice(3);
	return Date.parse(`${m[1]}T${m[2]}${(m[3] || '').slice(0, 4)}${zone.toUpperCase()}`);
}

function ago(t, now) {
	const s = Math.floor((now - t) / 1000);
	if (s < 10)
		return 'just now';
	if (s < 60)
		return `${s} s ago`;
	if (s < 3600)
		return `${Math.floor(s / 60)} min ago`;
	if (s < 86400)
		return `${Math.floor(s / 3600)} h ago`;
	return `${Math.floor(s / 86400)} d ago`;
}

function el(tag, cls, text) {
	const e = document.createElement(tag);
	if (cls)
		e.className = cls;
	if (text !== undefined)
		e.textContent = text;
	return e;
}

let viewSeq = 0;

function classView(name) {
	let v = views.get(name);
	if (v)
		return v;
	const id = `c${++viewSeq}`;
	const section = el('section', 'class');
	section.setAttribute('aria-labelledby', `${id}-h`);
	const head = el('header', 'class-head');
	const h = el('h2', null, name);
	h.id = `${id}-h`;
	const summary = el('p', 'summary');
	head.append(h, summary);

	const table = el('table', 'students');
	table.dataset.class = name;
	table.setAttribute('aria-busy', 'true');
	table.append(el('caption', 'sr-only', `Students of ${name}, most recent activity first`));
	const tr = document.createElement('tr');
	// The header's classes differ from the rows' cells, which tests read.
	for (const [label, cls] of [['Student', 'col-student'],
	    ['Notebook', 'col-notebook'], ['Executions', 'col-executions num'],
	    ['Errors', 'col-errors num'], ['Last activity', 'col-last']]) {
		const th = el('th', cls, label);
		th.scope = 'col';
		tr.append(th);
	}
	table.createTHead().append(tr);
	const tbody = table.createTBody();
	const empty = el('p', 'empty', 'Waiting for the class’s current state…');
	const wrap = el('div', 'table-wrap');
	wrap.append(table, empty);

	const aside = el('aside', 'errors-panel');
	aside.setAttribute('aria-labelledby', `${id}-e`);
	const eh = el('h3', null, 'Latest errors');
	eh.id = `${id}-e`;
	const list = el('ol', 'error-list');
	const none = el('p', 'empty', 'None so far.');
	aside.append(eh, list, none);

	const body = el('div', 'class-body');
	body.append(wrap, aside);
	section.append(head, body);
	$('classes').append(section);

	v = { name, section, table, tbody, summary, empty, list, none,
	    students: new Map(), rows: new Map(), errors: [], synced: false,
	    dirty: false };
	views.set(name, v);
	return v;
}

function buildViews() {
	for (const [name, v] of views) {
		if (!conf.classes.includes(name)) {
			v.section.remove();
			views.delete(name);
		}
	}
	for (const name of conf.classes)
		classView(name);
	// Keep the sections in the order the classes were asked for.
	for (const name of conf.classes)
		$('classes').append(views.get(name).section);
	document.title = `labpulse · ${conf.classes.join(', ')}`;
}

function setSynced(v, synced) {
	v.synced = synced;
	schedule(v);	// which clears aria-busy once the rows are drawn
}

function newStudent(id) {
	return { id, notebook: '', executions: 0, errors: 0, last: -Infinity,
	    alert: false, errorMessage: '' };
}

function seen(s, time) {
	const t = parseTime(time);
	if (t > s.last || s.last === -Infinity)
		s.last = Number.isNaN(t) ? -Infinity : t;
}

function count(n) {
	return Number.isFinite(Number(n)) ? Number(n) : 0;
}

// A snapshot holds one row per student and notebook; the table shows one per
// student, in the notebook of their latest activity.
function applySnapshot(msg) {
	const v = classView(String(msg.class));
	const old = v.students;
	v.students = new Map();
	for (const r of Array.isArray(msg.students) ? msg.students : []) {
		if (!r || r.studentId === undefined || r.studentId === null)
			continue;
		const id = String(r.studentId);
		let s = v.students.get(id);
		if (!s) {
			s = newStudent(id);
			// A resync must not hide whom an alert pointed at.
			if (old.has(id)) {
				s.alert = old.get(id).alert;
				s.errorMessage = old.get(id).errorMessage;
			}
			v.students.set(id, s);
		}
		s.executions += count(r.executions);
		s.errors += count(r.errors);
		const t = parseTime(r.lastActivity);
		if (!s.notebook || t >= s.last) {
			s.notebook = r.notebookPath ? String(r.notebookPath) : s.notebook;
			if (!Number.isNaN(t))
				s.last = Math.max(s.last, t);
		}
	}
	setSynced(v, true);
}

function applyMessage(msg) {
	const m = msg.message;
	if (!m || typeof m !== 'object' || m.studentId === undefined || m.studentId === null)
		return;
	let name = msg.class;
	if (typeof name !== 'string' && typeof m.topic === 'string')
		name = m.topic.replace(/^class:/, '');
	if (typeof name !== 'string')
		return;
	const v = classView(name);
	const id = String(m.studentId);
	let s = v.students.get(id);
	if (!s) {
		s = newStudent(id);
		v.students.set(id, s);
	}
	if (typeof m.userName === 'string' && m.userName)
		names.set(id, m.userName);
	if (typeof m.notebookPath === 'string' && m.notebookPath)
		s.notebook = m.notebookPath;
	seen(s, m.eventTime || m.receivedAt);
	if (m.kind === 'activity') {
		if (m.eventType === 'cell_executed') {
			s.executions++;
			// A cell that ran clean means the student got past the error.
			if (m.hasError !== true)
				s.alert = false;
		}
		if (m.hasError === true)
			s.errors++;
	} else if (m.kind === 'alert') {
		s.alert = true;
		s.errorMessage = typeof m.errorMessage === 'string' && m.errorMessage ?
		    m.errorMessage : 'error';
		v.errors.unshift({ id, time: parseTime(m.eventTime || m.receivedAt),
		    notebook: s.notebook, message: s.errorMessage });
		v.errors.length = Math.min(v.errors.length, MAX_ERRORS);
	}
	schedule(v);
}

// Messages come in bursts after a reconnect: draw each table once per burst.
function schedule(v) {
	if (v.dirty)
		return;
	v.dirty = true;
	setTimeout(() => {
		v.dirty = false;
		render(v);
	}, 30);
}

function set(node, text) {
	if (node.textContent !== text)
		node.textContent = text;
}

function displayName(id) {
	return names.get(id) || id;
}

function newRow(id) {
	const tr = document.createElement('tr');
	tr.dataset.student = id;
	const th = el('th', 'student');
	th.scope = 'row';
	const badge = el('span', 'badge', 'error');
	badge.hidden = true;
	th.append(el('span', 'name'), ' ', badge, el('span', 'errmsg'));
	const time = document.createElement('time');
	const last = el('td', 'last');
	last.append(time);
	tr.append(th, el('td', 'notebook'), el('td', 'executions num'),
	    el('td', 'errors num'), last);
	return tr;
}

function fillTime(time, t, now) {
	if (!Number.isFinite(t)) {
		set(time, '—');
		time.removeAttribute('datetime');
		time.removeAttribute('title');
		return;
	}
	const d = new Date(t);
	if (time.dateTime !== d.toISOString()) {
		time.dateTime = d.toISOString();
		time.title = d.toLocaleString(undefined,
		    { dateStyle: 'medium', timeStyle: 'medium' });
	}
	set(time, ago(t, now));
}

function render(v) {
	const now = Date.now();
	const list = [...v.students.values()].sort((a, b) =>
	    b.last - a.last || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
	for (const [id, tr] of v.rows) {
		if (!v.students.has(id)) {
			tr.remove();
			v.rows.delete(id);
		}
	}
	list.forEach((s, i) => {
		let tr = v.rows.get(s.id);
		if (!tr) {
			tr = newRow(s.id);
			v.rows.set(s.id, tr);
		}
		const [who, nb, ex, er, last] = tr.cells;
		const name = displayName(s.id);
		set(who.querySelector('.name'), name);
		who.title = name === s.id ? '' : s.id;
		const badge = who.querySelector('.badge');
		badge.hidden = !s.alert;
		badge.title = s.alert ? s.errorMessage : '';
		const errmsg = who.querySelector('.errmsg');
		set(errmsg, s.alert ? s.errorMessage : '');
		errmsg.title = badge.title;
		tr.classList.toggle('alert', s.alert);
		set(nb, s.notebook);
		set(ex, String(s.executions));
		set(er, String(s.errors));
		er.classList.toggle('nonzero', s.errors > 0);
		fillTime(last.firstChild, s.last, now);
		if (v.tbody.rows[i] !== tr)
			v.tbody.insertBefore(tr, v.tbody.rows[i] || null);
	});
	v.table.setAttribute('aria-busy', String(!v.synced));
	v.empty.hidden = list.length > 0;
	v.empty.textContent = v.synced ? 'No activity yet.' :
	    'Waiting for the class’s current state…';
	renderSummary(v, list, now);
	renderErrors(v, now);
}

function renderSummary(v, list, now) {
	const active = list.filter((s) => now - s.last < ACTIVE_MS).length;
	const alerts = list.filter((s) => s.alert).length;
	let text = `${list.length} student${list.length === 1 ? '' : 's'} · ${active} active in the last 5 min`;
	if (alerts)
		text += ` · ${alerts} with a new error`;
	set(v.summary, text);
}

function renderErrors(v, now) {
	const items = v.errors.map((e) => {
		const li = el('li');
		const time = document.createElement('time');
		fillTime(time, e.time, now);
		const head = el('span', 'err-head');
		head.append(el('strong', null, displayName(e.id)), ' ',
		    el('span', 'err-nb', e.notebook), ' ', time);
		li.append(head, el('span', 'err-msg', e.message));
		return li;
	});
	v.list.replaceChildren(...items);
	v.none.hidden = items.length > 0;
}

function tick() {
	for (const v of views.values())
		render(v);
}

/* Start */

function start() {
	$('login').addEventListener('submit', onSubmit);
	$('settings').addEventListener('click', () => showForm(''));
	$('cancel').addEventListener('click', () => { $('login').hidden = true; });
	// Back online, or back to the tab: no need to sit out the backoff.
	const hurry = () => {
		if (retryTimer) {
			clearTimeout(retryTimer);
			connect();
		}
	};
	window.addEventListener('online', hurry);
	document.addEventListener('visibilitychange', () => {
		if (!document.hidden)
			hurry();
	});
	setInterval(tick, TICK);

	readSettings();
	if (!conf.classes.length) {
		showForm('');
		return;
	}
	buildViews();
	connect();
}

start();

})();
