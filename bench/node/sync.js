#!/usr/bin/env node
// bench/node/sync.js: what a user would write instead of zendesk_sync(),
// for bench/run.sh.  It pages the same four incremental exports with the
// node-zendesk client and upserts every page into PostgreSQL with the pg
// driver, each page and its checkpoint in one transaction, with the same
// version guard as zendesk_sync (update only a newer version, or the same
// version with different data).
//
//   node sync.js --url http://127.0.0.1:PORT --pg postgres://postgres@127.0.0.1:5432/db \
//                --schema node_careful --mode careful|common [--per-page 1000]
//
// Modes:
//   common   one INSERT ... ON CONFLICT per record, parameters per column
//            (the way most hand-written syncs do it)
//   careful  one statement per page: INSERT ... SELECT over
//            jsonb_array_elements($1) ON CONFLICT ...
//
// The target tables <schema>.<stream> must exist with the same columns as
// zendesk_sync's tables (bench.py creates them LIKE the synced ones).
// Prints one JSON line: per stream records/pages/seconds, and the CPU time
// of this process and of its PostgreSQL backend (from /proc).
'use strict';

const fs = require('node:fs');
const zendesk = require('node-zendesk');
const { Client } = require('pg');

function arg(name, dflt) {
  const i = process.argv.indexOf('--' + name);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  if (dflt === undefined) throw new Error('missing --' + name);
  return dflt;
}

const URL_ = arg('url').replace(/\/$/, '');
const MODE = arg('mode');
const SCHEMA = arg('schema');
const PER_PAGE = parseInt(arg('per-page', '1000'), 10);
const STREAMS = arg('streams', 'tickets,ticket_events,users,organizations').split(',');
if (!['common', 'careful'].includes(MODE)) throw new Error('--mode is common or careful');

// stream -> export and version column; epoch: JSON numbers that are times
const SPEC = {
  tickets: { kind: 'cursor', path: ['incremental', 'tickets', 'cursor'], version: 'generated_timestamp', epoch: ['generated_timestamp'] },
  ticket_events: { kind: 'time', path: ['incremental', 'ticket_events'], include: 'comment_events', version: 'timestamp', epoch: ['timestamp'] },
  users: { kind: 'cursor', path: ['incremental', 'users', 'cursor'], version: 'updated_at', epoch: [] },
  organizations: { kind: 'time', path: ['incremental', 'organizations'], version: 'updated_at', epoch: [] },
};

