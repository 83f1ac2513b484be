-- Foundation: plans, accounts, users and sessions, stores, the credit ledger and webhook
-- events. Ids are UUID text, instants are Unix milliseconds, dates are YYYY-MM-DD text
-- (see the storage crate's docs for why both backends use these types).

CREATE TABLE plans (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    price_monthly_cents BIGINT NOT NULL CHECK (price_monthly_cents >= 0),
    monthly_credits     BIGINT NOT NULL CHECK (monthly_credits >= 0),
    updated_at          BIGINT NOT NULL
);

CREATE TABLE accounts (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    plan_id              TEXT NOT NULL REFERENCES plans (id),
    billing_source       TEXT NOT NULL CHECK (billing_source IN ('none', 'wix', 'stripe')),
    status               TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
    is_demo              BOOLEAN NOT NULL DEFAULT FALSE,
    credits_total        BIGINT NOT NULL CHECK (credits_total >= 0),
    credits_used         BIGINT NOT NULL DEFAULT 0 CHECK (credits_used >= 0),
    credits_reset_on     TEXT NOT NULL,
    period_end           BIGINT,
    cancel_at_period_end BOOLEAN NOT NULL DEFAULT FALSE,
    -- operationTimeStamp of the newest billing event applied, so older deliveries that
    -- arrive late cannot roll the plan back.
    plan_event_at        BIGINT,
    deactivated_at       BIGINT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
-- At most one demo account per installation.
CREATE UNIQUE INDEX accounts_one_demo ON accounts (is_demo) WHERE is_demo;
CREATE INDEX accounts_reset_due ON accounts (credits_reset_on);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX users_account ON users (account_id);

-- Only hashes of refresh tokens are stored. A family groups every token descending from
-- one login; presenting a spent token revokes its family.
CREATE TABLE refresh_tokens (
    id         TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    rotated_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

-- Single-use login links (the demo account's one-click login).
CREATE TABLE login_links (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE stores (
    id                    TEXT PRIMARY KEY,
    account_id            TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    platform              TEXT NOT NULL CHECK (platform IN ('wix', 'woocommerce', 'local')),
    external_id           TEXT NOT NULL,
    name                  TEXT NOT NULL,
    -- AES-256-GCM ciphertext (secrets crate format), never plaintext.
    credentials_encrypted TEXT,
    settings              TEXT NOT NULL DEFAULT '{}',
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    UNIQUE (platform, external_id)
);
CREATE INDEX stores_account ON stores (account_id);

-- Append-only. (account, reason, reference) is unique so a retried operation cannot apply
-- twice; the account's counters change in the same transaction as the row.
CREATE TABLE credit_ledger (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    delta      BIGINT NOT NULL,
    reason     TEXT NOT NULL CHECK (reason IN ('monthly_grant', 'plan_change', 'reserve', 'refund', 'adjustment')),
    reference  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (account_id, reason, reference)
);
CREATE INDEX credit_ledger_account_time ON credit_ledger (account_id, created_at);

-- The idempotency record of every incoming webhook delivery.
CREATE TABLE webhook_events (
    id           TEXT PRIMARY KEY,
    provider     TEXT NOT NULL,
    dedupe_key   TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    account_id   TEXT REFERENCES accounts (id) ON DELETE CASCADE,
    payload      TEXT NOT NULL,
    received_at  BIGINT NOT NULL,
    processed_at BIGINT,
    result       TEXT,
    UNIQUE (provider, dedupe_key)
);
