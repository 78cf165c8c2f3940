// The run page's partitions table. Filtering, search, sorting and paging happen on the server
// (…/partitions?status=&q=&sort=&order=&offset=&limit=): the page holds one page of rows, so a
// run of 100,000 partitions is as quick to browse as one of ten.
import { api, apiPath, badge, fill, formatCount, formatDuration, h, notice, PARTITION_STATUSES, partitionHash } from './dom.js';

const PAGE_SIZE = 100;
const COLUMNS = [
  { key: 'id', label: 'Partition', sortable: true },
  { key: 'status', label: 'Status', sortable: true },
  { key: 'attempts', label: 'Attempts', sortable: true, numeric: true },
  { key: 'duration', label: 'Duration', sortable: true, numeric: true },
  { key: 'rows', label: 'Rows', sortable: true, numeric: true },
  { key: 'error', label: 'Error', sortable: false },
];

export function partitionsTable(container, runId) {
  const state = { statuses: new Set(), q: '', sort: 'id', order: 'asc', offset: 0 };
  let request = 0;

  const filters = h(
    'fieldset',
    { className: 'filters', id: 'status-filter' },
    h('legend', {}, 'Status'),
    PARTITION_STATUSES.map((status) =>
      h(
        'label',
        { className: `filter t-${status}` },
        h('input', {
          type: 'checkbox',
          value: status,
          onchange: (event) => {
            if (event.target.checked) state.statuses.add(status);
            else state.statuses.delete(status);
            state.offset = 0;
            void load();
          },
        }),
        ` ${status}`,
      ),
    ),
  );
  let searchTimer;
  const search = h('input', {
    type: 'search',
    id: 'partition-search',
    placeholder: 'Search partition ids',
    oninput: () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => {
        state.q = search.value;
        state.offset = 0;
        void load();
      }, 250);
    },
  });
  const headRow = h('tr');
  const body = h('tbody');
  const table = h('table', { className: 'partitions', id: 'partitions' }, h('thead', {}, headRow), body);
  const showing = h('span', { id: 'partitions-showing' });
  const previous = h('button', { type: 'button', id: 'page-previous', onclick: () => turn(-1) }, '‹ Previous');
  const next = h('button', { type: 'button', id: 'page-next', onclick: () => turn(1) }, 'Next ›');
  const errors = h('div');
  fill(container, h('div', { className: 'table-controls' }, filters, search), errors, table, h('div', { className: 'pager' }, previous, showing, next));

  function renderHead() {
    fill(
      headRow,
      COLUMNS.map((column) => {
        if (!column.sortable) return h('th', {}, column.label);
        const active = state.sort === column.key;
        const arrow = active ? (state.order === 'asc' ? ' ▲' : ' ▼') : '';
        return h(
          'th',
          { className: column.numeric ? 'num' : '', ariaSort: active ? (state.order === 'asc' ? 'ascending' : 'descending') : 'none' },
          h('button', { type: 'button', className: 'sort', dataset: { sort: column.key }, onclick: () => sortBy(column.key) }, column.label + arrow),
        );
      }),
    );
  }

  function sortBy(key) {
    if (state.sort === key) state.order = state.order === 'asc' ? 'desc' : 'asc';
    else [state.sort, state.order] = [key, 'asc'];
    state.offset = 0;
    void load();
  }

  function turn(direction) {
    state.offset = Math.max(0, state.offset + direction * PAGE_SIZE);
    void load();
  }

  async function load() {
    const mine = ++request;
    const query = new URLSearchParams({ sort: state.sort, order: state.order, offset: String(state.offset), limit: String(PAGE_SIZE) });
    if (state.statuses.size > 0) query.set('status', [...state.statuses].join(','));
    if (state.q !== '') query.set('q', state.q);
    renderHead();
    table.ariaBusy = 'true';
    try {
      const page = await api(`${apiPath('runs', runId, 'partitions')}?${query}`);
      if (mine !== request) return; // a newer request is on its way
      fill(errors);
      render(page);
    } catch (error) {
      if (mine === request) fill(errors, notice(`Could not load the partitions: ${error.message}`, 'error'));
    } finally {
      if (mine === request) table.ariaBusy = 'false';
    }
  }

  function render(page) {
    fill(
      body,
      page.rows.length === 0
        ? h('tr', {}, h('td', { colSpan: COLUMNS.length, className: 'muted' }, 'No partition matches.'))
        : page.rows.map((row) =>
            h(
              'tr',
              { dataset: { partition: row.id } },
              h('td', { className: 'id' }, h('a', { href: partitionHash(runId, row.id) }, row.id)),
              h('td', {}, badge(row.status)),
              h('td', { className: 'num' }, formatCount(row.attempts)),
              h('td', { className: 'num', dataset: { ms: row.durationMs ?? '' } }, formatDuration(row.durationMs)),
              h('td', { className: 'num' }, formatCount(row.rows)),
              h('td', { className: 'error' }, row.error ?? ''),
            ),
          ),
    );
    const first = page.rows.length === 0 ? 0 : page.offset + 1;
    const last = page.offset + page.rows.length;
    showing.textContent = `showing ${formatCount(first)}–${formatCount(last)} of ${formatCount(page.matching)}${page.matching !== page.total ? ` (${formatCount(page.total)} in the run)` : ''}`;
    showing.dataset.matching = String(page.matching);
    previous.disabled = page.offset === 0;
    next.disabled = last >= page.matching;
  }

  void load();
  return {
    /** Loads the current page again (the run moved on). */
    refresh: () => load(),
    destroy() {
      clearTimeout(searchTimer);
      request++;
    },
  };
}
