// Runs libSQL's JavaScript client (@libsql/client), unchanged, against a
// snapdeck database: TestNodeClient in web/dataplane_node_test.go starts
// it with LIBSQL_CLIENT_ENTRY (the package's ESM entry), DB_URL (the
// database's URL without its trailing slash) and DB_TOKEN. It prints "ok"
// and exits 0 when every check passed.
import { pathToFileURL } from "node:url";

const { createClient } = await import(pathToFileURL(process.env.LIBSQL_CLIENT_ENTRY).href);

function check(cond, what) {
	if (!cond) {
		throw new Error("check failed: " + what);
	}
}

async function count(client, table) {
	const rs = await client.execute(`SELECT count(*) AS n FROM ${table}`);
	return rs.rows[0].n;
}

async function expectError(promise, words, what) {
	try {
		await promise;
	} catch (e) {
		check(String(e.message).includes(words), `${what}: error ${e.message} lacks "${words}"`);
		return e;
	}
	throw new Error(`${what}: succeeded, want an error`);
}

for (const url of [process.env.DB_URL + "/", process.env.DB_URL]) {
	const client = createClient({ url, authToken: process.env.DB_TOKEN, intMode: "bigint" });
	const t = url.endsWith("/") ? "with_slash" : "without_slash";
	await client.execute(`CREATE TABLE ${t}(id INTEGER PRIMARY KEY, i INTEGER, f REAL, s TEXT, b BLOB)`);

	// execute: values at their extremes.
	const ins = `INSERT INTO ${t}(i, f, s, b) VALUES (?, ?, ?, ?)`;
	const r = await client.execute({ sql: ins, args: [9223372036854775807n, 1.5e300, "héllo 🎉", new Uint8Array([0, 1, 255])] });
	check(r.rowsAffected === 1 && r.lastInsertRowid === 1n, `insert: rowsAffected ${r.rowsAffected}, lastInsertRowid ${r.lastInsertRowid}`);
	await client.execute({ sql: ins, args: [-9223372036854775808n, -0.25, "", null] });
	const rows = (await client.execute(`SELECT i, f, s, b FROM ${t} ORDER BY id`)).rows;
	check(rows[0].i === 9223372036854775807n && rows[1].i === -9223372036854775808n, `int64 extremes: ${rows[0].i}, ${rows[1].i}`);
	check(rows[0].f === 1.5e300 && rows[1].f === -0.25, `floats: ${rows[0].f}, ${rows[1].f}`);
	check(rows[0].s === "héllo 🎉" && rows[1].s === "", `text: ${rows[0].s}`);
	check(Buffer.from(rows[0].b).equals(Buffer.from([0, 1, 255])) && rows[1].b === null, `blob: ${rows[0].b}`);

	// batch("write"): all or nothing.
	const before = await count(client, t);
	const br = await client.batch([{ sql: ins, args: [1n, 1, "a", null] }, { sql: ins, args: [2n, 2, "b", null] }], "write");
	check(br.length === 2 && br[1].lastInsertRowid === before + 2n, `batch: ${br.length} results`);
	await expectError(client.batch([{ sql: ins, args: [3n, 3, "c", null] }, "INSERT INTO nowhere VALUES (1)"], "write"), "no such table", "failing batch");
	check(await count(client, t) === before + 2n, "a failing batch kept rows");

	// transaction(): rolled back, then committed.
	const tx1 = await client.transaction("write");
	await tx1.execute({ sql: ins, args: [4n, 4, "d", null] });
	check((await tx1.execute(`SELECT count(*) AS n FROM ${t}`)).rows[0].n === before + 3n, "inside the transaction");
	await tx1.rollback();
	check(await count(client, t) === before + 2n, "rollback kept a row");
	const tx2 = await client.transaction("write");
	await tx2.execute({ sql: ins, args: [5n, 5, "e", null] });
	await tx2.commit();
	check(await count(client, t) === before + 3n, "commit lost its row");

	// executeMultiple: several statements in one text.
	await client.executeMultiple(`INSERT INTO ${t}(i) VALUES (6); INSERT INTO ${t}(i) VALUES (7);`);
	check(await count(client, t) === before + 5n, "executeMultiple");

	// Errors carry SQLite's words and a code.
	const e = await expectError(client.execute(`INSERT INTO ${t}(id) VALUES (1)`), "UNIQUE constraint failed", "duplicate key");
	check(String(e.code).startsWith("SQLITE_CONSTRAINT"), `error code ${e.code}`);
	client.close();
}
console.log("ok");
