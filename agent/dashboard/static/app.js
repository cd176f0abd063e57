// rollcall dashboard: the page. Plain script, no framework: it renders
// the State the server sends, updates values in place as they come, and
// builds setup forms from each service's JSON Schema. Text from the
// network only ever goes into textContent or attributes, never HTML.
'use strict';

const $ = (sel) => document.querySelector(sel);
let state = null;       // the last State
const views = new Map(); // "host/service/kind/name" -> function(value, time)
const logMax = 100;

// el builds an element: el('li', {class: 'x', onclick: f}, child, 'text').
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

const key = (h, s, k, n) => `${h}/${s}/${k}/${n}`;
const enc = encodeURIComponent;

async function api(method, path, body) {
  const opts = {method, headers: {}};
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let res, ans;
  try {
    res = await fetch(path, opts);
    ans = await res.json();
  } catch (e) {
    return {ok: false, error: {code: 'network', message: String(e)}};
  }
  return ans;
}

// problems lists a failed answer's errors: the service's, or the
// dashboard's own.
function problems(ans) {
  const r = ans.result;
  if (r && (r.errors || r.error)) return r.errors && r.errors.length ? r.errors : [r.error];
  if (ans.error) return [ans.error];
  return [];
}

function describe(p) {
  return (p.field ? p.field + ': ' : '') + p.message + (p.code ? ` (${p.code})` : '');
}

// ---- values ----

function isOn(v) {
  if (typeof v === 'string') v = v.toLowerCase();
  return v === 1 || v === true || v === '1' || v === 'on' || v === 'true' || v === 'high';
}

