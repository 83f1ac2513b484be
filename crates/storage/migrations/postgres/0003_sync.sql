-- One row per catalog sync run: what triggered it, what it changed, how long it took and
-- why it failed, so merchants and operators can see the history of every store.
CREATE TABLE sync_batches (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    store_id    TEXT NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    trigger     TEXT NOT NULL CHECK (trigger IN ('manual', 'schedule', 'webhook', 'connect')),
    kind        TEXT NOT NULL CHECK (kind IN ('full', 'incremental', 'single')),
    status      TEXT NOT NULL CHECK (status IN ('succeeded', 'failed')),
    fetched     BIGINT NOT NULL DEFAULT 0,
    created     BIGINT NOT NULL DEFAULT 0,
    updated     BIGINT NOT NULL DEFAULT 0,
    unchanged   BIGINT NOT NULL DEFAULT 0,
    deleted     BIGINT NOT NULL DEFAULT 0,
    error       TEXT,
    started_at  BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL
);
CREATE INDEX sync_batches_store_time ON sync_batches (store_id, started_at);
