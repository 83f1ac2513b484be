-- Optimization jobs. A job is what a merchant asked for (products × attributes); each of
-- its items is one product × one attribute, claimed by a worker under a lease. Counters on
-- the job row move in the same transaction as the items they count, so listing jobs never
-- has to count items.
CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    store_id         TEXT NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    kind             TEXT NOT NULL CHECK (kind IN ('text')),
    status           TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed', 'canceled')),
    source_scope     TEXT NOT NULL CHECK (source_scope IN ('products', 'collections')),
    -- JSON arrays: the ids the merchant picked, and the attributes to rewrite.
    source_ids       TEXT NOT NULL,
    attributes       TEXT NOT NULL,
    target_lang      TEXT,
    user_prompt      TEXT,
    brand_voice      TEXT,
    provider         TEXT NOT NULL,
    product_count    BIGINT NOT NULL,
    credits_per_item BIGINT NOT NULL CHECK (credits_per_item >= 0),
    total_items      BIGINT NOT NULL,
    pending_items    BIGINT NOT NULL,
    running_items    BIGINT NOT NULL DEFAULT 0,
    done_items       BIGINT NOT NULL DEFAULT 0,
    failed_items     BIGINT NOT NULL DEFAULT 0,
    canceled_items   BIGINT NOT NULL DEFAULT 0,
    -- Everything reserved (creation and retries) and everything given back (failed and
    -- canceled items); charged = done × credits per item.
    credits_reserved BIGINT NOT NULL,
    credits_refunded BIGINT NOT NULL DEFAULT 0,
    -- Retry rounds so far: part of the ledger references of retries and cancels.
    retry_rounds     BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT,
    canceled_at      BIGINT,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX jobs_account ON jobs (account_id, id);
CREATE INDEX jobs_account_updated ON jobs (account_id, updated_at);
CREATE INDEX jobs_active ON jobs (account_id) WHERE status IN ('pending', 'running');

CREATE TABLE job_items (
    id               TEXT PRIMARY KEY,
    job_id           TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    account_id       TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    store_id         TEXT NOT NULL,
    -- No foreign key: a product removed from the store keeps its history here.
    product_id       TEXT NOT NULL,
    attribute        TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed', 'canceled')),
    -- Claims that counted (a release at shutdown gives its attempt back).
    attempts         BIGINT NOT NULL DEFAULT 0,
    -- Which reservation pays for the item: 1 at creation, +1 per retry round.
    charge           BIGINT NOT NULL DEFAULT 1,
    -- The claim that holds the item. Every completion names it (fencing): after a lease
    -- expiry the token is cleared, so a late worker's answer is refused.
    lease_token      TEXT,
    lease_expires_at BIGINT,
    next_attempt_at  BIGINT NOT NULL,
    product_revision BIGINT,
    before_value     TEXT,
    after_value      TEXT,
    error_code       TEXT,
    error_message    TEXT,
    published_at     BIGINT,
    reverted_at      BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    finished_at      BIGINT
);
CREATE INDEX job_items_job ON job_items (job_id, id);
CREATE INDEX job_items_claim ON job_items (account_id, next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX job_items_due ON job_items (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX job_items_lease ON job_items (lease_expires_at) WHERE status = 'running';
CREATE INDEX job_items_token ON job_items (lease_token) WHERE lease_token IS NOT NULL;

-- Every write to a store: what was there, what we wrote, and when it was reverted.
CREATE TABLE publish_logs (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    store_id      TEXT NOT NULL,
    product_id    TEXT NOT NULL,
    item_id       TEXT NOT NULL,
    attribute     TEXT NOT NULL,
    value_before  TEXT NOT NULL,
    value_applied TEXT NOT NULL,
    forced        BOOLEAN NOT NULL,
    applied_at    BIGINT NOT NULL,
    reverted_at   BIGINT
);
CREATE INDEX publish_logs_item ON publish_logs (item_id, applied_at);
CREATE INDEX publish_logs_account ON publish_logs (account_id, applied_at);
