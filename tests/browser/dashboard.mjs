// dashboard.mjs: open the instructors' page in Debian's chromium (headless,
// through playwright-core) and wait for what a test expects to see there.
//
// usage: node dashboard.mjs URL [--state STATE] [--class CLASS]
//            [--row STUDENT --expect SPEC [--expect SPEC ...]] [--absent STUDENT ...]
//            [--timeout MS] [--screenshot FILE]
//
// Waits until #state says STATE (default: connected) and, for that state,
// every class table holds its snapshot; prints "ready". Then for each
// --expect in turn waits until the row of STUDENT matches SPEC and prints
// {"step":N,"url":...,"state":...,"row":{...}} on one line. SPEC is a comma
// list of CELL=TEXT (cells: notebook, executions, errors, last, name) and
// alert or !alert. A row of an --absent student fails the run whenever seen.
// Exit 0 when all was seen; 1 (with what the page showed, on stderr) when not
// within --timeout ms per wait (default 15000) or when the page threw; 64 for
// bad usage; 69 when chromium cannot start ($CHROMIUM, default
// /usr/bin/chromium).
import { chromium } from 'playwright-core';

const USAGE = 'usage: node dashboard.mjs URL [--state STATE] [--class CLASS] ' +
    '[--row STUDENT --expect SPEC ...] [--absent STUDENT ...] [--timeout MS] [--screenshot FILE]';

function usage(why) {
	console.error(`dashboard.mjs: ${why}\n${USAGE}`);
	process.exit(64);
}

function parseArgs(argv) {
	const o = { url: null, state: 'connected', cls: null, row: null, expect: [],
	    absent: [], timeout: 15000, screenshot: null };
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		if (!a.startsWith('--')) {
			if (o.url)
				usage(`unexpected argument ${a}`);
			o.url = a;
			continue;
		}
		const v = argv[++i];
		if (v === undefined)
			usage(`${a} needs a value`);
		switch (a) {
		case '--absent': o.absent.push(v); break;
		case '--class': o.cls = v; break;
		case '--expect': o.expect.push(parseSpec(v)); break;
		case '--row': o.row = v; break;
		case '--screenshot': o.screenshot = v; break;
		case '--state': o.state = v; break;
		case '--timeout':
			o.timeout = Number(v);
			if (!Number.isInteger(o.timeout) || o.timeout < 1 || o.timeout > 600000)
				usage('--timeout takes milliseconds, 1 to 600000');
			break;
		default: usage(`unknown option ${a}`);
		}
	}
	if (!o.url)
		usage('no URL');
	if (o.expect.length && !o.row)
		usage('--expect needs --row');
	return o;
}

function parseSpec(spec) {
	const cells = {};
	let alert;
	for (const part of spec.split(',')) {
		const eq = part.indexOf('=');
		if (part === 'alert' || part === '!alert')
			alert = part === 'alert';
		else if (eq > 0)
			cells[part.slice(0, eq)] = part.slice(eq + 1);
		else
			usage(`bad --expect ${spec}`);
	}
	return { spec, cells, alert };
}

// What the page shows, read in the page: the state and every row.
function look() {
	const text = (el) => (el ? el.textContent.trim() : null);
	const state = document.getElementById('state');
	const rows = [...document.querySelectorAll('table[data-class] tr[data-student]')].map((tr) => ({
		class: tr.closest('table').dataset.class,
		student: tr.dataset.student,
		name: text(tr.querySelector('.student .name')),
		notebook: text(tr.querySelector('.notebook')),
		executions: text(tr.querySelector('.executions')),
		errors: text(tr.querySelector('.errors')),
		last: text(tr.querySelector('.last')),
		lastTitle: tr.querySelector('.last time')?.title ?? null,
		alert: tr.classList.contains('alert'),
	}));
	const tables = [...document.querySelectorAll('table[data-class]')].map((t) => ({
		class: t.dataset.class, busy: t.getAttribute('aria-busy') === 'true' }));
	return { url: location.href, state: state?.dataset.state ?? null,
	    stateText: text(state), tables, rows };
}

const o = parseArgs(process.argv.slice(2));
let browser;
try {
	browser = await chromium.launch({
		executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
		headless: true,
		args: ['--no-sandbox', '--headless=new'],
	});
} catch (e) {
	console.error(`dashboard.mjs: cannot start chromium: ${e.message.split('\n')[0]}`);
	process.exit(69);
}

const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
let pageError = null;
page.on('pageerror', (e) => { pageError = e; });
// The page's complaints, with tokens hidden; failed requests with their
// address rather than as the console's "Failed to load resource".
const hide = (s) => s.replace(/([?&]token=)[^&\s']*/g, '$1…');
page.on('console', (m) => {
	if ((m.type() === 'error' || m.type() === 'warning') &&
	    !m.text().startsWith('Failed to load resource'))
		console.error(`page: ${m.type()}: ${hide(m.text())}`);
});
page.on('response', (r) => {
	if (r.status() >= 400)
		console.error(`page: HTTP ${r.status()} ${hide(r.url())}`);
});

async function finish(code, why, seen) {
	if (why)
		console.error(`dashboard.mjs: ${why}`);
	if (seen)
		console.error(`dashboard.mjs: the page showed: ${JSON.stringify(seen, null, 1)}`);
	if (o.screenshot)
		await page.screenshot({ path: o.screenshot, fullPage: true }).catch(() => {});
	await browser.close();
	process.exit(code);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Poll the page until test(seen) is true; fail on a page error, an absent
// student's row, or the deadline.
async function until(what, test) {
	const deadline = Date.now() + o.timeout;
	for (;;) {
		const seen = await page.evaluate(look);
		if (pageError)
			await finish(1, `the page threw: ${pageError.message}`, seen);
		const intruder = seen.rows.find((r) => o.absent.includes(r.student));
		if (intruder)
			await finish(1, `a row for ${intruder.student} appeared`, seen);
		if (test(seen))
			return seen;
		if (Date.now() > deadline)
			await finish(1, `gave up after ${o.timeout} ms waiting for ${what}`, seen);
		await sleep(100);
	}
}

function rowOf(seen) {
	return seen.rows.find((r) => r.student === o.row && (!o.cls || r.class === o.cls));
}

function matches(row, { cells, alert }) {
	return row && Object.entries(cells).every(([k, v]) => row[k] === v) &&
	    (alert === undefined || row.alert === alert);
}

try {
	await page.goto(o.url, { timeout: o.timeout });
} catch (e) {
	await finish(1, hide(`cannot open ${o.url}: ${e.message.split("\n")[0]}`));
}
await until(`state ${o.state}`, (s) => s.state === o.state &&
    (o.state !== 'connected' || s.tables.every((t) => !t.busy)));
console.log('ready');
for (const [i, step] of o.expect.entries()) {
	const seen = await until(`${o.row} with ${step.spec}`, (s) => matches(rowOf(s), step));
	console.log(JSON.stringify({ step: i + 1, url: seen.url, state: seen.stateText,
	    row: rowOf(seen) }));
}
if (!o.expect.length) {
	const seen = await until('nothing', () => true);
	console.log(JSON.stringify({ step: 0, url: seen.url, state: seen.stateText }));
}
await finish(0);
