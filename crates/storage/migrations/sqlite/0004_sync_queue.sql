-- Catalog sync runs in the background: requests are queued here and claimed by whichever
-- worker process is free, with a lease so a crashed worker's request is picked up again.
-- A store may opt into the scheduled incremental sync; `synced_through` is the instant up
-- to which the store's changes are known to be read (the next incremental sync starts there).
ALTER TABLE stores ADD COLUMN auto_sync BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE stores ADD COLUMN synced_through BIGINT;
ALTER TABLE stores ADD COLUMN sync_scheduled_at BIGINT;
-- AES-256-GCM ciphertext of the secret that signs the store's webhooks.
ALTER TABLE stores ADD COLUMN webhook_secret_encrypted TEXT;

CREATE TABLE sync_requests (
    id                  TEXT PRIMARY KEY,
    account_id          TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    store_id            TEXT NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    kind                TEXT NOT NULL CHECK (kind IN ('full', 'incremental', 'single')),
    trigger             TEXT NOT NULL CHECK (trigger IN ('manual', 'schedule', 'webhook', 'connect')),
    -- The product of a single-product sync; '' for the others (so the unique index below
    -- can name the column directly on both engines).
    product_external_id TEXT NOT NULL DEFAULT '',
    status              TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    -- Incremented by every claim; completion must name the attempt it claimed (fencing).
    attempts            BIGINT NOT NULL DEFAULT 0,
    lease_expires_at    BIGINT,
    not_before          BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    finished_at         BIGINT,
    batch_id            TEXT,
    error               TEXT
);
CREATE INDEX sync_requests_claim ON sync_requests (status, not_before);
CREATE INDEX sync_requests_store ON sync_requests (store_id, created_at);
-- One waiting request per store, kind and product: a burst of webhooks or clicks on
-- "Sync now" queues one sync, not a hundred.
CREATE UNIQUE INDEX sync_requests_one_pending
    ON sync_requests (store_id, kind, product_external_id) WHERE status = 'pending';

-- Leadership leases (SQLite; PostgreSQL uses advisory locks): the scheduler runs in the
-- one process holding the unexpired lease.
CREATE TABLE leader_leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- WooCommerce key-generation requests in flight (`/wc-auth/v1/authorize`): the store
-- posts the new keys to our callback with `user_id` = the request's token, whose hash is
-- kept here with the account that asked.
CREATE TABLE woocommerce_authorizations (
    token_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    store_url  TEXT NOT NULL,
    name       TEXT NOT NULL,
    currency   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    store_id   TEXT
);