function fmt(v, cls) {
  if (v === null || v === undefined) return '–';
  const n = typeof v === 'number' ? v : (typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN);
  if (!Number.isNaN(n) && typeof v !== 'boolean') return n.toFixed(cls.decimals || 0);
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

function num(v) {
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

// ---- rendering ----

// render shows a State. A host card is rebuilt only when what it shows
// other than values and status changed (a setup, an estop): a card that
// stays keeps its nodes, so a slider being dragged or a box being typed
// in is not swept away by another host's news.
function render(st) {
  const controlChanged = !state || state.control !== st.control;
  state = st;
  const mode = $('#mode');
  mode.textContent = st.control ? 'control' : 'read-only';
  mode.dataset.state = st.control ? 'control' : 'readonly';
  document.body.classList.toggle('readonly', !st.control);
  if (controlChanged) cards.clear();
  const want = [];
  for (const c of st.conflicts || []) {
    want.push(el('p', {class: 'warning', text: `host name ${c.host} is used by ${c.machines.length} machines`}));
  }
  const hosts = new Set();
  for (const h of st.hosts) {
    hosts.add(h.host);
    const sig = signature(h);
    let c = cards.get(h.host);
    if (!c || c.sig !== sig) {
      c = {sig, el: hostCard(h)};
      cards.set(h.host, c);
    } else {
      refreshValues(h);
    }
    want.push(c.el);
  }
  for (const name of [...cards.keys()]) if (!hosts.has(name)) cards.delete(name);
  if (want.length === 0) want.push(el('p', {class: 'muted', text: 'No rollcall host has a description on this broker yet.'}));
  const root = $('#hosts');
  const have = [...root.children];
  if (have.length !== want.length || have.some((n, i) => n !== want[i])) root.replaceChildren(...want);
  refreshSummary();
}

const cards = new Map(); // host -> {sig, el}

// signature is what a host card shows, without the values and the status
// that change in place.
function signature(h) {
  return JSON.stringify(h, (k, v) => (k === 'value' || k === 'updated' || k === 'status' ? undefined : v));
}

// refreshValues puts a State's values into a card that stays.
function refreshValues(h) {
  const f = views.get(key(h.host, '', 'status', 'status'));
  if (f) f(h.status);
  for (const s of h.services) {
    for (const [kind, list] of [['input', s.inputs], ['output', s.outputs]]) {
      for (const it of list) {
        const u = views.get(key(h.host, s.function, kind, it.name));
        if (u) u(it.value, it.updated);
      }
    }
  }
}

function controlButtons(host, service) {
  if (!state.control) return null;
  const path = 'api/control/' + enc(host) + (service ? '/' + enc(service) : '');
  const what = service ? `${host}/${service}` : host;
  const btn = (cmd, label, cls) => el('button', {
    class: cls, type: 'button', 'data-cmd': cmd, title: `${label} ${what}`,
    onclick: async (ev) => {
      const b = ev.currentTarget;
      b.disabled = true;
      await api('POST', path, {cmd});
      b.disabled = false;
    },
  }, label);
  return el('span', {class: 'actions'}, btn('estop', 'Estop', 'estop'), btn('recover', 'Recover', 'recover'));
}

function hostCard(h) {
  const meta = [];
  if (h.ipaddrs && h.ipaddrs.length) meta.push(h.ipaddrs[0]);
  if (h.version) meta.push('v' + h.version);
  if (h.rollcall) meta.push(h.rollcall);
  const status = el('span', {class: 'status', 'data-status': h.status, text: h.status});
  views.set(key(h.host, '', 'status', 'status'), (v) => {
    if (typeof v !== 'string' || v === '') return; // a cleared status: the next state says
    status.textContent = v;
    status.dataset.status = v;
    card.dataset.status = v;
    refreshSummary();
  });
  const card = el('article', {class: 'host', 'data-host': h.host, 'data-status': h.status, 'data-version': h.version},
    el('header', {},
      el('h2', {text: h.host}), status,
      el('span', {class: 'meta muted', text: meta.join(' · ')}),
      h.services.some((s) => s.control) ? controlButtons(h.host, '') : null),
    h.invalid ? el('p', {class: 'warning', text: 'invalid description: ' + h.invalid}) : null,
    h.conflict ? el('p', {class: 'warning', text: 'another machine uses this host name'}) : null,
    ...h.services.map((s) => serviceSection(h, s)));
  return card;
}

function refreshSummary() {
  const cards = document.querySelectorAll('article.host');
  let online = 0;
  cards.forEach((c) => { if (c.dataset.status === 'online') online++; });
  $('#summary').textContent = `${cards.length} host${cards.length === 1 ? '' : 's'}, ${online} online`;
}

function serviceSection(h, s) {
  const badges = [];
  if (s.halted) badges.push(el('span', {class: 'badge halted', text: 'halted'}));
  if (s.health && s.health !== 'ok') badges.push(el('span', {class: 'badge bad', title: s.error || '', text: s.health}));
  if (s.external) badges.push(el('span', {class: 'badge', text: 'external'}));
  const tools = el('span', {class: 'tools'},
    state.control && s.setup ? el('button', {type: 'button', class: 'setup', onclick: () => openSetup(h.host, s.function)}, 'Setup') : null,
    s.control ? controlButtons(h.host, s.function) : null);
  const rows = [
    ...s.outputs.map((i) => ifaceRow(h.host, s.function, 'output', i)),
    ...s.inputs.map((i) => ifaceRow(h.host, s.function, 'input', i)),
  ];
  return el('section', {class: 'service', 'data-service': s.function, 'data-halted': s.halted ? 'true' : null},
    el('header', {}, el('h3', {text: s.function}), ...badges, tools),
    s.error ? el('p', {class: 'warning', text: s.error}) : null,
    rows.length ? el('ul', {class: 'ifaces'}, ...rows) : el('p', {class: 'muted', text: 'no inputs or outputs'}));
}

// ifaceRow shows one interface with the widget its class names; an
// output takes a control only when the dashboard allows control.
function ifaceRow(host, service, kind, it) {
  const cls = it.class || {widget: 'value', decimals: 0};
  const k = key(host, service, kind, it.name);
  const li = el('li', {class: 'iface ' + kind, 'data-key': k, 'data-widget': cls.widget},
    el('span', {class: 'name', title: [cls.label, it.mode, it.type].filter(Boolean).join(', '), text: it.name}));
  const err = el('span', {class: 'err', role: 'status'});
  const unit = cls.unit ? el('span', {class: 'unit', text: cls.unit}) : null;
  const control = kind === 'output' && it.settable && state.control;
  let show;

  const send = async (value) => {
    li.classList.add('pending');
    err.textContent = '';
    const ans = await api('POST', `api/set/${enc(host)}/${enc(service)}/${enc(it.name)}`, {value});
    li.classList.remove('pending');
    if (!ans.ok) {
      err.textContent = problems(ans).map(describe).join('; ');
      show(li.dataset.value === undefined ? null : JSON.parse(li.dataset.value));
    }
  };

  switch (control ? cls.widget : readWidget(cls.widget)) {
    case 'switch': {
      const b = el('button', {type: 'button', class: 'switch', role: 'switch', 'aria-label': it.name},
        el('span', {class: 'knob'}), el('span', {class: 'label'}));
      b.addEventListener('click', () => send(isOn(JSON.parse(li.dataset.value || 'null')) ? 0 : 1));
      show = (v) => {
        const on = isOn(v);
        b.setAttribute('aria-checked', on ? 'true' : 'false');
        b.lastChild.textContent = on ? 'on' : 'off';
      };
      li.append(b);
      break;
    }
    case 'slider':
    case 'number': {
      const range = cls.widget === 'slider'
        ? el('input', {type: 'range', min: cls.min, max: cls.max, step: cls.step || 'any', 'aria-label': it.name})
        : null;
      const box = el('input', {type: 'number', class: 'num', min: cls.min, max: cls.max, step: cls.step || 'any', inputmode: 'decimal', 'aria-label': it.name + ' value'});
      if (range) {
        range.addEventListener('input', () => { box.value = range.value; });
        range.addEventListener('change', () => send(Number(range.value)));
      }
      box.addEventListener('change', () => { if (box.value !== '') send(Number(box.value)); });
      show = (v) => {
        const n = num(v);
        if (range && document.activeElement !== range && n !== null) range.value = n;
        if (document.activeElement !== box) box.value = n === null ? '' : String(n);
      };
      li.append(...[range, box, unit].filter(Boolean));
      break;
    }
    case 'text': {
      const box = el('input', {type: 'text', class: 'txt', 'aria-label': it.name});
      box.addEventListener('change', () => send(box.value));
      show = (v) => { if (document.activeElement !== box) box.value = v === null || v === undefined ? '' : fmt(v, cls); };
      li.append(box);
      break;
    }
    case 'lamp': {
      const lamp = el('span', {class: 'lamp'});
      const txt = el('span', {class: 'val'});
      show = (v) => {
        const on = isOn(v);
        lamp.dataset.on = on ? 'true' : 'false';
        txt.textContent = v === null || v === undefined ? '–' : (on ? 'on' : 'off');
      };
      li.append(lamp, txt);
      break;
    }
    case 'gauge': {
      const meter = el('meter', {min: cls.min, max: cls.max});
      const txt = el('span', {class: 'val'});
      show = (v) => {
        const n = num(v);
        if (n !== null) meter.value = n;
        txt.textContent = fmt(v, cls);
      };
      li.append(meter, txt, unit);
      break;
    }
    default: {
      const txt = el('span', {class: 'val'});
      show = (v) => { txt.textContent = fmt(v, cls); };
      li.append(txt, unit);
    }
  }
  li.append(err);
  const update = (v, t) => {
    li.dataset.value = JSON.stringify(v === undefined ? null : v);
    if (t) li.title = 'updated ' + new Date(t).toLocaleTimeString();
    li.classList.remove('pending');
    show(v);
  };
  update(it.value, it.updated);
  views.set(k, update);
  return li;
}

// readWidget is how an output is shown where it cannot be driven.
function readWidget(w) {
  return {switch: 'lamp', slider: 'gauge', number: 'value', text: 'value'}[w] || w;
}

function onValue(v) {
  const f = views.get(key(v.host, v.kind === 'status' ? '' : v.service, v.kind, v.name));
  if (f) f(v.value, v.time);
}

// ---- event log ----

function logEntry(e) {
  const where = e.service ? `${e.host}/${e.service}` : e.host;
  let text;
  if (e.op === 'status') text = `is ${e.what}`;
  else text = `${e.op}${e.what ? ' ' + e.what : ''}: ${e.ok ? (e.message || 'ok') : ''}`;
  const li = el('li', {class: e.ok ? 'ok' : 'fail'},
    el('time', {datetime: e.time, text: new Date(e.time).toLocaleTimeString()}), ' ',
    el('b', {text: where}), ' ', text);
  if (!e.ok) {
    const ps = e.problems || [];
    if (ps.length === 0) li.append(e.message || 'failed');
    for (const p of ps) li.append(el('span', {class: 'problem', text: describe(p)}));
  }
  const log = $('#log');
  log.prepend(li);
  while (log.children.length > logMax) log.lastChild.remove();
}

// ---- setup forms, from the service's JSON Schema ----

let form = null; // {host, service, root, fields}

async function openSetup(host, service) {
  const ans = await api('GET', `api/setup/${enc(host)}/${enc(service)}`);
  const dlg = $('#setup');
  $('#setup-title').textContent = `${host}/${service} setup`;
  const err = $('#setup-error');
  err.hidden = true;
  $('#setup-desc').textContent = '';
  if (!ans.schema) {
    err.hidden = false;
    err.textContent = problems(ans).map(describe).join('; ') || 'no setup schema';
    $('#setup-fields').replaceChildren();
    form = null;
  } else {
    $('#setup-desc').textContent = ans.schema.description || '';
    const fields = new Map();
    const root = build(ans.schema, ans.config || {}, '', ans.schema.title || service, fields, true);
    form = {host, service, root, fields};
    $('#setup-fields').replaceChildren(root.el);
  }
  dlg.dataset.host = host;
  dlg.dataset.service = service;
  if (!dlg.open) dlg.showModal();
}

function typeOf(s) {
  let t = s.type;
  if (Array.isArray(t)) t = t.find((x) => x !== 'null');
  if (!t && s.properties) t = 'object';
  if (!t && s.items) t = 'array';
  return t;
}

const join = (prefix, name) => (prefix ? prefix + '.' + name : name);

// build makes the form node for schema at path, filled with value. A
// node is {el, get()}; get() gives the payload value, or undefined when
// the field is left empty (the service's default then applies).
function build(schema, value, path, label, fields, top) {
  const t = typeOf(schema);
  if (t === 'object' && schema.properties) return buildObject(schema, value, path, label, fields, top);
  if (t === 'array' && schema.items && typeOf(schema.items) === 'object') return buildList(schema, value, path, label, fields);
  return buildScalar(schema, value, path, label, fields);
}

function hint(schema) {
  return schema.description ? el('small', {class: 'hint', text: schema.description}) : null;
}

function buildObject(schema, value, path, label, fields, top) {
  value = value && typeof value === 'object' ? value : {};
  const req = new Set(schema.required || []);
  const kids = [];
  const box = el(top ? 'div' : 'fieldset', {class: 'obj', 'data-path': path || null});
  if (!top) box.append(el('legend', {text: label}), hint(schema));
  for (const [name, sub] of Object.entries(schema.properties)) {
    if (name === 'id') continue; // the dashboard sets the request id
    const node = build(sub, value[name], join(path, name), name + (req.has(name) ? ' *' : ''), fields, false);
    kids.push([name, node]);
    box.append(node.el);
  }
  if (path) fields.set(path, box);
  return {
    el: box,
    get() {
      const out = {};
      for (const [name, node] of kids) {
        const v = node.get();
        if (v !== undefined) out[name] = v;
      }
      return Object.keys(out).length || top ? out : undefined;
    },
  };
}

function buildList(schema, value, path, label, fields) {
  const box = el('fieldset', {class: 'list', 'data-path': path});
  const items = el('div', {class: 'items'});
  let nodes = [];
  let present = Array.isArray(value);
  const draw = (values) => {
    for (const k of [...fields.keys()]) if (k.startsWith(path + '[')) fields.delete(k);
    nodes = values.map((v, i) => {
      const p = `${path}[${i}]`;
      const node = buildObject(schema.items, v, p, `${label.replace(/ \*$/, '')} ${i + 1}`, fields, false);
      node.el.querySelector('legend').append(' ', el('button', {
        type: 'button', class: 'remove', 'aria-label': `remove ${p}`,
        onclick: () => { const cur = nodes.map((n) => n.get() || {}); cur.splice(i, 1); draw(cur); },
      }, 'remove'));
      return node;
    });
    items.replaceChildren(...nodes.map((n) => n.el));
  };
  draw(present ? value : []);
  box.append(el('legend', {text: label}), hint(schema), items,
    el('button', {type: 'button', class: 'add', onclick: () => { present = true; draw([...nodes.map((n) => n.get() || {}), {}]); }}, 'add'));
  fields.set(path, box);
  return {
    el: box,
    get() {
      if (!present && nodes.length === 0) return undefined;
      return nodes.map((n) => n.get() || {});
    },
  };
}

function buildScalar(schema, value, path, label, fields) {
  const t = typeOf(schema);
  const id = 'f-' + path.replace(/[^A-Za-z0-9_-]/g, '_');
  const wrap = el('div', {class: 'field', 'data-path': path});
  const lab = el('label', {for: id, text: label});
  let input, get;
  const has = value !== undefined && value !== null;
  if (schema.enum) {
    input = el('select', {id, 'data-path': path}, el('option', {value: '', text: schema.default !== undefined ? `(default: ${schema.default})` : '–'}),
      ...schema.enum.map((v) => el('option', {value: JSON.stringify(v), text: String(v)})));
    if (has) input.value = JSON.stringify(value);
    get = () => (input.value === '' ? undefined : JSON.parse(input.value));
  } else if (t === 'boolean') {
    input = el('input', {id, type: 'checkbox', 'data-path': path});
    input.checked = value === true;
    get = () => (input.checked ? true : (has ? false : undefined));
    wrap.classList.add('check');
  } else if (t === 'integer' || t === 'number') {
    input = el('input', {id, type: 'number', inputmode: t === 'integer' ? 'numeric' : 'decimal', min: schema.minimum, max: schema.maximum,
      step: t === 'integer' ? 1 : 'any', placeholder: schema.default, 'data-path': path});
    if (has) input.value = value;
    get = () => {
      if (input.value.trim() === '') return undefined;
      const n = Number(input.value);
      return Number.isNaN(n) ? input.value : n; // the service says what is wrong
    };
  } else if (t === 'array') {
    // a list of words or numbers: comma-separated
    input = el('input', {id, type: 'text', placeholder: 'comma-separated', 'data-path': path});
    if (Array.isArray(value)) input.value = value.join(', ');
    get = () => (input.value.trim() === '' ? undefined : input.value.split(',').map((x) => x.trim()).filter(Boolean).map(loose));
  } else {
    // a string, or a choice of forms (a duration as "5ms" or a number)
    input = el('input', {id, type: 'text', placeholder: schema.default, 'data-path': path, autocapitalize: 'off', spellcheck: 'false'});
    if (has) input.value = typeof value === 'object' ? JSON.stringify(value) : String(value);
    get = () => {
      const v = input.value;
      if (v.trim() === '') return undefined;
      return t === 'string' ? v : loose(v);
    };
  }
  wrap.append(lab, input, hint(schema));
  fields.set(path, wrap);
  return {el: wrap, get};
}

// loose reads a value typed into a field of no one type: a number or
// true/false as such, anything else as text.
function loose(v) {
  if (/^-?\d+(\.\d+)?$/.test(v.trim())) return Number(v);
  if (v === 'true' || v === 'false') return v === 'true';
  return v;
}

function clearErrors() {
  document.querySelectorAll('#setup .field-error').forEach((e) => e.remove());
  document.querySelectorAll('#setup [aria-invalid]').forEach((e) => e.removeAttribute('aria-invalid'));
  $('#setup-error').hidden = true;
}

// showErrors puts each of the service's errors next to the field it
// names, or the nearest enclosing one ("output[0]" for "output[0].x").
function showErrors(ps) {
  const loose = [];
  for (const p of ps) {
    let path = p.field || '';
    let box = null;
    while (path && !(box = form.fields.get(path))) path = path.replace(/(\.[^.[\]]*|\[\d+\])$/, '');
    if (!box) { loose.push(p); continue; }
    const msg = el('p', {class: 'field-error', role: 'alert', 'data-field': p.field, text: p.message + (p.code ? ` (${p.code})` : '')});
    const input = box.querySelector(':scope > input, :scope > select');
    if (input) input.setAttribute('aria-invalid', 'true');
    if (box.tagName === 'FIELDSET') box.querySelector('legend').after(msg);
    else box.append(msg);
  }
  if (loose.length) {
    const e = $('#setup-error');
    e.hidden = false;
    e.textContent = loose.map(describe).join('; ');
  }
  const first = document.querySelector('#setup .field-error, #setup #setup-error:not([hidden])');
  if (first) first.scrollIntoView({block: 'nearest'});
}

async function submitSetup(ev) {
  ev.preventDefault();
  if (!form) return;
  clearErrors();
  const btn = $('#setup-form button[type=submit]');
  btn.disabled = true;
  const ans = await api('POST', `api/setup/${enc(form.host)}/${enc(form.service)}`, form.root.get());
  btn.disabled = false;
  if (ans.ok) {
    $('#setup').close();
    return;
  }
  showErrors(problems(ans));
}

// ---- live events ----

function connect() {
  const conn = $('#conn');
  const es = new EventSource('api/events');
  es.addEventListener('open', () => { conn.textContent = 'live'; conn.dataset.state = 'live'; });
  es.addEventListener('error', () => { conn.textContent = 'reconnecting…'; conn.dataset.state = 'down'; });
  es.addEventListener('state', (m) => render(JSON.parse(m.data)));
  es.addEventListener('value', (m) => onValue(JSON.parse(m.data)));
  es.addEventListener('log', (m) => {
    const d = JSON.parse(m.data);
    if (Array.isArray(d)) { $('#log').replaceChildren(); d.forEach(logEntry); } else logEntry(d);
  });
}

document.addEventListener('DOMContentLoaded', () => {
  $('#setup-form').addEventListener('submit', submitSetup);
  document.querySelectorAll('#setup .close').forEach((b) => b.addEventListener('click', () => $('#setup').close()));
  connect();
});