const qi = (s) => '"' + s.replace(/"/g, '""') + '"';

function cpuTicks(pid) {
  // utime + stime, in clock ticks (fields 14 and 15; the name may hold spaces)
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return parseInt(f[11], 10) + parseInt(f[12], 10);
}

function vmHWMkB(pid) {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? parseInt(m[1], 10) : null;
}

function pkgVersion(name) {
  return JSON.parse(fs.readFileSync(`${__dirname}/node_modules/${name}/package.json`, 'utf8')).version;
}

async function columns(db, table) {
  const r = await db.query(
    `SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute
     WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attname <> 'synced_at'
     ORDER BY attnum`, [table]);
  return r.rows.map((x) => ({ name: x.attname, type: x.type }));
}

function conflictClause(cols, version) {
  const sets = cols.filter((c) => c.name !== 'id').map((c) => `${qi(c.name)} = EXCLUDED.${qi(c.name)}`);
  sets.push('synced_at = now()');
  const v = qi(version);
  return `ON CONFLICT (id) DO UPDATE SET ${sets.join(', ')} WHERE t.${v} < EXCLUDED.${v} OR t.${v} IS NULL ` +
    `OR (t.${v} IS NOT DISTINCT FROM EXCLUDED.${v} AND t.data IS DISTINCT FROM EXCLUDED.data)`;
}

// common: one statement per record, one parameter per column
function commonStatement(table, cols, spec) {
  const names = cols.map((c) => qi(c.name)).join(', ');
  const params = cols.map((c, i) => `$${i + 1}`).join(', ');
  const sql = `INSERT INTO ${table} AS t (${names}) VALUES (${params}) ${conflictClause(cols, spec.version)}`;
  const conv = cols.map((c) => {
    if (c.name === 'data') return (rec) => JSON.stringify(rec);
    if (c.type === 'jsonb') return (rec) => (rec[c.name] == null ? null : JSON.stringify(rec[c.name]));
    if (c.type.startsWith('timestamp') && spec.epoch.includes(c.name))
      return (rec) => (rec[c.name] == null ? null : new Date(rec[c.name] * 1000).toISOString());
    if (c.type.endsWith('[]')) return (rec) => (Array.isArray(rec[c.name]) ? rec[c.name] : null);
    if (c.type === 'text')
      return (rec) => { const v = rec[c.name]; return v == null ? null : (typeof v === 'object' ? JSON.stringify(v) : String(v)); };
    return (rec) => (rec[c.name] === undefined ? null : rec[c.name]);
  });
  return { sql, values: (rec) => conv.map((f) => f(rec)) };
}

// careful: one statement per page, the page's records as one jsonb array
function carefulStatement(table, cols, spec) {
  const exprs = cols.map((c) => {
    const k = `'${c.name.replace(/'/g, "''")}'`;
    if (c.name === 'data') return 'r';
    if (c.type === 'jsonb') return `NULLIF(r->${k}, 'null'::jsonb)`;
    if (c.type.endsWith('[]')) {
      const elem = c.type.slice(0, -2);
      return `CASE WHEN jsonb_typeof(r->${k}) = 'array' THEN ARRAY(SELECT x::${elem} FROM jsonb_array_elements_text(r->${k}) x) END`;
    }
    if (c.type.startsWith('timestamp') && spec.epoch.includes(c.name)) return `to_timestamp((r->>${k})::bigint)`;
    if (c.type === 'text') return `r->>${k}`;
    return `(r->>${k})::${c.type}`;
  });
  const names = cols.map((c) => qi(c.name)).join(', ');
  return `INSERT INTO ${table} AS t (${names}) SELECT ${exprs.join(', ')} ` +
    `FROM jsonb_array_elements($1::jsonb) AS r ${conflictClause(cols, spec.version)}`;
}

// a time-based page may hold one id twice: keep the newest (later wins a tie)
function dedupe(records, version) {
  const byId = new Map();
  for (const r of records) {
    const o = byId.get(r.id);
    if (o === undefined || o[version] == null || (r[version] != null && String(r[version]) >= String(o[version])))
      byId.set(r.id, r);
  }
  return byId.size === records.length ? records : [...byId.values()];
}

async function getPage(client, path, query) {
  for (let attempt = 0; ; attempt++) {
    // node-zendesk's incremental helpers (tickets.incremental, requestAll)
    // buffer the whole export and give no per-page hook; a per-page
    // checkpoint needs each page's cursor or end_time, so each page is one
    // request through the client's own transport (same HTTP, auth, JSON).
    const { response, result } = await client.tickets.transporter.request('GET', [...path, query]);
    if (response.status === 200) return result;
    if ((response.status === 429 || response.status >= 500) && attempt < 5) {
      const wait = parseInt(response.headers.get('retry-after') || '1', 10);
      await new Promise((res) => setTimeout(res, Math.max(1, wait) * 1000));
      continue;
    }
    throw new Error(`GET ${path.join('/')} -> HTTP ${response.status}`);
  }
}

async function syncStream(zd, db, stream) {
  const spec = SPEC[stream];
  const table = `${qi(SCHEMA)}.${qi(stream)}`;
  const cols = await columns(db, `${SCHEMA}.${stream}`);
  const common = MODE === 'common' ? commonStatement(table, cols, spec) : null;
  const careful = MODE === 'careful' ? carefulStatement(table, cols, spec) : null;
  const st = (await db.query(`SELECT cursor, start_time FROM ${qi(SCHEMA)}.sync_state WHERE stream = $1`, [stream])).rows[0] || {};
  let cursor = st.cursor || null;
  let startTime = st.start_time != null ? Number(st.start_time) : 0;
  let pages = 0;
  let records = 0;
  const t0 = process.hrtime.bigint();
  for (;;) {
    const q = { per_page: PER_PAGE };
    if (spec.kind === 'cursor' && cursor) q.cursor = cursor;
    else q.start_time = startTime;
    if (spec.include) q.include = spec.include;
    const body = await getPage(zd, spec.path, q);
    const recs = body[stream] || [];
    await db.query('BEGIN');
    if (recs.length > 0) {
      if (common) {
        for (const r of recs) await db.query(common.sql, common.values(r));
      } else {
        await db.query(careful, [JSON.stringify(dedupe(recs, spec.version))]);
      }
    }
    if (spec.kind === 'cursor') cursor = body.after_cursor || cursor;
    else if (body.end_time != null) startTime = body.end_time;
    await db.query(
      `INSERT INTO ${qi(SCHEMA)}.sync_state (stream, cursor, start_time, pages, records) VALUES ($1, $2, $3, 1, $4)
       ON CONFLICT (stream) DO UPDATE SET cursor = EXCLUDED.cursor, start_time = EXCLUDED.start_time,
       pages = sync_state.pages + 1, records = sync_state.records + EXCLUDED.records`,
      [stream, cursor, spec.kind === 'time' ? startTime : null, recs.length]);
    await db.query('COMMIT');
    pages++;
    records += recs.length;
    if (body.end_of_stream) break;
  }
  return { stream, pages, records, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

async function main() {
  const db = new Client({ connectionString: arg('pg') });
  await db.connect();
  const backend = (await db.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
  await db.query(`CREATE TABLE IF NOT EXISTS ${qi(SCHEMA)}.sync_state (stream text PRIMARY KEY, cursor text,
                  start_time bigint, pages bigint NOT NULL DEFAULT 0, records bigint NOT NULL DEFAULT 0)`);
  const zd = zendesk.createClient({ username: 'admin@example.com', token: 'test-token', endpointUri: URL_ + '/api/v2' });
  const cpu0 = { node: cpuTicks(process.pid), pg: cpuTicks(backend) };
  const t0 = process.hrtime.bigint();
  const streams = [];
  for (const s of STREAMS) streams.push(await syncStream(zd, db, s));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const out = {
    mode: MODE, seconds, streams,
    cpu_ticks: { node: cpuTicks(process.pid) - cpu0.node, pg_backend: cpuTicks(backend) - cpu0.pg },
    node_vmhwm_kb: vmHWMkB(process.pid), pg_backend_vmhwm_kb: vmHWMkB(backend),
    node_version: process.version,
    node_zendesk_version: pkgVersion('node-zendesk'),
    pg_version: pkgVersion('pg'),
  };
  await db.end();
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => { console.error(e); process.exit(1); });
