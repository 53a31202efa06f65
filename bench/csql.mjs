// bench/csql.mjs: the SQL a C source sends, for checking that a pgbench
// mirror in bench/sql/ still matches the route it stands for. Adjacent C
// string literals are joined (as the compiler does); a mirror names its
// source as "-- mirror-of: <file> <anchor> <sha256 prefix>", where the anchor
// is the name of a `static const char NAME[]` or a piece of the SQL text.
//   node bench/csql.mjs FILE ANCHOR     prints the SQL and its hash
import crypto from 'node:crypto';
import fs from 'node:fs';

const ESC = { n: '\n', t: '\t', r: '\r', '\\': '\\', '"': '"', "'": "'", 0: '\0' };

// [{ start, text }] for every run of adjacent string literals
export function stringRuns(src) {
	const runs = [];
	let i = 0;
	let cur = null;
	const skipGap = (j) => {
		for (;;) {
			// a macro's line continuations join its literals too
			while (j < src.length && (/\s/.test(src[j]) || (src[j] === '\\' && src[j + 1] === '\n'))) j++;
			if (src.startsWith('//', j)) j = src.indexOf('\n', j) < 0 ? src.length : src.indexOf('\n', j);
			else if (src.startsWith('/*', j)) j = src.indexOf('*/', j) + 2;
			else return j;
		}
	};
	while (i < src.length) {
		if (src.startsWith('//', i)) {
			i = src.indexOf('\n', i) < 0 ? src.length : src.indexOf('\n', i);
		} else if (src.startsWith('/*', i)) {
			i = src.indexOf('*/', i) + 2;
		} else if (src[i] === "'") {
			i += src[i + 1] === '\\' ? 4 : 3;
		} else if (src[i] === '"') {
			let s = '';
			let j = i + 1;
			while (src[j] !== '"') {
				if (src[j] === '\\') {
					s += ESC[src[j + 1]] ?? src[j + 1];
					j += 2;
				} else {
					s += src[j++];
				}
			}
			if (!cur) cur = { start: i, text: '' };
			cur.text += s;
			const next = skipGap(j + 1);
			if (src[next] === '"') {
				i = next;
			} else {
				runs.push(cur);
				cur = null;
				i = j + 1;
			}
		} else {
			i++;
		}
	}
	return runs;
}

// anchor "fn:NAME": what the C function NAME sends, i.e. how a statement
// goes out (round trips, prepared or not, pipelined or not): its libpq calls
// in source order and its SQL literals, not its error handling.
export function findSql(file, anchor) {
	const src = fs.readFileSync(file, 'utf8');
	if (anchor.startsWith('fn:')) {
		const m = new RegExp(`^[A-Za-z][^\\n;]*\\b${anchor.slice(3)}\\([^;]*?\\)\\n\\{`, 'm').exec(src);
		if (!m) return null;
		const body = src.slice(m.index, src.indexOf('\n}\n', m.index) + 3);
		const calls = [...body.matchAll(/\b(PQ(?:send|exec|prepare|enterPipeline|exitPipeline|pipelineSync)[A-Za-z]*)\s*\(/g)].map((c) => c[1]).join(' ');
		const text = `${calls}\n${stringRuns(body).map((r) => r.text).join('\n')}`;
		return { text, hash: crypto.createHash('sha256').update(text).digest('hex').slice(0, 12) };
	}
	const runs = stringRuns(src);
	let run;
	if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(anchor)) {
		const m = new RegExp(`\\b${anchor}\\s*\\[\\]\\s*=`).exec(src);
		if (m) run = runs.find((r) => r.start > m.index);
	} else {
		run = runs.find((r) => r.text.includes(anchor));
	}
	if (!run) return null;
	return { text: run.text, hash: crypto.createHash('sha256').update(run.text).digest('hex').slice(0, 12) };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop())) {
	const r = findSql(process.argv[2], process.argv[3]);
	if (!r) {
		console.error('not found');
		process.exit(1);
	}
	console.log(r.text);
	console.log(r.hash);
}
